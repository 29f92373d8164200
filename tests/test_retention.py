"""chomp-tasks prune: rows older than the cutoff go from every monitor table, the rest stay."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from chomp_tasks.collector import store_records
from chomp_tasks.config import Settings
from chomp_tasks.request_vitals import RequestVitals
from chomp_tasks.storage import (
    ensure_monitor,
    forget_known_monitors,
    insert_instance_vitals,
    migrate,
)
from chomp_tasks.storage.retention import prune
from tests.services import POSTGRES_URL, run_cli

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)


@pytest.fixture
def aged(fresh_database: str, settings: Settings) -> Iterator[tuple[Settings, sa.Engine]]:
    """A database of its own holding request and instance vitals, 40 days old and fresh."""
    fresh = dataclasses.replace(settings, database_url=f"{POSTGRES_URL}/{fresh_database}")
    migrate(fresh)
    forget_known_monitors()  # This process has made these tables before, in another database.
    engine = sa.create_engine(fresh.database_url, poolclass=sa.pool.NullPool)
    for resource, old_rows in (("RetainedFeed", 25), ("OtherFeed", 3)):
        rows = [
            list(RequestVitals(resource, latency_ms=1.0, ts=ts).to_row())
            for ts in [OLD - timedelta(seconds=i) for i in range(old_rows)] + [NOW, NOW]
        ]
        store_records(fresh, rows, [None] * len(rows))
    with engine.begin() as conn:
        ensure_monitor(conn, "instance", "aged-worker")
        for ts in (OLD, NOW):
            insert_instance_vitals(conn, {"instance_name": "aged-worker", "ts": ts})
    yield fresh, engine
    engine.dispose()


def counts(engine: sa.Engine) -> dict[str, tuple[int, int]]:
    """Return (old, fresh) row counts of each monitor table."""
    found = {}
    with engine.connect() as conn:
        for table in ("RetainedFeed_monitor", "OtherFeed_monitor", "aged_worker_monitor"):
            old, fresh = conn.execute(
                sa.text(
                    f"SELECT count(*) FILTER (WHERE ts < :cut), count(*) FILTER (WHERE ts >= :cut) "
                    f'FROM "{table}"'
                ),
                {"cut": NOW - timedelta(days=1)},
            ).one()
            found[table] = (old, fresh)
    return found


def prune_command(env_settings: Settings, *args: str) -> Any:
    import os

    env = {**os.environ, "CHOMP_DATABASE_URL": env_settings.database_url}
    return run_cli(env, "prune", *args)


def test_prune_deletes_only_rows_older_than_the_cutoff_from_every_table(
    aged: tuple[Settings, sa.Engine],
) -> None:
    fresh, engine = aged
    before = counts(engine)

    dry = prune_command(fresh, "--older-than", "30d", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["rows"] == 25 + 3 + 1
    assert counts(engine) == before

    done = prune_command(fresh, "--older-than", "30d")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rows"] == 29 and report["dry_run"] is False
    assert report["tables"] == {
        "RetainedFeed_monitor": 25,
        "OtherFeed_monitor": 3,
        "aged_worker_monitor": 1,
    }
    assert counts(engine) == {
        "RetainedFeed_monitor": (0, 2),
        "OtherFeed_monitor": (0, 2),
        "aged_worker_monitor": (0, 1),
    }
    # Nothing is left to prune, and the tables are still there for the workers.
    assert json.loads(prune_command(fresh, "--older-than", "30d").stdout)["rows"] == 0


def test_a_prune_in_small_chunks_deletes_every_old_row(aged: tuple[Settings, sa.Engine]) -> None:
    _, engine = aged

    pruned = prune(engine, NOW - timedelta(days=30), chunk_rows=4)

    assert {p.table: p.rows for p in pruned}["RetainedFeed_monitor"] == 25
    assert counts(engine)["RetainedFeed_monitor"] == (0, 2)


@pytest.mark.parametrize("duration", ["30", "0d", "soon", "-1d"])
def test_a_bad_duration_is_refused_naming_it(duration: str, settings: Settings) -> None:
    done = prune_command(settings, f"--older-than={duration}")

    assert done.returncode == 1
    assert f"duration {duration!r} must be a positive whole number" in done.stderr
