"""The worker side of request vitals: check records, store them in bulk, then update "last"."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
import sqlalchemy as sa

from chomp_tasks import storage
from chomp_tasks.cache import LastCache, get_cache
from chomp_tasks.config import Settings
from chomp_tasks.errors import InvalidName, InvalidRecord
from chomp_tasks.names import shorten, table_name
from chomp_tasks.request_vitals import (
    FIELDS,
    ID,
    RESOURCE,
    TS,
    Row,
    from_micros,
    micros,
    parse_record,
    parse_row,
)
from chomp_tasks.resource_tally import note_resources

logger = logging.getLogger(__name__)

# Enough refusals per batch to diagnose a bad producer; the rest are counted, not logged.
MAX_REFUSALS_LOGGED_PER_BATCH = 5

counters: Counter[str] = Counter()
"""What this process has stored and refused since it started."""

_schema_ready = False
_schema_lock = threading.Lock()
_cache_down = False
_cache_pending: dict[str, dict[str, Any]] = {}
_counts_pending: Counter[str] = Counter()


@dataclass
class BatchOutcome:
    """What became of the records of one message."""

    stored: int = 0
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)
    dropped_by_ingester: int = 0


def ensure_schema(settings: Settings) -> None:
    """Apply the migrations once per process, before the first write.

    Raises:
        StorageUnavailable: PostgreSQL is unreachable; the caller retries later.
    """
    global _schema_ready
    if _schema_ready:
        return
    with _schema_lock:
        if not _schema_ready:
            storage.migrate(settings)
            _schema_ready = True


def store_records(
    settings: Settings,
    raw_records: Sequence[Any],
    default_ids: Sequence[str | None],
    cache: LastCache | None = None,
    dropped_by_ingester: int = 0,
) -> BatchOutcome:
    """Check, store and cache the records of one message; refuse the bad ones, keep the rest.

    dropped_by_ingester is what the message says its sender dropped for a full buffer before
    it; it is counted once the batch is stored, so a retried batch counts it once. (A message
    delivered again after its commit counts it again: Redis counts are not transactional.)

    Raises:
        StorageUnavailable, sqlalchemy.exc.OperationalError: PostgreSQL failed; nothing of
            this batch is committed and the caller retries it whole.
    """
    outcome = BatchOutcome(dropped_by_ingester=dropped_by_ingester)
    now = datetime.now(UTC)
    now_us = micros(now)
    good: list[Row] = []
    for raw, default_id in zip(raw_records, default_ids, strict=True):
        try:
            if type(raw) is list:
                good.append(parse_row(raw, default_id, now_us))
            else:
                good.append(parse_record(raw, default_id=default_id, now=now).to_row())
        except InvalidRecord as exc:
            outcome.refused.append(f"{_describe(raw, default_id)}: {exc}")

    ensure_schema(settings)
    with storage.get_engine(settings).begin() as conn:
        good = _drop_colliding_names(conn, good, outcome)
        if good:
            outcome.stored = storage.insert_request_vitals(conn, good)
    outcome.duplicates = len(good) - outcome.stored

    _report(outcome)
    note_resources(settings, {r[RESOURCE] for r in good})
    _update_cache(settings, good, cache)
    return outcome


def count_refused_message(settings: Settings, reason: str, log: bool = True) -> None:
    """Count a message refused whole, such as a batch that is not a list, and say why."""
    counters["refused_messages"] += 1
    _counts_pending["refused_messages"] += 1
    if log:
        logger.warning("Message refused: %s", reason)
    _update_cache(settings, [], None)


def _drop_colliding_names(
    conn: sa.Connection, records: list[Row], outcome: BatchOutcome
) -> list[Row]:
    refused_names: set[str] = set()
    for name in {r[RESOURCE] for r in records}:
        try:
            storage.ensure_monitor(conn, "resource", name)
        except InvalidName as exc:
            refused_names.add(name)
            outcome.refused.append(f"resource {name!r}: {exc}")
    if not refused_names:
        return records
    return [r for r in records if r[RESOURCE] not in refused_names]


def _report(outcome: BatchOutcome) -> None:
    counts = {
        "stored_records": outcome.stored,
        "duplicate_records": outcome.duplicates,
        "refused_records": len(outcome.refused),
        "dropped_by_ingesters": outcome.dropped_by_ingester,
    }
    counters.update(counts)
    _counts_pending.update(counts)
    if outcome.dropped_by_ingester:
        logger.warning(
            "An ingester dropped %d records for a full buffer before this batch "
            "(its broker was away, or it records faster than it can send)",
            outcome.dropped_by_ingester,
        )
    for reason in outcome.refused[:MAX_REFUSALS_LOGGED_PER_BATCH]:
        logger.warning("Record refused: %s", reason)
    if len(outcome.refused) > MAX_REFUSALS_LOGGED_PER_BATCH:
        logger.warning(
            "Batch refused %d more records (%d refused in all by this process)",
            len(outcome.refused) - MAX_REFUSALS_LOGGED_PER_BATCH,
            counters["refused_records"],
        )
    logger.debug("Batch stored %d rows, %d duplicates", outcome.stored, outcome.duplicates)


def _update_cache(settings: Settings, records: Iterable[Row], cache: LastCache | None) -> None:
    """Move each monitor's "last" entry forward and add to the counts, after the commit.

    A cache outage never loses stored rows: rows and counts that could not be written wait in
    this process and go with the next batch, so "last" catches up once Redis is back even for
    monitors that receive nothing new.
    """
    global _cache_down
    newest: dict[str, Row] = {}
    for record in records:
        seen = newest.get(record[RESOURCE])
        if seen is None or record[TS] > seen[TS]:
            newest[record[RESOURCE]] = record
    for record in newest.values():
        monitor = table_name(record[RESOURCE])
        held = _cache_pending.get(monitor)
        if held is None or record[TS] > micros(held["ts"]):
            _cache_pending[monitor] = latest_row(record)

    if not _cache_pending and not _counts_pending:
        return
    cache = cache or get_cache(settings)
    try:
        cache.put_latest(_cache_pending, _counts_pending)
    except redis.RedisError as exc:
        if not _cache_down:
            logger.warning("Cache %s is unreachable, latest rows wait: %s", cache.describe(), exc)
        _cache_down = True
        return
    _cache_pending.clear()
    _counts_pending.clear()
    if _cache_down:
        logger.info("Cache %s is reachable again", cache.describe())
        _cache_down = False


def latest_row(row: Row) -> dict[str, Any]:
    """Return the stored fields of a record, as "last" serves them."""
    _, instance_name, field_count, latency_ms, response_bytes, status_code, ts_us, _ = row
    return {
        "ts": from_micros(ts_us),
        "instance_name": instance_name,
        "field_count": field_count,
        "latency_ms": latency_ms,
        "response_bytes": response_bytes,
        "status_code": status_code,
    }


def _describe(raw: object, default_id: str | None) -> str:
    if isinstance(raw, Mapping):
        name, record_id = raw.get("resource_name"), raw.get("id") or default_id
    elif type(raw) is list and len(raw) == len(FIELDS):
        name, record_id = raw[RESOURCE], raw[ID] or default_id
    else:
        return f"record {shorten(repr(raw), 40)}"
    return f"record {shorten(str(name))!r} id={shorten(str(record_id), 40)}"
