"""Say once when PostgreSQL becomes unreachable, and once when it is back."""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from chomp_tasks.errors import StorageUnavailable

logger = logging.getLogger(__name__)

OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    StorageUnavailable,
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
)
"""Errors that mean the database is away, not that the data is wrong: the task is retried."""

_down = False
_lock = threading.Lock()


def note_outage(exc: Exception) -> None:
    """Log the first failure of an outage as a warning and the following ones at debug level."""
    global _down
    with _lock:
        first, _down = not _down, True
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if first:
        logger.warning("Database is unreachable, batches will be retried: %s", reason)
    else:
        logger.debug("Database still unreachable: %s", reason)


def note_recovery() -> None:
    """Log the end of an outage, if there was one."""
    global _down
    with _lock:
        was_down, _down = _down, False
    if was_down:
        logger.info("Database is reachable again")
