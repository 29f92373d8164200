"""Measure how many records SIGKILLs at random moments lose, with Redis or RabbitMQ as broker.

Run: python benchmarks/kill_loss.py [redis|rabbitmq] [rounds] [records/s]

Each round starts a worker, sends single-record messages (as `monitor_request.delay` does) for
three seconds, and SIGKILLs the worker's whole process group at a random moment. The next
round's worker recovers what the killed one held. At the end one worker runs until nothing
more arrives, and the rows of each round are counted against the records sent.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from pathlib import Path

from scratch_cluster import Worker, cleanup, count_rows, scratch_environment

VISIBILITY_TIMEOUT_SECONDS = 5
SEND_SECONDS = 3.0
SETTLE_SECONDS = 3 * VISIBILITY_TIMEOUT_SECONDS + 10


def main() -> None:
    """Run the rounds and print the loss of each, then the totals."""
    broker = sys.argv[1] if len(sys.argv) > 1 else "redis"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 200.0
    env = scratch_environment(broker, CHOMP_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT_SECONDS))
    log_dir = Path(tempfile.mkdtemp(prefix="chomp-kill-"))
    try:
        sent = _run_rounds(env, log_dir, rounds, rate)
        _report(broker, rate, sent)
    finally:
        cleanup(env)
    print(f"worker logs: {log_dir}")


def _run_rounds(env: dict[str, str], log_dir: Path, rounds: int, rate: float) -> dict[str, int]:
    from chomp_tasks.app import app

    sent: dict[str, int] = {}
    for number in range(rounds):
        worker = Worker(env, log_dir, f"round{number}")
        worker.wait_ready()
        resource = f"Round{number}"
        count = int(rate * SEND_SECONDS)
        thread = threading.Thread(target=_send, args=(app, resource, count, rate))
        thread.start()
        time.sleep(random.uniform(0.2, SEND_SECONDS))
        worker.kill()
        thread.join()
        sent[resource] = count

    last = Worker(env, log_dir, "settle")
    last.wait_ready()
    _settle(list(sent))
    last.stop()
    return sent


def _send(app: object, resource: str, count: int, rate: float) -> None:
    from chomp_tasks import RequestVitals

    started = time.monotonic()
    for i in range(count):
        record = RequestVitals(resource, instance_name="kill", latency_ms=1.0, response_bytes=i)
        app.send_task("chomp_tasks.monitor_request", kwargs=record.to_message())  # type: ignore[attr-defined]
        ahead = started + (i + 1) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def _settle(resources: list[str]) -> None:
    """Wait until no row has arrived for SETTLE_SECONDS: restores have all happened by then."""
    from chomp_tasks.config import get_settings
    from chomp_tasks.storage import get_engine

    engine = get_engine(get_settings())
    total, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < SETTLE_SECONDS:
        now = sum(count_rows(engine, r) for r in resources)
        if now != total:
            total, quiet_since = now, time.monotonic()
        time.sleep(1)


def _report(broker: str, rate: float, sent: dict[str, int]) -> None:
    from chomp_tasks.config import get_settings
    from chomp_tasks.storage import get_engine

    engine = get_engine(get_settings())
    lost_per_round = [count - count_rows(engine, r) for r, count in sent.items()]
    for (resource, count), lost in zip(sent.items(), lost_per_round, strict=True):
        print(f"{resource}: sent {count}, lost {lost}")
    kills = len(sent)
    lossy = sum(1 for lost in lost_per_round if lost)
    print(
        f"{broker}: {kills} kills at {rate:g} messages/s; {lossy} kills lost records, "
        f"{sum(lost_per_round)} records lost of {sum(sent.values())} sent"
    )


if __name__ == "__main__":
    main()
