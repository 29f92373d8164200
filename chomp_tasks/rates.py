"""Turn two counters snapshots of the same process tree into per-interval rates.

Pure arithmetic on stored snapshots: nothing here reads the system or sleeps to measure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from chomp_tasks.counters import Counters

logger = logging.getLogger(__name__)

MAX_PERCENT = 100.0

# A missing counter (a container without /proc/<pid>/io, say) stays missing for the life of the
# process, so it is worth one warning, not one per sample.
_warned_missing: set[str] = set()


@dataclass(frozen=True)
class Rates:
    """What a tree and its host did between two counters; None where no honest figure exists."""

    cpu_usage: float | None
    memory_usage: float | None
    disk_usage: float | None
    host_cpu_usage: float | None
    host_memory_usage: float | None
    host_disk_usage: float | None
    host_network_usage: float | None

    def to_dict(self) -> dict[str, float | None]:
        """Return the rates keyed by their column names."""
        return asdict(self)


def rates(previous: Counters, current: Counters, cpu_count: int) -> Rates:
    """Return the rates between two counters of the same tree, `previous` taken first.

    Raises:
        ValueError: `cpu_count` is below 1.
    """
    if cpu_count < 1:
        raise ValueError(f"cpu_count={cpu_count!r}: must be at least 1")

    elapsed = current.wall_time - previous.wall_time
    if elapsed <= 0:
        logger.warning(
            "Instance vitals: wall clock moved %.3f s between samples; no rates", elapsed
        )
        return Rates(None, None, None, None, None, None, None)

    return Rates(
        cpu_usage=_cpu_percent(previous, current, elapsed * cpu_count),
        memory_usage=float(current.tree_memory_bytes),
        disk_usage=_per_second(_tree_disk_delta(previous, current), elapsed),
        host_cpu_usage=_host_cpu_percent(previous, current),
        host_memory_usage=float(current.host_memory_used_bytes),
        host_disk_usage=_per_second(
            _delta("host_disk_usage", previous.host_disk_bytes, current.host_disk_bytes), elapsed
        ),
        host_network_usage=_per_second(
            _delta("host_network_usage", previous.host_network_bytes, current.host_network_bytes),
            elapsed,
        ),
    )


def _cpu_percent(
    previous: Counters, current: Counters, cpu_seconds_available: float
) -> float | None:
    """Return the tree's share of the whole machine's CPU over the interval."""
    used = _delta("cpu_usage", previous.tree_cpu_seconds, current.tree_cpu_seconds)
    if used is None:
        return None

    # CPU time is counted in clock ticks, so a fully busy machine can read a hair over 100.
    return min(used / cpu_seconds_available * 100, MAX_PERCENT)


def _host_cpu_percent(previous: Counters, current: Counters) -> float | None:
    """Return the host's busy share of all CPU time over the interval."""
    busy = _delta("host_cpu_usage", previous.host_cpu_busy_seconds, current.host_cpu_busy_seconds)
    total = _delta(
        "host_cpu_usage", previous.host_cpu_total_seconds, current.host_cpu_total_seconds
    )
    if busy is None or total is None or total <= 0:
        return None
    return min(busy / total * 100, MAX_PERCENT)


def _tree_disk_delta(previous: Counters, current: Counters) -> float | None:
    """Return the bytes the tree moved between two counters, from per-process deltas."""
    before, after = previous.process_disk_bytes, current.process_disk_bytes
    if before is None or after is None:
        _missing("disk_usage")
        return None

    moved = 0
    for key, (now, _parent) in after.items():
        then = before.get(key, (0, ""))[0]
        if now < then:
            _reset("disk_usage", then, now)
            return None
        moved += now - then

    # Linux adds a reaped child's I/O to its parent's counter, so bytes already counted while
    # the child lived show up again in the parent; take them out once.
    gone = before.keys() - after.keys()
    moved -= sum(before[key][0] for key in gone if _reaped_in_tree(key, before, after))
    if moved < 0:
        logger.warning("Instance vitals 'disk_usage': a process left the tree unreaped; no rate")
        return None
    return float(moved)


def _reaped_in_tree(
    key: str, before: Mapping[str, tuple[int, str]], after: Mapping[str, tuple[int, str]]
) -> bool:
    """Tell whether a vanished process has an ancestor that is still in the tree."""
    parent = before[key][1]
    for _ in range(len(before)):
        if parent in after:
            return True
        if parent not in before:
            return False
        parent = before[parent][1]
    return False


def _delta(field: str, before: float | None, after: float | None) -> float | None:
    """Return after - before, or None with a warning when a counter is missing or went back."""
    if before is None or after is None:
        _missing(field)
        return None
    if after < before - _rounding(before):
        _reset(field, before, after)
        return None
    return max(0.0, float(after - before))


def _rounding(value: float) -> float:
    """Return how far a sum of float counters may move back from rounding alone.

    CPU seconds are sums of many floats, so the same clock ticks can add up to a value a few
    units in the last place lower; that is no reset.
    """
    return abs(value) * 1e-9


def _per_second(amount: float | None, elapsed: float) -> float | None:
    """Return `amount` spread over `elapsed` seconds, keeping None as None."""
    return None if amount is None else amount / elapsed


def _missing(field: str) -> None:
    """Return None for a missing counter, warning the first time that field is missing."""
    if field not in _warned_missing:
        _warned_missing.add(field)
        logger.warning("Instance vitals %r: counter unavailable on this system; left empty", field)


def _reset(field: str, before: float, after: float) -> None:
    """Warn that a counter went backwards, which leaves a gap instead of a negative rate."""
    logger.warning(
        "Instance vitals %r: counter went back from %r to %r; no rate this interval",
        field,
        before,
        after,
    )
