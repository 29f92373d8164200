"""The bench's own database, queue, Redis keys and worker, removed again when it is done."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from chomp_tasks.config import Settings
from chomp_tasks.errors import BenchError

logger = logging.getLogger(__name__)

WORKER_READY_SECONDS = 60.0
WORKER_STOP_SECONDS = 20.0
PROBE_SECONDS = 120.0
READY_RESOURCE = "BenchReady"
_COUNT = sa.text("SELECT count(*) FROM chomp_request_vitals WHERE resource = :r")


class Sandbox:
    """A database, queue and key prefix of one bench run, and the worker that serves them."""

    def __init__(self, base: Settings) -> None:
        run_id = uuid.uuid4().hex[:10]
        self.database = f"chomp_bench_{run_id}"
        url = make_url(base.database_url).set(database=self.database)
        self.settings = dataclasses.replace(
            base,
            database_url=url.render_as_string(hide_password=False),
            queue=f"chomp_bench_{run_id}",
            redis_prefix=f"chomp-bench-{run_id}:",
        )
        self.env = {
            **os.environ,
            "CHOMP_DATABASE_URL": self.settings.database_url,
            "CHOMP_BROKER_URL": self.settings.broker_url,
            "CHOMP_REDIS_URL": self.settings.redis_url,
            "CHOMP_QUEUE": self.settings.queue,
            "CHOMP_REDIS_PREFIX": self.settings.redis_prefix,
        }
        self.workdir = Path(tempfile.mkdtemp(prefix="chomp-bench-"))
        self.worker: subprocess.Popen[bytes] | None = None

    def open(self) -> None:
        """Create and migrate the bench database."""
        from chomp_tasks.storage import migrate

        migrate(self.settings)

    def start_worker(self, concurrency: int = 2) -> None:
        """Start `celery -A chomp_tasks worker` on the bench queue and wait until it stores."""
        command = [
            sys.executable, "-m", "celery", "-A", "chomp_tasks", "worker",
            "--concurrency", str(concurrency), "--loglevel", "WARNING",
            "--hostname", f"{self.settings.queue}@%h",
            "--without-mingle", "--without-gossip", "--without-heartbeat",
        ]  # fmt: skip
        with (self.workdir / "worker.log").open("wb") as log:
            self.worker = subprocess.Popen(
                command, env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self._wait_ready()

    def probe(self, phase: str, *args: object, **env: str) -> dict[str, Any]:
        """Run one phase of the probe in a process of its own and return its figures."""
        command = [sys.executable, "-m", "chomp_tasks.bench.probe", phase, *map(str, args)]
        done = subprocess.run(
            command, env={**self.env, **env}, capture_output=True, timeout=PROBE_SECONDS
        )
        if done.returncode != 0 or not done.stdout.strip():
            tail = done.stderr.decode(errors="replace")[-2000:]
            raise BenchError(f"probe {phase!r} failed with status {done.returncode}: {tail}")
        result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
        return result

    def start_probe(self, phase: str, *args: object) -> subprocess.Popen[bytes]:
        """Start one phase of the probe and return at once; read it with `finish_probe`."""
        command = [sys.executable, "-m", "chomp_tasks.bench.probe", phase, *map(str, args)]
        return subprocess.Popen(
            command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def finish_probe(self, process: subprocess.Popen[bytes]) -> dict[str, Any]:
        """Wait for a probe started with `start_probe` and return its figures."""
        out, err = process.communicate(timeout=PROBE_SECONDS)
        if process.returncode != 0 or not out.strip():
            tail = err.decode(errors="replace")[-2000:]
            raise BenchError(f"probe failed with status {process.returncode}: {tail}")
        result: dict[str, Any] = orjson.loads(out.splitlines()[-1])
        return result

    def count_rows(self, resource: str) -> int:
        """Return how many rows of a resource are stored."""
        from chomp_tasks.storage import get_engine

        with get_engine(self.settings).connect() as conn:
            return int(conn.scalar(_COUNT, {"r": resource}) or 0)

    def stored_records(self) -> int:
        """Return how many rows the bench's workers have stored, as they count them in Redis."""
        from chomp_tasks.cache import get_cache

        return get_cache(self.settings).get_counts().get("stored_records", 0)

    def connect(self) -> sa.Connection:
        """Return a connection to the bench database; the caller closes it."""
        from chomp_tasks.storage import get_engine

        return get_engine(self.settings).connect()

    def worker_alive(self) -> bool:
        """Say whether the worker is still running."""
        return self.worker is not None and self.worker.poll() is None

    def worker_log(self) -> str:
        """Return the end of the worker's log."""
        path = self.workdir / "worker.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        """Stop the worker, drop the database and delete the queue's and cache's keys."""
        self._stop_worker()
        from chomp_tasks.storage import dispose_engines

        dispose_engines()
        self._drop_database()
        self._delete_keys()
        for path in self.workdir.iterdir():
            path.unlink()
        self.workdir.rmdir()

    def _wait_ready(self) -> None:
        from chomp_tasks.app import create_app

        app = create_app(self.settings)
        app.send_task(
            "chomp_tasks.monitor_request",
            kwargs={"resource_name": READY_RESOURCE, "latency_ms": 1.0, "response_bytes": 1},
        )
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while self.count_rows(READY_RESOURCE) == 0:
            if not self.worker_alive() or time.monotonic() > deadline:
                raise BenchError(f"the bench worker did not start:\n{self.worker_log()}")
            time.sleep(0.1)

    def _stop_worker(self) -> None:
        if self.worker is None or self.worker.poll() is not None:
            return
        os.killpg(self.worker.pid, signal.SIGTERM)
        try:
            self.worker.wait(timeout=WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.worker.pid, signal.SIGKILL)
            self.worker.wait(timeout=10)

    def _drop_database(self) -> None:
        url = make_url(self.settings.database_url)
        admin = sa.create_engine(url.set(database="postgres"), poolclass=sa.pool.NullPool)
        quoted = admin.dialect.identifier_preparer.quote(str(url.database))
        try:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        finally:
            admin.dispose()

    def _delete_keys(self) -> None:
        queue, prefix = self.settings.queue, self.settings.redis_prefix
        for url, patterns in (
            # The queue's own keys, and kombu's bindings of it and of the bench's other queues.
            (self.settings.broker_url, [f"{queue}*", f"_kombu.binding*.{queue}*"]),
            (self.settings.redis_url, [f"{prefix}*"]),
        ):
            if not url.startswith("redis"):
                continue
            client = redis.Redis.from_url(url)
            for pattern in patterns:
                keys = list(client.scan_iter(match=pattern, count=1000))
                if keys:
                    client.delete(*keys)
