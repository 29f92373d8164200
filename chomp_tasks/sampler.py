"""Sample a worker's process tree and its host as cumulative counters, without blocking.

`collect_counters` snapshots; `rates` (re-exported from chomp_tasks.rates) turns two snapshots,
possibly taken by different processes and stored as JSON in between, into per-second figures.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import psutil

from chomp_tasks.counters import Counters
from chomp_tasks.rates import Rates, rates

__all__ = ["Counters", "Rates", "collect_counters", "rates"]

logger = logging.getLogger(__name__)

LOOPBACK_INTERFACES = frozenset({"lo", "lo0"})
# Reading a process's proportional set size makes the kernel walk its page tables: about 3 ms
# of CPU for a 70 MB pool process, against 0.02 ms for its resident size. So each process's
# PSS is read when it is first seen and then refreshed at most once per sample, stalest
# first, once it is this old; in between, its memory is that PSS plus the change in its
# resident size since. Limit: pages that become shared or unshared between two reads of a
# process (a fork, copy-on-write of inherited pages) show only at its next read.
PSS_REFRESH_SECONDS = 600.0


@dataclass(frozen=True)
class _ProcessSample:
    key: str
    cpu_seconds: float
    disk_bytes: int | None
    rss_bytes: int


@dataclass(frozen=True)
class _MemoryBaseline:
    pss_bytes: int
    rss_bytes: int
    read_at: float


_baselines: dict[str, _MemoryBaseline] = {}


def collect_counters(root_pid: int, exclude_pids: Collection[int] = ()) -> Counters:
    """Snapshot the cumulative counters of `root_pid`'s process tree and of the host.

    A process in `exclude_pids` is left out together with its descendants (the beat child of
    `celery worker -B` is not part of the worker's work). Never blocks to measure.

    Limit: once an excluded child has ended and been reaped, the kernel adds its lifetime CPU
    to the root's children time, so the interval in which it ends reads too high. The beat
    child ends only when the worker stops, after its last sample.

    Raises:
        ValueError: `root_pid` is not a running process.
    """
    wall_time = time.time()
    parents = _tree(root_pid, frozenset(exclude_pids))
    samples = _sample_tree(parents)
    if root_pid not in samples:
        raise ValueError(f"root_pid={root_pid}: no such process")

    busy, total = _host_cpu_seconds()
    return Counters(
        wall_time=wall_time,
        tree_cpu_seconds=sum(sample.cpu_seconds for sample in samples.values()),
        tree_memory_bytes=_tree_memory_bytes(samples, wall_time),
        process_disk_bytes=_disk_map(samples, parents),
        pids=frozenset(samples),
        host_cpu_busy_seconds=busy,
        host_cpu_total_seconds=total,
        host_memory_used_bytes=_host_memory_used_bytes(),
        host_disk_bytes=_host_disk_bytes(),
        host_network_bytes=_host_network_bytes(),
    )


def _tree(root_pid: int, exclude_pids: frozenset[int]) -> dict[int, int]:
    """Return {pid: parent pid} for the tree under `root_pid`, parents before children."""
    children_of = _read_children if _has_children_files() else _psutil_children(root_pid)
    parents = {root_pid: 0}
    pending = [root_pid]

    while pending:
        pid = pending.pop()
        for child in children_of(pid):
            if child not in exclude_pids and child not in parents:
                parents[child] = pid
                pending.append(child)
    return parents


@functools.cache
def _has_children_files() -> bool:
    """Tell whether the kernel lists each task's children in /proc (CONFIG_PROC_CHILDREN)."""
    return os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def _read_children(pid: int) -> list[int]:
    """Return the children of every thread of `pid`, read without scanning all of /proc."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []

    children: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as file:
                children.extend(int(child) for child in file.read().split())
        except OSError:
            continue
    return children


def _psutil_children(root_pid: int) -> Callable[[int], list[int]]:
    """Return a children lookup built from one psutil scan of every process on the host."""
    by_parent: dict[int, list[int]] = {}
    try:
        descendants = psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []

    for process in descendants:
        try:
            by_parent.setdefault(process.ppid(), []).append(process.pid)
        except psutil.NoSuchProcess:
            continue
    return lambda pid: by_parent.get(pid, [])


def _sample_tree(parents: Mapping[int, int]) -> dict[int, _ProcessSample]:
    """Sample every process of the tree, leaving out those that ended meanwhile."""
    samples = {}
    for pid in parents:
        sample = _sample_process(pid)
        if sample is not None:
            samples[pid] = sample
    return samples


def _sample_process(pid: int) -> _ProcessSample | None:
    """Read one process's counters, or None when it has ended."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            # children_user and children_system hold the CPU of children this process has
            # reaped, so a pool child that exits moves its CPU into its parent's figure
            # instead of taking it out of the tree.
            times = process.cpu_times()
            cpu = times.user + times.system + times.children_user + times.children_system
            return _ProcessSample(
                key=f"{pid}:{process.create_time():.2f}",
                cpu_seconds=cpu,
                disk_bytes=_disk_bytes(process),
                rss_bytes=int(process.memory_info().rss),
            )
    except psutil.NoSuchProcess:
        return None


def _disk_bytes(process: psutil.Process) -> int | None:
    """Return bytes the process read and wrote at the storage layer, or None if not readable."""
    try:
        io = process.io_counters()
    except (psutil.AccessDenied, AttributeError, NotImplementedError):
        return None
    return int(io.read_bytes + io.write_bytes)


def _tree_memory_bytes(samples: Mapping[int, _ProcessSample], now: float) -> int:
    """Return the tree's memory, pages shared after fork counted once; see PSS_REFRESH_SECONDS."""
    live = {sample.key for sample in samples.values()}
    for key in [key for key in _baselines if key not in live]:
        del _baselines[key]

    new = [(pid, s) for pid, s in samples.items() if s.key not in _baselines]
    stale = sorted(
        ((pid, s) for pid, s in samples.items() if s.key in _baselines),
        key=lambda item: _baselines[item[1].key].read_at,
    )
    if stale and now - _baselines[stale[0][1].key].read_at >= PSS_REFRESH_SECONDS:
        new.append(stale[0])
    for pid, sample in new:
        _baselines[sample.key] = _MemoryBaseline(_pss_bytes(pid, sample), sample.rss_bytes, now)

    total = 0
    for sample in samples.values():
        baseline = _baselines[sample.key]
        total += max(0, baseline.pss_bytes + sample.rss_bytes - baseline.rss_bytes)
    return total


def _pss_bytes(pid: int, sample: _ProcessSample) -> int:
    """Return the process's proportional set size, or its resident size if PSS is unreadable."""
    try:
        return int(psutil.Process(pid).memory_full_info().pss)
    except (psutil.AccessDenied, psutil.NoSuchProcess, AttributeError):
        logger.debug("Process %d: PSS unavailable, counting RSS", pid)
        return sample.rss_bytes


def _disk_map(
    samples: Mapping[int, _ProcessSample], parents: Mapping[int, int]
) -> dict[str, tuple[int, str]] | None:
    """Return per-process disk bytes with each parent's key, or None if any is unreadable."""
    disk: dict[str, tuple[int, str]] = {}
    for pid, sample in samples.items():
        if sample.disk_bytes is None:
            return None
        parent = samples.get(parents[pid])
        disk[sample.key] = (sample.disk_bytes, parent.key if parent else "")
    return disk


def _host_cpu_seconds() -> tuple[float, float]:
    """Return the host's busy and total CPU seconds since boot, over all CPUs."""
    times = psutil.cpu_times()

    # Linux counts guest time inside user and nice already.
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def _host_memory_used_bytes() -> int:
    """Return memory in use on the host: what could not be handed to a new program."""
    memory = psutil.virtual_memory()
    return int(memory.total - memory.available)


def _host_disk_bytes() -> int | None:
    """Return bytes read and written by the host's disks, or None where none are visible."""
    try:
        io = psutil.disk_io_counters()
    except (OSError, RuntimeError):
        return None
    return None if io is None else int(io.read_bytes + io.write_bytes)


def _host_network_bytes() -> int | None:
    """Return bytes sent and received on the host's interfaces other than loopback.

    An interface that goes away (a container's veth) takes its bytes with it; the sum then
    drops and that interval reads as a reset, a gap rather than a wrong figure.
    """
    try:
        interfaces = psutil.net_io_counters(pernic=True)
    except OSError:
        return None

    outside = (c for name, c in interfaces.items() if name not in LOOPBACK_INTERFACES)
    return sum(int(counter.bytes_sent + counter.bytes_recv) for counter in outside)
