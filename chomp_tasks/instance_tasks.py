"""The Celery tasks a --monitored worker sends to its own queue: vitals and geolocation."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from chomp_tasks.app import app
from chomp_tasks.config import get_settings
from chomp_tasks.identity import Instance

logger = logging.getLogger(__name__)


def instance_args(instance: Instance) -> dict[str, Any]:
    """Return an instance as the JSON-ready argument of these tasks."""
    return asdict(instance)


@app.task(name="chomp_tasks.collect_instance_vitals", typing=False)
def collect_instance_vitals(instance: dict[str, Any], slot: float, figures: dict[str, Any]) -> None:
    """Store the vitals a worker measured for the interval that starts at `slot`.

    Args:
        instance: the worker's identity, as `instance_args` gives it.
        slot: start of the interval, in seconds since the epoch; the row's ts.
        figures: the columns cpu_usage to host_network_usage, null where there is no figure.
    """
    from chomp_tasks.collector import ensure_schema
    from chomp_tasks.instance_vitals import store_sample
    from chomp_tasks.storage.outage import OUTAGE_ERRORS, note_outage, note_recovery

    settings = get_settings()
    who = Instance(**instance)
    try:
        ensure_schema(settings)
        store_sample(settings, who, slot, figures)
    except OUTAGE_ERRORS as exc:
        # The next interval brings its own row; a retry would pile up behind the outage.
        note_outage(exc)
        return
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
