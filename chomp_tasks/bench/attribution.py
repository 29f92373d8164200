"""Which slow calls of the stall probe fell while the sender was publishing a batch.

A machine of two shared cores stalls any loop now and then, sender or not, and how often
drifts from minute to minute. Comparing two runs of a loop leaves that drift in; comparing the
slow calls made while a batch was being published with those made while none was, within the
same run, does not. If publishing stalled the caller, slow calls would gather in the publishing
windows beyond their share of all calls.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chomp_tasks.sender import Sender

STALL_LIMIT_NS = 1_000_000
# The sender takes a batch from its buffer just before it publishes, and settles it just after.
MARGIN_NS = 500_000

Call = tuple[int, int]
"""A timed call: when it started (perf_counter_ns) and how long it took, in nanoseconds."""


class PublishWatch:
    """Wrap a sender's publish to record when each batch was published and its thread's CPU."""

    def __init__(self, sender: Sender) -> None:
        self.cpu_ns: list[int] = []
        self.windows: list[tuple[int, int]] = []
        publish = sender.publish

        def watched(batch: list[bytes], dropped: int = 0) -> None:
            started, cpu = time.perf_counter_ns(), time.thread_time_ns()
            try:
                publish(batch, dropped)
            finally:
                self.cpu_ns.append(time.thread_time_ns() - cpu)
                self.windows.append((started, time.perf_counter_ns()))

        sender.publish = watched


def during(calls: Sequence[Call], windows: Sequence[tuple[int, int]]) -> list[bool]:
    """Say for each call whether it overlaps a publishing window widened by MARGIN_NS."""
    # One sender publishes one batch at a time: the windows are in order of start and of end.
    ends = [end for _, end in windows]
    flags = []
    for start, duration in calls:
        i = bisect_left(ends, start - MARGIN_NS)
        flags.append(i < len(windows) and windows[i][0] - MARGIN_NS <= start + duration)
    return flags


def attribute(calls: Sequence[Call], windows: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Return the slow calls made while publishing, and how many chance alone would put there."""
    flags = during(calls, windows)
    slow = [duration > STALL_LIMIT_NS for _, duration in calls]
    share = sum(flags) / len(calls) if calls else 0.0
    return {
        "over_1ms_publishing": sum(
            1 for inside, late in zip(flags, slow, strict=True) if inside and late
        ),
        "over_1ms_by_chance": sum(slow) * share,
        "share_publishing": share,
    }


def beyond_chance(observed: float, expected: float) -> bool:
    """Say whether a count of rare events is more than chance allows above its expectation.

    Such counts vary by about their square root from run to run; three times that is allowed.
    """
    return observed > expected + 3 * math.sqrt(expected + 1)
