"""Take one sample of a worker's vitals and store it as one row of `"{instance}_monitor"`.

The counters of the previous sample wait in Redis, so whichever pool process runs the next
sample can turn the two into rates. The row's ts is the start of the interval the sample
closes, which makes a second sample of the same interval a no-op in the table.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import psutil
import redis

from chomp_tasks import storage
from chomp_tasks.cache import get_cache
from chomp_tasks.config import Settings
from chomp_tasks.counters import Counters
from chomp_tasks.identity import Instance
from chomp_tasks.rates import Rates, rates
from chomp_tasks.resource_tally import count_resources
from chomp_tasks.sampler import collect_counters

logger = logging.getLogger(__name__)

# Counters older than a few intervals describe a worker that has since stopped; a later start
# primes its own. The expiry only keeps Redis from holding those of workers gone for good.
COUNTERS_TTL_INTERVALS = 10

_cache_down = False


def counters_key(settings: Settings, instance_name: str) -> str:
    """Return the Redis key of the latest counters of a worker."""
    return f"{settings.redis_prefix}vitals:counters:{instance_name}"


def slot_start(wall_time: float, interval_seconds: float) -> float:
    """Return the start of the interval that `wall_time` falls in, in seconds since the epoch."""
    return math.floor(wall_time / interval_seconds) * interval_seconds


def prime(
    settings: Settings, instance_name: str, root_pid: int, exclude_pids: Collection[int]
) -> None:
    """Store a first counters snapshot, so that the first sample after a start has real rates.

    Raises:
        redis.RedisError: Redis is unreachable; the first sample will then be a gap.
    """
    current = collect_counters(root_pid, exclude_pids)
    ttl = int(settings.vitals_interval_seconds * COUNTERS_TTL_INTERVALS)
    get_cache(settings).client.set(counters_key(settings, instance_name), current.to_json(), ex=ttl)


def take_sample(
    settings: Settings,
    instance: Instance,
    slot: float,
    root_pid: int,
    exclude_pids: Collection[int],
) -> dict[str, Any] | None:
    """Sample the worker under `root_pid` and store the row of the interval starting at `slot`.

    Returns:
        The row as stored, or None when no row could be made (Redis is unreachable, so
        neither the previous counters nor the resource count can be read).

    Raises:
        ValueError: `root_pid` is not running.
        StorageUnavailable, sqlalchemy.exc.OperationalError: PostgreSQL failed.
    """
    started = time.process_time()
    current = collect_counters(root_pid, exclude_pids)
    swapped = _swap_counters(settings, instance.name, current)
    if swapped is None:
        return None

    previous_json, resources_count = swapped
    row: dict[str, Any] = {
        "ts": datetime.fromtimestamp(slot, UTC),
        "instance_name": instance.name,
        "resources_count": resources_count,
        **_figures(instance.name, previous_json, current, root_pid).to_dict(),
    }
    _store(settings, instance, row)
    logger.debug(
        "Instance %r: sampled pids %s in %.1f ms of CPU: %s",
        instance.name,
        sorted(current.pids),
        (time.process_time() - started) * 1000,
        row,
    )
    return row


def _swap_counters(
    settings: Settings, instance_name: str, current: Counters
) -> tuple[bytes | None, int] | None:
    """Store the current counters, returning the previous ones and the resource count."""
    global _cache_down
    cache = get_cache(settings)
    ttl = int(settings.vitals_interval_seconds * COUNTERS_TTL_INTERVALS)
    try:
        previous = cache.client.set(
            counters_key(settings, instance_name), current.to_json(), ex=ttl, get=True
        )
        resources_count = count_resources(cache.client, settings, instance_name)
    except redis.RedisError as exc:
        if not _cache_down:
            logger.warning(
                "Instance %r: cache %s unreachable, no vitals rows until it is back: %s",
                instance_name,
                cache.describe(),
                exc,
            )
        _cache_down = True
        return None

    if _cache_down:
        logger.info("Instance %r: cache %s reachable again", instance_name, cache.describe())
        _cache_down = False
    return (previous if isinstance(previous, bytes) else None), resources_count


def _figures(name: str, previous_json: bytes | None, current: Counters, root_pid: int) -> Rates:
    """Return the rates since the previous counters, or a gap that says why there are none."""
    reason = ""
    previous = None
    if previous_json is None:
        reason = "no previous counters (the cache lost them, or the start-up sample failed)"
    else:
        try:
            previous = Counters.from_json(previous_json)
        except ValueError as exc:
            reason = str(exc)
    if previous is not None and root_pid not in previous.pids:
        reason, previous = "the previous counters belong to another process", None

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
        logger.warning("Instance %r: latest row not cached: %s", instance.name, exc)
