"""Measure a worker's vitals in its main process; store each interval's row from a pool process.

The main process snapshots its tree at each interval boundary and turns the previous snapshot
and this one into figures, so a sample is taken on time even while every pool process is busy
with long tasks; only the storing waits for a free one. The row's ts is the start of the
interval the figures cover, which makes a second delivery of the same sample a no-op.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import psutil
import redis

from chomp_tasks import storage
from chomp_tasks.cache import get_cache
from chomp_tasks.config import Settings
from chomp_tasks.counters import Counters
from chomp_tasks.errors import InvalidRecord
from chomp_tasks.identity import Instance
from chomp_tasks.rates import Rates, rates
from chomp_tasks.resource_tally import count_resources
from chomp_tasks.sampler import collect_counters

logger = logging.getLogger(__name__)

FIGURE_NAMES = frozenset(field.name for field in fields(Rates))

_cache_down = False


def slot_start(wall_time: float, interval_seconds: float) -> float:
    """Return the start of the interval that `wall_time` falls in, in seconds since the epoch."""
    return math.floor(wall_time / interval_seconds) * interval_seconds


def measure(
    name: str, previous: Counters | None, root_pid: int, exclude_pids: Collection[int]
) -> tuple[Counters, Rates]:
    """Snapshot the tree under `root_pid` and return it with the figures since `previous`.

    Never blocks to measure. Without a usable previous snapshot the figures are a logged gap.

    Raises:
        ValueError: `root_pid` is not running.
    """
    started = time.process_time()
    current = collect_counters(root_pid, exclude_pids)
    figures = _figures(name, previous, current, root_pid)
    logger.debug(
        "Instance %r: sampled pids %s in %.1f ms of CPU",
        name,
        sorted(current.pids),
        (time.process_time() - started) * 1000,
    )
    return current, figures


def store_sample(
    settings: Settings, instance: Instance, slot: float, figures: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Store the row of the interval starting at `slot`, then move the monitor's "last".

    Returns:
        The row; its resources_count is None while Redis, where the count lives, is
        unreachable.

    Raises:
        InvalidRecord: `figures` are not the figures of a sample.
        StorageUnavailable, sqlalchemy.exc.OperationalError: PostgreSQL failed.
    """
    resources_count = _resources_count(settings, instance.name)
    row: dict[str, Any] = {
        "ts": datetime.fromtimestamp(slot, UTC),
        "instance_name": instance.name,
        "resources_count": resources_count,
        **checked_figures(figures),
    }
    _store(settings, instance, row)
    logger.debug("Instance %r: stored %s", instance.name, row)
    return row


def checked_figures(figures: Mapping[str, Any]) -> dict[str, float | None]:
    """Return the figures of a sample message, refusing anything else.

    Raises:
        InvalidRecord: a figure is missing, unknown, or not a finite number >= 0 or null.
    """
    if set(figures) != FIGURE_NAMES:
        raise InvalidRecord(
            f"figures must be exactly {sorted(FIGURE_NAMES)}, got {sorted(figures)[:12]}"
        )
    for key, value in figures.items():
        good = value is None or (
            type(value) in (int, float) and math.isfinite(value) and value >= 0
        )
        if not good:
            raise InvalidRecord(f"figure {key} must be a finite number >= 0 or null")
    return {k: None if v is None else float(v) for k, v in figures.items()}


def _resources_count(settings: Settings, name: str) -> int | None:
    """Return the worker's resource count, or None while Redis is unreachable (said once)."""
    global _cache_down
    cache = get_cache(settings)
    try:
        count = count_resources(cache.client, settings, name)
    except redis.RedisError as exc:
        if not _cache_down:
            logger.warning(
                "Instance %r: cache %s unreachable, rows go without resources_count: %s",
                name,
                cache.describe(),
                exc,
            )
        _cache_down = True
        return None

    if _cache_down:
        logger.info("Instance %r: cache %s reachable again", name, cache.describe())
        _cache_down = False
    return count


def _figures(name: str, previous: Counters | None, current: Counters, root_pid: int) -> Rates:
    """Return the rates since the previous counters, or a gap that says why there are none."""
    reason = "no previous snapshot (the start-up one failed)"
    if previous is not None and root_pid not in previous.pids:
        reason, previous = "the previous snapshot belongs to another process", None

    if previous is None:
        logger.warning("Instance %r: %s; rates left empty this interval", name, reason)
        return _gap(current)
    return rates(previous, current, psutil.cpu_count() or os.cpu_count() or 1)


def _gap(current: Counters) -> Rates:
    """Return the figures that need no previous sample: the memory in use now."""
    return Rates(
        cpu_usage=None,
        memory_usage=float(current.tree_memory_bytes),
        disk_usage=None,
        host_cpu_usage=None,
        host_memory_usage=float(current.host_memory_used_bytes),
        host_disk_usage=None,
        host_network_usage=None,
    )


def _store(settings: Settings, instance: Instance, row: dict[str, Any]) -> None:
    """Insert the row and the instance's identity, then move its "last" entry forward."""
    with storage.get_engine(settings).begin() as conn:
        table = storage.ensure_monitor(conn, "instance", instance.name)
        stored = storage.insert_instance_vitals(conn, row)
        storage.register_instance(
            conn, instance.name, instance.uid, instance.pid, instance.hostname
        )
    if not stored:
        logger.warning(
            "Instance %r: interval %s already stored; this sample is dropped",
            instance.name,
            row["ts"].isoformat(),
        )
        return

    cache = get_cache(settings)
    try:
        cache.put_latest({table: row})
    except redis.RedisError as exc:
        # The outage was said once when the resource count could not be read.
        logger.debug("Instance %r: latest row not cached: %s", instance.name, exc)
