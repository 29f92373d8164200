"""Per-run resources of the read-side tests: a database, a Redis key prefix, and known rows.

Test modules import these fixtures by name. Rows are fed through the worker's own storing
code at fixed timestamps, so that bucket counts and averages can be checked exactly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from chomp_tasks import collector, storage
from chomp_tasks.config import Settings

POSTGRES_URL = os.environ.get(
    "CHOMP_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432"
)
REDIS_URL = os.environ.get("CHOMP_TEST_REDIS", "redis://127.0.0.1:6379") + "/0"

API = "ReadTestAPI"
CALENDAR = "ReadTestCal"
BIG = "ReadTestBig"
WORKER = "read-test-worker"
WORKER_MONITOR = "read_test_worker_monitor"
BIG_ROWS = 10_001
BIG_START = datetime(2024, 2, 1, tzinfo=UTC)

# (resource, ts, latency_ms, response_bytes, status_code, instance_name)
REQUESTS = [
    (API, "2024-01-01T12:00:00Z", 100.0, 1000, 200, "ingester-a"),
    (API, "2024-01-01T12:00:30Z", 200.0, 3000, 500, "ingester-b"),
    (API, "2024-01-01T12:01:10Z", 60.0, 500, 200, "ingester-c"),
    (API, "2024-01-01T13:30:00Z", 400.0, 0, None, "ingester-d"),
    (CALENDAR, "2024-01-07T23:00:00Z", 10.0, 10, 200, "cal"),
    (CALENDAR, "2024-01-08T01:00:00Z", 20.0, 20, 200, "cal"),
    (CALENDAR, "2024-01-31T23:59:59Z", 30.0, 30, 200, "cal"),
    (CALENDAR, "2024-02-01T00:00:00Z", 40.0, 40, 200, "cal"),
]
# (ts, cpu_usage, memory_usage)
INSTANCE_ROWS = [
    ("2024-01-01T12:00:00Z", 10.0, 1000.0),
    ("2024-01-01T12:00:30Z", 20.0, 2000.0),
    ("2024-01-01T12:01:00Z", 30.0, 6000.0),
]


def _check_services(settings: Settings) -> None:
    try:
        redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} does not answer ({exc}); start it", pytrace=False)
    admin = sa.create_engine(f"{POSTGRES_URL}/postgres", poolclass=sa.pool.NullPool)
    try:
        with admin.connect():
            pass
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} does not answer ({exc.orig})", pytrace=False)


def _drop_database(name: str) -> None:
    admin = sa.create_engine(
        f"{POSTGRES_URL}/postgres", poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def read_env() -> Iterator[dict[str, str]]:
    """Yield the CHOMP_* variables of this run's own database and Redis key prefix."""
    run = uuid.uuid4().hex[:12]
    database = f"chomp_test_read_{run}"
    env = {
        "CHOMP_DATABASE_URL": f"{POSTGRES_URL}/{database}",
        "CHOMP_REDIS_URL": REDIS_URL,
        "CHOMP_BROKER_URL": REDIS_URL,
        "CHOMP_REDIS_PREFIX": f"chomp-test-read-{run}:",
    }
    settings = Settings.from_mapping(env)
    _check_services(settings)
    storage.forget_known_monitors()
    storage.migrate(settings)
    try:
        yield env
    finally:
        storage.dispose_engines()
        storage.forget_known_monitors()
        _drop_database(database)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{env['CHOMP_REDIS_PREFIX']}*"):
            client.delete(key)


@pytest.fixture(scope="session")
def read_settings(read_env: dict[str, str]) -> Settings:
    """Return the settings of this run's database and key prefix."""
    return Settings.from_mapping(read_env)


@pytest.fixture(scope="session")
def seeded(read_settings: Settings) -> Settings:
    """Store the known request and instance rows once, and return the settings."""
    records = [
        {
            "resource_name": resource,
            "ts": ts,
            "latency_ms": latency,
            "response_bytes": size,
            "status_code": status,
            "instance_name": instance,
            "field_count": 5,
        }
        for resource, ts, latency, size, status, instance in REQUESTS
    ]
    _store(read_settings, records)
    _store_instance(read_settings)
    return read_settings


@pytest.fixture(scope="session")
def big(seeded: Settings) -> Settings:
    """Store one more row than the history cap, one second apart, and return the settings."""
    records = [
        {
            "resource_name": BIG,
            "ts": (BIG_START + timedelta(seconds=i)).isoformat(),
            "latency_ms": float(i % 100),
            "response_bytes": 1,
            "status_code": 200,
        }
        for i in range(BIG_ROWS)
    ]
    _store(seeded, records)
    return seeded


def _store(settings: Settings, records: list[dict[str, Any]]) -> None:
    outcome = collector.store_records(settings, records, [uuid.uuid4().hex for _ in records])
    assert outcome.stored == len(records), outcome.refused


def _store_instance(settings: Settings) -> None:
    with storage.get_engine(settings).begin() as conn:
        conn.execute(
            sa.text("SELECT * FROM chomp_ensure_monitor('instance', :name, :table)"),
            {"name": WORKER, "table": WORKER_MONITOR},
        )
        for ts, cpu, memory in INSTANCE_ROWS:
            conn.execute(
                sa.text(
                    "INSERT INTO chomp_instance_vitals (ts, instance_name, resources_count, "
                    "cpu_usage, memory_usage, disk_usage) VALUES (:ts, :name, 2, :cpu, :mem, 0)"
                ),
                {"ts": ts, "name": WORKER, "cpu": cpu, "mem": memory},
            )
        conn.execute(
            sa.text(
                "INSERT INTO chomp_instances (instance_name, uid, pid, hostname, location) "
                "VALUES (:name, 'uid-1', 4242, 'host-1', 'Da Nang, Vietnam')"
            ),
            {"name": WORKER},
        )
