"""Run every measurement of the bench in order, on a sandbox of its own."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from chomp_tasks.bench.report import format_report
from chomp_tasks.bench.sample_cost import sample_cost
from chomp_tasks.bench.sandbox import Sandbox
from chomp_tasks.bench.storage_paths import storage_paths
from chomp_tasks.bench.timing import percentile
from chomp_tasks.config import Settings
from chomp_tasks.errors import BenchError

POLL_SECONDS = 0.05
STALLED_SECONDS = 30.0
LAG_RATE_PER_SECOND = 1000
# The rate the throughput producer offers. A thread that does nothing but call stop_timer keeps
# the interpreter lock from the sender thread and outruns it; an ingester spends its time
# waiting on HTTP, which is when the sender runs. The offer is above the 40,000/s target.
MONITOR_OFFER_PER_SECOND = 60_000
_SINCE = sa.text(
    "SELECT response_bytes, extract(epoch FROM ts) FROM chomp_request_vitals "
    "WHERE resource = :r AND response_bytes >= :low"
)


@dataclass(frozen=True)
class Sizes:
    """How much each measurement does; the quick sizes only show that everything runs."""

    latency_calls: int
    stall_calls: int
    down_calls: int
    monitor_records: int
    baseline_records: int
    lag_seconds: float
    sampler_samples: int
    storage_batches: int


FULL = Sizes(100_000, 100_000, 50_000, 200_000, 2_000, 10.0, 200, 20)
QUICK = Sizes(5_000, 10_000, 2_000, 10_000, 200, 2.0, 20, 3)


def run_bench(settings: Settings, quick: bool = False, as_json: bool = False) -> int:
    """Run the bench against the services of `settings` and print its report.

    Raises:
        BenchError: a step failed; the bench's database and keys are removed all the same.
    """
    sizes = QUICK if quick else FULL
    started, load = time.monotonic(), os.getloadavg()
    sandbox = Sandbox(settings)
    try:
        sandbox.open()
        results: dict[str, Any] = {
            "sampler": sample_cost(sizes.sampler_samples),
            "storage": storage_paths(_engine(sandbox), sizes.storage_batches),
        }
        sandbox.start_worker()
        results.update(_measure(sandbox, sizes))
    finally:
        sandbox.close()

    results["meta"] = {
        "quick": quick,
        "cpus": os.cpu_count(),
        "load_before": load[0],
        "load_after": os.getloadavg()[0],
        "seconds": time.monotonic() - started,
        "database": sandbox.database,
        "queue": sandbox.settings.queue,
        "redis_prefix": sandbox.settings.redis_prefix,
    }
    print(orjson.dumps(results).decode() if as_json else format_report(results))
    return 0


def _measure(sandbox: Sandbox, sizes: Sizes) -> dict[str, Any]:
    latency = sandbox.probe("latency", sizes.latency_calls)
    # A queue no worker reads (removed with the sandbox's keys): see probe.stall. The sender on
    # a thread of the ingester is the reference for the relay process that publishes by default.
    unread = f"{sandbox.settings.queue}-stall"
    stall = sandbox.probe("stall", sizes.stall_calls, CHOMP_QUEUE=unread, CHOMP_SENDER="process")
    stall["thread"] = sandbox.probe(
        "stall", sizes.stall_calls // 2, CHOMP_QUEUE=unread, CHOMP_SENDER="thread"
    )
    latency |= sandbox.probe("down", sizes.down_calls, CHOMP_BROKER_URL=_closed_port_url())
    _wait_count(sandbox, "BenchLatency", latency["sender"]["delivered"])

    return {
        "latency": latency,
        "stall": stall,
        "throughput": _throughput(sandbox, sizes),
        "lag": _lag(sandbox, int(sizes.lag_seconds * LAG_RATE_PER_SECOND)),
    }


def _throughput(sandbox: Sandbox, sizes: Sizes) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for path, count in (("monitor", sizes.monitor_records), ("baseline", sizes.baseline_records)):
        resource = f"BenchThroughput{path.title()}"
        args: tuple[object, ...] = (
            (count, MONITOR_OFFER_PER_SECOND, resource) if path == "monitor" else (count, resource)
        )
        already = sandbox.stored_records()
        process = sandbox.start_probe("produce" if path == "monitor" else "baseline", *args)
        sent, stored_at = _wait_producer(sandbox, resource, count, process, already)
        delivered = sent["sender"]["delivered"] if "sender" in sent else count

        figures[path] = {
            "records": count,
            "dropped": count - delivered,
            "stored": sandbox.count_rows(resource),
            "records_per_s": delivered / (stored_at - sent["t0"]),
            "offered_per_s": MONITOR_OFFER_PER_SECOND if path == "monitor" else None,
            "submit_us_per_record": sent["submit_seconds"] / count * 1e6,
        }
    return figures


def _lag(sandbox: Sandbox, count: int) -> dict[str, Any]:
    """Record at LAG_RATE_PER_SECOND and note when each row first shows in the table."""
    process = sandbox.start_probe("produce", count, LAG_RATE_PER_SECOND, "BenchLag")
    seen, lags, low = bytearray(count), list[float](), 0
    last_progress = time.monotonic()
    with sandbox.connect() as conn:
        while len(lags) < count:
            asked = time.time()
            rows = conn.execute(_SINCE, {"r": "BenchLag", "low": low}).all()
            conn.rollback()  # A new snapshot for the next poll.
            for sequence, ts in rows:
                if not seen[sequence]:
                    seen[sequence] = 1
                    lags.append(asked - float(ts))
                    last_progress = time.monotonic()
            while low < count and seen[low]:
                low += 1
            _check_progress(sandbox, last_progress, "BenchLag")
            time.sleep(POLL_SECONDS)

    sandbox.finish_probe(process)
    return {
        "records": count,
        "rate_per_s": LAG_RATE_PER_SECOND,
        "p50_s": percentile(lags, 0.5),
        "p99_s": percentile(lags, 0.99),
        "max_s": max(lags),
    }


def _wait_producer(
    sandbox: Sandbox,
    resource: str,
    count: int,
    producer: subprocess.Popen[bytes],
    already: int,
) -> tuple[dict[str, Any], float]:
    """Wait for a producer and for its rows; return its figures and when the last row showed.

    Until the producer ends, all `count` records are awaited; then only those its sender
    delivered, since a producer that outruns its sender drops the oldest records. Progress is
    read from the workers' stored-records count in Redis (`already` before the producer
    started): counting a growing table every poll would load the database being measured.
    """
    sent: dict[str, Any] | None = None
    expected, last, last_progress = count, -1, time.monotonic()
    while True:
        asked = time.time()
        stored = sandbox.stored_records() - already
        if stored >= expected and sent is not None:
            return sent, asked
        if sent is None and producer.poll() is not None:
            sent = sandbox.finish_probe(producer)
            expected = sent["sender"]["delivered"] if "sender" in sent else count
            continue
        if stored != last:
            last, last_progress = stored, time.monotonic()
        _check_progress(sandbox, last_progress, resource)
        time.sleep(POLL_SECONDS)


def _wait_count(sandbox: Sandbox, resource: str, expected: int) -> None:
    """Wait until a resource has `expected` rows."""
    last, last_progress = -1, time.monotonic()
    while (stored := sandbox.count_rows(resource)) < expected:
        if stored != last:
            last, last_progress = stored, time.monotonic()
        _check_progress(sandbox, last_progress, resource)
        time.sleep(POLL_SECONDS)


def _check_progress(sandbox: Sandbox, last_progress: float, resource: str) -> None:
    if not sandbox.worker_alive():
        raise BenchError(f"the bench worker stopped:\n{sandbox.worker_log()}")
    if time.monotonic() - last_progress > STALLED_SECONDS:
        raise BenchError(
            f"no new rows of {resource!r} for {STALLED_SECONDS:.0f} s:\n{sandbox.worker_log()}"
        )


def _engine(sandbox: Sandbox) -> sa.Engine:
    from chomp_tasks.storage import get_engine

    return get_engine(sandbox.settings)


def _closed_port_url() -> str:
    """Return a Redis URL on a loopback port that nothing listens on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"
