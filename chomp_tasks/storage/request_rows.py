"""Write request vitals in bulk."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from chomp_tasks.request_vitals import RequestVitals

COLUMNS = "ts, instance_name, field_count, latency_ms, response_bytes, status_code, resource, id"
STAGE_TABLE = "chomp_incoming_request_vitals"

# A batch is copied into a temporary table of this connection, then moved into the parent in
# one statement: PostgreSQL routes each row to its resource's partition, and a record id seen
# before (a redelivered message) is skipped by the primary key. COPY itself cannot skip
# conflicts, and a multi-row INSERT costs the server a parse of every value.
_CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_TABLE} "
    "(LIKE chomp_request_vitals) ON COMMIT DELETE ROWS"
)
_COPY = f"COPY {STAGE_TABLE} ({COLUMNS}) FROM STDIN"
_MOVE = (
    f"WITH staged AS (DELETE FROM {STAGE_TABLE} RETURNING {COLUMNS}) "
    f"INSERT INTO chomp_request_vitals ({COLUMNS}) SELECT {COLUMNS} FROM staged "
    "ON CONFLICT DO NOTHING"
)
# COPY's text format gives these characters a meaning; NUL is refused before records get here.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def insert_request_vitals(conn: sa.Connection, records: Sequence[RequestVitals]) -> int:
    """Insert the records in one COPY and one INSERT, and return how many rows were new.

    Commits are left to the caller; the staging table is emptied in the same statement that
    moves its rows, so several calls in one transaction are fine.
    """
    pooled = conn.connection
    cursor = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if STAGE_TABLE not in pooled.info:
            cursor.execute(_CREATE_STAGE)
            pooled.info[STAGE_TABLE] = True
        cursor.copy_expert(_COPY, io.StringIO("".join(copy_lines(records))))
        cursor.execute(_MOVE)
        return int(cursor.rowcount)
    except BaseException:
        # A rolled back transaction takes a table it created with it; create it again next time.
        pooled.info.pop(STAGE_TABLE, None)
        raise
    finally:
        cursor.close()


def copy_lines(records: Iterable[RequestVitals]) -> Iterable[str]:
    """Yield each record as one line of COPY's text format, in the order of COLUMNS."""
    escapes = _COPY_ESCAPES
    for r in records:
        status = "\\N" if r.status_code is None else r.status_code
        yield (
            f"{r.ts.isoformat()}\t{r.instance_name.translate(escapes)}\t{r.field_count}\t"
            f"{r.latency_ms!r}\t{r.response_bytes}\t{status}\t{r.resource_name}\t{r.id}\n"
        )
