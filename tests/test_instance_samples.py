"""Measuring a worker's vitals and storing them, in this process, on the real services."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from typing import Any

import pytest
import sqlalchemy as sa

from chomp_tasks.config import Settings
from chomp_tasks.errors import InvalidRecord
from chomp_tasks.identity import Instance
from chomp_tasks.instance_vitals import measure, slot_start, store_sample
from chomp_tasks.last import read_last
from chomp_tasks.sampler import collect_counters

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


def now_slot() -> float:
    return slot_start(time.time(), INTERVAL_SECONDS)


def test_a_primed_sample_has_real_rates_and_moves_last(
    settings: Settings, engine: sa.Engine
) -> None:
    primed = collect_counters(os.getpid())
    # A measured interval: the kernel's CPU counters move in 10 ms ticks.
    time.sleep(0.1)
    _, figures = measure("sample-primed", primed, os.getpid(), ())
    slot = now_slot()

    row = store_sample(settings, me("sample-primed"), slot, figures.to_dict())

    assert row is not None
    assert all(row[column] is not None for column in RATE_COLUMNS)
    assert rows(engine, "sample-primed")[0]["ts"].timestamp() == slot
    assert read_last(settings, ["sample_primed_monitor"])["cpu_usage"] == row["cpu_usage"]


def test_without_a_previous_snapshot_the_rates_are_a_logged_gap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="chomp_tasks.instance_vitals"):
        _, figures = measure("sample-gap", None, os.getpid(), ())

    assert figures.memory_usage and figures.memory_usage > 0
    assert all(getattr(figures, column) is None for column in RATE_COLUMNS)
    assert "rates left empty" in caplog.text


def test_a_snapshot_of_another_process_gives_a_gap_not_a_wrong_rate() -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        previous = collect_counters(other.pid)
    finally:
        other.kill()
        other.wait()

    _, figures = measure("sample-other", previous, os.getpid(), ())

    assert figures.cpu_usage is None


def test_a_second_delivery_of_one_interval_is_not_stored(
    settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    _, figures = measure("sample-twice", collect_counters(os.getpid()), os.getpid(), ())
    slot = now_slot()
    store_sample(settings, me("sample-twice"), slot, figures.to_dict())

    with caplog.at_level(logging.WARNING, logger="chomp_tasks.instance_vitals"):
        store_sample(settings, me("sample-twice"), slot, {**figures.to_dict(), "cpu_usage": 99.0})

    assert [r["cpu_usage"] for r in rows(engine, "sample-twice")] == [figures.cpu_usage]
    assert "already stored" in caplog.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cpu_usage": -1.0}, "cpu_usage must be a finite number"),
        ({"cpu_usage": "high"}, "cpu_usage must be a finite number"),
        ({"cpu_usage": float("nan")}, "cpu_usage must be a finite number"),
        ({"colour": 1.0}, "figures must be exactly"),
    ],
)
def test_bad_figures_are_refused_with_their_name(
    settings: Settings, engine: sa.Engine, change: dict[str, Any], message: str
) -> None:
    _, figures = measure("sample-bad", None, os.getpid(), ())

    with pytest.raises(InvalidRecord, match=message):
        store_sample(settings, me("sample-bad"), now_slot(), {**figures.to_dict(), **change})
    assert rows(engine, "sample-bad") == []
