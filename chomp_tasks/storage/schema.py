"""Bring the database schema up to date with the Alembic migrations, once per cluster at a time."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from chomp_tasks.config import Settings, mask_url
from chomp_tasks.errors import StorageUnavailable
from chomp_tasks.storage.engine import create_database_if_missing, get_engine

logger = logging.getLogger(__name__)

VERSION_TABLE = "chomp_alembic_version"
# Any fixed number works; it only has to differ from the advisory locks of other applications.
MIGRATION_LOCK_KEY = 0x63686F6D70


def migrations_path() -> Path:
    """Return the folder of the Alembic scripts, in the installed package or in a source tree."""
    packaged = Path(str(resources.files("chomp_tasks"))) / "migrations"
    if (packaged / "env.py").exists():
        return packaged
    return Path(__file__).resolve().parents[2] / "alembic"


def migrate(settings: Settings) -> None:
    """Create the database if it is missing, then apply every pending migration.

    Several processes may call this at once: the migrations run under a session-level advisory
    lock, so one applies them while the others wait and then find nothing left to do.

    Raises:
        StorageUnavailable: PostgreSQL is unreachable or refuses to create the database.
    """
    create_database_if_missing(settings)
    config = Config()
    config.set_main_option("script_location", str(migrations_path()))
    config.set_main_option("version_table", VERSION_TABLE)

    try:
        with get_engine(settings).connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                conn.commit()
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
    except sa.exc.OperationalError as exc:
        raise StorageUnavailable(
            f"migrating {mask_url(settings.database_url)} failed: {exc.orig}"
        ) from None
    logger.info("Database schema is up to date")
