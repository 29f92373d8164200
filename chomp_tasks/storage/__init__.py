"""PostgreSQL storage of chomp_tasks: schema, monitor tables, and the rows in them."""

from chomp_tasks.storage.engine import create_database_if_missing, dispose_engines, get_engine
from chomp_tasks.storage.instance_rows import (
    insert_instance_vitals,
    register_instance,
    store_location,
    stored_location,
)
from chomp_tasks.storage.monitors import (
    MonitorInfo,
    ensure_monitor,
    find_monitor,
    forget_known_monitors,
    latest_row,
    list_monitors,
)
from chomp_tasks.storage.request_rows import insert_request_vitals
from chomp_tasks.storage.schema import migrate

__all__ = [
    "MonitorInfo",
    "create_database_if_missing",
    "dispose_engines",
    "ensure_monitor",
    "find_monitor",
    "forget_known_monitors",
    "get_engine",
    "insert_instance_vitals",
    "insert_request_vitals",
    "latest_row",
    "list_monitors",
    "migrate",
    "register_instance",
    "store_location",
    "stored_location",
]
