"""Records sent by the reliability tests straight to a queue, and the ids found stored."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import orjson
import sqlalchemy as sa

from chomp_tasks import RequestVitals
from chomp_tasks.config import get_settings
from chomp_tasks.sender import publisher_for

DIRECT_TASK = "chomp_tasks.monitor_request"


class Traffic:
    """Send records of one resource to one broker and queue, remembering every id sent."""

    def __init__(self, broker_url: str, queue: str, resource: str) -> None:
        from chomp_tasks.app import create_app

        settings = dataclasses.replace(get_settings(), broker_url=broker_url, queue=queue)
        self.app = create_app(settings)
        self.resource = resource
        self.sent: list[str] = []
        self._publish = publisher_for(self.app)

    def batches(self, count: int, batch_size: int = 500) -> None:
        """Send count records in store_request_batch messages, as Monitor does."""
        for start in range(0, count, batch_size):
            batch = [self._record(i) for i in range(start, min(count, start + batch_size))]
            self._publish([orjson.dumps(r.to_row()) for r in batch])
            self.sent.extend(r.id for r in batch)

    def direct(self, count: int, per_second: float) -> None:
        """Send count records one message each, as monitor_request.delay does, at a steady rate."""
        started = time.monotonic()
        for i in range(count):
            record = self._record(i)
            self.app.send_task(DIRECT_TASK, kwargs=record.to_message())
            self.sent.append(record.id)
            ahead = started + (i + 1) / per_second - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def direct_in_background(self, count: int, per_second: float) -> threading.Thread:
        """Start sending direct records from a thread and return it."""
        thread = threading.Thread(target=self.direct, args=(count, per_second), daemon=True)
        thread.start()
        return thread

    def _record(self, i: int) -> RequestVitals:
        return RequestVitals(
            self.resource, instance_name="traffic", latency_ms=1.0, response_bytes=i
        )


def stored_ids(engine: sa.Engine, resource: str) -> list[str]:
    """Return the ids of every stored row of a resource, one entry per row."""
    with engine.connect() as conn:
        rows = conn.scalars(
            sa.text("SELECT id FROM chomp_request_vitals WHERE resource = :r"), {"r": resource}
        )
        return [uuid.UUID(str(value)).hex for value in rows]


def worker_env(base: dict[str, str], **changes: str) -> dict[str, str]:
    """Return a worker environment: base with CHOMP_* variables changed."""
    return {**base, **{f"CHOMP_{name.upper()}": value for name, value in changes.items()}}
