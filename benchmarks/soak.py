"""Soak: Monitor records at a steady rate into two workers, watching memory and counting rows.

Run: python benchmarks/soak.py [minutes] [records/s]     (defaults: 30 minutes, 500 records/s)

The ingester is this process. Every 15 s it samples the resident memory of itself, of its
relay process (a new relay gets a line of its own) and of each worker's main and pool
processes. At the end it flushes, waits for the rows and prints what was sent, stored and
dropped, and each process's memory after warm-up, at the end and at its peak.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil
from scratch_cluster import Worker, cleanup, count_rows, scratch_environment

SAMPLE_SECONDS = 15.0
WARM_UP_SECONDS = 60.0
TICK_SECONDS = 0.05
RESOURCE = "SoakFeed"


def main() -> None:
    """Run the soak and print its figures."""
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 500.0
    env = scratch_environment("redis")
    log_dir = Path(tempfile.mkdtemp(prefix="chomp-soak-"))
    workers = [Worker(env, log_dir, f"soak{i}") for i in range(2)]
    try:
        for worker in workers:
            worker.wait_ready()
        memory = _produce(workers, minutes * 60, rate)
        _report(memory)
    finally:
        for worker in workers:
            worker.stop()
        cleanup(env)
    print(f"worker logs: {log_dir}")


def _produce(workers: list[Worker], seconds: float, rate: float) -> dict[str, list[float]]:
    from chomp_tasks import Monitor

    monitor = Monitor(RESOURCE, field_count=5, instance_name="soak")
    memory: dict[str, list[float]] = defaultdict(list)
    started = next_sample = time.monotonic()
    sent = 0
    while (now := time.monotonic()) - started < seconds:
        due = int((now - started) * rate)
        for _ in range(due - sent):
            monitor.start_timer()
            monitor.stop_timer(2048, 200)
        sent = max(sent, due)
        if now >= next_sample:
            _sample(workers, memory, now - started)
            next_sample += SAMPLE_SECONDS
        time.sleep(TICK_SECONDS)

    monitor.flush(timeout=60)
    _wait_for_rows(monitor.stats()["delivered"])
    print(f"elapsed {time.monotonic() - started:.0f} s, target {rate:g} records/s")
    print(f"sender: {monitor.stats()}")
    return memory


def _sample(workers: list[Worker], memory: dict[str, list[float]], elapsed: float) -> None:
    from chomp_tasks.sender import get_sender

    processes = {"ingester": psutil.Process()}
    relay_pid = getattr(get_sender().publish, "pid", None)
    if relay_pid is not None:
        processes[f"relay (pid {relay_pid})"] = psutil.Process(relay_pid)
    for number, worker in enumerate(workers):
        main = psutil.Process(worker.process.pid)
        processes[f"worker{number} main"] = main
        for index, child in enumerate(sorted(main.children(), key=lambda p: p.pid)):
            processes[f"worker{number} pool{index} (pid {child.pid})"] = child
    for label, process in processes.items():
        try:
            rss_mib = process.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
        memory[label].append(rss_mib if elapsed >= WARM_UP_SECONDS else -rss_mib)


def _wait_for_rows(expected: int) -> None:
    from chomp_tasks.config import get_settings
    from chomp_tasks.storage import get_engine

    engine = get_engine(get_settings())
    deadline = time.monotonic() + 120
    while (stored := count_rows(engine, RESOURCE)) < expected and time.monotonic() < deadline:
        time.sleep(1)
    print(f"rows stored {stored}, records delivered to the broker {expected}")
    print("no record lost" if stored == expected else f"LOST {expected - stored} records")


def _report(memory: dict[str, list[float]]) -> None:
    print("resident memory, MiB: after warm-up / at end / peak")
    for label, samples in memory.items():
        warm = [s for s in samples if s >= 0]
        if warm:
            print(f"  {label}: {warm[0]:.1f} / {warm[-1]:.1f} / {max(warm):.1f}")


if __name__ == "__main__":
    main()
