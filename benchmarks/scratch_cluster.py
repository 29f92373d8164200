"""A throwaway chomp_tasks cluster for the reliability benchmarks: its own database and queue.

The benchmarks import this module before chomp_tasks: `scratch_environment` sets the CHOMP_*
variables that chomp_tasks reads once. Workers are started with the `celery` command, as users
start them, each in its own process group so that a kill reaches its pool too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
import sqlalchemy as sa

POSTGRES_URL = os.environ.get(
    "CHOMP_BENCH_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432"
)
REDIS_URL = os.environ.get("CHOMP_BENCH_REDIS", "redis://127.0.0.1:6379")
RABBITMQ_URL = os.environ.get("CHOMP_BENCH_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672//")
CLAIM_KEY = "chomp-bench:claimed-by"
REPO = Path(__file__).resolve().parent.parent


def scratch_environment(broker: str, **extra: str) -> dict[str, str]:
    """Claim an empty Redis database, name a new database and queue, and export them."""
    run_id = uuid.uuid4().hex[:8]
    db = _claim_redis_db(run_id)
    env = {
        "CHOMP_DATABASE_URL": f"{POSTGRES_URL}/chomp_bench_{run_id}",
        "CHOMP_REDIS_URL": f"{REDIS_URL}/{db}",
        "CHOMP_BROKER_URL": RABBITMQ_URL if broker == "rabbitmq" else f"{REDIS_URL}/{db}",
        "CHOMP_QUEUE": f"chomp_bench_{run_id}",
        "CHOMP_REDIS_PREFIX": f"chomp-bench-{run_id}:",
        **extra,
    }
    os.environ.update(env)
    return env


def _claim_redis_db(run_id: str) -> int:
    for number in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS_URL}/{number}")
        if client.dbsize() == 0 and client.set(CLAIM_KEY, run_id, nx=True):
            return number
    raise SystemExit(f"no empty Redis database among 1-15 at {REDIS_URL}")


def cleanup(env: dict[str, str]) -> None:
    """Drop the scratch database, empty the Redis database and delete a RabbitMQ queue."""
    name = env["CHOMP_DATABASE_URL"].rsplit("/", 1)[1]
    admin = sa.create_engine(f"{POSTGRES_URL}/postgres", poolclass=sa.pool.NullPool)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    redis.Redis.from_url(env["CHOMP_REDIS_URL"]).flushdb()
    if env["CHOMP_BROKER_URL"].startswith("amqp"):
        from kombu import Connection

        with Connection(env["CHOMP_BROKER_URL"], connect_timeout=3) as conn:
            conn.default_channel.queue_delete(env["CHOMP_QUEUE"])


class Worker:
    """One `celery -A chomp_tasks worker` process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str, concurrency: int = 2):
        self.log_path = log_dir / f"{name}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "chomp_tasks", "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency), "--hostname", f"{name}@%h",
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **env},
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the worker says it is ready."""
        deadline = time.monotonic() + timeout
        while " ready." not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"worker did not start; see {self.log_path}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a crash would."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the worker warmly, killing it if it takes more than 30 s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def count_rows(engine: sa.Engine, resource: str) -> int:
    """Return how many rows a resource has stored."""
    with engine.connect() as conn:
        query = sa.text("SELECT count(*) FROM chomp_request_vitals WHERE resource = :r")
        return int(conn.scalar(query, {"r": resource}) or 0)
