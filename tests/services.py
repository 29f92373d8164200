"""Per-run resources of the test suite: a database, a Redis database, a queue, and real workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

POSTGRES_URL = os.environ.get(
    "CHOMP_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432"
)
REDIS_BASE_URL = os.environ.get("CHOMP_TEST_REDIS", "redis://127.0.0.1:6379")
RABBITMQ_URL = os.environ.get("CHOMP_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")
CLAIM_KEY = "chomp-tests:claimed-by"
WORKER_READY_SECONDS = 60.0


def claim_redis_db(run_id: str) -> int:
    """Return a Redis database number 1-15 that no other test run holds, and hold it."""
    for number in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_BASE_URL}/{number}")
        if client.dbsize() == 0 and client.set(CLAIM_KEY, run_id, nx=True):
            return number
    raise RuntimeError(
        f"no empty Redis database among 1-15 at {REDIS_BASE_URL}; "
        "flush a stale one left by an interrupted test run"
    )


def wait_for(
    predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll predicate until it returns a truthy value, and return it; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or predicate}")
        time.sleep(interval)


@dataclass
class Worker:
    """A `celery -A chomp_tasks worker` process started by a test."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def log(self) -> str:
        """Return what the worker has logged so far."""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = WORKER_READY_SECONDS) -> None:
        """Wait until the worker says it is ready to consume."""

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited early:\n{self.log()[-3000:]}")
            return " ready." in self.log()

        wait_for(ready, timeout=timeout, what=f"worker {self.name} to be ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Stop the worker and its pool, killing it if it takes longer than timeout."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """Kill the worker's whole process group at once, as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_worker(
    env: dict[str, str], log_dir: Path, name: str, *extra: str, concurrency: int = 2
) -> Worker:
    """Start a real worker with the celery command, in its own process group."""
    log_path = log_dir / f"{name}.log"
    command = [
        sys.executable, "-m", "celery", "-A", "chomp_tasks", "worker",
        "--loglevel", "INFO", "--concurrency", str(concurrency), "--hostname", f"{name}@%h",
        "--without-mingle", "--without-gossip", *extra,
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(name=name, process=process, log_path=log_path, env=env)


def run_cli(
    env: dict[str, str], *args: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the chomp-tasks command as a user would, with env as its whole environment."""
    return subprocess.run(
        [sys.executable, "-m", "chomp_tasks.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=check,
    )


def new_run_id() -> str:
    """Return a short random id for the names of this run's database, queue and keys."""
    return uuid.uuid4().hex[:10]
