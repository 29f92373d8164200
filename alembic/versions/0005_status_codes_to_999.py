"""Accept every three-digit HTTP status, 100 to 999, as HTTP clients report them.

Servers do send statuses above 599 (999 from some sites that turn crawlers away), and an
ingester's monitoring should record what it got rather than refuse the record.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "chomp_request_vitals_status_code_check"


def upgrade() -> None:
    # Both statements change the catalog only, and recurse to every monitor table. The new
    # check is left NOT VALID: PostgreSQL enforces it on every row written from now on, and
    # the stored rows already pass the narrower check it replaces, so validating would read
    # every stored row under a lock that stops the workers' writes, and could find nothing.
    op.execute(f"ALTER TABLE chomp_request_vitals DROP CONSTRAINT {CONSTRAINT}")
    op.execute(
        f"ALTER TABLE chomp_request_vitals ADD CONSTRAINT {CONSTRAINT} "
        "CHECK (status_code BETWEEN 100 AND 999) NOT VALID"
    )


def downgrade() -> None:
    # Fails, naming the constraint, while any stored row has a status above 599.
    op.execute(f"ALTER TABLE chomp_request_vitals DROP CONSTRAINT {CONSTRAINT}")
    op.execute(
        f"ALTER TABLE chomp_request_vitals ADD CONSTRAINT {CONSTRAINT} "
        "CHECK (status_code BETWEEN 100 AND 599)"
    )
