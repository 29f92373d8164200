"""Measure what one instance vitals sample costs: collect_counters over a root with 8 children.

Run: python benchmarks/collect_counters.py [children] [samples]
"""

import os
import subprocess
import sys
import time

from chomp_tasks import sampler

IDLE_CHILD = "import sys; sys.stdin.read()"


def main() -> None:
    """Print the CPU and wall milliseconds per sample, for both ways of finding the tree."""
    child_count = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    sample_count = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    children = [
        subprocess.Popen([sys.executable, "-c", IDLE_CHILD], stdin=subprocess.PIPE)
        for _ in range(child_count)
    ]
    try:
        _wait_for_tree(child_count)
        for label, has_files in (("children files", True), ("psutil scan", False)):
            sampler._has_children_files = lambda has_files=has_files: has_files
            _measure(label, sample_count)
    finally:
        for child in children:
            child.kill()
            child.wait()


def _wait_for_tree(child_count: int) -> None:
    deadline = time.monotonic() + 10
    while len(sampler.collect_counters(os.getpid()).pids) < child_count + 1:
        if time.monotonic() > deadline:
            raise SystemExit("children did not start within 10 s")
        time.sleep(0.05)


def _measure(label: str, sample_count: int) -> None:
    sampler.collect_counters(os.getpid())
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for _ in range(sample_count):
        sampler.collect_counters(os.getpid())

    cpu_ms = (time.process_time() - cpu_start) / sample_count * 1000
    wall_ms = (time.perf_counter() - wall_start) / sample_count * 1000
    print(f"{label}: {cpu_ms:.2f} ms CPU, {wall_ms:.2f} ms wall per sample")


if __name__ == "__main__":
    main()
