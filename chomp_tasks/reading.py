"""Connections of the read side, and the check of monitor names against the registry."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa

from chomp_tasks import storage
from chomp_tasks.config import Settings
from chomp_tasks.errors import StorageUnavailable, UnknownMonitor
from chomp_tasks.names import check_table_name
from chomp_tasks.storage import MonitorInfo
from chomp_tasks.storage.engine import driver_reason

logger = logging.getLogger(__name__)

_FIND_MANY = sa.text(
    "SELECT name, kind, source_name, created FROM chomp_monitors WHERE name = ANY(:names)"
)


@contextmanager
def read_connection(settings: Settings) -> Iterator[sa.Connection]:
    """Yield a connection for reading; an unreachable database becomes StorageUnavailable.

    Raises:
        StorageUnavailable: PostgreSQL cannot be reached; the message carries no password.
    """
    try:
        with storage.get_engine(settings).connect() as conn:
            yield conn
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        reason = driver_reason(exc)
        logger.warning("Database is unreachable for a read: %s", reason)
        raise StorageUnavailable(f"the database is unreachable: {reason}") from None


def require_monitors(conn: sa.Connection, names: Sequence[str]) -> dict[str, MonitorInfo]:
    """Return the registry rows of the named monitors, keyed by name in the order given.

    Raises:
        InvalidName: a name cannot be a monitor table name.
        UnknownMonitor: a name is not in the registry; the message lists every such name.
    """
    wanted = [check_table_name(name) for name in names]
    rows = conn.execute(_FIND_MANY, {"names": wanted})
    found = {r.name: MonitorInfo(r.name, r.kind, r.source_name, r.created) for r in rows}

    missing = [name for name in wanted if name not in found]
    if missing:
        listed = ", ".join(repr(name) for name in missing)
        raise UnknownMonitor(f"no monitor named {listed} has been stored yet")
    return {name: found[name] for name in wanted}
