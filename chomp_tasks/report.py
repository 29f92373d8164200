"""The per-resource hourly summary of request vitals, read from the chomp_request_hourly view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from chomp_tasks.config import Settings
from chomp_tasks.last import iso_utc
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
_REPORT = sa.text(
    f"SELECT {', '.join(REPORT_COLUMNS)} FROM chomp_request_hourly "
    "WHERE hour >= :start ORDER BY resource, hour"
)


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
