"""Refresh where a worker is: public addresses, then a location shared by workers on one address.

ip-api allows 45 requests a minute from one address, and every worker behind that address
counts against it. So the location of an address is cached in Redis for the refresh period,
and while one worker asks for it, the others on the same address wait for its answer.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime

import orjson
import redis
import requests
import sqlalchemy as sa

from chomp_tasks import storage
from chomp_tasks.cache import LastCache, get_cache
from chomp_tasks.config import Settings
from chomp_tasks.geolocation import (
    LOOKUP_TIMEOUT_SECONDS,
    Geolocation,
    find_addresses,
    find_place,
    merge,
)
from chomp_tasks.identity import Instance
from chomp_tasks.names import table_name
from chomp_tasks.storage.outage import OUTAGE_ERRORS

logger = logging.getLogger(__name__)

# A database not migrated yet has no registry to read; that is no last good location either.
_READ_ERRORS: tuple[type[Exception], ...] = (*OUTAGE_ERRORS, sa.exc.ProgrammingError)

# A location lookup gives up within twice its timeout, so a lock held longer than that belongs
# to a worker that died mid-lookup.
PLACE_LOCK_SECONDS = 4 * LOOKUP_TIMEOUT_SECONDS
PLACE_POLL_SECONDS = 0.2
# The transient fields outlive the refresh period a little, so that the lookup of the next
# refresh, which may take a few seconds, replaces them before they expire.
TRANSIENT_MARGIN_SECONDS = 6 * LOOKUP_TIMEOUT_SECONDS + 60


def place_key(settings: Settings, ip: str) -> str:
    """Return the Redis key of the cached location of an address."""
    return f"{settings.redis_prefix}geo:place:{ip}"


def refresh_location(settings: Settings, instance: Instance) -> Geolocation | None:
    """Look up where the worker is, keep it with the last good values, and store it.

    Never raises for a lookup service, Redis or PostgreSQL failing: what was found is kept,
    merged into the last good values, and each failure is logged.

    Returns:
        The location now held for the instance, or None if none was ever found.
    """
    fresh = _lookup(settings)
    cache = get_cache(settings)
    merged = merge(_last_good(settings, cache, instance.name), fresh)
    if merged is None:
        logger.warning("Instance %r: no public address found, location unknown", instance.name)
        return None

    fields = merged.to_dict()
    try:
        ttl = settings.geo_refresh_seconds + TRANSIENT_MARGIN_SECONDS
        cache.put_transient(table_name(instance.name), fields, ttl)
    except redis.RedisError as exc:
        logger.warning("Instance %r: location not cached: %s", instance.name, exc)
    _record(settings, instance, fields, located=fresh is not None and bool(fresh.location))
    logger.info("Instance %r: located at %r, %r", instance.name, merged.ipv4, merged.location)
    return merged


def _lookup(settings: Settings) -> Geolocation | None:
    """Return the addresses and location found now, or None if no address was found."""
    with requests.Session() as http:
        ipv4, ipv6 = find_addresses(
            settings.ipv4_url, settings.ipv6_url, LOOKUP_TIMEOUT_SECONDS, http
        )
        primary = ipv4 or ipv6
        if not primary:
            return None
        return Geolocation(ipv4=ipv4, ipv6=ipv6, **_shared_place(settings, primary, http))


def _shared_place(settings: Settings, ip: str, http: requests.Session) -> dict[str, str]:
    """Return the location of `ip`, asking the service only if no worker has just done so."""
    client = get_cache(settings).client
    key, lock = place_key(settings, ip), place_key(settings, ip) + ":lock"
    try:
        cached = client.get(key)
        if cached is not None:
            return _decoded(cached)
        token = uuid.uuid4().hex
        if not client.set(lock, token, nx=True, ex=int(PLACE_LOCK_SECONDS)):
            return _wait_for_place(client, ip, key, lock)
    except redis.RedisError as exc:
        logger.warning("Location of %r: cache unreachable, asking alone: %s", ip, exc)
        return find_place(settings.geo_url, ip, LOOKUP_TIMEOUT_SECONDS, http)

    try:
        place = find_place(settings.geo_url, ip, LOOKUP_TIMEOUT_SECONDS, http)
        if place:
            client.set(key, orjson.dumps(place), ex=int(settings.geo_refresh_seconds))
        return place
    finally:
        _release(client, lock, token)


def _wait_for_place(client: redis.Redis, ip: str, key: str, lock: str) -> dict[str, str]:
    """Wait for the worker holding the lock to cache the location; {} if it found none."""
    deadline = time.monotonic() + PLACE_LOCK_SECONDS
    while time.monotonic() < deadline:
        time.sleep(PLACE_POLL_SECONDS)
        cached = client.get(key)
        if cached is not None:
            return _decoded(cached)
        if not client.exists(lock):
            break
    logger.info("Location of %r: the lookup of another worker found nothing", ip)
    return {}


def _release(client: redis.Redis, lock: str, token: str) -> None:
    """Delete the lock if it is still ours; a failure leaves it to expire."""
    try:
        if client.get(lock) == token.encode():
            client.delete(lock)
    except redis.RedisError:
        pass


def _decoded(cached: bytes | str) -> dict[str, str]:
    """Return cached location fields, or {} if they cannot be read."""
    try:
        data = orjson.loads(cached)
    except orjson.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _last_good(settings: Settings, cache: LastCache, name: str) -> Geolocation | None:
    """Return the location held for an instance: in Redis, else in the registry, else None."""
    names = set(Geolocation.__dataclass_fields__)
    try:
        held = cache.client.hgetall(cache.transient_key(table_name(name)))
        fields = {_text(k): _text(v) for k, v in held.items()}
    except redis.RedisError:
        fields = {}
    if not fields:
        fields = _registered_location(settings, name) or {}
    known = {k: v for k, v in fields.items() if k in names}
    return Geolocation(**known) if any(known.values()) else None


def _registered_location(settings: Settings, name: str) -> dict[str, str] | None:
    try:
        with storage.get_engine(settings).connect() as conn:
            return storage.stored_location(conn, name)
    except _READ_ERRORS:
        return None


def _record(settings: Settings, instance: Instance, fields: dict[str, str], located: bool) -> None:
    """Keep the location in the registry of instances, for SQL joins."""
    try:
        with storage.get_engine(settings).begin() as conn:
            storage.register_instance(
                conn, instance.name, instance.uid, instance.pid, instance.hostname
            )
            storage.store_location(
                conn, instance.name, fields, datetime.now(UTC) if located else None
            )
    except OUTAGE_ERRORS as exc:
        logger.warning(
            "Instance %r: location not recorded, database unreachable: %s", instance.name, exc
        )
