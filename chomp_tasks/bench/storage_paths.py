"""PostgreSQL alone: the bulk write of chomp_tasks next to a multi-row INSERT of the same rows."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from psycopg2.extras import execute_values

from chomp_tasks.request_vitals import RequestVitals, Row, from_micros
from chomp_tasks.storage import ensure_monitor, insert_request_vitals
from chomp_tasks.storage.request_rows import COLUMNS

BATCH_ROWS = 1000
_VALUES_INSERT = f"INSERT INTO chomp_request_vitals ({COLUMNS}) VALUES %s ON CONFLICT DO NOTHING"

Write = Callable[[sa.Connection, Sequence[Row]], int]


def storage_paths(engine: sa.Engine, batches: int) -> dict[str, Any]:
    """Return rows/s of each way to write `batches` batches of BATCH_ROWS rows, one commit each."""
    fresh = _batches("BenchCopy", batches)
    figures = {
        "execute_values": _rows_per_second(engine, _batches("BenchValues", batches), _values),
        "copy": _rows_per_second(engine, fresh, insert_request_vitals),
        "copy_redelivered": _rows_per_second(engine, fresh, insert_request_vitals),
    }
    return {"batch_rows": BATCH_ROWS, "batches": batches, **figures}


def _batches(resource: str, count: int) -> list[list[Row]]:
    return [
        [RequestVitals(resource, "bench", 4, 1.5, i, 200).to_row() for i in range(BATCH_ROWS)]
        for _ in range(count)
    ]


def _rows_per_second(engine: sa.Engine, batches: list[list[Row]], write: Write) -> float:
    with engine.begin() as conn:
        ensure_monitor(conn, "resource", batches[0][0][0])

    started = time.perf_counter()
    for batch in batches:
        with engine.begin() as conn:
            write(conn, batch)
    return len(batches) * BATCH_ROWS / (time.perf_counter() - started)


def _values(conn: sa.Connection, records: Sequence[Row]) -> int:
    """The multi-row INSERT chomp_tasks used before COPY, kept here as the reference."""
    rows = [
        (from_micros(ts_us), instance, count, latency, size, status, resource, record_id)
        for resource, instance, count, latency, size, status, ts_us, record_id in records
    ]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        execute_values(cursor, _VALUES_INSERT, rows, page_size=BATCH_ROWS)
        return int(cursor.rowcount)
    finally:
        cursor.close()
