"""Instance vitals keep coming through outages of the cache and of the database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.conftest import REDIS_DB, RUN_ID
from tests.faults import TcpProxy
from tests.lookup_server import LookupServer
from tests.services import Worker, wait_for
from tests.test_instance_vitals import (
    INTERVAL_SECONDS,
    at_least,
    good_answers,
    launch,
    lookup_env,
    seconds,
    vitals,
)


def start(env: dict[str, str], tmp_path: Path, name: str, workers: list[Worker]) -> Worker:
    # Its own key prefix: the location cached for the stand-in address stays out of other tests.
    env = {**env, "CHOMP_REDIS_PREFIX": f"chomp-test-{name}:"}
    worker = launch(env, tmp_path, name, instance_name=name)
    workers.append(worker)
    worker.wait_ready()
    return worker


def test_rows_keep_coming_without_the_cache_with_resources_count_empty(
    run_env: dict[str, str], settings: Any, engine: sa.Engine, tmp_path: Path, workers: list[Worker]
) -> None:
    name = f"cacheless-{RUN_ID}"
    cache = TcpProxy("127.0.0.1", 6379)
    with LookupServer() as server, _Closing(cache):
        server.answers.update(good_answers())
        env = {**lookup_env(run_env, server), "CHOMP_REDIS_URL": cache.url("redis", f"/{REDIS_DB}")}
        worker = start(env, tmp_path, name, workers)
        at_least(engine, name, 1)

        cache.set_mode("refuse")
        cut_at = seconds(vitals(engine, name)[-1])
        rows = wait_for(
            lambda: [r for r in vitals(engine, name) if seconds(r) > cut_at + INTERVAL_SECONDS],
            timeout=30,
            what="rows written while the cache is cut",
        )
        cache.set_mode("open")

    assert rows[0]["resources_count"] is None and rows[0]["cpu_usage"] is not None
    assert worker.log().count("rows go without resources_count") <= 2  # once per pool process
    assert "Traceback" not in worker.log()


def test_a_database_outage_leaves_no_gap_in_the_vitals(
    run_env: dict[str, str], settings: Any, engine: sa.Engine, tmp_path: Path, workers: list[Worker]
) -> None:
    name = f"dbless-{RUN_ID}"
    database = TcpProxy("127.0.0.1", 5432)
    with LookupServer() as server, _Closing(database):
        server.answers.update(good_answers())
        url = run_env["CHOMP_DATABASE_URL"].replace("127.0.0.1:5432", f"127.0.0.1:{database.port}")
        env = {**lookup_env(run_env, server), "CHOMP_DATABASE_URL": url}
        worker = start(env, tmp_path, name, workers)
        at_least(engine, name, 1)

        database.set_mode("refuse")
        wait_for(lambda: "Database is unreachable" in worker.log(), what="the outage noticed")
        outage_ends = seconds(vitals(engine, name)[-1]) + 4 * INTERVAL_SECONDS
        wait_for(lambda: worker.log() and _now() > outage_ends + 1, timeout=30, what="the outage")
        database.set_mode("open")

        # Rows of the outage's intervals arrive late, as their retries come due.
        found = wait_for(
            lambda: _contiguous_past(vitals(engine, name), outage_ends),
            timeout=90,
            what="every interval stored through the outage",
        )

    times = [seconds(row) for row in found]
    assert times == [times[0] + i * INTERVAL_SECONDS for i in range(len(times))], times
    assert times[-1] > outage_ends


def _contiguous_past(rows: list[dict[str, Any]], until: float) -> list[dict[str, Any]]:
    times = [seconds(row) for row in rows]
    whole = times == [times[0] + i * INTERVAL_SECONDS for i in range(len(times))]
    return rows if rows and whole and times[-1] > until else []


def _now() -> float:
    import time

    return time.time()


class _Closing:
    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy

    def __enter__(self) -> TcpProxy:
        return self.proxy

    def __exit__(self, *_: object) -> None:
        self.proxy.close()
