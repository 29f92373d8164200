"""The consumer of a chomp_tasks worker, loaded by Celery in workers only (worker_consumer).

Kept out of the modules an ingester imports: Celery's consumer machinery costs an ingester
about 30 ms of start-up for nothing.
"""

from __future__ import annotations

from typing import Any

from celery.worker.consumer import Consumer

from chomp_tasks.config import get_settings


class ChompConsumer(Consumer):  # type: ignore[misc]
    """Celery's consumer, also counting the messages it drops before any task sees them.

    Celery logs such a message (not JSON, pickled, an unknown content type, a malformed task)
    and drops it; this adds it to the cluster's counts, which `chomp-tasks stats` prints.
    """

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        super().on_decode_error(message, exc)
        _count_dropped(exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        super().on_invalid_task(body, message, exc)
        _count_dropped(exc)


def _count_dropped(exc: Exception) -> None:
    from chomp_tasks.collector import count_refused_message

    count_refused_message(get_settings(), type(exc).__name__, log=False)
