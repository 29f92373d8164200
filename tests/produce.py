"""An ingester for the tests: time N fake requests of one resource with Monitor, then exit.

Usage: python -m tests.produce RESOURCE COUNT [--no-flush]

Without --no-flush it waits for the sender before printing its stats as JSON; with it, the
process exits at once and relies on the sender's flush at interpreter exit.
"""

from __future__ import annotations

import json
import sys

from chomp_tasks import Monitor


def main(argv: list[str]) -> int:
    resource, count = argv[0], int(argv[1])
    monitor = Monitor(resource, field_count=4, instance_name="test-ingester")
    for i in range(count):
        monitor.start_timer()
        monitor.stop_timer(response_bytes=1000 + i, status_code=200 if i % 10 else 503)
    if "--no-flush" not in argv:
        monitor.flush(timeout=30)
        print(json.dumps(monitor.stats()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
