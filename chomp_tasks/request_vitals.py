"""RequestVitals: what one timed HTTP request of an ingester records, and how a worker checks it."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chomp_tasks.errors import InvalidName, InvalidRecord
from chomp_tasks.names import check_name, shorten

MAX_INSTANCE_NAME_LENGTH = 255
FIELDS = (
    "resource_name",
    "instance_name",
    "field_count",
    "latency_ms",
    "response_bytes",
    "status_code",
    "ts",
    "id",
)
REQUIRED_FIELDS = frozenset({"resource_name", "latency_ms", "response_bytes"})


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class RequestVitals:
    """The vitals of one HTTP request made by an ingester."""

    resource_name: str
    instance_name: str = ""
    field_count: int = 0
    latency_ms: float = 0.0
    response_bytes: int = 0
    status_code: int | None = None
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=_new_id)

    def to_message(self) -> dict[str, Any]:
        """Return the record as the JSON-ready mapping a worker accepts."""
        return {
            "resource_name": self.resource_name,
            "instance_name": self.instance_name,
            "field_count": self.field_count,
            "latency_ms": self.latency_ms,
            "response_bytes": self.response_bytes,
            "status_code": self.status_code,
            "ts": self.ts.isoformat(),
            "id": self.id,
        }


def parse_record(
    fields: Mapping[str, Any], default_id: str | None = None, now: datetime | None = None
) -> RequestVitals:
    """Check one record received by a worker and return it as RequestVitals.

    Args:
        fields: the record as decoded from the message.
        default_id: the id to use when the record carries none (the task id of a direct call),
            so that a redelivered message is still stored once.
        now: the timestamp to use when the record carries no ts.

    Raises:
        InvalidRecord: a field is missing, unknown or out of range; the message names it.
    """
    if not isinstance(fields, Mapping):
        raise InvalidRecord(f"a record must be a JSON object, got {type(fields).__name__}")
    unknown = sorted(str(key) for key in fields if key not in FIELDS)
    if unknown:
        raise InvalidRecord(f"unknown field(s) {', '.join(map(repr, unknown))}")
    missing = sorted(name for name in REQUIRED_FIELDS if fields.get(name) is None)
    if missing:
        raise InvalidRecord(f"missing field(s) {', '.join(missing)}")

    try:
        resource = check_name(fields["resource_name"])
    except InvalidName as exc:
        raise InvalidRecord(str(exc)) from None
    return RequestVitals(
        resource_name=resource,
        instance_name=_instance_name(fields.get("instance_name")),
        field_count=_count(fields.get("field_count", 0), "field_count"),
        latency_ms=_latency(fields["latency_ms"]),
        response_bytes=_count(fields["response_bytes"], "response_bytes"),
        status_code=_status(fields.get("status_code")),
        ts=_timestamp(fields.get("ts"), now),
        id=_record_id(fields.get("id"), default_id),
    )


def _instance_name(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRecord(f"instance_name must be a string, got {type(value).__name__}")
    if len(value) > MAX_INSTANCE_NAME_LENGTH:
        raise InvalidRecord(
            f"instance_name {shorten(value)!r} has {len(value)} characters; "
            f"at most {MAX_INSTANCE_NAME_LENGTH}"
        )
    return value


def _count(value: object, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecord(f"{name} must be a whole number, got {shorten(repr(value))}")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidRecord(f"{name} must be a whole number, got {value!r}")
    if value < 0 or value > 2**63 - 1:
        raise InvalidRecord(f"{name} must be between 0 and 2**63-1, got {value!r}")
    return int(value)


def _latency(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecord(f"latency_ms must be a number, got {shorten(repr(value))}")
    if not math.isfinite(value) or value < 0:
        raise InvalidRecord(f"latency_ms must be a finite number >= 0, got {value!r}")
    return float(value)


def _status(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRecord(f"status_code must be an integer, got {shorten(repr(value))}")
    if not 100 <= value <= 599:
        raise InvalidRecord(f"status_code must be between 100 and 599, got {value!r}")
    return value


def _timestamp(value: object, now: datetime | None) -> datetime:
    if value is None:
        return now or datetime.now(UTC)
    if not isinstance(value, str):
        raise InvalidRecord(f"ts must be an ISO-8601 string, got {type(value).__name__}")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRecord(f"ts {shorten(value)!r} is not an ISO-8601 timestamp") from None
    # A timestamp without an offset is taken as UTC, the zone every producer clock reports in.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _record_id(value: object, default_id: str | None) -> str:
    if value is None:
        if default_id is None:
            raise InvalidRecord("missing field id")
        value = default_id
    try:
        return uuid.UUID(str(value)).hex
    except ValueError:
        raise InvalidRecord(f"id {shorten(str(value))!r} is not a UUID") from None
