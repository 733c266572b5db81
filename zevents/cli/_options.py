"""Options several commands share, and the socket they describe (with a config connection)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import orjson
from click.core import ParameterSource

from zevents.config import CONFIG_ENV, load_connection

__all__ = [
    "Seconds",
    "SocketOptions",
    "connection_options",
    "given",
    "option_group",
    "parse_json",
    "seconds_option",
    "seconds_to_ms",
    "socket_type_option",
]

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")

#: The longest duration any option takes: a year, far past any sane timeout, and small
#: enough to convert to milliseconds and timestamps.
MAX_SECONDS = 365 * 24 * 3600.0


class Seconds(click.ParamType[float]):
    """A finite number of seconds within bounds (no nan, no inf, no overflow)."""

    name = "seconds"

    def __init__(self, minimum: float = 0.0, *, positive: bool = False) -> None:
        self.minimum = minimum
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        if seconds < self.minimum or (self.positive and seconds <= 0):
            bound = "more than 0" if self.positive else f"at least {self.minimum}"
            self.fail(f"{value!r} must be {bound} seconds", param, ctx)
        if seconds > MAX_SECONDS:
            self.fail(f"{value!r} is more than a year; use at most {MAX_SECONDS:.0f}", param, ctx)
        return seconds


def given(ctx: click.Context, name: str) -> bool:
    """Whether the user set parameter ``name`` (on the command line or in the environment)."""
    source = ctx.get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def seconds_to_ms(seconds: float) -> int:
    """Whole milliseconds, at least 1, for a positive number of seconds."""
    return max(1, round(seconds * 1000))


def parse_json(text: str, what: str) -> Any:
    """Parse JSON typed by a user.

    Raises:
        click.BadParameter: It is not JSON; the message shows how to quote a string.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{text!r} is not JSON ({exc}); a string must be quoted, e.g. '\"hello\"'",
            param_hint=what,
        ) from None


@dataclass(frozen=True)
class SocketOptions:
    """A socket as given on a command line: its endpoints, its type, a config connection.

    Attributes:
        endpoints: ENDPOINTs from the command line; they replace the connection's.
        bind: Bind the endpoints (else connect to them).
        socket_type: ``--socket-type``, or ``None`` to pick by the other options.
        confirmed: ``--confirmed``; ``None`` when not given, so a connection decides.
        config: The ``--config`` file.
        connection: The ``--connection`` name.
    """

    endpoints: tuple[str, ...] = ()
    bind: bool = True
    socket_type: str | None = None
    confirmed: bool | None = None
    config: str | None = None
    connection: str | None = None

    @staticmethod
    def take_params(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
        """Take the parameters of these fields but ``bind`` out of a command's."""
        socket_type = params.pop("socket_type")
        confirmed = params.pop("confirmed")
        return {
            "endpoints": tuple(params.pop("endpoints")),
            "socket_type": None if socket_type is None else socket_type.lower(),
            "confirmed": confirmed if given(ctx, "confirmed") else None,
            "config": params.pop("config"),
            "connection": params.pop("connection"),
        }

    def overrides(self) -> dict[str, Any]:
        """The listener options given on the command line (they win over a connection's)."""
        overrides: dict[str, Any] = {}
        if self.socket_type is not None:
            overrides["socket_type"] = self.socket_type
        if self.confirmed is not None:
            overrides["confirmed"] = self.confirmed
        return overrides

    def settings(self) -> dict[str, Any]:
        """Merge the config connection with the command line; the command line wins.

        Returns:
            Listener options, not yet validated (``ListenerOptions.build`` does that).

        Raises:
            click.UsageError: No endpoint at all, or ``--config`` without ``--connection``.
            ConfigError: The config file or connection is missing or malformed.
        """
        overrides = self.overrides()
        if self.config is not None and self.connection is None:
            raise click.UsageError("--config FILE needs --connection NAME (a table in that file)")
        settings: dict[str, Any] = {}
        if self.connection is not None:
            settings = load_connection(self.connection, self.config)
        if self.endpoints:
            settings.pop("bind", None)
            settings.pop("connect", None)
            settings["bind" if self.bind else "connect"] = self.endpoints
        elif not settings.get("bind") and not settings.get("connect"):
            if self.connection is not None:
                raise click.UsageError(
                    f"connection {self.connection!r} has no bind or connect endpoint; give one"
                )
            raise click.UsageError(
                "no endpoint: give one (e.g. tcp://127.0.0.1:5555) or --connection NAME"
            )
        settings.update(overrides)
        return settings


def seconds_option(
    *decls: str,
    help: str,
    default: float | None = None,
    positive: bool = False,
) -> Callable[[F], F]:
    """An option taking a number of seconds (``Seconds``), its default shown in the help."""
    return click.option(
        *decls,
        type=Seconds(positive=positive),
        default=default,
        show_default=default is not None,
        metavar="SECONDS",
        help=help,
    )


def socket_type_option(choices: Sequence[str], default: str) -> Callable[[F], F]:
    """``--socket-type``, one of ``choices`` in any case; ``default`` says which when not given."""
    return click.option(
        "--socket-type",
        type=click.Choice(choices, case_sensitive=False),
        help=f"Socket type. [default: {default}]",
    )


def connection_options(command: F) -> F:
    """Add ``--config FILE`` and ``--connection NAME`` (socket options from a config file)."""
    command = click.option(
        "--connection",
        metavar="NAME",
        help="Take the socket options from this connection of the config file; "
        "command-line options win.",
    )(command)
    return click.option(
        "--config",
        metavar="FILE",
        help=f"Config file holding --connection (default: ${CONFIG_ENV}, "
        "./zevents.toml, ./pyproject.toml).",
    )(command)


def option_group(
    name: str,
    build: Callable[[click.Context, dict[str, Any]], object],
    decorators: Sequence[Callable[[Any], Any]],
) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """A decorator adding several parameters to a command, which gets them as one value.

    Args:
        name: The command's argument that gets the value.
        build: Makes the value from the context and the parameters; it removes the
            parameters it takes from the mapping.
        decorators: The click decorators of the parameters, in the order of the help.
    """

    def decorate(command: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(command)
        def with_group(**params: Any) -> R:
            params[name] = build(click.get_current_context(), params)
            return command(**params)

        decorated: Callable[..., R] = with_group
        for decorator in reversed(decorators):
            decorated = decorator(decorated)
        return decorated

    return decorate
