"""``zevents keys``: CURVE key pairs for tcp:// endpoints (see docs/security.md)."""

from __future__ import annotations

import click

from zevents.curve import generate_keys

__all__ = ["keys"]


@click.group(
    epilog="""\b
Examples:
  zevents keys generate server --dir keys
  zevents keys generate orders-api --dir keys
  cp keys/orders-api.key allowed/    # on the server: let this client in
"""
)
def keys() -> None:
    """Make CURVE key pairs (zmq.auth's certificate format)."""


@keys.command(
    epilog="""\b
Examples:
  zevents keys generate server --dir keys
  zevents serve --curve-secret-key keys/server.key_secret --curve-allow allowed \\
      tcp://0.0.0.0:5555
"""
)
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory to write the two files into (created if missing).",
)
def generate(name: str, directory: str) -> None:
    """Write a new key pair: DIR/NAME.key (public: give it to the other side, or put
    it in a server's --curve-allow directory) and DIR/NAME.key_secret (secret: keep
    it; written readable by its owner only).

    Refuses to overwrite an existing pair (exit status 2).
    """
    public, secret = generate_keys(name, directory)
    click.echo(f"public key: {public}")
    click.echo(f"secret key: {secret}")
