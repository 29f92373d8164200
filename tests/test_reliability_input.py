"""Bad input at every door of a real worker, only JSON from the broker, and no secret in logs."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kombu import Connection, Exchange, Producer

from chomp_tasks.app import BATCH_CONTENT_TYPE
from tests.conftest import RUN_ID
from tests.faults import TcpProxy
from tests.services import Worker, run_cli, start_worker, wait_for
from tests.traffic import Traffic, stored_ids, worker_env


def good(**changes: Any) -> dict[str, Any]:
    fields = {
        "resource_name": "Doorway",
        "latency_ms": 5.0,
        "response_bytes": 10,
        "status_code": 200,
    }
    return {**fields, **changes}


BAD_DIRECT: dict[str, tuple[dict[str, Any], str]] = {
    "quote": (good(resource_name='Feed"; DROP TABLE x; --'), "contains '\"'"),
    "non-ASCII": (good(resource_name="Café"), "contains 'é'"),
    "too long": (good(resource_name="L" * 56), "has 56 characters; at most 55"),
    "empty": (good(resource_name=""), "resource name is empty"),
    "infinite": (good(latency_ms=float("inf")), "latency_ms must be a finite number >= 0, got inf"),
    "negative latency": (good(latency_ms=-1.0), "got -1.0"),
    "text latency": (good(latency_ms="fast"), "latency_ms must be a number, got 'fast'"),
    "negative bytes": (good(response_bytes=-5), "response_bytes must be between 0"),
    "status": (good(status_code=1000), "status_code must be between 100 and 999, got 1000"),
    "instance": (good(instance_name="i" * 256), "has 256 characters; at most 255"),
    "ts": (good(ts="yesterday"), "ts 'yesterday' is not an ISO-8601 timestamp"),
    "missing": ({"resource_name": "Doorway", "latency_ms": 1.0}, "missing field(s) response_bytes"),
    "unknown": (good(colour="blue"), "unknown field(s) 'colour'"),
}
# Celery's JSON carries a lone surrogate as an escape; the batch encoder refuses to write one.
BAD_DIRECT_ONLY: dict[str, tuple[dict[str, Any], str]] = {
    "surrogate": (good(instance_name="host\udcff"), "is not valid Unicode"),
}


def publish_raw(broker_url: str, queue: str, body: bytes, content_type: str, task: str) -> None:
    """Publish a message shaped like a Celery task whose body is whatever the test says."""
    task_id = str(uuid.uuid4())
    with Connection(broker_url) as conn:
        Producer(conn).publish(
            body,
            exchange=Exchange(queue, type="direct"),
            routing_key=queue,
            content_type=content_type,
            content_encoding="utf-8"
            if content_type != "application/x-python-serialize"
            else "binary",
            headers={"lang": "py", "task": task, "id": task_id, "root_id": task_id},
            declare=[],
        )


def worker_of_its_own_queue(
    run_env: dict[str, str], tmp_path: Path, workers: list[Worker], label: str
) -> tuple[Worker, str]:
    """Start a worker that alone consumes a queue of this test's; return it and the queue."""
    queue = f"chomp_test_{label}_{RUN_ID}"
    worker = start_worker(worker_env(run_env, queue=queue), tmp_path, f"{label}-{RUN_ID}")
    workers.append(worker)
    worker.wait_ready()
    return worker, queue


def counts(env: dict[str, str]) -> dict[str, int]:
    stats = json.loads(run_cli(env, "stats", check=True).stdout)
    return {k: int(v) for k, v in stats.items()}


def test_bad_input_is_refused_with_a_clear_message_and_spares_good_records(
    run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker]
) -> None:
    import pickle

    worker, queue = worker_of_its_own_queue(run_env, tmp_path, workers, "input")
    traffic = Traffic(run_env["CHOMP_BROKER_URL"], queue, "Doorway")
    before = counts(run_env)
    direct = "chomp_tasks.monitor_request"
    batch = "chomp_tasks.store_request_batch"

    for fields, _ in [*BAD_DIRECT.values(), *BAD_DIRECT_ONLY.values()]:
        traffic.app.send_task(direct, kwargs=fields)
    mixed = [good(id=uuid.uuid4().hex) for _ in range(3)]
    traffic.app.send_task(
        batch,
        args=([*mixed[:1], *(f for f, _ in BAD_DIRECT.values()), *mixed[1:]],),
        serializer="chomp-json",
    )
    traffic.app.send_task(batch, args=({"records": "not a list"},), serializer="chomp-json")
    broker = run_env["CHOMP_BROKER_URL"]
    publish_raw(broker, queue, b"{not json", "application/json", direct)
    publish_raw(broker, queue, b"\xff\xfe[", BATCH_CONTENT_TYPE, batch)
    payload = pickle.dumps(((), good(resource_name="Pickled"), {}))
    publish_raw(broker, queue, payload, "application/x-python-serialize", direct)
    traffic.app.send_task(direct, kwargs=good(id=uuid.uuid4().hex))

    wait_for(lambda: len(stored_ids(engine, "Doorway")) == 4, what="the 4 good records")
    log = wait_for(lambda: worker.log() if "Batch refused" in worker.log() else "", what="log")
    for case, (_, message) in (BAD_DIRECT | BAD_DIRECT_ONLY).items():
        assert message in log, case
    assert "Message refused: batch" in log and "records must be a JSON list" in log
    assert "refused in all by this process" in log
    # Not JSON, or pickle: Celery refuses the message before chomp_tasks sees it, and drops it.
    assert log.count("Can't decode message body: DecodeError") == 2
    assert "Refusing to deserialize untrusted content of type pickle" in log
    assert worker.process.poll() is None

    # Every refusal is counted for the cluster: records one by one, whole messages apart.
    def refusals() -> tuple[int, int]:
        now = counts(run_env)
        return (
            now.get("refused_records", 0) - before.get("refused_records", 0),
            now.get("refused_messages", 0) - before.get("refused_messages", 0),
        )

    expected = (2 * len(BAD_DIRECT) + len(BAD_DIRECT_ONLY), 4)
    wait_for(
        lambda: refusals() == expected, what=f"refusals counted as {expected}, not {refusals()}"
    )
    with engine.connect() as conn:
        names = set(conn.scalars(sa.text("SELECT source_name FROM chomp_monitors")))
    bad_names = {f.get("resource_name") for f, _ in BAD_DIRECT.values()} - {"Doorway"}
    assert "Doorway" in names and not names & (bad_names | {"Pickled"})


