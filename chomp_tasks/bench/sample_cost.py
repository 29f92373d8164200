"""The CPU cost of one instance vitals sample, over a tree shaped like a prefork worker's."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any

SAMPLER_CHILDREN = 8
VITALS_INTERVAL_SECONDS = 30.0


def sample_cost(samples: int) -> dict[str, Any]:
    """Return the CPU per sample of `instance_vitals.measure` over this process and 8 children.

    The children are forked from this process, which has imported chomp_tasks, Celery and
    SQLAlchemy, so they share its pages as the pool processes of a worker share the main
    process's. Two figures come out: a sample that only reads the cheap counters, and one that
    also re-reads one process's proportional set size; the average at the default interval
    weighs them as the sampler's refresh schedule does.
    """
    from chomp_tasks import sampler
    from chomp_tasks.instance_vitals import measure

    context = multiprocessing.get_context("fork")
    children = [context.Process(target=time.sleep, args=(600,)) for _ in range(SAMPLER_CHILDREN)]
    for child in children:
        child.start()
    try:
        pid = os.getpid()
        # The priming sample has no snapshot before it, which the sampler warns about.
        vitals_logger = logging.getLogger("chomp_tasks.instance_vitals")
        level = vitals_logger.level
        vitals_logger.setLevel(logging.ERROR)
        try:
            previous, _ = measure("bench", None, pid, ())
        finally:
            vitals_logger.setLevel(level)

        def one_sample() -> None:
            nonlocal previous
            previous, _ = measure("bench", previous, pid, ())

        steady = _cpu_ms(one_sample, samples)
        refresh_after = sampler.PSS_REFRESH_SECONDS
        sampler.PSS_REFRESH_SECONDS = 0.0
        try:
            refreshing = _cpu_ms(one_sample, samples)
        finally:
            sampler.PSS_REFRESH_SECONDS = refresh_after
    finally:
        for child in children:
            child.kill()
            child.join()

    processes = len(previous.pids)
    refresh_share = min(1.0, processes * VITALS_INTERVAL_SECONDS / refresh_after)
    return {
        "children": processes - 1,
        "steady_cpu_ms": steady,
        "refresh_cpu_ms": refreshing,
        "cpu_ms": steady + refresh_share * (refreshing - steady),
    }


def _cpu_ms(step: Callable[[], None], repeat: int) -> float:
    started = time.process_time()
    for _ in range(repeat):
        step()
    return (time.process_time() - started) / repeat * 1000
