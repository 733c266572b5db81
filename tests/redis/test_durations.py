"""Durations ("older than") and points in time ("until"), as the options write them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from zevents.errors import ConfigError
from zevents.redis.durations import parse_duration, parse_until, until_ms


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90 min", 5400),
        ("2 days", 172_800),
        ("1 week", 604_800),
        ("36h", 129_600),
        ("14d", 1_209_600),
        ("30s", 30),
        ("1.5 hours", 5400),
        ("1h30m", 5400),
        ("1 day 12 hours", 129_600),
        (" 2 Days ", 172_800),
        ("45 seconds", 45),
        ("2 wk", 1_209_600),
        (".5h", 1800),
        ("30", 30),
        ("0", 0),
        (90, 90),
        (0.25, 0.25),
    ],
)
def test_durations_read_as_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("2 months", "unknown unit 'months'"),
        ("1 year", "unknown unit 'year'"),
        ("5 parsecs", "unknown unit 'parsecs'"),
        ("abc", "'abc' is not a duration"),
        ("-5 min", "'-5 min' is not a duration"),
        ("", "'' is not a duration"),
        ("1h 30", "'1h 30' is not a duration"),
        ("h", "'h' is not a duration"),
    ],
)
def test_a_bad_duration_is_a_config_error_naming_the_option(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        parse_duration(text, option="older_than")
    assert info.value.option == "older_than"
    assert str(info.value).startswith("older_than")


@pytest.mark.parametrize("value", [-1, float("inf"), float("nan"), True, None, [1]])
def test_a_negative_infinite_or_foreign_value_is_refused(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, option="keep_finished")  # type: ignore[arg-type]
    assert info.value.option == "keep_finished"


@pytest.fixture
def paris() -> Iterator[None]:
    """Local time is Europe/Paris (UTC+1 in January) for the test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "Europe/Paris")
        time.tzset()
        yield
    time.tzset()


def test_until_without_a_zone_is_local_time(paris: None) -> None:
    moment = parse_until("2026-01-31T18:00")
    assert moment == datetime(2026, 1, 31, 17, 0, tzinfo=timezone.utc)
    assert parse_until(datetime(2026, 1, 31, 18, 0)) == moment


def test_until_with_a_zone_keeps_it(paris: None) -> None:
    assert parse_until("2026-01-31T17:00Z") == datetime(2026, 1, 31, 17, tzinfo=timezone.utc)
    plus_two = parse_until("2026-01-31 19:00:00+02:00")
    assert plus_two == datetime(2026, 1, 31, 17, tzinfo=timezone.utc)
    assert plus_two.utcoffset() == timedelta(hours=2)


def test_a_date_alone_means_the_end_of_that_local_day(paris: None) -> None:
    end = parse_until("2026-01-31")
    assert end == datetime(2026, 1, 31, 22, 59, 59, 999_999, tzinfo=timezone.utc)
    assert until_ms("2026-01-31") == int(end.timestamp() * 1000)


def test_until_ms_takes_unix_seconds_too() -> None:
    assert until_ms(1_767_225_600.5) == 1_767_225_600_500


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "31/01/2026", "2026-01-31T25:00"])
def test_a_bad_until_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="is not an ISO 8601 date or date-time") as info:
        parse_until(text)
    assert info.value.option == "until"
