"""Read the latest row of monitors: from the Redis cache, or from the table when it is empty."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import redis

from chomp_tasks import storage
from chomp_tasks.cache import get_cache
from chomp_tasks.config import Settings
from chomp_tasks.errors import UnknownMonitor
from chomp_tasks.names import check_table_name

logger = logging.getLogger(__name__)


def split_names(names: str) -> list[str]:
    """Split a comma-separated list of monitor names and check each.

    Raises:
        InvalidName: a name cannot be a monitor table name.
    """
    return [check_table_name(name.strip()) for name in names.split(",")]


def read_last(settings: Settings, names: list[str]) -> dict[str, Any]:
    """Return the latest row of one monitor, or of several keyed by name.

    Raises:
        UnknownMonitor: a name has no stored row.
        StorageUnavailable: the cache had nothing and PostgreSQL is unreachable.
    """
    rows = {name: _latest(settings, name) for name in names}
    return rows[names[0]] if len(names) == 1 else rows


def _latest(settings: Settings, name: str) -> dict[str, Any]:
    cache = get_cache(settings)
    try:
        row = cache.get_latest(name)
    except redis.RedisError as exc:
        logger.warning(
            "Cache %s is unreachable, reading %r from the table: %s", cache.describe(), name, exc
        )
        row = None
    if row is None:
        row = _from_table(settings, name)
    return with_date(row)


def _from_table(settings: Settings, name: str) -> dict[str, Any]:
    """Read the newest row, with an instance's location from the registry of instances."""
    with storage.get_engine(settings).connect() as conn:
        info = storage.find_monitor(conn, name)
        row = storage.latest_row(conn, info)
        location = (
            storage.stored_location(conn, info.source_name) if info.kind == "instance" else None
        )
    if row is None:
        raise UnknownMonitor(f"monitor {name!r} has no rows yet")
    return {**row, **(location or {})}


def with_date(row: dict[str, Any]) -> dict[str, Any]:
    """Return the row with `ts` and `date` as ISO-8601 text in UTC, as the API serves them."""
    ts = row["ts"]
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    text = iso_utc(ts)
    return {**row, "ts": text, "date": text}


def iso_utc(ts: datetime) -> str:
    """Return a timestamp as ISO-8601 in UTC with a Z suffix."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
