"""A real HTTP server on 127.0.0.1 standing in for ipify and ip-api, with switchable answers."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import orjson

# The answer of ip-api for the seed document's example location.
DA_NANG = {
    "status": "success",
    "country": "Vietnam",
    "countryCode": "VN",
    "regionName": "Da Nang",
    "city": "Da Nang",
    "lat": 16.0685,
    "lon": 108.2215,
    "timezone": "Asia/Ho_Chi_Minh",
    "isp": "Viettel Group",
}


@dataclass(frozen=True)
class Answer:
    """What the server answers on one route: status, body, and how slowly."""

    status: int = 200
    body: bytes = b"{}"
    hang_seconds: float = 0.0
    trickle_seconds_per_byte: float = 0.0

    @classmethod
    def json(cls, data: object, status: int = 200) -> Answer:
        return cls(status=status, body=orjson.dumps(data))


class LookupServer:
    """Serve /ipv4, /ipv6 and /geo/<ip> with answers a test sets in `answers`."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.paths: list[str] = []
        self.released = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, route: str) -> str:
        return f"http://{self.host}{route}"

    def __enter__(self) -> LookupServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.released.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def closed_port_url(route: str) -> str:
    """Return a URL on 127.0.0.1 where nothing listens, so connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{route}"


def _handler_for(server: LookupServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.paths.append(self.path)
            route = "/" + self.path.split("?")[0].split("/")[1]
            answer = server.answers.get(route, Answer(status=404, body=b"not found"))
            if server.released.wait(answer.hang_seconds):
                return
            # The client may have given up waiting, as a lookup with a timeout should.
            with contextlib.suppress(OSError):
                self._send(answer)

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if not answer.trickle_seconds_per_byte:
                self.wfile.write(answer.body)
                return
            for index in range(len(answer.body)):
                self.wfile.write(answer.body[index : index + 1])
                self.wfile.flush()
                if server.released.wait(answer.trickle_seconds_per_byte):
                    return

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet; the test inspects `paths` instead."""

    return Handler
