"""Run chomp_tasks migrations, on a connection handed over by chomp-tasks or from the settings."""

from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context

from chomp_tasks.config import get_settings

config = context.config
VERSION_TABLE = config.get_main_option("version_table") or "chomp_alembic_version"


def run_on(connection: sa.Connection) -> None:
    context.configure(
        connection=connection, version_table=VERSION_TABLE, transaction_per_migration=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return

    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine = sa.create_engine(get_settings().database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        run_on(connection)
        connection.commit()


if context.is_offline_mode():
    context.configure(
        url=get_settings().database_url, version_table=VERSION_TABLE, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
