"""The per-resource hourly summary of request vitals, read from the chomp_request_hourly view."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from chomp_tasks.config import Settings
from chomp_tasks.errors import InvalidQuery
from chomp_tasks.last import iso_utc
from chomp_tasks.names import shorten
from chomp_tasks.reading import read_connection

REPORT_COLUMNS = (
    "resource",
    "hour",
    "requests",
    "errors",
    "error_rate",
    "p50_latency_ms",
    "p95_latency_ms",
    "p99_latency_ms",
    "bytes_total",
    "bytes_avg",
)
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_REPORT = sa.text(
    f"SELECT {', '.join(REPORT_COLUMNS)} FROM chomp_request_hourly "
    "WHERE hour >= :start ORDER BY resource, hour"
)


def parse_since(text: str) -> timedelta:
    """Read a duration such as 90s, 30m, 1h, 2d or 1w.

    Raises:
        InvalidQuery: the text is not a whole number followed by s, m, h, d or w.
    """
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidQuery(
            f"duration {shorten(text)!r} must be a positive whole number followed by "
            "s, m, h, d or w, such as 30m or 1h"
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def read_report(
    settings: Settings, since: timedelta, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Return the hourly summary of every resource for the hours that overlap the last `since`.

    Raises:
        StorageUnavailable: PostgreSQL is unreachable.
    """
    start = (now or datetime.now(UTC)).astimezone(UTC) - since
    hour = start.replace(minute=0, second=0, microsecond=0)
    with read_connection(settings) as conn:
        rows = conn.execute(_REPORT, {"start": hour}).all()
    return [{**row._mapping, "hour": iso_utc(row.hour)} for row in rows]
