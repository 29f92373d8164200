"""The Redis cache of the latest row of every monitor, and of transient instance fields."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
import redis

from chomp_tasks.config import Settings, mask_url
from chomp_tasks.request_vitals import micros

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT_SECONDS = 2.0

# Replace the cached row only when the new one is strictly newer, so that records arriving out
# of order, or a redelivered old batch, never move "last" back in time. The comparison happens
# inside Redis, so two workers updating the same monitor cannot interleave.
_SET_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'ts_us')
if current and tonumber(current) >= tonumber(ARGV[1]) then
    return 0
end
redis.call('HSET', KEYS[1], 'ts_us', ARGV[1], 'row', ARGV[2])
return 1
"""


class LastCache:
    """Latest rows and transient fields of monitors, kept in Redis under one key prefix."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.prefix = settings.redis_prefix
        self.client = client or redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        )
        self._set_if_newer = self.client.register_script(_SET_IF_NEWER)
        self._where = mask_url(settings.redis_url)

    def last_key(self, monitor: str) -> str:
        """Return the key of a monitor's latest row."""
        return f"{self.prefix}last:{monitor}"

    def transient_key(self, monitor: str) -> str:
        """Return the key of a monitor's transient fields."""
        return f"{self.prefix}transient:{monitor}"

    def counts_key(self) -> str:
        """Return the key of the cluster's counts of stored, duplicate and refused records."""
        return f"{self.prefix}counts"

    def put_latest(
        self, rows: Mapping[str, Mapping[str, Any]], counts: Mapping[str, int] | None = None
    ) -> None:
        """Store each monitor's row unless Redis already holds a newer one, and add the counts.

        Args:
            rows: the newest row of each monitor of a batch; each has a timezone-aware `ts`.
            counts: amounts to add to the cluster's counts, such as {"refused_records": 2}.

        Raises:
            redis.RedisError: Redis is unreachable; the caller decides how loudly to say so.
        """
        pipe = self.client.pipeline(transaction=False)
        for name, amount in (counts or {}).items():
            if amount:
                pipe.hincrby(self.counts_key(), name, amount)
        for monitor, row in rows.items():
            ts: datetime = row["ts"]
            self._set_if_newer(
                keys=[self.last_key(monitor)],
                args=[micros(ts), orjson.dumps(row)],
                client=pipe,
            )
        pipe.execute()

    def get_latest(self, monitor: str) -> dict[str, Any] | None:
        """Return the cached latest row of a monitor, with its transient fields, or None."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.last_key(monitor), "row")
        pipe.hgetall(self.transient_key(monitor))
        raw, transient = pipe.execute()
        if raw is None:
            return None

        row: dict[str, Any] = orjson.loads(raw)
        row.update({k.decode(): v.decode() for k, v in transient.items()})
        return row

    def get_counts(self) -> dict[str, int]:
        """Return the cluster's counts of stored, duplicate and refused records and messages."""
        raw: dict[bytes, bytes] = self.client.hgetall(self.counts_key())  # type: ignore[assignment]
        return {key.decode(): int(value) for key, value in sorted(raw.items())}

    def put_transient(self, monitor: str, fields: Mapping[str, str], ttl_seconds: float) -> None:
        """Replace a monitor's transient fields, which expire after ttl_seconds."""
        key = self.transient_key(monitor)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)
        if fields:
            pipe.hset(key, mapping={k: v for k, v in fields.items()})
            pipe.expire(key, max(1, int(ttl_seconds)))
        pipe.execute()

    def describe(self) -> str:
        """Return where the cache lives, without any password, for log lines."""
        return self._where


_caches: dict[tuple[int, Settings], LastCache] = {}


def get_cache(settings: Settings) -> LastCache:
    """Return this process's cache client for the given settings."""
    key = (os.getpid(), settings)
    cache = _caches.get(key)
    if cache is None:
        cache = _caches[key] = LastCache(settings)
    return cache
