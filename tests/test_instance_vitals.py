"""Instance vitals end to end: real `celery worker -B --monitored` processes, real lookups."""

from __future__ import annotations

import json
import math
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import sqlalchemy as sa

from chomp_tasks.identity import name_for_uid, uid_for
from chomp_tasks.storage.kinds import INSTANCE
from tests.lookup_server import DA_NANG, Answer, LookupServer
from tests.services import RABBITMQ_URL, Worker, run_cli, start_worker, wait_for

INTERVAL_SECONDS = 2
CONCURRENCY = 2
IDLE, BUSY = "vitals-idle", "vitals-busy"
IPV4, IPV6, NEW_IPV4 = "203.0.113.7", "2001:db8::7", "198.51.100.9"
LOCATION = {
    "coordinates": "16.0685,108.2215",
    "timezone": "Asia/Ho_Chi_Minh",
    "country_code": "VN",
    "location": "Da Nang, Da Nang, Vietnam",
    "isp": "Viettel Group",
}
SAMPLED_PIDS = re.compile(r"Instance '([^']+)': sampled pids \[([\d, ]+)\]")


def good_answers() -> dict[str, Answer]:
    return {
        "/ipv4": Answer.json({"ip": IPV4}),
        "/ipv6": Answer.json({"ip": IPV6}),
        "/geo": Answer.json(DA_NANG),
    }


def lookup_env(run_env: dict[str, str], server: LookupServer) -> dict[str, str]:
    return {
        **run_env,
        "CHOMP_VITALS_INTERVAL": str(INTERVAL_SECONDS),
        "CHOMP_IPV4_URL": server.url("/ipv4"),
        "CHOMP_IPV6_URL": server.url("/ipv6"),
        "CHOMP_GEO_URL": server.url("/geo/{ip}"),
    }


def launch(
    env: dict[str, str], log_dir: Path, node: str, *extra: str, instance_name: str = ""
) -> Worker:
    """Start a worker the way users do: `celery -A chomp_tasks worker -B --monitored`."""
    worker_env = {**env, "CHOMP_INSTANCE_NAME": instance_name}
    schedule = str(log_dir / f"{node}-beat-schedule")
    return start_worker(
        worker_env, log_dir, node, "-B", "--monitored", "--verbose", "-s", schedule, *extra
    )


def start_monitored(env: dict[str, str], log_dir: Path, node: str) -> Worker:
    """Start a monitored worker named after its node, and wait until it is ready."""
    worker = launch(env, log_dir, node)
    worker.wait_ready()
    return worker


