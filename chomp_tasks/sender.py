"""The background sender that hands buffered request vitals to the broker in batches."""

from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401  (see the comment in get_sender)
import logging
import os
import threading
from collections import deque
from typing import Protocol

import orjson
from celery import Celery
from celery.signals import worker_process_shutdown

from chomp_tasks.app import BATCH_SERIALIZER
from chomp_tasks.config import Settings, get_settings
from chomp_tasks.relay import Relay, encode_body

logger = logging.getLogger(__name__)

BACKOFF_START_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 5.0
EXIT_FLUSH_SECONDS = 5.0
RELAY_EXIT_SECONDS = 1.0
BATCH_TASK = "chomp_tasks.store_request_batch"


class Publish(Protocol):
    """Sends one batch of records, each a JSON array (see request_vitals.Row), as one message.

    dropped is how many records the sender dropped for a full buffer since the broker last
    took a batch; the message carries it to the workers, which count it for the cluster.
    """

    def __call__(self, batch: list[bytes], dropped: int = 0) -> None: ...


def publisher_for(app: Celery) -> Publish:
    """Return a function that sends one batch as one `store_request_batch` message of app.

    The function raises when the broker cannot take the message; the sender then retries.
    """

    def publish(batch: list[bytes], dropped: int = 0) -> None:
        send_body(app, encode_body(batch), len(batch), dropped)

    return publish


def send_body(app: Celery, body: bytes, count: int, dropped: int = 0) -> None:
    """Send records already encoded as one JSON array as one `store_request_batch` message."""
    kwargs = {"dropped": dropped} if dropped else {}
    # argsrepr is given so that Celery does not build a repr of every record.
    app.send_task(
        BATCH_TASK,
        args=(orjson.Fragment(body),),
        kwargs=kwargs,
        serializer=BATCH_SERIALIZER,
        argsrepr=f"<{count} records>",
        kwargsrepr=repr(kwargs),
        retry=False,
    )


def publish_body(body: bytes, count: int, dropped: int = 0) -> None:
    """Send one encoded batch through the chomp_tasks Celery app."""
    from chomp_tasks.app import app

    send_body(app, body, count, dropped)


def publish_batch(batch: list[bytes], dropped: int = 0) -> None:
    """Send one batch through the chomp_tasks Celery app, from this process."""
    publish_body(encode_body(batch), len(batch), dropped)


def prepare_publishing() -> None:
    """Build on the calling thread what the first publish would otherwise build on the sender's.

    That is about 0.1 s of imports (the broker's transport, Celery's message and event
    modules), which on the sender thread would hold the interpreter lock while the ingester's
    first requests are being timed. Nothing here touches the network.
    """
    from chomp_tasks.app import app

    app.amqp.router  # noqa: B018
    app.backend  # noqa: B018
    app.events.Dispatcher  # noqa: B018
    with app.connection_for_write() as connection:
        connection.transport  # noqa: B018  (imports the transport's module)


