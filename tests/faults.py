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
