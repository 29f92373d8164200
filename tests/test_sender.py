"""The ingester side: stop_timer never waits on the broker, and the buffer is bounded."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import orjson
import pytest

from chomp_tasks import Monitor, RequestVitals
from chomp_tasks.config import Settings
from chomp_tasks.request_vitals import ID, Row
from chomp_tasks.sender import Sender, publisher_for
from tests.faults import TcpProxy
from tests.queue_reader import Broker


def settings(**changes: Any) -> Settings:
    return dataclasses.replace(Settings(), **({"batch_age_seconds": 0.02} | changes))


def records(count: int) -> list[Row]:
    return [RequestVitals("Feed", latency_ms=1.0, response_bytes=i).to_row() for i in range(count)]


def submit_all(sender: Sender, rows: list[Row]) -> None:
    for row in rows:
        sender.submit(orjson.dumps(row))


def test_records_are_held_while_the_broker_is_down_and_delivered_in_order_after(
    broker: Broker, broker_proxy: TcpProxy
) -> None:
    broker_proxy.set_mode("refuse")
    sender = Sender(settings(batch_size=50), publish=broker.publish)
    sent = records(500)
    submit_all(sender, sent)

    assert not sender.flush(timeout=0.5)
    broker_proxy.set_mode("open")
    assert sender.flush(timeout=15)
    assert broker.delivered_ids() == [r[ID] for r in sent]
    assert max(len(batch) for batch in broker.batches()) <= 50
    assert sender.stats() == {"accepted": 500, "delivered": 500, "dropped": 0, "buffered": 0}


def test_a_steady_stream_goes_out_in_full_batches_and_the_remainder_waits_for_its_age(
    broker: Broker,
) -> None:
    sender = Sender(settings(batch_size=50, batch_age_seconds=2.0), publish=broker.publish)
    sent = records(120)
    submit_all(sender, sent)

    deadline = time.monotonic() + 1.5
    while len(broker.batches()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    # Two full batches at once; the 20 left over are not sent as a small message of their own
    # until their age is up (or a flush asks for them).
    assert [len(batch) for batch in broker.batches()] == [50, 50]
    assert sender.flush(timeout=5)
    assert [len(batch) for batch in broker.batches()] == [50, 50, 20]
    assert broker.delivered_ids() == [r[ID] for r in sent]


def test_a_trickle_goes_out_once_per_batch_age_not_as_one_message_per_publish(
    broker: Broker,
) -> None:
    # A record every few tenths of a millisecond, below a full batch per age: each message
    # costs the worker as much as a full one, so they must go out about once per age, however
    # many records arrive while the previous message is being published.
    sender = Sender(settings(batch_size=5000, batch_age_seconds=0.2), publish=broker.publish)
    sent = records(3000)
    started = time.monotonic()
    for row in sent:
        sender.submit(orjson.dumps(row))
        time.sleep(0.0002)
    ages = (time.monotonic() - started) / 0.2

    assert sender.flush(timeout=10)
    assert broker.delivered_ids() == [r[ID] for r in sent]
    sizes = [len(batch) for batch in broker.batches()]
    assert len(sizes) <= ages + 2, sizes


def test_overflow_drops_the_oldest_records_and_counts_them(
    broker: Broker, broker_proxy: TcpProxy, caplog: pytest.LogCaptureFixture
) -> None:
    broker_proxy.set_mode("refuse")
    sender = Sender(settings(batch_size=10, buffer_size=1000), publish=broker.publish)
    sent = records(2500)
    submit_all(sender, sent)
    broker_proxy.set_mode("open")

    assert sender.flush(timeout=15)
    stats = sender.stats()
    delivered = broker.delivered_ids()
    assert stats["dropped"] == 2500 - len(delivered) > 0
    # The messages carry the drops to the workers, which count them for the cluster.
    assert broker.dropped_reported() == stats["dropped"]
    # What survives is the one batch taken before the outage was seen, then the newest ones.
    assert delivered[-1000:] == [r[ID] for r in sent[-1000:]]
    assert "dropped" in caplog.text


def test_stop_timer_returns_at_once_with_the_broker_unreachable() -> None:
    from chomp_tasks.app import create_app
    from chomp_tasks.sender import get_sender

    # A port nothing listens on: each publish attempt fails in the sender thread.
    closed = create_app(dataclasses.replace(Settings(), broker_url="redis://127.0.0.1:1/0"))
    sender = get_sender()
    original = sender.publish
    sender.publish = publisher_for(closed)
    try:
        monitor = Monitor("Unreachable", field_count=2)
        started = time.perf_counter()
        for _ in range(1000):
            monitor.start_timer()
            vitals = monitor.stop_timer(10, 200)
        elapsed = time.perf_counter() - started
        assert vitals.resource_name == "Unreachable" and vitals.status_code == 200
        assert monitor.vitals is vitals
        assert not monitor.flush(timeout=0.3)
        assert monitor.stats()["buffered"] >= 1
        # Not a speed assertion: a thousand calls that waited on a connection would take minutes.
        assert elapsed < 5
    finally:
        sender.publish = original
        sender.flush(timeout=10)


def test_stop_timer_before_start_timer_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match="stop_timer before start_timer"):
        Monitor("Unstarted").stop_timer(1, 200)


def test_stop_timer_takes_any_integer_type_and_names_a_value_no_worker_would_store() -> None:
    class Size:
        def __index__(self) -> int:
            return 42

    monitor = Monitor("Sizes")
    monitor.start_timer()
    assert monitor.stop_timer(Size(), 200).response_bytes == 42  # type: ignore[arg-type]
    monitor.start_timer()
    with pytest.raises(TypeError, match="response_bytes must be a whole number, got str '42'"):
        monitor.stop_timer("42", 200)  # type: ignore[arg-type]
    for response_bytes, status_code, message in [
        (2**70, 200, r"response_bytes must be between 0 and 9223372036854775807, got 1180591"),
        (-1, 200, "response_bytes must be between 0 and .*, got -1$"),
        (10, 99, "status_code must be between 100 and 999 or None, got 99$"),
        (10, 1000, "status_code must be between 100 and 999 or None, got 1000$"),
    ]:
        with pytest.raises(ValueError, match=message):
            monitor.stop_timer(response_bytes, status_code)
    # Statuses beyond 599 are what some servers send, and are recorded.
    assert monitor.stop_timer(10, 999).status_code == 999
    monitor.flush(timeout=10)
