"""Options several commands share, and the socket they describe (with a config connection)."""

from __future__ import annotations

import functools
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import orjson
from click.core import ParameterSource

from zevents.cli._logging import log_to_stderr, verbosity_of
from zevents.cli._security import take_curve
from zevents.config import CONFIG_ENV, ZEROEVENTS, load_connection
from zevents.errors import EndpointError

__all__ = [
    "Seconds",
    "SocketOptions",
    "check_hosts",
    "connection_options",
    "endpoint_option",
    "given",
    "option_group",
    "parse_json",
    "seconds_option",
    "seconds_to_ms",
    "socket_type_option",
    "verbosity_options",
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
        bind: Endpoints to bind (ENDPOINTs of serve/bridge, ``--bind``).
        connect: Endpoints to connect to (``-e`` of emit, ``--connect``).
        socket_type: ``--socket-type``, or ``None`` to pick by the other options.
        confirmed: ``--confirmed`` (``"zeroevents"`` for ``--confirmed=zeroevents``);
            ``None`` when not given, so a connection decides.
        config: The ``--config`` file.
        connection: The ``--connection`` name.
        curve: The CURVE options given (``--curve-*``), by listener option name.
    """

    bind: tuple[str, ...] = ()
    connect: tuple[str, ...] = ()
    socket_type: str | None = None
    confirmed: bool | str | None = None
    config: str | None = None
    connection: str | None = None
    curve: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def take_params(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
        """Take the parameters of these fields but the endpoints out of a command's."""
        socket_type = params.pop("socket_type")
        flag = params.pop("confirmed")
        confirmed: bool | str | None = flag if given(ctx, "confirmed") else None
        if params.pop("confirmed_zeroevents"):
            confirmed = ZEROEVENTS
        return {
            "socket_type": None if socket_type is None else socket_type.lower(),
            "confirmed": confirmed,
            "config": params.pop("config"),
            "connection": params.pop("connection"),
            "curve": take_curve(params),
        }

    def overrides(self) -> dict[str, Any]:
        """The listener options given on the command line (they win over a connection's)."""
        overrides: dict[str, Any] = {}
        if self.socket_type is not None:
            overrides["socket_type"] = self.socket_type
        if self.confirmed is not None:
            overrides["confirmed"] = self.confirmed
        overrides.update(self.curve)
        return overrides

    def settings(self) -> dict[str, Any]:
        """Merge the config connection with the command line; the command line wins.

        Endpoints given on the command line (to bind or to connect) replace both
        endpoint lists of the connection.

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
        if self.bind or self.connect:
            settings["bind"] = self.bind
            settings["connect"] = self.connect
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


# What click passes for an endpoint option given without a value (``--connect`` alone,
# or followed by another option): a value no endpoint can be.
_NO_VALUE = "\0no endpoint"


def _reject_bare(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if _NO_VALUE in (value or ()):
        flag = max(param.opts, key=len)
        raise click.UsageError(f"{flag} takes an endpoint: {flag} tcp://127.0.0.1:5555", ctx)
    return value


def endpoint_option(*decls: str, help: str) -> Callable[[F], F]:
    """A repeatable option taking an endpoint (``--connect ADDR``, ``--bind ADDR``).

    Given without one (as the flags of earlier versions were), it is a usage error that
    shows the form it takes.
    """
    return click.option(
        *decls,
        multiple=True,
        is_flag=False,
        flag_value=_NO_VALUE,
        callback=_reject_bare,
        metavar="ENDPOINT",
        help=help,
    )


def verbosity_options(command: F) -> F:
    """Add ``-v``/``-q`` to a command: the same as the group's, counted with them."""

    @functools.wraps(command)
    def with_verbosity(*args: Any, verbose: int, quiet: int, **params: Any) -> Any:
        if verbose or quiet:
            ctx = click.get_current_context()
            log_to_stderr(ctx, verbosity_of(ctx) + verbose - quiet)
        return command(*args, **params)

    with_quiet = click.option(
        "-q", "--quiet", count=True, help="Less logging on stderr, as zevents -q."
    )(with_verbosity)
    decorated = click.option(
        "-v", "--verbose", count=True, help="More logging on stderr, as zevents -v."
    )(with_quiet)
    return decorated  # type: ignore[return-value]


def _host_of(endpoint: str) -> str | None:
    """The host name of a tcp endpoint (``tcp://[SOURCE;]HOST:PORT``), else None."""
    if not endpoint.startswith("tcp://"):
        return None
    address = endpoint[len("tcp://") :].rpartition(";")[2]
    host = address.rpartition(":")[0]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or None


def _look_up(host: str, into: dict[str, str | None]) -> None:
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        into[host] = exc.strerror or str(exc)
    except (OSError, UnicodeError) as exc:
        into[host] = str(exc)
    else:
        into[host] = None


def check_hosts(endpoints: Iterable[str], timeout: float) -> None:
    """Resolve the host of every tcp endpoint, at most ``timeout`` seconds in all.

    ZeroMQ resolves a host in the background and retries for ever, so a misspelt one
    would only show as a timeout: a command checks its connect endpoints up front.

    Raises:
        EndpointError: A host cannot be resolved, or not within ``timeout``.
    """
    hosts = {host: endpoint for endpoint in endpoints if (host := _host_of(endpoint))}
    found: dict[str, str | None] = {}
    threads = [
        threading.Thread(target=_look_up, args=(host, found), name="resolve", daemon=True)
        for host in hosts
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for host, endpoint in hosts.items():
        problem = found.get(host, f"no answer within {timeout:g} s")
        if problem is not None:
            raise EndpointError(f"cannot resolve host {host!r} of {endpoint}: {problem}")


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
