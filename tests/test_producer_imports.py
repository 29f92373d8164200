"""What an ingester loads by importing chomp_tasks: no database stack, no psutil."""

from __future__ import annotations

import subprocess
import sys

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
