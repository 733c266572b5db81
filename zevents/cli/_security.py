"""The options of the socket commands that say who may connect (CURVE) and how events
are confirmed (``--confirmed``, ``--confirmed=zeroevents``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = [
    "SocketCommand",
    "confirmed_options",
    "curve_options",
    "take_curve",
]

#: The one value ``--confirmed=VALUE`` takes.
ZEROEVENTS_FORM = "zeroevents"
#: The hidden flag ``--confirmed=zeroevents`` is read as.
_ZEROEVENTS_FLAG = "--confirmed-zeroevents"


class SocketCommand(click.Command):
    """A command whose ``--confirmed`` may also be given as ``--confirmed=zeroevents``.

    A flag with an optional value would take a following ENDPOINT as its value, so
    ``--confirmed`` stays a flag and only its ``=zeroevents`` spelling is read apart.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rewritten: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":
                rewritten += args[index:]
                break
            if arg.startswith("--confirmed="):
                value = arg.partition("=")[2]
                if value != ZEROEVENTS_FORM:
                    raise click.BadParameter(
                        f"{value!r} is not a confirmation form: give --confirmed alone, "
                        "or --confirmed=zeroevents for PHP zeroevents peers",
                        ctx=ctx,
                        param_hint="'--confirmed'",
                    )
                arg = _ZEROEVENTS_FLAG
            rewritten.append(arg)
        return super().parse_args(ctx, rewritten)


def confirmed_options(help: str) -> list[Callable[[Any], Any]]:
    """``--confirmed`` (zevents' confirmations, with a token) and the hidden flag
    ``--confirmed=zeroevents`` becomes (the command must be a ``SocketCommand``)."""
    return [
        click.option(
            "--confirmed",
            is_flag=True,
            help=help + " --confirmed=zeroevents: zeroevents' form (no token, one event "
            "in flight), for PHP zeroevents peers.",
        ),
        click.option(
            _ZEROEVENTS_FLAG,
            "confirmed_zeroevents",
            is_flag=True,
            hidden=True,
            help="The spelling --confirmed=zeroevents is read as.",
        ),
    ]


def curve_options(side: str) -> list[Callable[[Any], Any]]:
    """``--curve-secret-key``, ``--curve-server-key`` and ``--curve-allow``; ``side``
    says in the help what this command usually is ("server" or "client")."""
    usual = "binds" if side == "server" else "connects"
    return [
        click.option(
            "--curve-secret-key",
            metavar="KEY",
            help="CURVE: this side's secret key (a .key_secret file of zevents keys "
            "generate, or the 40-character Z85 key).",
        ),
        click.option(
            "--curve-server-key",
            metavar="KEY",
            help="CURVE client: the server's public key (its .key file, or Z85); "
            f"encrypts what this command {usual} with.",
        ),
        click.option(
            "--curve-allow",
            metavar="DIR",
            help="CURVE server: let in only the clients whose public keys (.key files) "
            "are in DIR; every refusal is logged with the peer's address.",
        ),
    ]


def take_curve(params: dict[str, Any]) -> dict[str, str]:
    """Take the CURVE options out of a command's parameters: the ones given, by their
    listener option names."""
    names = ("curve_secret_key", "curve_server_key", "curve_allow")
    taken = {name: params.pop(name) for name in names}
    return {name: value for name, value in taken.items() if value is not None}
