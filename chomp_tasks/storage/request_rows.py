"""Write request vitals in bulk."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg2.errors
import sqlalchemy as sa

from chomp_tasks.request_vitals import RequestVitals

COLUMNS = "ts, instance_name, field_count, latency_ms, response_bytes, status_code, resource, id"
STAGE_TABLE = "chomp_incoming_request_vitals"

# A batch is first copied straight into the parent table, which routes each row to its
# resource's partition: the cheapest write PostgreSQL offers. COPY cannot skip a row whose id
# is already stored, so a batch that meets one (a redelivered message) is rolled back to the
# savepoint and written again through a temporary table of this connection and one INSERT
# that skips known ids. A multi-row INSERT would cost the server a parse of every value.
_SAVEPOINT = "SAVEPOINT chomp_copy"
_ROLLBACK = "ROLLBACK TO SAVEPOINT chomp_copy"
_COPY_PARENT = f"COPY chomp_request_vitals ({COLUMNS}) FROM STDIN"
_CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_TABLE} "
    "(LIKE chomp_request_vitals) ON COMMIT DELETE ROWS"
)
_COPY_STAGE = f"COPY {STAGE_TABLE} ({COLUMNS}) FROM STDIN"
_MOVE = (
    f"WITH staged AS (DELETE FROM {STAGE_TABLE} RETURNING {COLUMNS}) "
    f"INSERT INTO chomp_request_vitals ({COLUMNS}) SELECT {COLUMNS} FROM staged "
    "ON CONFLICT DO NOTHING"
)
# COPY's text format gives these characters a meaning; NUL is refused before records get here.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def insert_request_vitals(conn: sa.Connection, records: Sequence[RequestVitals]) -> int:
    """Write the records in bulk and return how many rows were new; known ids are skipped.

    Commits are left to the caller.
    """
    text = "".join(copy_lines(records))
    pooled = conn.connection
    cursor = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_SAVEPOINT)
        try:
            cursor.copy_expert(_COPY_PARENT, io.StringIO(text))
        except psycopg2.errors.UniqueViolation:
            cursor.execute(_ROLLBACK)
            return _insert_skipping_known(pooled.info, cursor, text)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _insert_skipping_known(info: dict[Any, Any], cursor: Any, text: str) -> int:
    """Write COPY text through the staging table, skipping ids already stored."""
    try:
        if STAGE_TABLE not in info:
            cursor.execute(_CREATE_STAGE)
            info[STAGE_TABLE] = True
        cursor.copy_expert(_COPY_STAGE, io.StringIO(text))
        cursor.execute(_MOVE)
        return int(cursor.rowcount)
    except BaseException:
        # A rolled back transaction takes a table it created with it; create it again next time.
        info.pop(STAGE_TABLE, None)
        raise


def copy_lines(records: Iterable[RequestVitals]) -> Iterable[str]:
    """Yield each record as one line of COPY's text format, in the order of COLUMNS."""
    escapes = _COPY_ESCAPES
    for r in records:
        status = "\\N" if r.status_code is None else r.status_code
        yield (
            f"{r.ts.isoformat()}\t{r.instance_name.translate(escapes)}\t{r.field_count}\t"
            f"{r.latency_ms!r}\t{r.response_bytes}\t{status}\t{r.resource_name}\t{r.id}\n"
        )
