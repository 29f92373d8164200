"""Outages of PostgreSQL, the broker and the Redis cache while records flow: nothing lost."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from chomp_tasks import RequestVitals
from chomp_tasks.cache import LastCache
from chomp_tasks.config import Settings, get_settings
from chomp_tasks.sender import Sender, publisher_for
from tests.conftest import RUN_ID
from tests.faults import TcpProxy
from tests.services import Worker, start_worker, wait_for
from tests.traffic import Traffic, stored_ids, worker_env

OUTAGE_SECONDS = 10.0


@pytest.fixture
def proxies() -> Iterator[list[TcpProxy]]:
    opened: list[TcpProxy] = []
    yield opened
    for proxy in opened:
        proxy.close()


def proxy_to(proxies: list[TcpProxy], port: int) -> TcpProxy:
    proxy = TcpProxy("127.0.0.1", port)
    proxies.append(proxy)
    return proxy


def outage(proxy: TcpProxy, after: float, seconds: float = OUTAGE_SECONDS) -> threading.Thread:
    """Cut the proxy after some seconds and restore it seconds later, from a thread."""

    def run() -> None:
        time.sleep(after)
        proxy.set_mode("refuse")
        time.sleep(seconds)
        proxy.set_mode("open")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def assert_stored_exactly_once(engine: sa.Engine, resource: str, sent: list[str]) -> None:
    wait_for(lambda: len(stored_ids(engine, resource)) >= len(sent), timeout=90, what=resource)
    stored = Counter(stored_ids(engine, resource))
    assert set(stored) == set(sent) and max(stored.values()) == 1


def test_database_outage_loses_and_doubles_nothing_and_is_logged_once(
    run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker],
    proxies: list[TcpProxy],
) -> None:  # fmt: skip
    proxy = proxy_to(proxies, 5432)
    database = run_env["CHOMP_DATABASE_URL"].rsplit("/", 1)[1]
    queue = f"chomp_test_pg_{RUN_ID}"
    database_url = f"postgresql+psycopg2://postgres@127.0.0.1:{proxy.port}/{database}"
    env = worker_env(run_env, queue=queue, database_url=database_url)
    worker = start_worker(env, tmp_path, f"pg-{RUN_ID}")
    workers.append(worker)
    worker.wait_ready()

    traffic = Traffic(env["CHOMP_BROKER_URL"], queue, "DbOutage")
    cut = outage(proxy, after=3.0)
    for _ in range(20):
        traffic.batches(100, batch_size=100)
        time.sleep(1.0)
    cut.join()

    assert_stored_exactly_once(engine, "DbOutage", traffic.sent)
    log = worker.log()
    assert 1 <= log.count("Database is unreachable, batches will be retried") <= 2  # one a child
    assert "Database is reachable again" in log
    assert "ERROR" not in log and "Traceback" not in log


def test_broker_outage_holds_records_in_the_ingester_and_delivers_them_after(
    run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker],
    proxies: list[TcpProxy], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, "chomp_tasks.sender")
    proxy = proxy_to(proxies, 6379)
    queue = f"chomp_test_broker_{RUN_ID}"
    worker = start_worker(worker_env(run_env, queue=queue), tmp_path, f"broker-{RUN_ID}")
    workers.append(worker)
    worker.wait_ready()

    from chomp_tasks.app import create_app

    db = run_env["CHOMP_BROKER_URL"].rsplit("/", 1)[1]
    settings = dataclasses.replace(get_settings(), broker_url=proxy.url("redis", f"/{db}"))
    app = create_app(dataclasses.replace(settings, queue=queue))
    sender = Sender(dataclasses.replace(settings, batch_size=100), publish=publisher_for(app))
    sent: list[str] = []
    slowest = 0.0
    cut = outage(proxy, after=3.0)
    for i in range(4000):  # 200 records/s for 20 s
        record = RequestVitals("BrokerOutage", latency_ms=1.0, response_bytes=i)
        started = time.perf_counter()
        sender.submit(orjson.dumps(record.to_row()))
        slowest = max(slowest, time.perf_counter() - started)
        sent.append(record.id)
        if i % 20 == 19:
            time.sleep(0.1)
    cut.join()

    assert sender.flush(timeout=30)
    assert sender.stats()["dropped"] == 0
    assert_stored_exactly_once(engine, "BrokerOutage", sent)
    # A submit that waited on the network would take at least a socket timeout (2 s).
    assert slowest < 1.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("Broker did not take a batch" in r.getMessage() for r in warnings) == 1
    assert "Broker reachable again" in caplog.text


STALLED_INGESTER = """
import json, sys, time
from chomp_tasks import Monitor, monitor_request

