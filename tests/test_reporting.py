"""The reporting views, queried with plain SQL as an analyst would."""

from __future__ import annotations

import sqlalchemy as sa

from chomp_tasks import storage
from chomp_tasks.config import Settings
from tests.read_fixtures import (  # noqa: F401  (fixtures used by name)
    WORKER,
    read_env,
    read_settings,
    seeded,
)


def test_hourly_view_gives_counts_percentiles_errors_and_bytes(seeded: Settings) -> None:
    with storage.get_engine(seeded).connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT * FROM chomp_request_hourly WHERE resource = 'ReadTestAPI' ORDER BY hour"
            )
        ).all()

    first, second = (row._mapping for row in rows)
    assert (first["requests"], first["errors"], second["requests"], second["errors"]) == (
        3,
        1,
        1,
        1,
    )
    assert (first["p50_latency_ms"], first["p95_latency_ms"]) == (100.0, 190.0)
    assert abs(first["p99_latency_ms"] - 198.0) < 1e-9
    assert abs(first["error_rate"] - 1 / 3) < 1e-12
    assert (first["bytes_total"], first["bytes_avg"]) == (4500, 1500.0)
    assert second["error_rate"] == 1.0  # a request without a status counts as an error


def test_instance_view_gives_the_latest_vitals_with_the_location(seeded: Settings) -> None:
    with storage.get_engine(seeded).connect() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM chomp_instance_latest WHERE instance_name = :n"), {"n": WORKER}
        ).one()

    assert (row.cpu_usage, row.memory_usage) == (30.0, 6000.0)
    assert (row.hostname, row.location) == ("host-1", "Da Nang, Vietnam")
