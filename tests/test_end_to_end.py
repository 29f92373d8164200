"""The whole request path through real workers: Monitor -> broker -> worker -> table -> last."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from kombu import Connection

from tests.conftest import RUN_ID
from tests.services import RABBITMQ_URL, Worker, run_cli, start_worker, wait_for


def rows(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        exists = conn.scalar(sa.text("SELECT to_regclass(:t)"), {"t": f'"{table}"'})
        return int(conn.scalar(sa.text(f'SELECT count(*) FROM "{table}"'))) if exists else 0


def produce(env: dict[str, str], resource: str, count: int, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tests.produce", resource, str(count), *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_monitor_records_reach_the_table_and_last(
    worker: Worker, run_env: dict[str, str], engine: sa.Engine
) -> None:
    stats = json.loads(produce(run_env, "BinanceETH", 300))
    assert stats == {"accepted": 300, "delivered": 300, "dropped": 0, "buffered": 0}

    wait_for(lambda: rows(engine, "BinanceETH_monitor") == 300, what="300 rows")
    last = run_cli(run_env, "last", "BinanceETH_monitor")
    assert last.returncode == 0, last.stderr
    row = json.loads(last.stdout)
    assert set(row) == {
        "ts",
        "instance_name",
        "field_count",
        "latency_ms",
        "response_bytes",
        "status_code",
        "date",
    }
    assert (row["instance_name"], row["field_count"], row["response_bytes"]) == (
        "test-ingester",
        4,
        1299,
    )
    assert row["ts"] == row["date"] and row["ts"].endswith("Z")


def test_records_buffered_at_exit_are_still_delivered(
    worker: Worker, run_env: dict[str, str], engine: sa.Engine
) -> None:
    produce(run_env, "ExitFlush", 120, "--no-flush")

    wait_for(lambda: rows(engine, "ExitFlush_monitor") == 120, what="120 rows")


def test_direct_delay_is_stored_and_bad_records_are_refused_and_counted(
    worker: Worker, run_env: dict[str, str], engine: sa.Engine
) -> None:
    from chomp_tasks import monitor_request

    good: dict[str, Any] = {
        "resource_name": "Direct-Feed",
        "latency_ms": 150.5,
        "response_bytes": 2048,
        "status_code": 200,
        "field_count": 5,
        "instance_name": "ingester-01",
        "ts": "2026-12-03T12:00:00+00:00",
    }
    monitor_request.delay(**{**good, "latency_ms": float("nan")})
    monitor_request.delay(**{**good, "resource_name": "Bad Feed"})
    monitor_request.delay(**{**good, "status_code": 42})
    monitor_request.delay(**good)
    monitor_request.delay(**{**good, "ts": None})

    wait_for(lambda: rows(engine, "Direct_Feed_monitor") == 2, what="2 rows")
    last = json.loads(run_cli(run_env, "last", "Direct_Feed_monitor").stdout)
    assert last["latency_ms"] == 150.5 and last["ts"] != "2026-12-03T12:00:00Z"
    log = wait_for(lambda: worker.log() if worker.log().count("Record refused") >= 3 else "")
    assert "latency_ms must be a finite number" in log
    assert "contains ' '" in log
    assert "status_code must be between 100 and 999" in log
    assert "Traceback" not in log
    assert rows(engine, "Bad Feed_monitor") == 0


def test_a_message_redelivered_is_stored_once(
    worker: Worker, run_env: dict[str, str], engine: sa.Engine
) -> None:
    from chomp_tasks import monitor_request

    fields = {"resource_name": "Redelivered", "latency_ms": 1.0, "response_bytes": 1}
    for _ in range(3):
        # The same task id is what a broker redelivery carries.
        monitor_request.apply_async(kwargs=fields, task_id="5b0d3f1e-0000-4000-8000-000000000001")
    monitor_request.apply_async(kwargs=fields)

    wait_for(lambda: worker.log().count("succeeded") >= 4, what="4 tasks done")
    assert rows(engine, "Redelivered_monitor") == 2


def test_unknown_monitor_exits_non_zero_with_one_line(
    run_env: dict[str, str], settings: Any
) -> None:
    result = run_cli(run_env, "last", "Nobody_monitor")

    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "Nobody_monitor" in result.stderr


@pytest.fixture
def rabbit_queue() -> Any:
    name = f"chomp_test_rabbit_{RUN_ID}"
    try:
        with Connection(RABBITMQ_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.fail(f"RabbitMQ at {RABBITMQ_URL} does not answer: {exc}")
    yield name
    with Connection(RABBITMQ_URL) as conn:
        conn.default_channel.queue_delete(name)


def test_the_same_path_works_with_rabbitmq_as_broker(
    run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker],
    rabbit_queue: str,
) -> None:  # fmt: skip
    env = {**run_env, "CHOMP_BROKER_URL": RABBITMQ_URL, "CHOMP_QUEUE": rabbit_queue}
    rabbit = start_worker(env, tmp_path, f"rabbit-{RUN_ID}")
    workers.append(rabbit)
    rabbit.wait_ready()

    produce(env, "RabbitFeed", 250)

    wait_for(lambda: rows(engine, "RabbitFeed_monitor") == 250, what="250 rows via RabbitMQ")
    last = json.loads(run_cli(env, "last", "RabbitFeed_monitor").stdout)
    assert last["response_bytes"] == 1249


def test_two_workers_meeting_a_new_resource_at_once_store_it_in_one_table(
    run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker]
) -> None:
    from chomp_tasks.app import BATCH_SERIALIZER, app
    from chomp_tasks.request_vitals import RequestVitals

    pair = [start_worker(run_env, tmp_path, f"racer-{n}-{RUN_ID}") for n in (1, 2)]
    workers.extend(pair)
    for racer in pair:
        racer.wait_ready()

    # Eight messages of a resource no worker has seen, taken by four pool processes at once.
    batches = [
        [RequestVitals("RacedFeed", latency_ms=1.0, response_bytes=n) for n in range(50)]
        for _ in range(8)
    ]
    for batch in batches:
        app.send_task("chomp_tasks.store_request_batch", args=(batch,), serializer=BATCH_SERIALIZER)

    wait_for(lambda: rows(engine, "RacedFeed_monitor") == 400, what="400 rows")
    with engine.connect() as conn:
        tables = conn.scalar(
            sa.text("SELECT count(*) FROM chomp_monitors WHERE source_name = 'RacedFeed'")
        )
    assert tables == 1
    for racer in pair:
        assert "Traceback" not in racer.log() and "ERROR" not in racer.log()
