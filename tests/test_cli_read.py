"""The read side of the chomp-tasks command, run as a real process, and `serve` over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from chomp_tasks.config import Settings
from tests.read_fixtures import (  # noqa: F401  (fixtures used by name)
    WORKER_MONITOR,
    read_env,
    read_settings,
    seeded,
)
from tests.services import run_cli

SERVE_READY_SECONDS = 20.0


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli({**os.environ, **env}, *args)


def test_history_prints_the_same_json_as_the_api(
    seeded: Settings, read_env: dict[str, str]
) -> None:
    result = run(
        read_env,
        "history",
        "ReadTestAPI_monitor",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
        "--interval",
        "h1",
    )

    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["ts"], r["count"], r["latency_ms"]) for r in rows] == [
        ("2024-01-01T12:00:00Z", 3, 120.0),
        ("2024-01-01T13:00:00Z", 1, 400.0),
    ]


def test_history_as_a_table_aligns_its_columns(seeded: Settings, read_env: dict[str, str]) -> None:
    result = run(
        read_env,
        "history",
        "ReadTestAPI_monitor",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
        "--format",
        "table",
    )

    assert result.returncode == 0, result.stderr
    header, rule, *lines = result.stdout.splitlines()
    assert header.split() == [
        "ts",
        "instance_name",
        "field_count",
        "latency_ms",
        "response_bytes",
        "status_code",
        "date",
    ]
    assert set(rule) == {"-", " "}
    assert len(lines) == 4
    column = header.index("latency_ms") + len("latency_ms")  # numbers are right-aligned
    assert [line[:column].split()[-1] for line in lines] == ["100", "200", "60", "400"]


def test_last_and_schema_print_json_and_tables(seeded: Settings, read_env: dict[str, str]) -> None:
    last = run(read_env, "last", f"ReadTestAPI_monitor,{WORKER_MONITOR}")
    last_table = run(read_env, "last", "ReadTestAPI_monitor", "--format", "table")
    schema = run(read_env, "schema", WORKER_MONITOR)
    schema_table = run(read_env, "schema", "--format", "table")

    assert json.loads(last.stdout)[WORKER_MONITOR]["cpu_usage"] == 30.0
    assert "latency_ms      400" in last_table.stdout
    assert json.loads(schema.stdout)[WORKER_MONITOR]["kind"] == "instance"
    location = next(line for line in schema_table.stdout.splitlines() if " location " in line)
    assert location.split()[0] == WORKER_MONITOR and location.split()[-1] == "yes"


def test_report_prints_the_hourly_summary(seeded: Settings, read_env: dict[str, str]) -> None:
    result = run(read_env, "report", "--since", "30000d", "--format", "json")
    table = run(read_env, "report", "--since", "30000d")

    rows = [r for r in json.loads(result.stdout) if r["resource"] == "ReadTestAPI"]
    assert [(r["hour"], r["requests"], r["p50_latency_ms"]) for r in rows] == [
        ("2024-01-01T12:00:00Z", 3, 100.0),
        ("2024-01-01T13:00:00Z", 1, 400.0),
    ]
    assert table.stdout.splitlines()[0].split()[:3] == ["resource", "hour", "requests"]
    assert any(
        line.split()[:3] == ["ReadTestAPI", "2024-01-01T12:00:00Z", "3"]
        for line in table.stdout.splitlines()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "ReadTestAPI_monitor", "--interval", "h3"], "interval 'h3' is unknown"),
        (
            ["history", "ReadTestAPI_monitor", "--from", "soon"],
            "from_date 'soon' is not an ISO-8601",
        ),
        (["history", "Ghost_monitor"], "no monitor named 'Ghost_monitor'"),
        (["last", "Ghost_monitor"], "no monitor named 'Ghost_monitor'"),
        (["schema", "not a name"], "is not a table name"),
        (["report", "--since", "1 hour"], "duration '1 hour' must be a positive whole number"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(
    seeded: Settings, read_env: dict[str, str], args: list[str], message: str
) -> None:
    result = run(read_env, *args)

    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return None


def test_serve_answers_last_over_http(seeded: Settings, read_env: dict[str, str]) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chomp_tasks.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env={**os.environ, **read_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + SERVE_READY_SECONDS
        answer = None
        while answer is None and time.monotonic() < deadline and server.poll() is None:
            answer = _get(f"http://127.0.0.1:{port}/last/ReadTestAPI_monitor")
            time.sleep(0.1)
        missing = _get(f"http://127.0.0.1:{port}/last/Ghost_monitor")
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=10)

    assert answer is not None, stderr.decode()
    assert answer[0] == 200 and answer[1]["latency_ms"] == 400.0
    assert missing is not None and missing[0] == 404
