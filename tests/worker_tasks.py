"""Tasks a test worker imports with `--include tests.worker_tasks`, to give it real work."""

from __future__ import annotations

import time

from chomp_tasks.app import app

MAX_SPIN_SECONDS = 60.0


@app.task(name="tests.spin")
def spin(until: float) -> None:
    """Keep one CPU busy until the wall clock passes `until` (at most a minute)."""
    stop = min(until, time.time() + MAX_SPIN_SECONDS)
    while time.time() < stop:
        pass


@app.task(name="tests.ingest")
def ingest(resource: str, count: int) -> None:
    """Time `count` requests with Monitor, as an ingester that runs as a Celery task does."""
    from chomp_tasks import Monitor

    monitor = Monitor(resource, field_count=1, instance_name="pool-ingester")
    for i in range(count):
        monitor.start_timer()
        monitor.stop_timer(i, 200)
