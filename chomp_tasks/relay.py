"""The relay: a helper process that publishes an ingester's batches, away from its interpreter lock.

Publishing one batch through Celery, kombu and redis-py runs about a millisecond of Python on
this kind of machine, most of it before the first wait on the network. On a thread of the
ingester that millisecond holds the interpreter lock, and an ingester thread that wants it back
(its HTTP response has arrived) waits for all of it. The relay does that work in a process of
its own: the ingester's sender thread only joins the batch and writes it to a pipe, then waits
for the relay's one-line answer with the lock released.

Protocol on the relay's stdin: for each batch, a header of unsigned integers in network order
(the record count and the body's length in bytes, 32 bits each, then in 64 bits the records the
sender dropped since the broker last took a batch), then the body, a JSON array of records. On its
stdout, one line per batch: "+" when the broker took the message, or "-" and the reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import NoReturn

from chomp_tasks.errors import PublishFailed

logger = logging.getLogger(__name__)

HEADER = struct.Struct("!IIQ")
# Not `-m chomp_tasks.relay`: the package imports this module, and runpy warns when a module it
# is asked to run as __main__ is already imported. The relay imports from the ingester's own
# sys.path, given as its first argument: an ingester started as `python ingest/run.py` finds
# modules beside its script (a CHOMP_CELERY_CONFIG module, say) that `python -c` would not.
RELAY_COMMAND = (
    "import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
    "from chomp_tasks.relay import main; sys.exit(main())"
)
# Celery gives up on an unreachable broker within a few seconds (see app.py); a relay that has
# not answered in this long is stuck, and is replaced.
ANSWER_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 5.0
MAX_REASON_BYTES = 500

# Relays whose process belongs to a parent of this one, kept so that they are never collected
# (a Popen collected while its process runs warns that it is still running).
_inherited: list[Relay] = []
_relays: list[Relay] = []
_relays_lock = threading.Lock()


def encode_body(batch: Sequence[bytes]) -> bytes:
    """Return encoded records as one JSON array."""
    return b"[" + b",".join(batch) + b"]"


class Relay:
    """Publish each batch through a relay process, started at the first batch.

    An instance is a `sender.Publish`: called with a batch, it returns once the broker took the
    message, or raises PublishFailed, after which the sender keeps the batch and tries again.
    A relay that exits or stops answering is replaced at the next batch.
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        answer_timeout_seconds: float = ANSWER_TIMEOUT_SECONDS,
    ) -> None:
        """Prepare a relay; nothing starts before the first batch.

        Args:
            env: the relay's whole environment, whose CHOMP_* settings it publishes with;
                this process's environment when None.
            answer_timeout_seconds: how long a batch may go unanswered before the relay is
                taken for stuck and replaced.
        """
        self.env = dict(env) if env is not None else None
        self.answer_timeout_seconds = answer_timeout_seconds
        self._process: subprocess.Popen[bytes] | None = None
        self._answers = b""
        self._answered = False
        with _relays_lock:
            _relays.append(self)

    @property
    def pid(self) -> int | None:
        """Return the relay process's id, or None before the first batch."""
        return self._process.pid if self._process is not None else None

    def __call__(self, batch: list[bytes], dropped: int = 0) -> None:
        """Hand one batch to the relay and wait for its answer.

        Raises:
            PublishFailed: the broker refused or could not be reached, or the relay died or
                stopped answering; the message says which.
        """
        process = self._process if self._process is not None else self._start()
        body = encode_body(batch)
        try:
            _write_all(_fd(process.stdin), HEADER.pack(len(batch), len(body), dropped) + body)
            answer = self._answer(process)
        except OSError as exc:
            self._replace(f"the relay process could not be reached ({exc})")
        if answer != b"+":
            raise PublishFailed(answer[1:].decode("utf-8", "replace"))

    def close(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Let the relay finish the batch it holds and exit; kill it if it takes too long."""
        process, self._process = self._process, None
        if process is None:
            return
        _close(process)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("Relay %d did not exit within %.0f s; killing it", process.pid, timeout)
            process.kill()
            process.wait()

    def _start(self) -> subprocess.Popen[bytes]:
        # The relay inherits the environment, hence the same CHOMP_* settings, and the
        # ingester's stderr, where its warnings and tracebacks go.
        process = subprocess.Popen(
            [sys.executable, "-c", RELAY_COMMAND, json.dumps(sys.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            close_fds=True,
        )
        logger.info("Relay %d started to publish this process's request vitals", process.pid)
        self._process, self._answers, self._answered = process, b"", False
        return process

    def _answer(self, process: subprocess.Popen[bytes]) -> bytes:
        """Return the relay's next answer line, without its newline."""
        fd = _fd(process.stdout)
        deadline = time.monotonic() + self.answer_timeout_seconds
        while b"\n" not in self._answers:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self._replace(f"the relay did not answer in {self.answer_timeout_seconds:g} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                reason = f"the relay process exited with code {process.wait()}"
                if not self._answered:
                    reason += (
                        f" before its first answer ({sys.executable} -c ...); its error is "
                        "above on this process's stderr. CHOMP_SENDER=thread publishes from "
                        "this process instead"
                    )
                self._replace(reason)
            self._answers += chunk
        line, self._answers = self._answers.split(b"\n", 1)
        self._answered = True
        return line

    def _replace(self, reason: str) -> NoReturn:
        """Stop the current relay so that the next batch starts a new one, and raise."""
        process, self._process = self._process, None
        if process is not None:
            _close(process)
            process.kill()
            process.wait()
        raise PublishFailed(reason)

    def _abandon(self) -> None:
        """Forget the relay without touching its process, which a parent of this one owns."""
        process, self._process = self._process, None
        if process is not None:
            _close(process)
            _inherited.append(self)


def _fd(stream: object) -> int:
    fileno = getattr(stream, "fileno", None)
    if fileno is None:
        raise OSError("the relay's pipe is closed")
    number: int = fileno()
    return number


def _write_all(fd: int, data: bytes) -> None:
    # os.write releases the interpreter lock while the pipe is full and the relay reads.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _close(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _forget_after_fork() -> None:
    # A forked child must not write into its parent's relay, nor keep the relay's stdin open
    # after the parent exits (the relay exits when its stdin ends).
    global _relays_lock
    _relays_lock = threading.Lock()
    for relay in _relays:
        relay._abandon()
    _relays.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _read_exactly(fd: int, count: int) -> bytes:
    """Return count bytes from fd, or b"" if it ends before the first byte; raise if mid-way."""
    chunks, left = [], count
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            if left == count:
                return b""
            raise EOFError(f"the relay's input ended {left} bytes short of a batch")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def serve(stdin: int, stdout: int) -> int:
    """Publish the batches that arrive on stdin, answering each on stdout, until stdin ends."""
    from chomp_tasks.sender import publish_body

    while header := _read_exactly(stdin, HEADER.size):
        count, length, dropped = HEADER.unpack(header)
        body = _read_exactly(stdin, length)
        try:
            publish_body(body, count, dropped)
        except Exception as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            answer = b"-" + reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]
        else:
            answer = b"+"
        _write_all(stdout, answer + b"\n")
    return 0


def main() -> int:
    """Run as the relay of the process that started it."""
    # Ctrl-C reaches the whole process group; the ingester's exit flush still needs the relay.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = os.dup(0), os.dup(1)
    # Anything else that writes to stdout (a library's print) must not reach the answers.
    os.dup2(2, 1)
    logging.basicConfig(level=logging.WARNING, format="chomp relay %(process)d: %(message)s")
    return serve(stdin, stdout)
