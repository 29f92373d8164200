"""Describe monitors: their kind, table, fields and when each was first seen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chomp_tasks import storage
from chomp_tasks.config import Settings
from chomp_tasks.last import iso_utc
from chomp_tasks.reading import read_connection, require_monitors
from chomp_tasks.storage import MonitorInfo
from chomp_tasks.storage.kinds import KINDS


def describe_monitors(
    settings: Settings, names: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Return the description of the named monitors, or of every monitor, keyed by name.

    Raises:
        InvalidName, UnknownMonitor: a name is malformed or not in the registry.
        StorageUnavailable: PostgreSQL is unreachable.
    """
    with read_connection(settings) as conn:
        if names:
            infos = list(require_monitors(conn, names).values())
        else:
            infos = storage.list_monitors(conn)
    return {info.name: describe(info) for info in infos}


def describe(info: MonitorInfo) -> dict[str, Any]:
    """Return what /schema says about one monitor."""
    kind = KINDS[info.kind]
    return {
        "name": info.name,
        "kind": info.kind,
        "source_name": info.source_name,
        "table": info.name,
        "created": iso_utc(info.created),
        "fields": [{"name": f.name, "type": f.type, "transient": f.transient} for f in kind.fields],
    }
