"""The bench runs on the local services, prints every figure, and leaves nothing behind."""

from __future__ import annotations

import json
import subprocess
import sys

import redis
import sqlalchemy as sa

from chomp_tasks.bench.report import format_report
from tests.services import POSTGRES_URL


def test_quick_bench_prints_every_figure_and_cleans_up(
    run_env: dict[str, str], cache_client: redis.Redis
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chomp_tasks.cli", "bench", "--quick", "--json"],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)

    latency = figures["latency"]
    for name in ("deque_append", "lpush", "delay", "stop_timer_up", "stop_timer_down"):
        median, p99, worst = latency[name]
        assert 0 < median <= p99 <= worst, name
    for path in ("monitor", "baseline"):
        stored = figures["throughput"][path]
        assert stored["records_per_s"] > 0
        assert stored["stored"] == stored["records"] - stored["dropped"], path
    assert 0 < figures["lag"]["p50_s"] <= figures["lag"]["p99_s"]
    assert figures["sampler"]["children"] == 8 and figures["sampler"]["cpu_ms"] > 0

    text = format_report(figures)
    for label in ("Monitor.stop_timer, broker up", "monitor_request.delay() per record", "Lag"):
        assert label in text

    meta = figures["meta"]
    engine = sa.create_engine(f"{POSTGRES_URL}/postgres", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        left = conn.scalar(
            sa.text("SELECT count(*) FROM pg_database WHERE datname = :d"), {"d": meta["database"]}
        )
    assert left == 0
    # The queue, the unread queue of the stall phase, and kombu's bindings of both.
    assert not list(cache_client.scan_iter(match=f"*{meta['queue']}*"))
    assert not list(cache_client.scan_iter(match=f"{meta['redis_prefix']}*"))
