"""The registry of monitors, and the creation of each monitor's table at first sight."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from chomp_tasks.errors import InvalidName, UnknownMonitor
from chomp_tasks.names import table_name
from chomp_tasks.storage.kinds import KINDS, Kind

logger = logging.getLogger(__name__)

_ENSURE = sa.text("SELECT kind, source_name FROM chomp_ensure_monitor(:kind, :source, :table)")
_known: dict[str, tuple[str, str]] = {}
_known_lock = threading.Lock()


@dataclass(frozen=True)
class MonitorInfo:
    """One row of the registry: a monitor table and what it stores."""

    name: str
    kind: Kind
    source_name: str
    created: datetime


def ensure_monitor(conn: sa.Connection, kind: Kind, source_name: str) -> str:
    """Make sure the table of a resource or instance exists, and return its name.

    Safe when several workers see a new name at the same instant: the database function
    serializes creation per table name. Commits are left to the caller.

    Raises:
        InvalidName: the name breaks the rule, or its table already belongs to another name.
    """
    table = table_name(source_name)
    with _known_lock:
        registered = _known.get(table)
    if registered is None:
        row = conn.execute(_ENSURE, {"kind": kind, "source": source_name, "table": table}).one()
        registered = (row.kind, row.source_name)
        if registered == (kind, source_name):
            with _known_lock:
                _known[table] = registered

    if registered != (kind, source_name):
        other_kind, other_name = registered
        raise InvalidName(
            f"{kind} name {source_name!r} would be stored in table {table!r}, which already "
            f"holds {other_kind} {other_name!r}; rename one of them"
        )
    return table


def forget_known_monitors() -> None:
    """Forget which tables this process has seen, as after the database was replaced."""
    with _known_lock:
        _known.clear()


def find_monitor(conn: sa.Connection, name: str) -> MonitorInfo:
    """Return the registry row of a monitor table such as `BinanceETH_monitor`.

    Raises:
        UnknownMonitor: no monitor of that name has been stored yet.
    """
    row = conn.execute(
        sa.text("SELECT name, kind, source_name, created FROM chomp_monitors WHERE name = :n"),
        {"n": name},
    ).one_or_none()
    if row is None:
        raise UnknownMonitor(f"no monitor named {name!r} has been stored yet")
    return MonitorInfo(row.name, row.kind, row.source_name, row.created)


def latest_row(conn: sa.Connection, info: MonitorInfo) -> dict[str, Any] | None:
    """Return the newest stored row of a monitor, or None if it has none."""
    kind = KINDS[info.kind]
    columns = ", ".join(f.name for f in kind.stored_fields)
    # Identifiers come from the fixed KINDS table, never from the caller; the name is bound.
    query = sa.text(
        f"SELECT {columns} FROM {kind.parent_table} "
        f"WHERE {kind.key_column} = :key ORDER BY ts DESC LIMIT 1"
    )
    row = conn.execute(query, {"key": info.source_name}).one_or_none()
    return None if row is None else dict(row._mapping)


def list_monitors(conn: sa.Connection) -> list[MonitorInfo]:
    """Return every registered monitor, oldest first."""
    rows = conn.execute(
        sa.text(
            "SELECT name, kind, source_name, created FROM chomp_monitors ORDER BY created, name"
        )
    )
    return [MonitorInfo(r.name, r.kind, r.source_name, r.created) for r in rows]