def test_records_ingesters_dropped_are_counted_for_the_cluster(
    run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker]
) -> None:
    worker, queue = worker_of_its_own_queue(run_env, tmp_path, workers, "drops")
    traffic = Traffic(run_env["CHOMP_BROKER_URL"], queue, "Dropping")
    before = counts(run_env).get("dropped_by_ingesters", 0)
    batch = "chomp_tasks.store_request_batch"

    for dropped in (5, "many", -1):
        records = [good(resource_name="Dropping", id=uuid.uuid4().hex) for _ in range(2)]
        traffic.app.send_task(
            batch, args=(records,), kwargs={"dropped": dropped}, serializer="chomp-json"
        )

    # A count that is no count is left out, and the records beside it are stored all the same.
    wait_for(lambda: len(stored_ids(engine, "Dropping")) == 6, what="the 6 records")
    wait_for(
        lambda: counts(run_env).get("dropped_by_ingesters", 0) - before == 5,
        what="the 5 dropped records counted",
    )
    log = worker.log()
    assert "An ingester dropped 5 records for a full buffer" in log
    assert "dropped must be a whole number >= 0, got 'many'" in log
    assert "got -1; the count is left out" in log


SECRET = f"Pw-{RUN_ID}"


def test_no_password_appears_in_worker_or_ingester_output(
    run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker]
) -> None:
    database = run_env["CHOMP_DATABASE_URL"].rsplit("/", 1)[1]
    pg = TcpProxy("127.0.0.1", 5432)
    closed = TcpProxy("127.0.0.1", 6379)
    closed.set_mode("refuse")
    try:
        queue = f"chomp_test_secret_{RUN_ID}"
        db_url = f"postgresql://postgres:{SECRET}@127.0.0.1:{pg.port}/{database}"
        stored = start_worker(worker_env(run_env, queue=queue, database_url=db_url), tmp_path, "db")
        workers.append(stored)
        stored.wait_ready()
        pg.set_mode("refuse")
        traffic = Traffic(run_env["CHOMP_BROKER_URL"], queue, "Secretive")
        traffic.batches(10)
        wait_for(lambda: "retry: Retry in" in stored.log(), what="a task retry")
        pg.set_mode("open")
        wait_for(lambda: len(stored_ids(engine, "Secretive")) == 10, timeout=60, what="rows")

        broker_url = f"redis://:{SECRET}@127.0.0.1:{closed.port}/0"
        lost = start_worker(worker_env(run_env, broker_url=broker_url), tmp_path, "broker")
        workers.append(lost)
        wait_for(lambda: "Cannot connect to" in lost.log(), what="a broker retry")
        ingester = run_ingester(worker_env(run_env, broker_url=broker_url, database_url=db_url))
    finally:
        pg.close()
        closed.close()

    assert "Database is unreachable" in stored.log()
    assert "OperationalError" in ingester and "Broker did not take a batch" in ingester
    for output in (stored.log(), lost.log(), ingester):
        assert SECRET not in output


INGESTER = """
import logging
from chomp_tasks import Monitor, monitor_request

logging.basicConfig(level=logging.INFO)
try:
    monitor_request.delay(resource_name="Secretive", latency_ms=1.0, response_bytes=1)
except Exception as exc:
    print(type(exc).__name__, exc)
monitor = Monitor("Secretive", instance_name="secretive")
monitor.start_timer()
monitor.stop_timer(1, 200)
monitor.flush(timeout=2)
"""


def run_ingester(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", INGESTER], env=env, capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr


def test_the_http_api_is_read_only_and_serves_on_loopback_by_default() -> None:
    from chomp_tasks.api import create_app
    from chomp_tasks.cli import build_parser

    methods = {m for route in create_app().routes for m in getattr(route, "methods", None) or ()}
    assert methods <= {"GET", "HEAD"}
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
