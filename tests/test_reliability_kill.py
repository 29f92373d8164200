"""Workers killed with SIGKILL: what they held is stored exactly once by the next worker."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from kombu import Connection

from tests.conftest import RUN_ID
from tests.faults import WriteHold
from tests.services import RABBITMQ_URL, Worker, start_worker, wait_for
from tests.traffic import Traffic, stored_ids, worker_env

# Short enough for the test to see a dead worker's messages come back within seconds; a real
# deployment keeps the default of 300 s.
VISIBILITY_TIMEOUT_SECONDS = "5"


@pytest.fixture
def write_hold(engine: sa.Engine) -> Iterator[WriteHold]:
    hold = WriteHold(engine, "KilledMidWrite")
    yield hold
    hold.remove()


def test_records_held_by_a_worker_killed_mid_write_are_stored_once_by_the_next(
    run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker],
    write_hold: WriteHold,
) -> None:  # fmt: skip
    queue = f"chomp_test_kill_{RUN_ID}"
    env = worker_env(run_env, queue=queue, visibility_timeout=VISIBILITY_TIMEOUT_SECONDS)
    write_hold.hold()
    first = start_worker(env, tmp_path, f"doomed-{RUN_ID}")
    workers.append(first)
    first.wait_ready()

    traffic = Traffic(env["CHOMP_BROKER_URL"], queue, "KilledMidWrite")
    traffic.batches(3000, batch_size=500)
    wait_for(lambda: write_hold.waiting() >= 1, what="a worker held in the middle of its INSERT")
    first.kill()
    write_hold.release()
    assert stored_ids(engine, "KilledMidWrite") == []

    second = start_worker(env, tmp_path, f"heir-{RUN_ID}")
    workers.append(second)
    wait_for(lambda: len(stored_ids(engine, "KilledMidWrite")) >= 3000, timeout=120, what="3000")
    stored = Counter(stored_ids(engine, "KilledMidWrite"))
    assert set(stored) == set(traffic.sent) and max(stored.values()) == 1


@pytest.fixture
def rabbit_queue() -> Iterator[str]:
    name = f"chomp_test_rabbit_kill_{RUN_ID}"
    yield name
    with Connection(RABBITMQ_URL, connect_timeout=3) as conn:
        conn.default_channel.queue_delete(name)


def test_with_rabbitmq_workers_killed_at_random_moments_lose_nothing(
    run_env: dict[str, str], tmp_path: Path, engine: sa.Engine, workers: list[Worker],
    rabbit_queue: str,
) -> None:  # fmt: skip
    env = worker_env(run_env, broker_url=RABBITMQ_URL, queue=rabbit_queue)
    traffic = Traffic(RABBITMQ_URL, rabbit_queue, "RabbitKilled")
    current = start_worker(env, tmp_path, f"rabbit-0-{RUN_ID}")
    workers.append(current)
    current.wait_ready()

    sending = traffic.direct_in_background(3000, per_second=300)
    for kill in range(1, 4):
        time.sleep(random.uniform(1.0, 2.5))
        current.kill()
        current = start_worker(env, tmp_path, f"rabbit-{kill}-{RUN_ID}")
        workers.append(current)
        current.wait_ready()
    sending.join(timeout=60)

    wait_for(lambda: len(stored_ids(engine, "RabbitKilled")) >= 3000, timeout=120, what="3000")
    stored = Counter(stored_ids(engine, "RabbitKilled"))
    assert set(stored) == set(traffic.sent) and max(stored.values()) == 1
