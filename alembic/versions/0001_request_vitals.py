"""Monitor registry and request vitals.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE chomp_monitors (
            name text PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('resource', 'instance')),
            source_name text NOT NULL,
            created timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE chomp_request_vitals (
            ts timestamptz NOT NULL,
            instance_name varchar(255) NOT NULL DEFAULT '',
            field_count integer NOT NULL DEFAULT 0 CHECK (field_count >= 0),
            latency_ms double precision NOT NULL CHECK (latency_ms >= 0),
            response_bytes bigint NOT NULL CHECK (response_bytes >= 0),
            status_code integer CHECK (status_code BETWEEN 100 AND 599),
            resource text NOT NULL,
            id uuid NOT NULL,
            PRIMARY KEY (resource, id)
        ) PARTITION BY LIST (resource)
        """
    )
    op.execute("CREATE INDEX chomp_request_vitals_ts ON chomp_request_vitals (ts)")

    # Each monitor table is created on its own and then attached, under an advisory lock keyed
    # by its name: CREATE TABLE ... PARTITION OF would take an ACCESS EXCLUSIVE lock on the
    # parent and stall the writers of every other monitor, while ATTACH PARTITION only takes
    # SHARE UPDATE EXCLUSIVE. format() quotes the identifier and the partition value, so no
    # caller ever pastes a name into SQL. It returns the registered kind and source name, which
    # the caller compares with its own to refuse two names that would share one table.
    op.execute(
        """
        CREATE FUNCTION chomp_ensure_monitor(p_kind text, p_source text, p_table text)
        RETURNS TABLE (kind text, source_name text)
        LANGUAGE plpgsql AS $$
        DECLARE
            parent text;
            key_column text;
        BEGIN
            IF p_kind = 'resource' THEN
                parent := 'chomp_request_vitals';
                key_column := 'resource';
            ELSIF p_kind = 'instance' THEN
                parent := 'chomp_instance_vitals';
                key_column := 'instance_name';
            ELSE
                RAISE EXCEPTION 'unknown monitor kind %', p_kind;
            END IF;

            PERFORM pg_advisory_xact_lock(hashtext('chomp_tasks.monitor'), hashtext(p_table));
            RETURN QUERY SELECT m.kind, m.source_name FROM chomp_monitors m WHERE m.name = p_table;
            IF FOUND THEN
                RETURN;
            END IF;

            EXECUTE format(
                'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                p_table, parent);
            EXECUTE format(
                'ALTER TABLE %I ADD CONSTRAINT %I CHECK (%I IS NOT NULL AND %I = %L)',
                p_table, p_table || '_key', key_column, key_column, p_source);
            EXECUTE format(
                'ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%L)',
                parent, p_table, p_source);
            INSERT INTO chomp_monitors (name, kind, source_name) VALUES (p_table, p_kind, p_source);
            RETURN QUERY SELECT p_kind, p_source;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION chomp_ensure_monitor(text, text, text)")
    op.execute("DROP TABLE chomp_request_vitals")
    op.execute("DROP TABLE chomp_monitors")
