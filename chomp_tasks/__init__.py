"""Request and instance vitals for data ingesters, collected by Celery workers.

Ingesters time their HTTP requests with `Monitor` (or send records with
`monitor_request.delay`); `celery -A chomp_tasks worker` stores them in PostgreSQL, one table
per resource, and keeps the latest row of each in Redis. A worker started with `--monitored`
also samples its own vitals into a table of its own.
"""

from chomp_tasks import worker as _worker  # noqa: F401  (worker options and start-up)
from chomp_tasks.app import app
from chomp_tasks.errors import (
    ChompError,
    ConfigError,
    InvalidName,
    InvalidQuery,
    InvalidRecord,
    StorageUnavailable,
    TooManyRows,
    UnknownMonitor,
)
from chomp_tasks.instance_tasks import collect_instance_vitals, refresh_geolocation
from chomp_tasks.monitor import Monitor
from chomp_tasks.request_vitals import RequestVitals
from chomp_tasks.tasks import monitor_request, store_request_batch

__all__ = [
    "ChompError",
    "ConfigError",
    "InvalidName",
    "InvalidQuery",
    "InvalidRecord",
    "Monitor",
    "RequestVitals",
    "StorageUnavailable",
    "TooManyRows",
    "UnknownMonitor",
    "app",
    "collect_instance_vitals",
    "monitor_request",
    "refresh_geolocation",
    "store_request_batch",
]
