"""Time many calls of one operation and summarise them as median, p99 and max."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """The spread of one operation's cost, in microseconds."""

    median_us: float
    p99_us: float
    max_us: float
    calls: int

    def as_list(self) -> list[float]:
        """Return [median, p99, max] for a JSON report."""
        return [self.median_us, self.p99_us, self.max_us]


def summarise(durations_ns: Sequence[int]) -> Summary:
    """Return the median, p99 and max of durations given in nanoseconds."""
    ordered = sorted(durations_ns)
    count = len(ordered)
    if count == 0:
        raise ValueError("no durations to summarise")
    return Summary(
        median_us=ordered[count // 2] / 1000,
        p99_us=ordered[min(count - 1, int(count * 0.99))] / 1000,
        max_us=ordered[-1] / 1000,
        calls=count,
    )


def time_calls(operation: Callable[[int], object], calls: int) -> Summary:
    """Call operation(i) for i in range(calls), timing each call on its own."""
    clock = time.perf_counter_ns
    durations = [0] * calls
    for i in range(calls):
        started = clock()
        operation(i)
        durations[i] = clock() - started
    return summarise(durations)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Return the value below which `fraction` of the values lie (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]