class Sender:
    """A bounded buffer of records and the thread that empties it into the broker.

    `submit` is the only method on the ingester's hot path: it appends under a lock and, at
    most twice per batch, sets an event. Everything that can wait on the network or take
    time runs on the sender thread, started at the first record.
    """

    def __init__(self, settings: Settings, publish: Publish = publish_batch) -> None:
        self.batch_size = settings.batch_size
        self.batch_age_seconds = settings.batch_age_seconds
        self.publish = publish
        # Records arrive encoded: bytes are invisible to the garbage collector, so buffering
        # them never triggers a collection in the ingester, and a buffer filled while the
        # broker is away does not lengthen its full collections (62 ms against 26 ms with
        # 100,000 buffered dataclass records).
        self._buffer: deque[bytes] = deque(maxlen=settings.buffer_size)
        self._lock = threading.Lock()
        self._arrived = threading.Event()
        self._full_batch = threading.Event()
        self._closing = threading.Event()
        self._flushing = threading.Event()
        self._progress = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pending: list[bytes] = []
        self.accepted = 0
        self.delivered = 0
        self.dropped = 0
        self._dropped_logged = 0
        self._dropped_sent = 0

    def submit(self, record: bytes) -> None:
        """Buffer one record, encoded as a JSON array (see request_vitals.Row).

        When the buffer is full the oldest record is dropped and counted.
        """
        with self._lock:
            if len(self._buffer) == self._buffer.maxlen:
                self.dropped += 1
            self._buffer.append(record)
            self.accepted += 1
            waiting = len(self._buffer)
            if self._thread is None:
                self._start()
        if waiting == 1:
            self._arrived.set()
        elif waiting == self.batch_size:
            self._full_batch.set()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record submitted so far is delivered or dropped; False on timeout."""
        with self._lock:
            target = self.accepted
            self._flushing.set()
        self._full_batch.set()
        self._arrived.set()
        with self._progress:
            return self._progress.wait_for(
                lambda: self.delivered + self.dropped >= target, timeout=timeout
            )

    def close(self, timeout: float = EXIT_FLUSH_SECONDS) -> None:
        """Flush for at most timeout seconds, then stop the thread; say what was left behind."""
        if self._thread is None:
            return
        if not self.flush(timeout):
            left = len(self._buffer) + len(self._pending)
            logger.warning("Sender gave up at exit: %d records were not delivered", left)
        self._closing.set()
        self._arrived.set()
        self._full_batch.set()

    def stats(self) -> dict[str, int]:
        """Return how many records were accepted, delivered, dropped and are still buffered."""
        with self._lock:
            return {
                "accepted": self.accepted,
                "delivered": self.delivered,
                "dropped": self.dropped,
                "buffered": len(self._buffer) + len(self._pending),
            }

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chomp-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closing.is_set():
            if not self._buffer:
                self._arrived.wait()
                self._arrived.clear()
            # Let a batch form for up to batch_age seconds; a full batch or a flush cuts it short.
            aged = not self._full_batch.wait(self.batch_age_seconds)
            self._full_batch.clear()
            self._drain(send_partial=aged or self._flushing.is_set())

    def _drain(self, send_partial: bool) -> None:
        """Publish every full batch, and what is left over too if send_partial.

        A remainder smaller than a batch waits for the next wake-up: sending it at once would
        turn a steady stream into many small messages, each costing the worker as much as a
        full one. That holds for the records that arrive while a partial batch is published,
        too: only a flush sends a second partial batch in one drain.
        """
        backoff = BACKOFF_START_SECONDS
        failing = False
        while not self._closing.is_set():
            if not self._pending:
                self._pending = self._take(send_partial)
                if not self._pending:
                    return
            dropped = self.dropped - self._dropped_sent
            try:
                self.publish(self._pending, dropped)
            except Exception as exc:
                if not failing:
                    logger.warning(
                        "Broker did not take a batch, %d records held for retry: %s",
                        len(self._buffer) + len(self._pending),
                        exc,
                    )
                failing = True
                self._closing.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
                continue

            if failing:
                logger.info("Broker reachable again, delivering held records")
                failing = False
                backoff = BACKOFF_START_SECONDS
            self._dropped_sent += dropped
            self._settle(len(self._pending))
            send_partial = self._flushing.is_set()

    def _take(self, partial: bool) -> list[bytes]:
        """Return the next batch: a full one, or with partial whatever is buffered."""
        with self._lock:
            waiting = len(self._buffer)
            if waiting < self.batch_size and not partial:
                return []
            if waiting <= self.batch_size:
                # The common case at modest rates: one C-level copy keeps the lock short.
                batch = list(self._buffer)
                self._buffer.clear()
                # Everything a flush waits for is now taken; its wait ends with this batch.
                self._flushing.clear()
                return batch
            popleft = self._buffer.popleft
            return [popleft() for _ in range(self.batch_size)]

    def _settle(self, count: int) -> None:
        self._pending = []
        with self._progress:
            self.delivered += count
            self._progress.notify_all()
        if self.dropped > self._dropped_logged:
            logger.warning(
                "Sender buffer was full: dropped %d oldest records (%d in all)",
                self.dropped - self._dropped_logged,
                self.dropped,
            )
            self._dropped_logged = self.dropped


_sender: Sender | None = None
_sender_lock = threading.Lock()


def get_sender() -> Sender:
    """Return this process's sender, creating it on first use.

    The sender's last flush runs from an atexit hook. The first publish of a process imports
    the broker client lazily, which imports concurrent.futures.thread, whose import registers a
    threading exit hook and fails once the interpreter is shutting down; importing it with
    this module keeps a process that exits right after its first record from losing it.
    """
    global _sender
    sender = _sender
    if sender is not None:
        return sender
    with _sender_lock:
        if _sender is None:
            _sender = Sender(get_settings(), publish=default_publisher(get_settings()))
            atexit.register(_close_at_exit)
        return _sender


def default_publisher(settings: Settings) -> Publish:
    """Return how this process's sender publishes: through a relay process, or on its thread.

    On its thread, each batch holds the interpreter lock for about a millisecond (see relay.py);
    the broker client is then imported here, off the timed path.
    """
    if settings.sender == "process":
        return Relay()
    prepare_publishing()
    return publish_batch


def _close_at_exit() -> None:
    sender = _sender
    if sender is None:
        return
    sender.close()
    if isinstance(sender.publish, Relay):
        # A relay still busy now holds a batch the sender has given up on: do not wait long.
        sender.publish.close(timeout=RELAY_EXIT_SECONDS)


def _close_in_pool_process(**_: object) -> None:
    """Flush as a Celery pool process exits: it leaves with os._exit, so atexit never runs.

    Without this, an ingester that runs as Celery tasks would lose what a pool process still
    buffers each time the process is replaced (--max-tasks-per-child) or the worker stops.
    """
    _close_at_exit()


worker_process_shutdown.connect(_close_in_pool_process, weak=False)


def _forget_after_fork() -> None:
    # The sender thread does not survive fork; the child starts its own on its first record,
    # and the parent's buffered records stay the parent's to deliver.
    global _sender, _sender_lock
    _sender = None
    _sender_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
