"""Reading durations ("older than 2 days") and points in time ("until 2026-01-31").

Pure functions, no I/O, importable without redis-py: the command line and the library
read ``--older-than``, ``--until`` and ``keep_finished`` with them, so both accept the
same forms and refuse the same mistakes with the same words.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, time

from zevents.errors import ConfigError

__all__ = ["UNITS", "parse_duration", "parse_until", "until_ms"]

_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
#: Every unit a duration may name, and its length in seconds.
UNITS: dict[str, float] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), _MINUTE),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), _HOUR),
    **dict.fromkeys(("d", "day", "days"), _DAY),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 7 * _DAY),
}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(_NUMBER + r"\s*([a-z]+)", re.IGNORECASE)
_WHOLE = re.compile(r"(?:\s*" + _NUMBER + r"\s*[a-z]+)+\s*", re.IGNORECASE)
_BARE = re.compile(r"\s*" + _NUMBER + r"\s*")
_FORMS = "a number and a unit, e.g. '90 min', '2 days', '1 week', '36h', '1h30m'"


def parse_duration(value: str | float, *, option: str = "older_than") -> float:
    """The seconds of a duration: ``"90 min"``, ``"2 days"``, ``"1 week"``, ``"36h"``,
    ``"14d"``, ``"1.5 hours"``, ``"1h30m"``; a bare number (``"30"``, ``30``) is seconds.

    Units: ``s``/``sec``/``second(s)``, ``m``/``min``/``minute(s)``, ``h``/``hr``/
    ``hour(s)``, ``d``/``day(s)``, ``w``/``wk``/``week(s)`` (any case). Months and years
    are refused: their length varies.

    Args:
        value: The text, or a number of seconds.
        option: The option it came from, named in the error.

    Raises:
        ConfigError: Not a duration, or a negative one (``option`` is ``option``).
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{option} must be a duration, not {value!r}", option=option)
    if not isinstance(value, str):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(
                f"{option} must be a duration of 0 seconds or more, not {value!r}",
                option=option,
            )
        return float(value)
    bare = _BARE.fullmatch(value)
    if bare:
        return float(bare.group(1))
    if not _WHOLE.fullmatch(value):
        raise ConfigError(f"{option}: {value!r} is not a duration; write {_FORMS}", option=option)
    seconds = 0.0
    for number, unit in _PART.findall(value):
        length = UNITS.get(unit.lower())
        if length is None:
            raise ConfigError(
                f"{option}: unknown unit {unit!r} in {value!r}; use s, min, h, d or w "
                "(months and years vary in length)",
                option=option,
            )
        seconds += float(number) * length
    return seconds


def parse_until(value: str | datetime, *, option: str = "until") -> datetime:
    """The moment an ``--until`` value names, with its time zone.

    An ISO 8601 date-time (``2026-01-31T18:00``, ``2026-01-31 18:00:00+01:00``,
    ``2026-01-31T17:00Z``), or a date alone (``2026-01-31``), which means the end of
    that day, so the whole day is included. Without a zone it is local time; a
    ``datetime`` without one is local time too.

    Raises:
        ConfigError: Not an ISO 8601 date or date-time (``option`` is ``option``).
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.astimezone()
    if not isinstance(value, str):
        raise ConfigError(f"{option} must be a date or date-time, not {value!r}", option=option)
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time.max).astimezone()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option}: {value!r} is not an ISO 8601 date or date-time "
            "(e.g. 2026-01-31, 2026-01-31T18:00, 2026-01-31T17:00:00Z)",
            option=option,
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def until_ms(value: str | datetime | float) -> int:
    """``parse_until``'s moment (or Unix seconds) as Unix milliseconds."""
    if isinstance(value, (str, datetime)):
        return int(parse_until(value).timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"until must be a date or date-time, not {value!r}", option="until")
    return int(value * 1000)
