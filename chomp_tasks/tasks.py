"""The Celery tasks that carry request vitals from ingesters to the database."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Task

from chomp_tasks.app import BATCH_SERIALIZER, app
from chomp_tasks.config import get_settings
from chomp_tasks.errors import StorageUnavailable
from chomp_tasks.names import shorten
from chomp_tasks.request_vitals import FIELDS, ID

logger = logging.getLogger(__name__)

RETRY_BACKOFF_MAX_SECONDS = 60


def retry_delay_seconds(retries: int, visibility_timeout_seconds: float) -> float:
    """Return how long a batch waits before its next attempt while the database is away.

    The delay doubles from 1 s up to a minute, and stays under half the broker's visibility
    timeout: a delayed message is held unacknowledged by the worker until it is due, and the
    Redis transport would hand one held longer than that timeout to a second worker.
    """
    ceiling = min(RETRY_BACKOFF_MAX_SECONDS, visibility_timeout_seconds / 2)
    return float(min(ceiling, 2 ** min(retries, 6)))


def retry_on_outage(task: Task, exc: Exception) -> None:
    """Put the message back for later with a growing delay; it is never dropped for an outage.

    Celery publishes the retry as a new message before it acknowledges this one, so a worker
    lost in between leaves two copies, which the record ids make harmless.
    """
    from chomp_tasks.storage.outage import note_outage

    reason = note_outage(exc)
    countdown = retry_delay_seconds(task.request.retries, get_settings().visibility_timeout_seconds)
    # Celery logs each retry with its exception; the short reason keeps SQL out of that line.
    raise task.retry(exc=StorageUnavailable(reason), countdown=countdown)


# max_retries=None on the task, not on retry(): there, None means "the task's limit", which is
# 3 by default, after which a batch would fail and be acknowledged, its records lost.
@app.task(bind=True, name="chomp_tasks.monitor_request", typing=False, max_retries=None)
def monitor_request(
    self: Task,
    resource_name: str | None = None,
    latency_ms: float | None = None,
    response_bytes: int | None = None,
    status_code: int | None = None,
    field_count: int | None = None,
    instance_name: str | None = None,
    ts: str | None = None,
    id: str | None = None,
    **unknown: Any,
) -> None:
    """Store the vitals of one HTTP request in `"{resource_name}_monitor"`.

    Args:
        resource_name: the resource the request was made for, such as "BinanceETH".
        latency_ms: how long the request took, in milliseconds.
        response_bytes: the size of the response body.
        status_code: the HTTP status, or None if no response came back.
        field_count: how many fields the ingester extracted from the response.
        instance_name: the ingester instance that made the request.
        ts: ISO-8601 time of the request; the worker's clock when absent.
        id: a UUID identifying the record; this task's id when absent, so that a message
            delivered twice is stored once.
    """
    record = {
        "resource_name": resource_name,
        "latency_ms": latency_ms,
        "response_bytes": response_bytes,
        "status_code": status_code,
        "field_count": field_count,
        "instance_name": instance_name,
        "ts": ts,
        "id": id,
        **unknown,
    }
    _store(self, [{k: v for k, v in record.items() if v is not None}], [self.request.id])


@app.task(
    bind=True, name="chomp_tasks.store_request_batch", serializer=BATCH_SERIALIZER, max_retries=None
)
def store_request_batch(self: Task, records: Any, dropped: Any = 0) -> None:
    """Store a batch of request vitals records sent by `Monitor`, in one write per batch.

    Each record is a row (a JSON array in the order of `request_vitals.FIELDS`, as Monitor
    sends it) or an object of named fields, as `monitor_request` takes them. dropped is how
    many records the sender dropped for a full buffer since its previous batch; it is added
    to the cluster's count `dropped_by_ingesters`.
    """
    if isinstance(dropped, bool) or not isinstance(dropped, int) or dropped < 0:
        logger.warning(
            "Batch %s: dropped must be a whole number >= 0, got %s; the count is left out",
            self.request.id,
            shorten(repr(dropped)),
        )
        dropped = 0
    if not isinstance(records, list):
        from chomp_tasks.collector import count_refused_message

        count_refused_message(
            get_settings(), f"batch {self.request.id}: records must be a JSON list"
        )
        return

    base: uuid.UUID | None = None
    default_ids: list[str | None] = [None] * len(records)
    for i, record in enumerate(records):
        # Records from Monitor carry their own ids; deriving one costs a hash, so only when
        # needed: the same message delivered again derives the same ids.
        if not _carries_id(record):
            if base is None:
                base = uuid.UUID(self.request.id) if _is_uuid(self.request.id) else uuid.uuid4()
            default_ids[i] = uuid.uuid5(base, str(i)).hex
    _store(self, records, default_ids, dropped)


def _store(
    task: Task, records: list[Any], default_ids: Sequence[str | None], dropped: int = 0
) -> None:
    from chomp_tasks.collector import store_records
    from chomp_tasks.storage.outage import OUTAGE_ERRORS, note_recovery

    try:
        store_records(get_settings(), records, default_ids, dropped_by_ingester=dropped)
    except OUTAGE_ERRORS as exc:
        retry_on_outage(task, exc)
    note_recovery()


def _carries_id(record: object) -> bool:
    if type(record) is list:
        return len(record) == len(FIELDS) and record[ID] is not None
    return isinstance(record, dict) and record.get("id") is not None


def _is_uuid(text: object) -> bool:
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True
