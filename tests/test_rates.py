import dataclasses
import logging
from typing import Any

import pytest

from chomp_tasks import rates as rates_module
from chomp_tasks.counters import Counters
from chomp_tasks.rates import rates

GIB = 1 << 30


def counters(**changes: Any) -> Counters:
    base = Counters(
        wall_time=1000.0,
        tree_cpu_seconds=10.0,
        tree_memory_bytes=GIB,
        process_disk_bytes={"10:1.00": (1000, ""), "11:2.00": (500, "10:1.00")},
        pids=frozenset({10, 11}),
        host_cpu_busy_seconds=100.0,
        host_cpu_total_seconds=400.0,
        host_memory_used_bytes=4 * GIB,
        host_disk_bytes=10_000,
        host_network_bytes=20_000,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rates_module, "_warned_missing", set())


def test_rates_over_a_ten_second_interval() -> None:
    later = counters(
        wall_time=1010.0,
        tree_cpu_seconds=15.0,
        process_disk_bytes={"10:1.00": (3000, ""), "11:2.00": (1500, "10:1.00")},
        host_cpu_busy_seconds=110.0,
        host_cpu_total_seconds=420.0,
        host_disk_bytes=30_000,
        host_network_bytes=25_000,
    )

    result = rates(counters(), later, cpu_count=2)

    assert result.to_dict() == {
        "cpu_usage": 25.0,
        "memory_usage": float(GIB),
        "disk_usage": 300.0,
        "host_cpu_usage": 50.0,
        "host_memory_usage": float(4 * GIB),
        "host_disk_usage": 2000.0,
        "host_network_usage": 500.0,
    }


def test_new_process_counts_its_whole_counter() -> None:
    disk = {"10:1.00": (1000, ""), "11:2.00": (500, "10:1.00"), "12:3.00": (700, "10:1.00")}

    result = rates(counters(), counters(wall_time=1001.0, process_disk_bytes=disk), 1)

    assert result.disk_usage == 700.0


def test_reused_pid_is_a_new_process() -> None:
    # The first process 11 was reaped into its parent's counter; a new one got its pid.
    disk = {"10:1.00": (1500, ""), "11:9.00": (200, "10:1.00")}

    result = rates(counters(), counters(wall_time=1001.0, process_disk_bytes=disk), 1)

    assert result.disk_usage == 200.0


def test_child_reaped_by_its_parent_is_not_counted_twice() -> None:
    # The parent's counter grew by the child's final 800 bytes, 500 of them seen before.
    disk = {"10:1.00": (1800, "")}

    result = rates(counters(), counters(wall_time=1001.0, process_disk_bytes=disk), 1)

    assert result.disk_usage == 300.0


def test_process_that_left_the_tree_unreaped_counts_nothing() -> None:
    before = counters(process_disk_bytes={"10:1.00": (1000, ""), "11:2.00": (500, "99:9.00")})
    after = counters(wall_time=1001.0, process_disk_bytes={"10:1.00": (1100, "")})

    assert rates(before, after, 1).disk_usage == 100.0


def test_counter_that_went_back_gives_none_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    later = counters(wall_time=1010.0, tree_cpu_seconds=2.0, host_disk_bytes=5)

    with caplog.at_level(logging.WARNING, logger="chomp_tasks.rates"):
        result = rates(counters(), later, cpu_count=2)

    assert result.cpu_usage is None
    assert result.host_disk_usage is None
    assert result.host_network_usage == 0.0
    assert [r.getMessage() for r in caplog.records] == [
        "Instance vitals 'cpu_usage': counter went back from 10.0 to 2.0; no rate this interval",
        "Instance vitals 'host_disk_usage': counter went back from 10000 to 5; "
        "no rate this interval",
    ]


def test_process_counter_that_went_back_gives_none() -> None:
    disk = {"10:1.00": (10, ""), "11:2.00": (500, "10:1.00")}

    assert (
        rates(counters(), counters(wall_time=1001.0, process_disk_bytes=disk), 1).disk_usage is None
    )


def test_missing_counters_give_none_and_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    missing = {"process_disk_bytes": None, "host_disk_bytes": None}

    with caplog.at_level(logging.WARNING, logger="chomp_tasks.rates"):
        for second in (1001.0, 1002.0):
            result = rates(counters(**missing), counters(wall_time=second, **missing), 1)
            assert result.disk_usage is None
            assert result.host_disk_usage is None

    assert len(caplog.records) == 2
    assert result.cpu_usage == 0.0


@pytest.mark.parametrize("later_seconds", [0.0, -5.0])
def test_no_time_elapsed_gives_no_rates(later_seconds: float) -> None:
    result = rates(counters(), counters(wall_time=1000.0 + later_seconds), cpu_count=2)

    assert set(result.to_dict().values()) == {None}


def test_cpu_usage_never_reads_over_a_hundred() -> None:
    later = counters(wall_time=1001.0, tree_cpu_seconds=12.05)

    assert rates(counters(), later, cpu_count=2).cpu_usage == 100.0


def test_cpu_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="cpu_count=0"):
        rates(counters(), counters(wall_time=1001.0), cpu_count=0)


def test_float_rounding_in_a_summed_counter_is_no_reset(caplog: pytest.LogCaptureFixture) -> None:
    # The same CPU ticks summed in another order: 4116.460000000001 then 4116.46.
    before = counters(host_cpu_busy_seconds=4116.460000000001, host_cpu_total_seconds=8000.0)
    after = counters(wall_time=1010.0, host_cpu_busy_seconds=4116.46, host_cpu_total_seconds=8020.0)

    with caplog.at_level(logging.WARNING, logger="chomp_tasks.rates"):
        result = rates(before, after, cpu_count=2)

    assert result.host_cpu_usage == 0.0
    assert "went back" not in caplog.text
