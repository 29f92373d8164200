"""The measuring side of the bench, run as its own process so it sees only the bench's settings.

Usage: python -m chomp_tasks.bench.probe PHASE COUNT [ARGS...]; prints one JSON object.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from chomp_tasks.bench.attribution import STALL_LIMIT_NS, Call, PublishWatch, attribute
from chomp_tasks.bench.timing import summarise, time_calls

FLUSH_SECONDS = 60.0
STALL_ROUNDS = 5
STALL_WAIT_SECONDS = 0.0002
PACE_EVERY_RECORDS = 10
LPUSH_PAYLOAD = b"x" * 200


def latency(count: int) -> dict[str, Any]:
    """Time the caller's side of each way of handing over one record."""
    from chomp_tasks.config import get_settings

    record = _record()
    buffer: deque[object] = deque(maxlen=100_000)
    results = {
        "noise_floor": time_calls(lambda i: None, count),
        "deque_append": time_calls(lambda i: buffer.append(record), count),
        "lpush": _lpush(get_settings().broker_url, get_settings().queue, max(200, count // 50)),
        "delay": _delay(max(100, count // 200)),
    }
    results["stop_timer_up"] = _stop_timer("BenchLatency", count)
    return {name: summary.as_list() for name, summary in results.items()} | _flushed()


def stall(count: int) -> dict[str, Any]:
    """Count stop_timer calls over 1 ms, and how many fell while the sender was publishing.

    Two callers: one that calls stop_timer back to back (the worst case: it never lets go of
    the interpreter lock, so the sender only runs when the interpreter forces a switch), and
    one that waits STALL_WAIT_SECONDS before each request, as an ingester waits on HTTP; for
    that one the whole iteration beyond the wait is timed, since a sender holding the lock
    when the wait ends delays the caller there. The verdict comes from `attribution`; as a
    second reference, rounds of the same caller work with no sender at all alternate with
    the sender's. Each round of the sender ends with a flush, outside the timed calls. The
    queue is one no worker reads, so the calls compete with no worker for the cores.
    """
    from chomp_tasks.sender import get_sender

    watch = PublishWatch(get_sender())
    figures: dict[str, Any] = {}
    callers = (("tight", count, 0.0), ("waiting", count * 2 // 5, STALL_WAIT_SECONDS))
    for caller, calls, wait in callers:
        floor: list[Call] = []
        timed: list[Call] = []
        for _ in range(STALL_ROUNDS):
            floor += _timed_calls(_caller_work_without_sender(), calls // STALL_ROUNDS, wait=wait)
            timed += _timed_calls(_record_request, calls // STALL_ROUNDS, "BenchStall", wait=wait)
            get_sender().flush(FLUSH_SECONDS)
        figures[caller] = {
            "wait_s": wait,
            "noise_floor": summarise([d for _, d in floor]).as_list(),
            "stop_timer": summarise([d for _, d in timed]).as_list(),
            "noise_over_1ms": sum(1 for _, d in floor if d > STALL_LIMIT_NS),
            "calls_over_1ms": sum(1 for _, d in timed if d > STALL_LIMIT_NS),
            "calls": len(timed),
        } | attribute(timed, watch.windows)
    return figures | {"publish_cpu_us": summarise(watch.cpu_ns).as_list()} | _flushed()


def down(count: int) -> dict[str, Any]:
    """Time stop_timer while the broker's port is closed."""
    summary = _stop_timer("BenchDown", count, settle=False)
    return {"stop_timer_down": summary.as_list()}


def produce(count: int, rate: float, resource: str) -> dict[str, Any]:
    """Record `count` requests through Monitor, at `rate` per second (0: as fast as possible).

    Each record's response_bytes is its sequence number, which lets the bench see which rows
    have arrived without reading the whole table.
    """
    from chomp_tasks import Monitor

    monitor = Monitor(resource, field_count=4, instance_name="bench")
    started_wall, started = time.time(), time.perf_counter()
    for i in range(count):
        if rate and i % PACE_EVERY_RECORDS == 0:
            _pace(started + i / rate)
        monitor.start_timer()
        monitor.stop_timer(i, 200)

    submitted = time.perf_counter() - started
    return {"t0": started_wall, "submit_seconds": submitted} | _flushed()


def baseline(count: int, resource: str) -> dict[str, Any]:
    """Send `count` records as one monitor_request task each, the direct path."""
    from chomp_tasks import monitor_request

    started_wall, started = time.time(), time.perf_counter()
    for i in range(count):
        monitor_request.delay(
            resource_name=resource, latency_ms=1.5, response_bytes=i, status_code=200
        )
    return {"t0": started_wall, "submit_seconds": time.perf_counter() - started}


def _record() -> object:
    from chomp_tasks.request_vitals import RequestVitals

    return RequestVitals("BenchAppend", "bench", 4, 1.5, 100, 200)


def _lpush(broker_url: str, queue: str, calls: int) -> Any:
    import redis

    client = redis.Redis.from_url(broker_url)
    key = f"{queue}:lpush-probe"
    client.ping()
    try:
        return time_calls(lambda i: client.lpush(key, LPUSH_PAYLOAD), calls)
    finally:
        client.delete(key)


def _delay(calls: int) -> Any:
    from chomp_tasks import monitor_request

    def send(i: int) -> None:
        monitor_request.delay(
            resource_name="BenchDelay", latency_ms=1.5, response_bytes=i, status_code=200
        )

    send(0)  # The first call connects to the broker; that is not the steady cost.
    return time_calls(send, calls)


def _caller_work_without_sender() -> Callable[[Any], object]:
    """Return the caller's share of stop_timer's work with no sender: build, encode, buffer."""
    import threading

    from chomp_tasks.request_vitals import RequestVitals, from_micros, new_id

    lock, buffer = threading.Lock(), deque[bytes](maxlen=100_000)

    def work(monitor: Any) -> None:
        row = ("BenchFloor", "bench", 4, 1.5, 100, 200, time.time_ns() // 1000, new_id())
        encoded = orjson.dumps(row)
        with lock:
            buffer.append(encoded)
        RequestVitals(*row[:6], from_micros(row[6]), row[7])

    return work


def _stop_timer(resource: str, count: int, settle: bool = True) -> Any:
    return summarise(_durations(_record_request, count, resource, settle=settle))


def _record_request(monitor: Any) -> object:
    return monitor.stop_timer(100, 200)


def _durations(
    call: Callable[[Any], object], count: int, resource: str = "BenchFloor", settle: bool = True
) -> list[int]:
    return [duration for _, duration in _timed_calls(call, count, resource, settle=settle)]


def _timed_calls(
    call: Callable[[Any], object],
    count: int,
    resource: str = "BenchFloor",
    wait: float = 0.0,
    settle: bool = True,
) -> list[Call]:
    """Time count calls of call(monitor), each after a wait if one is given."""
    from chomp_tasks import Monitor
    from chomp_tasks.sender import get_sender

    monitor = Monitor(resource, field_count=4, instance_name="bench")
    for _ in range(100):
        monitor.start_timer()
        call(monitor)
    # The sender thread and its relay process start before the timed calls, as they would in
    # an ingester long before most of its requests (with the broker away, only the thread).
    if settle:
        get_sender().flush(FLUSH_SECONDS)

    clock = time.perf_counter_ns
    starts, durations = [0] * count, [0] * count
    if not wait:
        for i in range(count):
            monitor.start_timer()
            starts[i] = started = clock()
            call(monitor)
            durations[i] = clock() - started
        return list(zip(starts, durations, strict=True))

    # With a wait, the whole iteration is timed less the wait asked for: a sender holding the
    # interpreter lock when the wait ends delays the caller before stop_timer is reached.
    wait_ns = int(wait * 1e9)
    for i in range(count):
        starts[i] = started = clock()
        time.sleep(wait)
        monitor.start_timer()
        call(monitor)
        durations[i] = clock() - started - wait_ns
    return list(zip(starts, durations, strict=True))


def _pace(due: float) -> None:
    wait = due - time.perf_counter()
    if wait > 0:
        time.sleep(wait)


def _flushed() -> dict[str, Any]:
    from chomp_tasks.sender import get_sender

    sender = get_sender()
    return {"flushed": sender.flush(FLUSH_SECONDS), "sender": sender.stats()}


PHASES: dict[str, Callable[..., dict[str, Any]]] = {
    "latency": latency,
    "stall": stall,
    "down": down,
    "produce": produce,
    "baseline": baseline,
}


def main(argv: list[str]) -> int:
    """Run one phase and print its figures as JSON."""
    phase, count, extra = argv[0], int(argv[1]), argv[2:]
    args: list[Any] = [float(extra[0]), extra[1]] if phase == "produce" else extra
    result = PHASES[phase](count, *args)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()
    if phase == "down":
        # The broker is unreachable on purpose: skip the exit flush, which would wait for it.
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
