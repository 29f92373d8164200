"""Write request vitals in bulk, and read the latest one back."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from psycopg2.extras import execute_values

from chomp_tasks.request_vitals import RequestVitals

# One statement for a whole batch: rows are routed to each resource's partition by PostgreSQL,
# and a record id seen before (a redelivered message) is skipped by the primary key.
_INSERT = (
    "INSERT INTO chomp_request_vitals "
    "(ts, instance_name, field_count, latency_ms, response_bytes, status_code, resource, id) "
    "VALUES %s ON CONFLICT DO NOTHING"
)
INSERT_PAGE_ROWS = 1000


def insert_request_vitals(conn: sa.Connection, records: Sequence[RequestVitals]) -> int:
    """Insert the records in one statement per page and return how many rows were new."""
    rows = [
        (
            r.ts,
            r.instance_name,
            r.field_count,
            r.latency_ms,
            r.response_bytes,
            r.status_code,
            r.resource_name,
            r.id,
        )
        for r in records
    ]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    inserted = 0
    try:
        for start in range(0, len(rows), INSERT_PAGE_ROWS):
            page = rows[start : start + INSERT_PAGE_ROWS]
            execute_values(cursor, _INSERT, page, page_size=INSERT_PAGE_ROWS)
            inserted += cursor.rowcount
        return inserted
    finally:
        cursor.close()
