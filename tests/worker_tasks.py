"""Tasks a test worker imports with `--include tests.worker_tasks`, to give it real work."""

from __future__ import annotations

import time

from chomp_tasks.app import app

SPIN_SLICE_SECONDS = 0.25


@app.task(name="tests.spin")
def spin(until: float) -> None:
    """Keep one CPU busy for a short slice, or not at all once the wall clock passes `until`."""
    stop = min(until, time.time() + SPIN_SLICE_SECONDS)
    while time.time() < stop:
        pass
