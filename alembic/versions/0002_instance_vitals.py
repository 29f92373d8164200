"""Instance vitals and the registry of instances.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE chomp_instance_vitals (
            ts timestamptz NOT NULL,
            instance_name varchar(55) NOT NULL,
            resources_count integer NOT NULL DEFAULT 0 CHECK (resources_count >= 0),
            cpu_usage double precision,
            memory_usage double precision,
            disk_usage double precision,
            host_cpu_usage double precision,
            host_memory_usage double precision,
            host_disk_usage double precision,
            host_network_usage double precision,
            PRIMARY KEY (instance_name, ts)
        ) PARTITION BY LIST (instance_name)
        """
    )
    op.execute(
        """
        CREATE TABLE chomp_instances (
            instance_name varchar(55) PRIMARY KEY,
            uid text NOT NULL,
            pid integer NOT NULL,
            hostname text NOT NULL,
            ipv4 text NOT NULL DEFAULT '',
            ipv6 text NOT NULL DEFAULT '',
            coordinates text NOT NULL DEFAULT '',
            timezone text NOT NULL DEFAULT '',
            country_code text NOT NULL DEFAULT '',
            location text NOT NULL DEFAULT '',
            isp text NOT NULL DEFAULT '',
            first_seen timestamptz NOT NULL DEFAULT now(),
            last_seen timestamptz NOT NULL DEFAULT now(),
            located timestamptz
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE chomp_instances")
    op.execute("DROP TABLE chomp_instance_vitals")
