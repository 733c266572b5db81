"""Options taking a duration (``--older-than 2 days``) or a moment (``--until 2026-01-31``).

They read values with ``zevents.redis.durations`` (no redis-py needed), so the command
line accepts the forms the library does, and a bad one is a usage error (status 2)
when the command starts, before Redis is reached.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from zevents.errors import ConfigError
from zevents.redis.durations import parse_duration, parse_until

__all__ = ["Duration", "Moment"]


def _flag(param: click.Parameter | None, fallback: str) -> str:
    """The option's first flag (``--older-than``), named in its errors."""
    if isinstance(param, click.Option) and param.opts:
        return param.opts[0]
    return fallback


class Duration(click.ParamType[float]):
    """A duration in seconds: ``90 min``, ``2 days``, ``1 week``, ``36h``, ``1h30m``; a
    bare number is seconds.

    Args:
        positive: Refuse 0 (``--keep-finished``).
    """

    name = "duration"

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        flag = _flag(param, "duration")
        try:
            seconds = parse_duration(str(value), option=flag)
        except ConfigError as exc:
            # The library's message already names the flag and the forms it takes.
            raise click.UsageError(str(exc), ctx) from None
        if self.positive and seconds <= 0:
            raise click.UsageError(f"{flag} must be longer than 0, not {value!r}", ctx)
        return seconds


class Moment(click.ParamType[datetime]):
    """An ISO 8601 date or date-time (``2026-01-31``: the end of that day); without a
    zone, local time."""

    name = "datetime"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_until(str(value), option=_flag(param, "until"))
        except ConfigError as exc:
            raise click.UsageError(str(exc), ctx) from None
