"""``zevents version``: the versions of zevents, pyzmq, libzmq and Python."""

from __future__ import annotations

import platform

import click
import zmq

from zevents import __version__

__all__ = ["version"]


@click.command(
    epilog="""\b
Examples:
  zevents version
"""
)
def version() -> None:
    """Print the versions of zevents, pyzmq, libzmq and Python."""
    click.echo(
        f"zevents {__version__} (pyzmq {zmq.pyzmq_version()}, libzmq {zmq.zmq_version()}, "
        f"Python {platform.python_version()})"
    )
