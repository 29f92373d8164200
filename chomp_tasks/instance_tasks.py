"""The Celery tasks a --monitored worker sends to its own queue: vitals and geolocation."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from celery import Task

from chomp_tasks.app import app
from chomp_tasks.config import get_settings
from chomp_tasks.identity import Instance

logger = logging.getLogger(__name__)


def instance_args(instance: Instance) -> dict[str, Any]:
    """Return an instance as the JSON-ready argument of these tasks."""
    return asdict(instance)


@app.task(bind=True, name="chomp_tasks.collect_instance_vitals", typing=False, max_retries=None)
def collect_instance_vitals(
    self: Task, instance: dict[str, Any], slot: float, figures: dict[str, Any]
) -> None:
    """Store the vitals a worker measured for the interval that starts at `slot`.

    Args:
        instance: the worker's identity, as `instance_args` gives it.
        slot: start of the interval, in seconds since the epoch; the row's ts.
        figures: the columns cpu_usage to host_network_usage, null where there is no figure.
    """
    from chomp_tasks.collector import ensure_schema
    from chomp_tasks.instance_vitals import store_sample
    from chomp_tasks.storage.outage import OUTAGE_ERRORS, note_recovery
    from chomp_tasks.tasks import retry_on_outage

    settings = get_settings()
    who = Instance(**instance)
    try:
        ensure_schema(settings)
        store_sample(settings, who, slot, figures)
    except OUTAGE_ERRORS as exc:
        # Retried like request vitals, so an outage of the database leaves no gap in the
        # vitals that show it; the row's key makes a second copy harmless. A sample still
        # waiting when its message expires (an hour after it was measured) is dropped.
        retry_on_outage(self, exc)
    except ValueError as exc:
        logger.warning("Instance %r: vitals row refused: %s", who.name, exc)
        return
    note_recovery()


@app.task(name="chomp_tasks.refresh_geolocation", typing=False)
def refresh_geolocation(instance: dict[str, Any]) -> None:
    """Look up a worker's public addresses and location, keeping the last good values.

    Args:
        instance: the worker's identity, as `instance_args` gives it.
    """
    from chomp_tasks.location_refresh import refresh_location

    refresh_location(get_settings(), Instance(**instance))
