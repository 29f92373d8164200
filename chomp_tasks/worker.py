"""What a chomp_tasks worker does beyond consuming tasks: its options and its start-up."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import bootsteps
from celery.signals import celeryd_after_setup
from click import Option

from chomp_tasks.app import app
from chomp_tasks.config import get_settings
from chomp_tasks.monitoring_steps import MonitoredWorker, VitalsTimer

logger = logging.getLogger(__name__)

SCHEMA_WAIT_SECONDS = 30.0

app.user_options["worker"].add(
    Option(
        ["--monitored"],
        is_flag=True,
        default=False,
        help="Sample this worker's own vitals every CHOMP_VITALS_INTERVAL seconds.",
    )
)
app.user_options["worker"].add(
    Option(
        ["--verbose"],
        is_flag=True,
        default=False,
        help="Log every monitoring operation of chomp_tasks at debug level.",
    )
)


class ChompOptions(bootsteps.Step):  # type: ignore[misc]
    """Keep the chomp_tasks options of `celery worker` on the worker object."""

    def __init__(self, worker: Any, monitored: bool = False, verbose: bool = False, **kw: Any):
        worker.chomp_monitored = monitored
        if verbose:
            logging.getLogger("chomp_tasks").setLevel(logging.DEBUG)
        super().__init__(worker, **kw)


app.steps["worker"].add(ChompOptions)


app.steps["worker"].add(MonitoredWorker)
app.steps["consumer"].add(VitalsTimer)


@celeryd_after_setup.connect
def prepare_database(instance: Any = None, **_: Any) -> None:
    """Create the database and apply migrations before the pool starts, waiting for PostgreSQL.

    Connected to the signal Celery sends once logging is set up and before the pool forks, so
    the waiting is in the worker's log and the pool processes inherit a migrated schema.

    If PostgreSQL stays away, the worker starts anyway: each task applies the migrations itself
    before its first write and is retried until the database answers.
    """
    if getattr(instance, "app", None) is not app:
        return  # A worker of another Celery application in a process that imports chomp_tasks.

    from chomp_tasks.collector import ensure_schema
    from chomp_tasks.errors import StorageUnavailable
    from chomp_tasks.storage import dispose_engines

    deadline = time.monotonic() + SCHEMA_WAIT_SECONDS
    delay = 0.5
    while True:
        try:
            ensure_schema(get_settings())
            break
        except StorageUnavailable as exc:
            if time.monotonic() + delay > deadline:
                logger.warning("Database not ready at start, tasks will retry: %s", exc)
                break
            logger.info("Database not ready yet, retrying in %.1f s: %s", delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
    # The pool children are forked from this process; they open their own connections.
    dispose_engines()