def vitals(engine: sa.Engine, name: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(
            sa.text("SELECT * FROM chomp_instance_vitals WHERE instance_name = :n ORDER BY ts"),
            {"n": name},
        )
        return [dict(r._mapping) for r in result]


def at_least(engine: sa.Engine, name: str, count: int, timeout: float = 30) -> list[Any]:
    return wait_for(
        lambda: (found := vitals(engine, name)) and len(found) >= count and found,
        timeout=timeout,
        what=f"{count} vitals rows of {name!r}",
    )


def seconds(row: dict[str, Any]) -> float:
    return float(row["ts"].timestamp())


def chomp_tasks_cli(env: dict[str, str], *args: str) -> Any:
    return json.loads(run_cli(env, *args, check=True).stdout)


@dataclass
class Pair:
    """Two monitored workers with embedded beats: one left idle, one fed CPU-heavy tasks."""

    idle: Worker
    busy: Worker
    busy_queue: str
    server: LookupServer
    env: dict[str, str]


@pytest.fixture(scope="module")
def pair(
    run_env: dict[str, str], settings: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    log_dir = tmp_path_factory.mktemp("vitals")
    busy_queue = f"{run_env['CHOMP_QUEUE']}.busy"
    with LookupServer() as server:
        server.answers.update(good_answers())
        env = lookup_env(run_env, server)
        workers = [
            launch(env, log_dir, IDLE, instance_name=IDLE),
            launch(
                env,
                log_dir,
                BUSY,
                "-Q",
                busy_queue,
                "--include",
                "tests.worker_tasks",
                instance_name=BUSY,
            ),
        ]
        try:
            for worker in workers:
                worker.wait_ready()
            yield Pair(workers[0], workers[1], busy_queue, server, env)
        finally:
            for worker in workers:
                worker.stop()


def test_each_beat_worker_writes_one_row_per_interval(pair: Pair, engine: sa.Engine) -> None:
    for worker in (pair.idle, pair.busy):
        found = at_least(engine, worker.name, 4)
        times = [seconds(row) for row in found]

        assert all(t % INTERVAL_SECONDS == 0 for t in times), times
        expected = [times[0] + i * INTERVAL_SECONDS for i in range(len(times))]
        assert times == expected, f"{worker.name}: a missing or extra interval"
        assert found[0]["cpu_usage"] is not None, "the first row after a start is a real figure"
        assert "already stored" not in worker.log()


def test_the_embedded_beat_is_left_out_of_a_workers_vitals(pair: Pair, engine: sa.Engine) -> None:
    at_least(engine, IDLE, 2)
    main = psutil.Process(pair.idle.process.pid)
    children = {child.pid for child in main.children()}
    sampled = wait_for(
        lambda: SAMPLED_PIDS.findall(pair.idle.log()), what="a sample logged by --verbose"
    )
    pids = {int(pid) for pid in sampled[-1][1].split(", ")}

    assert len(children) == CONCURRENCY + 1, "the pool and the beat child"
    assert pids == {main.pid} | (children & pids)
    assert len(pids) == 1 + CONCURRENCY


def test_a_worker_whose_pool_is_all_busy_reads_high_cpu_on_time(
    pair: Pair, engine: sa.Engine
) -> None:
    from tests.worker_tasks import spin

    start = time.time()
    until = start + 3 * INTERVAL_SECONDS
    for _ in range(CONCURRENCY):
        spin.apply_async(args=(until,), queue=pair.busy_queue)
    first = math.ceil(start / INTERVAL_SECONDS) * INTERVAL_SECONDS
    slots = [
        float(t) for t in range(int(first), int(until) - INTERVAL_SECONDS + 1, INTERVAL_SECONDS)
    ]

    def during(name: str) -> list[dict[str, Any]]:
        return [r for r in vitals(engine, name) if seconds(r) in slots]

    wait_for(
        lambda: len(during(BUSY)) == len(during(IDLE)) == len(slots),
        timeout=30,
        what=f"a row of each worker for each of the busy intervals {slots}",
    )
    busy, idle = during(BUSY), during(IDLE)
    assert min(r["cpu_usage"] for r in busy) > 30, busy
    assert max(r["cpu_usage"] for r in idle) < 10, idle


def test_resources_count_counts_distinct_resources_across_the_pool(
    pair: Pair, engine: sa.Engine
) -> None:
    from chomp_tasks.tasks import monitor_request

    for index in range(30):
        resource = f"VitalsRes{index % 3}"
        monitor_request.delay(resource_name=resource, latency_ms=1.0, response_bytes=10)

    wait_for(
        lambda: vitals(engine, IDLE)[-1]["resources_count"] == 3,
        timeout=30,
        what="resources_count of 3 in the idle worker's latest row",
    )
    assert vitals(engine, BUSY)[-1]["resources_count"] == 0


def test_geolocation_is_joined_in_last_and_never_a_column(pair: Pair, engine: sa.Engine) -> None:
    at_least(engine, IDLE, 1)

    last = wait_for(
        lambda: (
            (row := chomp_tasks_cli(pair.env, "last", "vitals_idle_monitor")).get("isp") and row
        ),
        what="the location joined into last",
    )

    assert {k: last[k] for k in LOCATION} == LOCATION
    assert (last["ipv4"], last["ipv6"], last["instance_name"]) == (IPV4, IPV6, IDLE)
    assert last["ts"] == last["date"] and last["cpu_usage"] is not None
    with engine.connect() as conn:
        columns = conn.execute(sa.text('SELECT * FROM "vitals_idle_monitor" LIMIT 0')).keys()
    assert set(columns) == {f.name for f in INSTANCE.stored_fields}


def test_last_read_from_the_table_takes_the_location_from_the_registry(
    pair: Pair, engine: sa.Engine
) -> None:
    at_least(engine, IDLE, 1)
    wait_for(
        lambda: chomp_tasks_cli(pair.env, "last", "vitals_idle_monitor").get("isp"),
        what="the location found",
    )
    # A key prefix with nothing under it: the cache is empty, as after a Redis restart.
    empty_cache = {**pair.env, "CHOMP_REDIS_PREFIX": "chomp-test-empty:"}

    last = chomp_tasks_cli(empty_cache, "last", "vitals_idle_monitor")

    assert {k: last[k] for k in LOCATION} == LOCATION
    assert last["instance_name"] == IDLE and last["ts"] == last["date"]


def test_workers_on_one_address_asked_for_its_location_once(pair: Pair) -> None:
    for name in (IDLE, BUSY):
        worker = pair.idle if name == IDLE else pair.busy
        wait_for(lambda w=worker: "located at" in w.log(), what=f"{name} located")

    assert [p for p in pair.server.paths if p.startswith("/geo/")] == [f"/geo/{IPV4}"]


def test_a_restart_keeps_the_table_and_failing_lookups_keep_the_last_location(
    run_env: dict[str, str], settings: Any, engine: sa.Engine, tmp_path: Path
) -> None:
    node = "vitals-restart"
    name = name_for_uid(uid_for(f"{node}@{socket.gethostname()}"))
    table = name.replace("-", "_") + "_monitor"
    with LookupServer() as server:
        server.answers.update(good_answers())
        env = lookup_env(run_env, server)
        first = start_monitored(env, tmp_path, node)
        try:
            at_least(engine, name, 2)
        finally:
            first.stop()
        before = len(vitals(engine, name))

        server.answers["/ipv4"] = Answer.json({"ip": NEW_IPV4})
        server.answers["/ipv6"] = Answer(body=b"<html>garbage</html>")
        server.answers["/geo"] = Answer(body=b"{}", hang_seconds=30)
        second = start_monitored(env, tmp_path, node)
        try:
            wait_for(lambda: "located at" in second.log(), timeout=30, what="the lookup to end")
            after = at_least(engine, name, before + 3)[before:]
            last = chomp_tasks_cli(env, "last", table)
        finally:
            second.stop()

    with engine.connect() as conn:
        registered = conn.execute(
            sa.text("SELECT name FROM chomp_monitors WHERE source_name = :n"), {"n": name}
        ).all()
        pid = conn.scalar(
            sa.text("SELECT pid FROM chomp_instances WHERE instance_name = :n"), {"n": name}
        )
    assert registered == [(table,)]
    assert pid == second.process.pid
    assert after[0]["cpu_usage"] is not None
    times = [seconds(row) for row in after]
    assert times == [times[0] + i * INTERVAL_SECONDS for i in range(len(times))]
    assert (last["ipv4"], last["location"]) == (NEW_IPV4, LOCATION["location"])
    assert "answer is not JSON" in second.log() and "no answer within" in second.log()


def test_a_monitored_worker_on_rabbitmq_samples_itself(
    run_env: dict[str, str], settings: Any, engine: sa.Engine, tmp_path: Path
) -> None:
    with LookupServer() as server:
        server.answers.update(good_answers())
        env = {**lookup_env(run_env, server), "CHOMP_BROKER_URL": RABBITMQ_URL}
        worker = launch(env, tmp_path, "vitals-rabbit", instance_name="vitals-rabbit")
        try:
            worker.wait_ready()
            found = at_least(engine, "vitals-rabbit", 2)
        finally:
            worker.stop()

    assert seconds(found[1]) - seconds(found[0]) == INTERVAL_SECONDS
    assert all(row["cpu_usage"] is not None for row in found)
