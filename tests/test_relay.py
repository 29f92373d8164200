"""The relay process that publishes an ingester's batches: replaced when it dies, gone with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import psutil
import pytest

from chomp_tasks import RequestVitals
from chomp_tasks.config import Settings
from chomp_tasks.errors import PublishFailed
from chomp_tasks.relay import STOP_TIMEOUT_SECONDS, Relay
from chomp_tasks.request_vitals import ID, Row
from chomp_tasks.sender import Sender
from tests.faults import TcpProxy
from tests.queue_reader import Broker
from tests.services import wait_for


def records(count: int) -> list[Row]:
    return [RequestVitals("Relayed", latency_ms=1, response_bytes=i).to_row() for i in range(count)]


def submit_all(sender: Sender, rows: list[Row]) -> None:
    for row in rows:
        sender.submit(orjson.dumps(row))


def settings(batch_size: int) -> Settings:
    return Settings(batch_size=batch_size, batch_age_seconds=0.02)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@contextmanager
def ingester(broker: Broker, code: str, **env: str) -> Iterator[subprocess.Popen[str]]:
    """Run an ingester script in a session of its own; it reports on its stdout."""
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=broker.relay_env() | env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)


def report(process: subprocess.Popen[str]) -> str:
    """Return the next line the ingester prints."""
    assert process.stdout is not None
    return process.stdout.readline().strip()


def test_batches_go_through_the_relay_and_a_killed_relay_is_replaced(broker: Broker) -> None:
    relay = Relay(env=broker.relay_env())
    sender = Sender(settings(batch_size=100), publish=relay)
    try:
        sent = records(3000)
        submit_all(sender, sent[:1000])
        assert sender.flush(timeout=30)
        first = relay.pid
        assert first is not None

        os.kill(first, signal.SIGKILL)
        submit_all(sender, sent[1000:])
        assert sender.flush(timeout=30)
    finally:
        relay.close()

    assert relay.pid is None and gone(first)
    # A relay killed after the broker took a batch but before it answered leaves that batch
    # sent twice; the record ids make the copy harmless on the worker.
    assert set(broker.delivered_ids()) == {r[ID] for r in sent}
    assert sender.stats() == {"accepted": 3000, "delivered": 3000, "dropped": 0, "buffered": 0}


def test_with_the_broker_down_the_relay_says_why_and_the_records_wait(
    broker: Broker, broker_proxy: TcpProxy
) -> None:
    relay = Relay(env=broker.relay_env())
    try:
        broker_proxy.set_mode("refuse")
        batch = [orjson.dumps(row) for row in records(10)]
        with pytest.raises(PublishFailed, match=r"\S"):
            relay(batch)

        sender = Sender(settings(batch_size=50), publish=relay)
        sent = records(200)
        submit_all(sender, sent)
        assert not sender.flush(timeout=1)
        broker_proxy.set_mode("open")
        assert sender.flush(timeout=20)
        # Past the relay, a drop count reaches the message as it was handed over.
        relay(batch, 7)
    finally:
        relay.close()

    assert broker.delivered_ids() == [r[ID] for r in sent] + [orjson.loads(b)[ID] for b in batch]
    assert broker.dropped_reported() == 7


def test_the_relay_exits_when_its_ingester_is_killed(broker: Broker) -> None:
    code = """
        import time
        from chomp_tasks import Monitor
        from chomp_tasks.sender import get_sender
        monitor = Monitor("KilledIngester")
        monitor.start_timer()
        monitor.stop_timer(1, 200)
        assert monitor.flush(timeout=30)
        print(get_sender().publish.pid, flush=True)
        time.sleep(60)
    """
    with ingester(broker, code) as process:
        relay_pid = int(report(process))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    # Not in its process group any more: the relay sees its input end and exits on its own.
    wait_for(lambda: gone(relay_pid), timeout=10, what="the relay to exit")
    assert len(broker.delivered_ids()) == 1


def test_a_forked_ingester_has_a_relay_of_its_own(broker: Broker) -> None:
    code = """
        import os, time
        from chomp_tasks import Monitor
        from chomp_tasks.sender import get_sender
        monitor = Monitor("ForkedIngester")
        monitor.start_timer()
        monitor.stop_timer(1, 200)
        assert monitor.flush(timeout=30)
        parent_relay = get_sender().publish.pid
        if os.fork() == 0:
            monitor.start_timer()
            monitor.stop_timer(2, 200)
            assert monitor.flush(timeout=30)
            print(parent_relay, get_sender().publish.pid, os.getpid(), flush=True)
            time.sleep(10)
            os._exit(0)
    """
    with ingester(broker, code) as process:
        parent_relay, child_relay, child = map(int, report(process).split())
        # The child holds none of the parent relay's pipes, so that relay sees its input end
        # as soon as the parent lets go, and the parent need not wait out the kill timeout.
        process.wait(timeout=STOP_TIMEOUT_SECONDS - 2)
        wait_for(lambda: gone(parent_relay), timeout=5, what="the parent's relay to exit")
        assert not gone(child) and not gone(child_relay)
        os.kill(child, signal.SIGKILL)

    assert child_relay != parent_relay
    assert len(broker.delivered_ids()) == 2
    wait_for(lambda: gone(child_relay), timeout=10, what="the child's relay to exit")


def test_the_relay_imports_from_where_its_ingester_does(broker: Broker, tmp_path: Path) -> None:
    # `python ingest/run.py` finds modules beside the script; a relay started as `python -c`
    # from the same folder would not, and could not load the ingester's Celery settings.
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest" / "ingest_celery.py").write_text("task_default_priority = 5\n")
    script = tmp_path / "ingest" / "run.py"
    script.write_text(
        textwrap.dedent("""
            from chomp_tasks import Monitor
            monitor = Monitor("ScriptIngester")
            monitor.start_timer()
            monitor.stop_timer(1, 200)
            print(monitor.flush(timeout=20), flush=True)
        """)
    )
    env = broker.relay_env() | {"CHOMP_CELERY_CONFIG": "ingest_celery"}
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert done.stdout.strip() == "True", done.stderr
    assert len(broker.delivered_ids()) == 1


def test_a_relay_that_cannot_start_says_where_its_error_is_and_what_else_to_use(
    broker: Broker,
) -> None:
    relay = Relay(env=broker.relay_env() | {"PYTHONHOME": "/nonexistent"})
    batch = [orjson.dumps(row) for row in records(1)]
    try:
        with pytest.raises(PublishFailed, match="before its first answer") as caught:
            relay(batch)
    finally:
        relay.close()

    assert "stderr" in str(caught.value) and "CHOMP_SENDER=thread" in str(caught.value)
    assert broker.delivered_ids() == []


# The batch age is long, so the records are still buffered when the signal comes, and the
# signal reaches the relay too (one process group): the exit flush still needs a relay.
# Ctrl-C: the relay ignores it. SIGTERM to every process, as systemd stops a service: the
# relay dies, the ingester exits cleanly, and its exit flush starts another relay.
STOPPABLE_INGESTER = """
    import signal, sys, time
    from chomp_tasks import Monitor
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    monitor = Monitor("StoppedIngester")
    monitor.start_timer()
    monitor.stop_timer(0, 200)
    assert monitor.flush(timeout=30)
    for i in range(1, 500):
        monitor.start_timer()
        monitor.stop_timer(i, 200)
    print("buffered", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_to_the_whole_group_still_delivers_what_the_ingester_holds(
    broker: Broker, stop: signal.Signals
) -> None:
    with ingester(broker, STOPPABLE_INGESTER, CHOMP_BATCH_AGE="5") as process:
        assert report(process) == "buffered"
        os.killpg(process.pid, stop)
        process.wait(timeout=20)

    assert len(set(broker.delivered_ids())) == 500
