"""Write request vitals in bulk."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg2.errors
import sqlalchemy as sa

from chomp_tasks.request_vitals import Row

COLUMNS = "ts, instance_name, field_count, latency_ms, response_bytes, status_code, resource, id"
STAGE_TABLE = "chomp_incoming_request_vitals"

# A batch is first copied straight into the parent table, which routes each row to its
# resource's partition: the cheapest write PostgreSQL offers. COPY cannot skip a row whose id
# is already stored, so a batch that meets one (a redelivered message) is rolled back to the
# savepoint and written again through a temporary table of this connection and one INSERT
# that skips known ids. A multi-row INSERT would cost the server a parse of every value.
_SAVEPOINT = "SAVEPOINT chomp_copy"
_ROLLBACK = "ROLLBACK TO SAVEPOINT chomp_copy"
_COPY_PARENT = f"COPY chomp_request_vitals ({COLUMNS}) FROM STDIN WITH (FORMAT binary)"
_CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_TABLE} "
    "(LIKE chomp_request_vitals) ON COMMIT DELETE ROWS"
)
_COPY_STAGE = f"COPY {STAGE_TABLE} ({COLUMNS}) FROM STDIN WITH (FORMAT binary)"
_MOVE = (
    f"WITH staged AS (DELETE FROM {STAGE_TABLE} RETURNING {COLUMNS}) "
    f"INSERT INTO chomp_request_vitals ({COLUMNS}) SELECT {COLUMNS} FROM staged "
    "ON CONFLICT DO NOTHING"
)

# COPY's binary format: a signature, flags and header extension length, then each row as its
# number of fields followed by each field's length in bytes (-1 for NULL) and its value in
# network byte order, then -1 as the number of fields. PostgreSQL reads it without parsing a
# timestamp, number or UUID from text, and building it costs Python less than text lines.
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_TRAILER = struct.pack("!h", -1)
# timestamptz counts microseconds from 2000-01-01 UTC; rows count them from 1970-01-01.
_PG_EPOCH_US = 946_684_800 * 1_000_000
# Fields up to the instance name's length: field count, ts, then the name's length.
_START = struct.Struct("!hiqi")
# field_count, latency_ms, response_bytes and status_code, each after its length.
_MIDDLE = struct.Struct("!iiidiqii")
_MIDDLE_NO_STATUS = struct.Struct("!iiidiqi")
_UUID_LENGTH = struct.pack("!i", 16)
_FIELDS_PER_ROW = len(COLUMNS.split(","))


def insert_request_vitals(conn: sa.Connection, rows: Sequence[Row]) -> int:
    """Write the rows in bulk and return how many were new; known ids are skipped.

    Commits are left to the caller.
    """
    data = copy_data(rows)
    pooled = conn.connection
    cursor = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_SAVEPOINT)
        try:
            cursor.copy_expert(_COPY_PARENT, io.BytesIO(data))
        except psycopg2.errors.UniqueViolation:
            cursor.execute(_ROLLBACK)
            return _insert_skipping_known(pooled.info, cursor, data)
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _insert_skipping_known(info: dict[Any, Any], cursor: Any, data: bytes) -> int:
    """Write COPY data through the staging table, skipping ids already stored."""
    try:
        if STAGE_TABLE not in info:
            cursor.execute(_CREATE_STAGE)
            info[STAGE_TABLE] = True
        cursor.copy_expert(_COPY_STAGE, io.BytesIO(data))
        cursor.execute(_MOVE)
        return int(cursor.rowcount)
    except BaseException:
        # A rolled back transaction takes a table it created with it; create it again next time.
        info.pop(STAGE_TABLE, None)
        raise


def copy_data(rows: Iterable[Row]) -> bytes:
    """Return rows checked by `parse_row` as COPY binary data, fields in the order of COLUMNS."""
    parts = [_HEADER]
    append = parts.append
    # The names of a batch repeat; each is encoded once (a resource with its length in front).
    instances: dict[str, bytes] = {}
    resources: dict[str, bytes] = {}
    start, middle, no_status = _START.pack, _MIDDLE.pack, _MIDDLE_NO_STATUS.pack
    for resource, instance, count, latency, size, status, ts_us, record_id in rows:
        instance_bytes = instances.get(instance)
        if instance_bytes is None:
            instance_bytes = instances[instance] = instance.encode()
        resource_field = resources.get(resource)
        if resource_field is None:
            encoded = resource.encode()
            resource_field = resources[resource] = struct.pack("!i", len(encoded)) + encoded
        append(start(_FIELDS_PER_ROW, 8, ts_us - _PG_EPOCH_US, len(instance_bytes)))
        append(instance_bytes)
        if status is None:
            append(no_status(4, count, 8, latency, 8, size, -1))
        else:
            append(middle(4, count, 8, latency, 8, size, 4, status))
        append(resource_field)
        append(_UUID_LENGTH)
        append(bytes.fromhex(record_id))
    append(_TRAILER)
    return b"".join(parts)
