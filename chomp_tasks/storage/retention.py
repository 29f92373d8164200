"""Retention: delete the rows older than a cutoff from every monitor table, a chunk at a time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from chomp_tasks.storage.monitors import list_monitors

logger = logging.getLogger(__name__)

CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class Pruned:
    """The rows of one monitor table that were older than the cutoff."""

    table: str
    rows: int


def prune(
    engine: sa.Engine, cutoff: datetime, dry_run: bool = False, chunk_rows: int = CHUNK_ROWS
) -> list[Pruned]:
    """Delete the rows with ts before cutoff from every monitor table; return what went.

    Each table is pruned in chunks of chunk_rows, each chunk in a transaction of its own: the
    workers go on writing meanwhile, no transaction grows with the table, and an interrupted
    prune keeps what it has done. A chunk finds its rows through the table's index on ts and
    deletes them by their physical address, so it reads little more than it deletes. The
    monitor registry, the tables and Redis "last" are left as they are.

    Args:
        engine: the database's engine.
        cutoff: rows with a ts before this instant are deleted.
        dry_run: count the rows that would go, and delete nothing.
        chunk_rows: rows deleted per transaction.
    """
    with engine.connect() as conn:
        monitors = list_monitors(conn)
    pruned = []
    for monitor in monitors:
        # The name comes from the registry, which only ever holds checked names; it is quoted
        # as an identifier all the same.
        table = engine.dialect.identifier_preparer.quote(monitor.name)
        if dry_run:
            with engine.connect() as conn:
                rows = conn.scalar(
                    sa.text(f"SELECT count(*) FROM {table} WHERE ts < :cutoff"), {"cutoff": cutoff}
                )
        else:
            rows = _delete_in_chunks(engine, table, cutoff, chunk_rows)
        if rows:
            logger.info("%s: %d rows older than %s", monitor.name, rows, cutoff.isoformat())
        pruned.append(Pruned(monitor.name, int(rows or 0)))
    return pruned


def _delete_in_chunks(engine: sa.Engine, table: str, cutoff: datetime, chunk_rows: int) -> int:
    delete = sa.text(
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {table} WHERE ts < :cutoff LIMIT :chunk))"
    )
    deleted = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(delete, {"cutoff": cutoff, "chunk": chunk_rows}).rowcount
        deleted += count
        if count < chunk_rows:
            return deleted
