"""One SQLAlchemy engine per process, and creating the database when it is missing."""

from __future__ import annotations

import logging
import os
import threading

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from chomp_tasks.config import Settings
from chomp_tasks.errors import StorageUnavailable

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
POOL_SIZE = 2

_engines: dict[tuple[int, str], Engine] = {}
_engines_lock = threading.Lock()


def get_engine(settings: Settings) -> Engine:
    """Return this process's engine for the configured database.

    The engine is keyed by process id: a connection pool inherited through fork is never used
    by the child, whose sockets would be shared with the parent.
    """
    key = (os.getpid(), settings.database_url)
    engine = _engines.get(key)
    if engine is not None:
        return engine

    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create_engine(make_url(settings.database_url))
            _engines[key] = engine
        return engine


def _create_engine(url: URL) -> Engine:
    return sa.create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=2,
        pool_pre_ping=True,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": "chomp_tasks",
        },
    )


def dispose_engines() -> None:
    """Drop every engine of this process; the next use connects afresh."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose(close=False)
        _engines.clear()


def create_database_if_missing(settings: Settings) -> bool:
    """Create the configured database if the server allows it; return True if it was created.

    Raises:
        StorageUnavailable: the server cannot be reached, or the database is missing and
            cannot be created (the message says which, without the password).
    """
    url = make_url(settings.database_url)
    name = url.database
    if not name:
        raise StorageUnavailable("CHOMP_DATABASE_URL names no database")

    admin = _create_engine(url.set(database="postgres")).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            )
            if exists:
                return False
            return _create_database(conn, name)
    except sa.exc.OperationalError as exc:
        raise StorageUnavailable(
            f"PostgreSQL at {url.host}:{url.port or 5432} is unreachable: {driver_reason(exc)}"
        ) from None
    finally:
        admin.dispose()


def _create_database(conn: sa.Connection, name: str) -> bool:
    quoted = conn.dialect.identifier_preparer.quote(name)
    try:
        conn.execute(sa.text(f"CREATE DATABASE {quoted}"))
    except sa.exc.ProgrammingError as exc:
        code = getattr(exc.orig, "pgcode", None)
        if code == "42P04":  # duplicate_database: another process created it first.
            return False
        raise StorageUnavailable(
            f"database {name!r} is missing and cannot be created ({driver_reason(exc)}); "
            "create it, or grant CREATEDB to the user in CHOMP_DATABASE_URL"
        ) from None
    except sa.exc.IntegrityError:
        # Two CREATE DATABASE racing can also collide on the pg_database unique index.
        return False
    logger.info("Database %r created", name)
    return True


def driver_reason(exc: sa.exc.DBAPIError) -> str:
    """Return the first line of the driver's message, which carries no password."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
