"""Reporting views: hourly request summary per resource, latest vitals per instance.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Hours are cut in UTC whatever the session's time zone. A request without a status (no
    # response came back) counts as an error. A filter on `hour` is applied after grouping
    # by an expression of ts, so it reads every row of the resources asked for: over a long
    # history, an analyst filtering the parent table on ts directly reads far less.
    op.execute(
        """
        CREATE VIEW chomp_request_hourly AS
        SELECT
            resource,
            date_trunc('hour', ts, 'UTC') AS hour,
            count(*) AS requests,
            count(*) FILTER (WHERE status_code IS NULL OR status_code >= 400) AS errors,
            CAST(avg(CASE WHEN status_code IS NULL OR status_code >= 400 THEN 1 ELSE 0 END)
                AS double precision) AS error_rate,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency_ms,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency_ms,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_latency_ms,
            CAST(sum(response_bytes) AS bigint) AS bytes_total,
            CAST(avg(response_bytes) AS double precision) AS bytes_avg
        FROM chomp_request_vitals
        GROUP BY resource, date_trunc('hour', ts, 'UTC')
        """
    )
    # DISTINCT ON walks the (instance_name, ts) primary key, one row per instance. Instances
    # without any vitals yet do not appear; their location columns are empty until located.
    op.execute(
        """
        CREATE VIEW chomp_instance_latest AS
        SELECT DISTINCT ON (v.instance_name)
            v.instance_name,
            v.ts,
            v.resources_count,
            v.cpu_usage,
            v.memory_usage,
            v.disk_usage,
            v.host_cpu_usage,
            v.host_memory_usage,
            v.host_disk_usage,
            v.host_network_usage,
            i.hostname,
            i.ipv4,
            i.ipv6,
            i.coordinates,
            i.timezone,
            i.country_code,
            i.location,
            i.isp,
            i.located
        FROM chomp_instance_vitals v
        LEFT JOIN chomp_instances i ON i.instance_name = v.instance_name
        ORDER BY v.instance_name, v.ts DESC
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW chomp_instance_latest")
    op.execute("DROP VIEW chomp_request_hourly")
