"""Count the distinct resources a worker has stored, across every process of its pool.

Each pool process stores request vitals on its own, so the count lives in Redis: one set per
monitored worker, emptied when the worker starts, to which each process adds the resources it
has just committed. A process remembers what it has added, so after the first few batches the
hot path makes no Redis call at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis

from chomp_tasks.cache import get_cache
from chomp_tasks.config import Settings

logger = logging.getLogger(__name__)

_key: str | None = None
_added: set[str] = set()


def tally_key(settings: Settings, instance_name: str) -> str:
    """Return the Redis key of the set of resources stored by one worker."""
    return f"{settings.redis_prefix}vitals:resources:{instance_name}"


def start_tally(settings: Settings, instance_name: str) -> None:
    """Start an empty count for this worker; call it in the main process before the pool forks."""
    global _key
    _key = tally_key(settings, instance_name)
    _added.clear()

    cache = get_cache(settings)
    try:
        cache.client.delete(_key)
    except redis.RedisError as exc:
        logger.warning(
            "Instance %r: cache %s unreachable, the resource count may include an earlier run: %s",
            instance_name,
            cache.describe(),
            exc,
        )


def note_resources(settings: Settings, names: Iterable[str]) -> None:
    """Add resources this process has just stored to its worker's count.

    Does nothing in a worker that is not monitored. A Redis failure is retried with the next
    batch that stores the same resource.
    """
    if _key is None:
        return
    new = set(names) - _added
    if not new:
        return

    try:
        get_cache(settings).client.sadd(_key, *new)
    except redis.RedisError as exc:
        logger.debug("Resource count of %r not updated, retried later: %s", _key, exc)
        return
    _added.update(new)


def count_resources(client: redis.Redis, settings: Settings, instance_name: str) -> int:
    """Return how many distinct resources a worker has stored since it started.

    Raises:
        redis.RedisError: Redis is unreachable.
    """
    return int(client.scard(tally_key(settings, instance_name)))
