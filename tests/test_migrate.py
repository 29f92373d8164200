"""chomp-tasks migrate creates a missing database; several at once on an empty one all succeed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from chomp_tasks.config import Settings
from tests.conftest import RUN_ID
from tests.services import POSTGRES_URL, Worker, start_worker, wait_for


def test_concurrent_migrations_on_a_missing_database_all_succeed(
    fresh_database: str, run_env: dict[str, str]
) -> None:
    env = {**run_env, "CHOMP_DATABASE_URL": f"{POSTGRES_URL}/{fresh_database}"}
    command = [sys.executable, "-m", "chomp_tasks.cli", "migrate"]
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    results = []
    for run in runs:
        _, stderr = run.communicate(timeout=120)
        results.append((run.returncode, stderr.decode()))

    assert [code for code, _ in results] == [0, 0, 0, 0], results
    engine = sa.create_engine(env["CHOMP_DATABASE_URL"], poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        version = conn.scalar(sa.text("SELECT version_num FROM chomp_alembic_version"))
        tables = set(
            conn.scalars(sa.text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'chomp_%'"))
        )
    assert version is not None
    assert {"chomp_monitors", "chomp_request_vitals", "chomp_instance_vitals"} <= tables


def test_an_unreachable_server_gives_one_line_without_the_password(
    run_env: dict[str, str],
) -> None:
    env = {**run_env, "CHOMP_DATABASE_URL": "postgresql://chomp:s3cret@127.0.0.1:1/chomp"}
    result = subprocess.run(
        [sys.executable, "-m", "chomp_tasks.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert "unreachable" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
    assert result.stderr.strip().count("\n") == 0


def test_two_workers_starting_on_a_missing_database_both_come_up_and_store(
    fresh_database: str, run_env: dict[str, str], tmp_path: Path, workers: list[Worker]
) -> None:
    env = {
        **run_env,
        "CHOMP_DATABASE_URL": f"{POSTGRES_URL}/{fresh_database}",
        "CHOMP_QUEUE": f"chomp_test_{RUN_ID}_fresh",
    }
    pair = [start_worker(env, tmp_path, f"fresh-{n}-{RUN_ID}") for n in (1, 2)]
    workers.extend(pair)
    for worker in pair:
        worker.wait_ready()

    produce = [sys.executable, "-m", "tests.produce", "FreshStart", "200"]
    subprocess.run(produce, env=env, check=True, capture_output=True, timeout=60)

    engine = sa.create_engine(env["CHOMP_DATABASE_URL"], poolclass=sa.pool.NullPool)

    def stored() -> int:
        with engine.connect() as conn:
            if conn.scalar(sa.text("SELECT to_regclass('\"FreshStart_monitor\"')")) is None:
                return 0
            return int(conn.scalar(sa.text('SELECT count(*) FROM "FreshStart_monitor"')))

    wait_for(lambda: stored() == 200, what="200 rows in the new database")
    for worker in pair:
        assert "Traceback" not in worker.log()
    engine.dispose()


def test_a_worker_started_before_the_database_says_so_and_waits_for_it(
    run_env: dict[str, str], settings: object, tmp_path: Path, workers: list[Worker]
) -> None:
    from tests.faults import TcpProxy

    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.set_mode("refuse")
    try:
        url = run_env["CHOMP_DATABASE_URL"].replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        env = {**run_env, "CHOMP_DATABASE_URL": url, "CHOMP_QUEUE": f"chomp_test_{RUN_ID}_late"}
        worker = start_worker(env, tmp_path, f"late-db-{RUN_ID}")
        workers.append(worker)

        wait_for(lambda: "Database not ready yet" in worker.log(), what="the wait logged")
        proxy.set_mode("open")
        worker.wait_ready()
    finally:
        proxy.close()
    assert "Traceback" not in worker.log()


def test_statuses_up_to_999_fit_tables_made_before_the_range_was_widened(
    fresh_database: str, settings: Settings
) -> None:
    from alembic import command
    from alembic.config import Config

    from chomp_tasks.storage import migrate
    from chomp_tasks.storage.engine import create_database_if_missing
    from chomp_tasks.storage.monitors import ensure_monitor
    from chomp_tasks.storage.schema import VERSION_TABLE, migrations_path

    fresh = dataclasses.replace(settings, database_url=f"{POSTGRES_URL}/{fresh_database}")
    create_database_if_missing(fresh)
    engine = sa.create_engine(fresh.database_url, poolclass=sa.pool.NullPool)
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    config.set_main_option("version_table", VERSION_TABLE)
    insert = sa.text(
        'INSERT INTO "Widened_monitor" (ts, latency_ms, response_bytes, status_code, resource, id)'
        " VALUES (now(), 1, 1, :status, 'Widened', gen_random_uuid())"
    )
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        ensure_monitor(conn, "resource", "Widened")
        conn.commit()
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(insert, {"status": 999})
        conn.rollback()

    migrate(fresh)

    with engine.begin() as conn:
        conn.execute(insert, {"status": 999})
        # A table made after the upgrade takes the new range too.
        ensure_monitor(conn, "resource", "Later")
        conn.execute(sa.text(str(insert).replace("Widened", "Later")), {"status": 999})
    with engine.connect() as conn, pytest.raises(sa.exc.IntegrityError, match="status_code"):
        conn.execute(insert, {"status": 1000})
    engine.dispose()
