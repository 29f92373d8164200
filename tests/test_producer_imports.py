"""What an ingester loads by importing chomp_tasks: no database stack, no psutil."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

WORKER_ONLY_MODULES = ("sqlalchemy", "psycopg2", "alembic", "psutil")


def test_importing_monitor_loads_no_worker_only_module() -> None:
    code = (
        "import sys\n"
        "from chomp_tasks import Monitor\n"
        f"print(sorted(m for m in {WORKER_ONLY_MODULES!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("sender", ["process", "thread"])
def test_the_first_record_loads_nothing_but_small_standard_modules(sender: str) -> None:
    # Imports on the sender thread would hold the interpreter lock while the ingester's first
    # requests are timed. With a relay process, this process never loads the broker client;
    # on a thread, Monitor() loads it up front, and touches no network doing so.
    code = (
        "import sys\n"
        "from chomp_tasks import Monitor\n"
        "monitor = Monitor('ImportProbe')\n"
        "before = set(sys.modules)\n"
        "monitor.start_timer()\n"
        "monitor.stop_timer(1, 200)\n"
        "assert monitor.flush(timeout=30)\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "CHOMP_SENDER": sender},
    )

    late = ast.literal_eval(done.stdout.strip())
    # Connecting still loads a few small standard modules (host name and auth helpers).
    assert [name for name in late if name.split(".")[0] not in sys.stdlib_module_names] == []
    assert len(late) <= 8, late
