import orjson
import pytest

from chomp_tasks.counters import Counters

SAMPLE = Counters(
    wall_time=1_700_000_000.25,
    tree_cpu_seconds=12.5,
    tree_memory_bytes=123_456_789,
    process_disk_bytes={"10:1.00": (1000, ""), "11:2.00": (500, "10:1.00")},
    pids=frozenset({10, 11}),
    host_cpu_busy_seconds=100.5,
    host_cpu_total_seconds=400.0,
    host_memory_used_bytes=4 << 30,
    host_disk_bytes=None,
    host_network_bytes=20_000,
)


def test_counters_survive_json_unchanged() -> None:
    assert Counters.from_json(SAMPLE.to_json()) == SAMPLE
    assert Counters.from_dict(orjson.loads(orjson.dumps(SAMPLE.to_dict()))) == SAMPLE


def test_missing_per_process_io_survives_json() -> None:
    without_io = Counters.from_dict({**SAMPLE.to_dict(), "process_disk_bytes": None})

    assert Counters.from_json(without_io.to_json()).process_disk_bytes is None


def test_counters_missing_a_field_are_refused() -> None:
    data = SAMPLE.to_dict()
    del data["tree_cpu_seconds"]

    with pytest.raises(ValueError, match="tree_cpu_seconds"):
        Counters.from_dict(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [("wall_time", "soon"), ("pids", 7), ("process_disk_bytes", {"10:1.00": 5})],
)
def test_counters_with_a_wrong_value_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValueError, match="counters: stored data cannot be read"):
        Counters.from_dict({**SAMPLE.to_dict(), field: value})


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]"])
def test_stored_bytes_that_are_not_counters_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="counters: stored data"):
        Counters.from_json(raw)
