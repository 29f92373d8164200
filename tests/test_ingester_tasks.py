"""An ingester that runs as Celery tasks: what a pool process recorded survives its exit."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import RUN_ID
from tests.services import Worker, start_worker, wait_for
from tests.traffic import stored_ids, worker_env


@pytest.mark.parametrize("sender", ["process", "thread"])
def test_records_of_a_replaced_pool_process_are_stored(
    sender: str, run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker]
) -> None:
    from tests.worker_tasks import ingest

    # A pool process leaves with os._exit after its one task, so no atexit handler runs in
    # it. The batch age is the longest allowed: the records are still in its buffer then.
    env = worker_env(run_env, batch_age="5", sender=sender)
    worker = start_worker(
        env, tmp_path, f"pool-ingester-{sender}-{RUN_ID}",
        "--include", "tests.worker_tasks", "--max-tasks-per-child", "1",
    )  # fmt: skip
    workers.append(worker)
    worker.wait_ready()
    resource = f"PoolIngester_{sender}"

    ingest.delay(resource, 300)

    wait_for(
        lambda: len(stored_ids(engine, resource)) == 300,
        timeout=30,
        what="every record of the replaced pool process",
    )
    assert len(set(stored_ids(engine, resource))) == 300
