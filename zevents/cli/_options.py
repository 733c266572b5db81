"""Turning command-line options (and an optional config connection) into listener options."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import click
import orjson
from click.core import ParameterSource

from zevents.config import load_connection

__all__ = ["Seconds", "given", "listener_settings", "parse_json", "seconds_to_ms"]

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


def listener_settings(
    ctx: click.Context,
    *,
    endpoints: Iterable[str],
    bind: bool,
    config: str | None,
    connection: str | None,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """Merge a config connection with the command line; the command line wins.

    Args:
        ctx: The command's context.
        endpoints: ENDPOINTs from the command line; they replace the connection's.
        bind: Bind the command-line endpoints (else connect them).
        config: The ``--config`` file.
        connection: The ``--connection`` name.
        overrides: Options the user gave explicitly.

    Returns:
        Listener options, not yet validated (``EventListener`` validates them).

    Raises:
        click.UsageError: No endpoint at all, or ``--config`` without ``--connection``.
        ConfigError: The config file or connection is missing or malformed.
    """
    if config is not None and connection is None:
        raise click.UsageError("--config FILE needs --connection NAME (a table in that file)")
    settings: dict[str, Any] = {}
    if connection is not None:
        settings = load_connection(connection, config)
    endpoints = tuple(endpoints)
    if endpoints:
        settings.pop("bind", None)
        settings.pop("connect", None)
        settings["bind" if bind else "connect"] = endpoints
    elif not settings.get("bind") and not settings.get("connect"):
        if connection is not None:
            raise click.UsageError(
                f"connection {connection!r} has no bind or connect endpoint; give one"
            )
        raise click.UsageError(
            "no endpoint: give one (e.g. tcp://127.0.0.1:5555) or --connection NAME"
        )
    settings.update(overrides)
    return settings
