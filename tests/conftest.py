"""Shared fixtures: every run gets its own database, Redis database and queue, and cleans up.

The CHOMP_* variables are set here, at import, before any test module imports chomp_tasks, so
the in-process Celery app, the CLI subprocesses and the workers all use the same run resources.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
import sqlalchemy as sa

from tests.services import (
    POSTGRES_URL,
    REDIS_BASE_URL,
    Worker,
    claim_redis_db,
    new_run_id,
    start_worker,
)

if TYPE_CHECKING:
    # Imported where used: both import chomp_tasks, whose settings must be read after RUN_ENV
    # below is in the environment.
    from tests.faults import TcpProxy
    from tests.queue_reader import Broker

RUN_ID = new_run_id()


def _check_services() -> None:
    try:
        redis.Redis.from_url(REDIS_BASE_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        raise pytest.UsageError(
            f"Redis at {REDIS_BASE_URL} does not answer ({exc}); start it, "
            "or point CHOMP_TEST_REDIS at one"
        ) from None
    engine = sa.create_engine(f"{POSTGRES_URL}/postgres", poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        raise pytest.UsageError(
            f"PostgreSQL at {POSTGRES_URL} does not answer ({exc.orig}); start it, "
            "or point CHOMP_TEST_POSTGRES at one"
        ) from None


_check_services()
REDIS_DB = claim_redis_db(RUN_ID)
DATABASE_NAME = f"chomp_test_{RUN_ID}"
RUN_ENV = {
    "CHOMP_DATABASE_URL": f"{POSTGRES_URL}/{DATABASE_NAME}",
    "CHOMP_BROKER_URL": f"{REDIS_BASE_URL}/{REDIS_DB}",
    "CHOMP_REDIS_URL": f"{REDIS_BASE_URL}/{REDIS_DB}",
    "CHOMP_QUEUE": f"chomp_test_{RUN_ID}",
    "CHOMP_REDIS_PREFIX": f"chomp-test-{RUN_ID}:",
    "CHOMP_BATCH_AGE": "0.05",
}
os.environ.update(RUN_ENV)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Drop this run's database and empty its Redis database."""
    engine = sa.create_engine(f"{POSTGRES_URL}/postgres", poolclass=sa.pool.NullPool)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE_NAME}" WITH (FORCE)'))
    redis.Redis.from_url(f"{REDIS_BASE_URL}/{REDIS_DB}").flushdb()


@pytest.fixture(scope="session")
def run_env() -> dict[str, str]:
    """Return the environment for subprocesses of this run (workers and the CLI)."""
    return {**os.environ, **RUN_ENV}


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    """Return this run's chomp_tasks settings, with the schema migrated."""
    from chomp_tasks.config import get_settings
    from chomp_tasks.storage import migrate

    current = get_settings()
    migrate(current)
    return current


@pytest.fixture(scope="session")
def engine(settings):  # type: ignore[no-untyped-def]
    """Return an engine on this run's database."""
    from chomp_tasks.storage import get_engine

    return get_engine(settings)


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """Return the name of a database no test has made yet; it is dropped afterwards."""
    name = f"chomp_test_{RUN_ID}_fresh"
    yield name
    admin = sa.create_engine(f"{POSTGRES_URL}/postgres", poolclass=sa.pool.NullPool)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def cache_client() -> redis.Redis:
    """Return a client of this run's Redis database."""
    return redis.Redis.from_url(f"{REDIS_BASE_URL}/{REDIS_DB}")


@pytest.fixture
def workers(run_env: dict[str, str], tmp_path: Path) -> Iterator[list[Worker]]:
    """Start real workers on demand; each is stopped at the end of the test."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def worker(run_env: dict[str, str], tmp_path: Path, settings, workers: list[Worker]) -> Worker:  # type: ignore[no-untyped-def]
    """Start one real worker on this run's Redis broker and queue, ready to consume."""
    started = start_worker(run_env, tmp_path, f"w-{RUN_ID}")
    workers.append(started)
    started.wait_ready()
    return started


@pytest.fixture
def broker_proxy() -> Iterator[TcpProxy]:
    """A path to this run's Redis broker that a test can cut and restore."""
    from tests.faults import TcpProxy

    proxy = TcpProxy("127.0.0.1", 6379)
    yield proxy
    proxy.close()


@pytest.fixture
def broker(broker_proxy: TcpProxy) -> Iterator[Broker]:
    """A queue of the test's own on this run's Redis broker, reached through broker_proxy."""
    from tests.queue_reader import Broker

    broker = Broker(broker_proxy, f"sender-test-{uuid.uuid4().hex[:8]}")
    yield broker
    broker.client.delete(broker.queue)
