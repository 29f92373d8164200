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


def outage_reason(exc: Exception) -> str:
    """Return the first line of a database error: the driver's reason, without SQL or password.

    psycopg2 names host and port in its reason, never the password of the URL.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def note_outage(exc: Exception) -> str:
    """Log the first failure of an outage as a warning and the following ones at debug level.

    Returns:
        The short reason, for messages that repeat it.
    """
    global _down
    with _lock:
        first, _down = not _down, True
    reason = outage_reason(exc)
    if first:
        logger.warning("Database is unreachable, batches will be retried: %s", reason)
    else:
        logger.debug("Database still unreachable: %s", reason)
    return reason


def note_recovery() -> None:
    """Log the end of an outage, if there was one."""
    global _down
    with _lock:
        was_down, _down = _down, False
    if was_down:
        logger.info("Database is reachable again")
