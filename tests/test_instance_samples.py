"""One sample of a worker's vitals, taken in this process against the real Redis and database."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from typing import Any

import pytest
import sqlalchemy as sa

from chomp_tasks.cache import get_cache
from chomp_tasks.config import Settings
from chomp_tasks.identity import Instance
from chomp_tasks.instance_vitals import counters_key, prime, slot_start, take_sample
from chomp_tasks.last import read_last

INTERVAL_SECONDS = 30.0
RATE_COLUMNS = ("cpu_usage", "disk_usage", "host_cpu_usage", "host_disk_usage")


def me(name: str) -> Instance:
    return Instance(uid=f"uid-{name}", pid=os.getpid(), hostname="test-host", name=name)


def rows(engine: sa.Engine, name: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(
            sa.text("SELECT * FROM chomp_instance_vitals WHERE instance_name = :n ORDER BY ts"),
            {"n": name},
        )
        return [dict(r._mapping) for r in result]


def sample(settings: Settings, name: str, slot: float) -> dict[str, Any] | None:
    return take_sample(settings, me(name), slot, os.getpid(), ())


def test_a_primed_sample_has_real_rates_and_moves_last(
    settings: Settings, engine: sa.Engine
) -> None:
    prime(settings, "sample-primed", os.getpid(), ())
    slot = slot_start(time.time(), INTERVAL_SECONDS)

    row = sample(settings, "sample-primed", slot)

    assert row is not None
    assert all(row[column] is not None for column in RATE_COLUMNS)
    assert rows(engine, "sample-primed")[0]["ts"].timestamp() == slot
    assert read_last(settings, ["sample_primed_monitor"])["cpu_usage"] == row["cpu_usage"]


@pytest.mark.parametrize("stored", [None, b"not json", b'{"wall_time": 1}'])
def test_missing_or_unreadable_counters_give_a_logged_gap(
    settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture, stored: bytes | None
) -> None:
    name = f"sample-gap-{len(stored or b'')}"
    if stored is not None:
        get_cache(settings).client.set(counters_key(settings, name), stored)

    with caplog.at_level(logging.WARNING, logger="chomp_tasks.instance_vitals"):
        row = sample(settings, name, slot_start(time.time(), INTERVAL_SECONDS))

    assert row is not None and row["memory_usage"] > 0
    assert all(row[column] is None for column in RATE_COLUMNS)
    assert "rates left empty" in caplog.text
    assert len(rows(engine, name)) == 1


def test_counters_of_another_process_give_a_gap_not_a_wrong_rate(settings: Settings) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        prime(settings, "sample-other", other.pid, ())
    finally:
        other.kill()
        other.wait()

    row = sample(settings, "sample-other", slot_start(time.time(), INTERVAL_SECONDS))

    assert row is not None and row["cpu_usage"] is None


def test_a_second_sample_of_one_interval_is_not_stored(
    settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    slot = slot_start(time.time(), INTERVAL_SECONDS)
    prime(settings, "sample-twice", os.getpid(), ())
    first = sample(settings, "sample-twice", slot)

    with caplog.at_level(logging.WARNING, logger="chomp_tasks.instance_vitals"):
        sample(settings, "sample-twice", slot)

    assert [r["cpu_usage"] for r in rows(engine, "sample-twice")] == [first and first["cpu_usage"]]
    assert "already stored" in caplog.text
