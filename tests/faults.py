"""A TCP proxy on 127.0.0.1 that tests use to cut, stall and restore the path to a service.

The shared PostgreSQL, Redis and RabbitMQ servers are never stopped: a test points chomp_tasks
at the proxy instead, then breaks the proxy.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from typing import Literal

import sqlalchemy as sa

Mode = Literal["open", "refuse", "stall"]


class TcpProxy:
    """Forward connections from a free local port to a target, in one of three modes.

    open: bytes flow both ways. refuse: every connection is closed at once, as with a service
    that is down. stall: connections are accepted and their bytes swallowed, as with a service
    that hangs.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "open"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, scheme: str, suffix: str = "") -> str:
        """Return a URL for the proxy such as redis://127.0.0.1:PORT/3."""
        return f"{scheme}://127.0.0.1:{self.port}{suffix}"

    def set_mode(self, mode: Mode) -> None:
        """Switch mode; leaving open drops every connection in flight."""
        self.mode = mode
        if mode != "open":
            self._drop_all()

    def close(self) -> None:
        """Stop accepting and drop every connection."""
        self._closed.set()
        self._listener.close()
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            for sock in (client, upstream):
                if sock is not None:
                    _close(sock)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "refuse":
                _close(client)
                continue
            upstream = None
            if self.mode == "open":
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    _close(client)
                    continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket | None) -> None:
        selector = selectors.DefaultSelector()
        ends = [client] if upstream is None else [client, upstream]
        try:
            for sock in ends:
                selector.register(sock, selectors.EVENT_READ)
            while not self._closed.is_set():
                for key, _ in selector.select(timeout=0.5):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    data = sock.recv(65536)
                    if not data:
                        return
                    if upstream is not None and self.mode == "open":
                        (upstream if sock is client else client).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in ends:
                _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


_HOLD_SQL = (
    "CREATE TABLE IF NOT EXISTS chomp_test_hold (resource text PRIMARY KEY)",
    """
    CREATE OR REPLACE FUNCTION chomp_test_hold_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        WHILE EXISTS (SELECT 1 FROM chomp_test_hold WHERE resource = NEW.resource) LOOP
            PERFORM pg_sleep(0.05);
        END LOOP;
        RETURN NEW;
    END $$
    """,
    "DROP TRIGGER IF EXISTS chomp_test_hold ON chomp_request_vitals",
    """
    CREATE TRIGGER chomp_test_hold BEFORE INSERT ON chomp_request_vitals
    FOR EACH ROW EXECUTE FUNCTION chomp_test_hold_insert()
    """,
)


class WriteHold:
    """Hold every insert of one resource inside its transaction until released.

    A test-only trigger on the test database: a worker writing that resource stops in the middle
    of its bulk INSERT, with the transaction open, so a test can kill it at exactly that point.
    """

    def __init__(self, engine: sa.Engine, resource: str) -> None:
        self.engine = engine
        self.resource = resource
        with engine.begin() as conn:
            for statement in _HOLD_SQL:
                conn.execute(sa.text(statement))

    def hold(self) -> None:
        """Make the next inserts of the resource wait."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO chomp_test_hold VALUES (:r) ON CONFLICT DO NOTHING"),
                {"r": self.resource},
            )

    def release(self) -> None:
        """Let waiting and future inserts of the resource go on."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.text("DELETE FROM chomp_test_hold WHERE resource = :r"), {"r": self.resource}
            )

    def waiting(self) -> int:
        """Return how many database sessions are held in the middle of an insert right now."""
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event = 'PgSleep'"
                    )
                )
            )

    def remove(self) -> None:
        """Release the resource and drop the trigger."""
        self.release()
        with self.engine.begin() as conn:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS chomp_test_hold ON chomp_request_vitals"))
