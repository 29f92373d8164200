"""Read the stored rows of one monitor over a time range, as they are or one row per bucket."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from chomp_tasks.config import Settings
from chomp_tasks.errors import InvalidQuery, TooManyRows
from chomp_tasks.last import iso_utc, with_date
from chomp_tasks.names import shorten
from chomp_tasks.reading import read_connection, require_monitors
from chomp_tasks.storage import MonitorInfo
from chomp_tasks.storage.kinds import KINDS, MonitorKind

logger = logging.getLogger(__name__)

MAX_HISTORY_ROWS = 10_000
DEFAULT_SPAN = timedelta(days=1)
MONTH_INTERVAL = "M1"

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "D": 86_400, "W": 604_800}
_INTERVAL_CODES = (
    *("s1", "s2", "s5", "s10", "s15", "s20", "s30"),
    *("m1", "m2", "m5", "m10", "m15", "m30"),
    *("h1", "h2", "h4", "h6", "h8", "h12"),
    *("D1", "D2", "D3", "W1"),
)
INTERVAL_WIDTHS: dict[str, timedelta] = {
    code: timedelta(seconds=_UNIT_SECONDS[code[0]] * int(code[1:])) for code in _INTERVAL_CODES
}
"""The fixed-width intervals; M1 (calendar month) is the one interval of varying width."""

INTERVALS: tuple[str, ...] = (*_INTERVAL_CODES, MONTH_INTERVAL)

# Fixed-width buckets count from a Monday at midnight UTC, so that W1 buckets start on Mondays
# and D1 buckets at midnight UTC; D2 and D3 buckets are counted from that same Monday.
_BUCKET_ORIGIN = "TIMESTAMPTZ '2000-01-03 00:00:00+00'"
_FIXED_BUCKET = f"date_bin(CAST(:width AS interval), ts, {_BUCKET_ORIGIN})"
_MONTH_BUCKET = "date_trunc('month', ts, 'UTC')"
_NUMERIC_TYPES = frozenset({"int32", "int64", "float64"})


@dataclass(frozen=True)
class HistoryQuery:
    """A checked request for the rows of one monitor from `start` (included) to `end` (excluded)."""

    name: str
    start: datetime
    end: datetime
    interval: str | None = None


def parse_query(
    name: str,
    from_date: str | None = None,
    to_date: str | None = None,
    interval: str | None = None,
    now: datetime | None = None,
) -> HistoryQuery:
    """Check the dates and interval of a history request.

    Dates are ISO-8601; one without a time zone is taken as UTC. `to_date` defaults to now and
    `from_date` to one day before `to_date`.

    Raises:
        InvalidQuery: a date cannot be read, the range is empty, or the interval is unknown.
    """
    end = _parse_date("to_date", to_date) if to_date else (now or datetime.now(UTC))
    start = _parse_date("from_date", from_date) if from_date else _day_before(end)
    if start >= end:
        raise InvalidQuery(
            f"from_date {iso_utc(start)} must be before to_date {iso_utc(end)}; the range is empty"
        )
    if interval is not None and interval not in INTERVALS:
        raise InvalidQuery(
            f"interval {shorten(interval)!r} is unknown; use one of {', '.join(INTERVALS)}"
        )
    return HistoryQuery(name, start, end, interval)


def _parse_date(field: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidQuery(
            f"{field} {shorten(text)!r} is not an ISO-8601 date such as "
            "'2024-01-01' or '2024-01-01T12:00:00Z'"
        ) from None


def _day_before(end: datetime) -> datetime:
    try:
        return end - DEFAULT_SPAN
    except OverflowError:
        raise InvalidQuery(f"to_date {iso_utc(end)} leaves no day before it") from None


def read_history(
    settings: Settings, query: HistoryQuery, max_rows: int = MAX_HISTORY_ROWS
) -> list[dict[str, Any]]:
    """Return the rows of a monitor in the query's range, oldest first.

    Without an interval, the stored rows. With one, a row per bucket that holds data: numeric
    fields averaged, text fields the bucket's latest value, `ts` the bucket's start and `count`
    the number of rows in it. Every row also has `date`, its `ts` as ISO-8601 in UTC.

    Raises:
        InvalidName, UnknownMonitor: the name is malformed or not in the registry.
        TooManyRows: more than max_rows rows would come back; nothing is returned.
        StorageUnavailable: PostgreSQL is unreachable.
    """
    with read_connection(settings) as conn:
        info = require_monitors(conn, [query.name])[query.name]
        statement, params = _statement(info, query)
        rows = conn.execute(statement, {**params, "limit": max_rows + 1}).all()

    if len(rows) > max_rows:
        raise TooManyRows(
            f"history of {query.name!r} from {iso_utc(query.start)} to {iso_utc(query.end)} "
            f"has more than {max_rows} rows; narrow the range or choose a wider interval"
        )
    return [with_date(dict(row._mapping)) for row in rows]


def _statement(info: MonitorInfo, query: HistoryQuery) -> tuple[sa.TextClause, dict[str, Any]]:
    kind = KINDS[info.kind]
    params: dict[str, Any] = {"key": info.source_name, "start": query.start, "end": query.end}
    # Identifiers come from the fixed KINDS table and the bucket expressions above, never from
    # the caller; the monitor's name, the range and the bucket width are bound values.
    where = (
        f"FROM {kind.parent_table} WHERE {kind.key_column} = :key AND ts >= :start AND ts < :end"
    )
    if query.interval is None:
        columns = ", ".join(f.name for f in kind.stored_fields)
        return sa.text(f"SELECT {columns} {where} ORDER BY ts LIMIT :limit"), params

    if query.interval == MONTH_INTERVAL:
        bucket = _MONTH_BUCKET
    else:
        bucket = _FIXED_BUCKET
        params["width"] = INTERVAL_WIDTHS[query.interval]
    columns = ", ".join(_aggregates(kind))
    sql = f"SELECT {bucket} AS ts, {columns}, count(*) AS count {where} GROUP BY 1 ORDER BY 1"
    return sa.text(f"{sql} LIMIT :limit"), params


def _aggregates(kind: MonitorKind) -> list[str]:
    """Return the select items of a bucket: averages of numbers, the latest of texts."""
    items = []
    for field in kind.stored_fields:
        if field.name == "ts":
            continue
        if field.type in _NUMERIC_TYPES:
            items.append(f"CAST(avg({field.name}) AS double precision) AS {field.name}")
        else:
            items.append(f"(array_agg({field.name} ORDER BY ts DESC))[1] AS {field.name}")
    return items
