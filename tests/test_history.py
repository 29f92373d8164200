"""History of one monitor: stored rows, SQL buckets, ranges, errors and the row cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chomp_tasks.config import Settings
from chomp_tasks.errors import InvalidName, InvalidQuery, TooManyRows, UnknownMonitor
from chomp_tasks.history import MAX_HISTORY_ROWS, parse_query, read_history
from tests.read_fixtures import (  # noqa: F401  (fixtures used by name)
    BIG_ROWS,
    BIG_START,
    WORKER,
    WORKER_MONITOR,
    big,
    read_env,
    read_settings,
    seeded,
)

DAY = ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")


def history(settings: Settings, name: str, interval: str | None = None, span=DAY) -> list:
    return read_history(settings, parse_query(name, span[0], span[1], interval))


def test_stored_rows_come_oldest_first_with_their_values(seeded: Settings) -> None:
    rows = history(seeded, "ReadTestAPI_monitor")

    assert [r["ts"] for r in rows] == [
        "2024-01-01T12:00:00Z",
        "2024-01-01T12:00:30Z",
        "2024-01-01T12:01:10Z",
        "2024-01-01T13:30:00Z",
    ]
    assert rows[1] == {
        "ts": "2024-01-01T12:00:30Z",
        "date": "2024-01-01T12:00:30Z",
        "instance_name": "ingester-b",
        "field_count": 5,
        "latency_ms": 200.0,
        "response_bytes": 3000,
        "status_code": 500,
    }


def test_hourly_buckets_average_numbers_and_keep_the_latest_text(seeded: Settings) -> None:
    rows = history(seeded, "ReadTestAPI_monitor", "h1")

    assert [(r["ts"], r["count"]) for r in rows] == [
        ("2024-01-01T12:00:00Z", 3),
        ("2024-01-01T13:00:00Z", 1),
    ]
    assert [r["latency_ms"] for r in rows] == [120.0, 400.0]
    assert [r["response_bytes"] for r in rows] == [1500.0, 0.0]
    assert [r["status_code"] for r in rows] == [300.0, None]
    assert [r["instance_name"] for r in rows] == ["ingester-c", "ingester-d"]


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        ("s30", [("12:00:00", 1), ("12:00:30", 1), ("12:01:00", 1), ("13:30:00", 1)]),
        ("m1", [("12:00:00", 2), ("12:01:00", 1), ("13:30:00", 1)]),
        ("m30", [("12:00:00", 3), ("13:30:00", 1)]),
        ("h2", [("12:00:00", 4)]),
        ("D1", [("00:00:00", 4)]),
    ],
)
def test_fixed_width_buckets_hold_the_rows_of_their_span(
    seeded: Settings, interval: str, expected: list[tuple[str, int]]
) -> None:
    rows = history(seeded, "ReadTestAPI_monitor", interval)

    assert [(r["ts"][11:19], r["count"]) for r in rows] == expected


def test_days_start_at_midnight_utc_and_weeks_on_monday(seeded: Settings) -> None:
    span = ("2024-01-01", "2024-03-01")

    days = history(seeded, "ReadTestCal_monitor", "D1", span)
    weeks = history(seeded, "ReadTestCal_monitor", "W1", span)

    assert [(r["ts"], r["count"]) for r in days] == [
        ("2024-01-07T00:00:00Z", 1),
        ("2024-01-08T00:00:00Z", 1),
        ("2024-01-31T00:00:00Z", 1),
        ("2024-02-01T00:00:00Z", 1),
    ]
    assert [(r["ts"], r["count"]) for r in weeks] == [
        ("2024-01-01T00:00:00Z", 1),
        ("2024-01-08T00:00:00Z", 1),
        ("2024-01-29T00:00:00Z", 2),
    ]
    assert weeks[2]["latency_ms"] == 35.0


def test_months_are_calendar_months_in_utc(seeded: Settings) -> None:
    rows = history(seeded, "ReadTestCal_monitor", "M1", ("2023-12-01", "2024-12-01"))

    assert [(r["ts"], r["count"], r["latency_ms"]) for r in rows] == [
        ("2024-01-01T00:00:00Z", 3, 20.0),
        ("2024-02-01T00:00:00Z", 1, 40.0),
    ]


def test_range_includes_from_and_excludes_to(seeded: Settings) -> None:
    rows = history(
        seeded, "ReadTestAPI_monitor", span=("2024-01-01T12:00:00Z", "2024-01-01T12:00:30Z")
    )

    assert [r["ts"] for r in rows] == ["2024-01-01T12:00:00Z"]


def test_dates_with_an_offset_or_none_are_read_as_the_same_instant(seeded: Settings) -> None:
    offset = history(
        seeded,
        "ReadTestAPI_monitor",
        span=("2024-01-01T13:00:00+01:00", "2024-01-01T12:01:00+00:00"),
    )
    naive = history(
        seeded, "ReadTestAPI_monitor", span=("2024-01-01T12:00:00", "2024-01-01T12:01:00")
    )

    assert [r["ts"] for r in offset] == ["2024-01-01T12:00:00Z", "2024-01-01T12:00:30Z"]
    assert naive == offset


def test_to_defaults_to_now_and_from_to_a_day_before() -> None:
    now = datetime(2024, 5, 5, 10, 30, tzinfo=UTC)

    query = parse_query("ReadTestAPI_monitor", now=now)
    only_to = parse_query("ReadTestAPI_monitor", to_date="2024-01-02T00:00:00Z")

    assert (query.start, query.end) == (now - timedelta(days=1), now)
    assert only_to.start == datetime(2024, 1, 1, tzinfo=UTC)


def test_instance_monitors_are_bucketed_the_same_way(seeded: Settings) -> None:
    rows = history(seeded, WORKER_MONITOR, "h1")

    assert len(rows) == 1
    assert rows[0]["count"] == 3
    assert rows[0]["cpu_usage"] == 20.0
    assert rows[0]["memory_usage"] == 3000.0
    assert rows[0]["instance_name"] == WORKER


@pytest.mark.parametrize(
    "bad", ["yesterday", "2024-13-01", "2024-01-01T25:00", "", "0001-01-01T00:00:00+01:00"]
)
def test_a_bad_date_names_the_parameter(bad: str) -> None:
    with pytest.raises(InvalidQuery, match=r"from_date .* is not an ISO-8601 date"):
        parse_query("ReadTestAPI_monitor", from_date=bad or " ", to_date="2024-01-02")


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(InvalidQuery, match="must be before to_date"):
        parse_query("ReadTestAPI_monitor", "2024-01-02", "2024-01-01")


@pytest.mark.parametrize("bad", ["h3", "1h", "M2", "w1", "", "h1 "])
def test_an_unknown_interval_lists_the_known_ones(bad: str) -> None:
    with pytest.raises(InvalidQuery, match=r"interval .* is unknown; use one of s1, s2"):
        parse_query("ReadTestAPI_monitor", interval=bad)


def test_an_unknown_monitor_is_refused(seeded: Settings) -> None:
    with pytest.raises(UnknownMonitor, match="'NoSuchThing_monitor'"):
        history(seeded, "NoSuchThing_monitor")


def test_a_malformed_name_is_refused_before_any_query(seeded: Settings) -> None:
    with pytest.raises(InvalidName, match="is not a table name"):
        history(seeded, 'x"; DROP TABLE chomp_monitors; --')


def test_over_the_cap_is_an_error_that_says_how_to_narrow(big: Settings) -> None:
    span = (BIG_START.isoformat(), (BIG_START + timedelta(days=1)).isoformat())

    with pytest.raises(TooManyRows, match=f"more than {MAX_HISTORY_ROWS} rows; narrow the range"):
        history(big, "ReadTestBig_monitor", span=span)
    minutes = history(big, "ReadTestBig_monitor", "m1", span)

    assert sum(r["count"] for r in minutes) == BIG_ROWS
    assert len(minutes) == 167
    assert minutes[0]["count"] == 60


def test_exactly_the_cap_is_served_whole(big: Settings) -> None:
    end = BIG_START + timedelta(seconds=MAX_HISTORY_ROWS)

    rows = history(big, "ReadTestBig_monitor", span=(BIG_START.isoformat(), end.isoformat()))

    assert len(rows) == MAX_HISTORY_ROWS
    assert rows[-1]["ts"] == "2024-02-01T02:46:39Z"
