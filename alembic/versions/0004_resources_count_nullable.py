"""Let an instance vitals row leave resources_count empty while the cache is unreachable.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The count of resources lives in Redis; without it a row still carries the worker's
    # figures, with this one column empty, instead of not being written at all.
    op.execute("ALTER TABLE chomp_instance_vitals ALTER COLUMN resources_count DROP NOT NULL")


def downgrade() -> None:
    op.execute("UPDATE chomp_instance_vitals SET resources_count = 0 WHERE resources_count IS NULL")
    op.execute("ALTER TABLE chomp_instance_vitals ALTER COLUMN resources_count SET NOT NULL")
