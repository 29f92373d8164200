"""Write instance vitals, and keep the registry of instances: identity and latest location."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from chomp_tasks.storage.kinds import INSTANCE

LOCATION_FIELDS = tuple(f.name for f in INSTANCE.transient_fields)
_VITALS_COLUMNS = tuple(f.name for f in INSTANCE.stored_fields)

# The primary key (instance_name, ts) with ts on the interval's boundary makes a sample of an
# interval that is already stored, such as a redelivered message, a no-op.
_INSERT_VITALS = sa.text(
    f"INSERT INTO chomp_instance_vitals ({', '.join(_VITALS_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _VITALS_COLUMNS)}) ON CONFLICT DO NOTHING"
)
_REGISTER = sa.text(
    "INSERT INTO chomp_instances (instance_name, uid, pid, hostname) "
    "VALUES (:name, :uid, :pid, :hostname) "
    "ON CONFLICT (instance_name) DO UPDATE SET uid = EXCLUDED.uid, pid = EXCLUDED.pid, "
    "hostname = EXCLUDED.hostname, last_seen = now()"
)
_LOCATE = sa.text(
    f"UPDATE chomp_instances SET {', '.join(f'{c} = :{c}' for c in LOCATION_FIELDS)}, "
    "located = coalesce(:located, located) WHERE instance_name = :name"
)
_LOCATION = sa.text(
    f"SELECT {', '.join(LOCATION_FIELDS)} FROM chomp_instances WHERE instance_name = :name"
)


def insert_instance_vitals(conn: sa.Connection, row: Mapping[str, Any]) -> bool:
    """Insert one row of instance vitals; return False if its interval was already stored."""
    result = conn.execute(_INSERT_VITALS, {c: row.get(c) for c in _VITALS_COLUMNS})
    return result.rowcount == 1


def register_instance(conn: sa.Connection, name: str, uid: str, pid: int, hostname: str) -> None:
    """Record an instance's identity and that it was seen now."""
    conn.execute(_REGISTER, {"name": name, "uid": uid, "pid": pid, "hostname": hostname})


def store_location(
    conn: sa.Connection, name: str, fields: Mapping[str, str], located: datetime | None
) -> None:
    """Record a registered instance's latest location; `located` is when it was last found."""
    values = {c: fields.get(c, "") for c in LOCATION_FIELDS}
    conn.execute(_LOCATE, {**values, "located": located, "name": name})


def stored_location(conn: sa.Connection, name: str) -> dict[str, str] | None:
    """Return the location fields recorded for an instance, or None if it is not registered."""
    row = conn.execute(_LOCATION, {"name": name}).one_or_none()
    return None if row is None else dict(row._mapping)