started = time.monotonic()
try:
    monitor_request.delay(resource_name="Stalled", latency_ms=1.0, response_bytes=1)
    outcome = "returned"
except Exception as exc:
    outcome = type(exc).__name__
delay_seconds = time.monotonic() - started

monitor = Monitor("Stalled", instance_name="stalled")
started = time.monotonic()
for _ in range(1000):
    monitor.start_timer()
    monitor.stop_timer(10, 200)
stop_timer_seconds = time.monotonic() - started
flushed = monitor.flush(timeout=1)
print(json.dumps({"outcome": outcome, "delay_seconds": delay_seconds,
                  "stop_timer_seconds": stop_timer_seconds, "flushed": flushed}))
"""


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_broker_that_accepts_but_never_answers_fails_delay_within_seconds(
    run_env: dict[str, str], proxies: list[TcpProxy], broker: str
) -> None:
    proxy = proxy_to(proxies, 6379 if broker == "redis" else 5672)
    proxy.set_mode("stall")
    scheme = "redis://" if broker == "redis" else "amqp://guest:guest@"
    url = f"{scheme}127.0.0.1:{proxy.port}/" + ("0" if broker == "redis" else "/")
    env = worker_env(run_env, broker_url=url)
    done = subprocess.run(
        [sys.executable, "-c", STALLED_INGESTER],
        env={**env, "CHOMP_QUEUE": f"chomp_test_stall_{RUN_ID}"},
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "OperationalError"
    # Celery's defaults wait over 120 s here; the configured timeouts give up within seconds.
    assert result["delay_seconds"] < 15
    assert result["stop_timer_seconds"] < 5 and result["flushed"] is False


def test_cache_outage_keeps_storing_and_last_catches_up_when_it_returns(
    run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker],
    proxies: list[TcpProxy],
) -> None:  # fmt: skip
    proxy = proxy_to(proxies, 6379)
    proxy.set_mode("refuse")
    db = run_env["CHOMP_REDIS_URL"].rsplit("/", 1)[1]
    queue = f"chomp_test_cache_{RUN_ID}"
    env = worker_env(run_env, queue=queue, redis_url=proxy.url("redis", f"/{db}"))
    worker = start_worker(env, tmp_path, f"cache-{RUN_ID}", concurrency=1)
    workers.append(worker)
    worker.wait_ready()
    cache = LastCache(Settings.from_mapping(run_env))

    away = Traffic(env["CHOMP_BROKER_URL"], queue, "CacheAway")
    away.batches(300, batch_size=100)
    assert_stored_exactly_once(engine, "CacheAway", away.sent)
    assert cache.get_latest("CacheAway_monitor") is None

    proxy.set_mode("open")
    Traffic(env["CHOMP_BROKER_URL"], queue, "CacheBack").batches(1)
    latest = wait_for(lambda: cache.get_latest("CacheAway_monitor"), what="last of CacheAway")
    assert latest["response_bytes"] == 299  # the newest of the stored rows
    log = worker.log()
    assert log.count("is unreachable, latest rows wait") == 1
    assert "is reachable again" in log
