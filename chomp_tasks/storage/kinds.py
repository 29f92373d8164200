"""The two kinds of monitor, and the fields each stores or only caches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["resource", "instance"]


@dataclass(frozen=True)
class Field:
    """One field of a monitor, as /schema describes it."""

    name: str
    type: Literal["timestamp", "string", "int32", "int64", "float64"]
    transient: bool = False


@dataclass(frozen=True)
class MonitorKind:
    """Where the monitors of one kind are stored, and what they hold."""

    kind: Kind
    parent_table: str
    key_column: str
    fields: tuple[Field, ...]

    @property
    def stored_fields(self) -> tuple[Field, ...]:
        """Return the fields that are columns of the time series."""
        return tuple(f for f in self.fields if not f.transient)

    @property
    def transient_fields(self) -> tuple[Field, ...]:
        """Return the fields that are only cached in Redis, never stored."""
        return tuple(f for f in self.fields if f.transient)


RESOURCE = MonitorKind(
    kind="resource",
    parent_table="chomp_request_vitals",
    key_column="resource",
    fields=(
        Field("ts", "timestamp"),
        Field("instance_name", "string"),
        Field("field_count", "int32"),
        Field("latency_ms", "float64"),
        Field("response_bytes", "int64"),
        Field("status_code", "int32"),
    ),
)

INSTANCE = MonitorKind(
    kind="instance",
    parent_table="chomp_instance_vitals",
    key_column="instance_name",
    fields=(
        Field("ts", "timestamp"),
        Field("instance_name", "string"),
        Field("resources_count", "int32"),
        Field("cpu_usage", "float64"),
        Field("memory_usage", "float64"),
        Field("disk_usage", "float64"),
        Field("host_cpu_usage", "float64"),
        Field("host_memory_usage", "float64"),
        Field("host_disk_usage", "float64"),
        Field("host_network_usage", "float64"),
        Field("ipv4", "string", transient=True),
        Field("ipv6", "string", transient=True),
        Field("coordinates", "string", transient=True),
        Field("timezone", "string", transient=True),
        Field("country_code", "string", transient=True),
        Field("location", "string", transient=True),
        Field("isp", "string", transient=True),
    ),
)

KINDS: dict[Kind, MonitorKind] = {"resource": RESOURCE, "instance": INSTANCE}
