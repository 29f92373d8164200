"""RequestVitals: what one timed HTTP request of an ingester records, and how a worker checks it."""

from __future__ import annotations

import itertools
import math
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

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
MAX_FIELD_COUNT = 2**31 - 1  # an integer column
MAX_BYTES = 2**63 - 1  # a bigint column
# Every three-digit status, as HTTP clients report them: servers do send some above 599.
MIN_STATUS, MAX_STATUS = 100, 999

Row = tuple[str, str, int, float, int, int | None, int, str]
"""A record as Monitor sends it in a batch and as a worker writes it: the values of FIELDS in
that order, with ts as whole microseconds since 1970-01-01 UTC and id as 32 hex digits. A
tuple of plain values is compact to encode, and the garbage collector stops tracking it, so a
full buffer does not slow the ingester's collections."""

# Positions in a Row, written out so that a type checker knows the type at each.
RESOURCE: Final = 0
TS: Final = 6
ID: Final = 7

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# The years a datetime can hold, 1 to 9999, in microseconds since the epoch.
MIN_TS_US = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // _MICROSECOND
MAX_TS_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EPOCH) // _MICROSECOND
_FIELD_SET = frozenset(FIELDS)
_HEX_ID = re.compile(r"[0-9a-f]{32}")
# Resource and instance names already found good; bounded so that a producer of endless new
# names cannot grow them.
_GOOD_NAMES: set[str] = set()
_GOOD_INSTANCES: set[str] = set()
MAX_GOOD_NAMES = 10_000


def _id_source() -> tuple[str, itertools.count[int]]:
    return os.urandom(8).hex(), itertools.count()


# A record id is 64 random bits drawn once per process, then a 64-bit counter: unique like a
# random UUID, but without a system call per record, and ids of one producer sort in order,
# which keeps the primary key's inserts on few index pages. A forked child draws its own.
_id_prefix, _id_counter = _id_source()


def new_id() -> str:
    """Return a new record id: this process's random prefix and its next count, in hex."""
    return f"{_id_prefix}{next(_id_counter):016x}"


def _new_id_source_after_fork() -> None:
    global _id_prefix, _id_counter
    _id_prefix, _id_counter = _id_source()


os.register_at_fork(after_in_child=_new_id_source_after_fork)


# Not slotted: orjson encodes a dataclass through its instance dict 2.5 times faster than
# through slots (0.9 against 2.4 us a record here), and the sender encodes every record.
@dataclass
class RequestVitals:
    """The vitals of one HTTP request made by an ingester."""

    resource_name: str
    instance_name: str = ""
    field_count: int = 0
    latency_ms: float = 0.0
    response_bytes: int = 0
    status_code: int | None = None
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=new_id)

    def to_row(self) -> Row:
        """Return the record as the row a batch message carries."""
        return (
            self.resource_name,
            self.instance_name,
            self.field_count,
            self.latency_ms,
            self.response_bytes,
            self.status_code,
            micros(self.ts),
            self.id,
        )

    @classmethod
    def from_row(cls, row: Row) -> RequestVitals:
        """Return the record of a row made by `to_row` or `parse_row`."""
        resource, instance, count, latency, size, status, ts_us, record_id = row
        return cls(resource, instance, count, latency, size, status, from_micros(ts_us), record_id)

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


def micros(ts: datetime) -> int:
    """Return a timezone-aware datetime as whole microseconds since 1970-01-01 UTC."""
    return (ts - EPOCH) // _MICROSECOND


def from_micros(ts_us: int) -> datetime:
    """Return microseconds since 1970-01-01 UTC as a datetime in UTC."""
    return EPOCH + timedelta(0, 0, ts_us)  # Positional: a third faster than microseconds=.


def parse_row(values: Any, default_id: str | None = None, now_us: int | None = None) -> Row:
    """Check one record of a batch in row form (see `Row`) and return it as a Row.

    ts may also be an ISO-8601 string, and id any spelling of a UUID; the row returned holds
    them in the form of `Row`.

    Raises:
        InvalidRecord: the row is not a list of len(FIELDS) values, or a value is missing or
            out of range; the message names the field.
    """
    if type(values) is not list or len(values) != len(FIELDS):
        if isinstance(values, list | tuple):
            raise InvalidRecord(
                f"a record row must hold {len(FIELDS)} values ({', '.join(FIELDS)}), "
                f"got {len(values)}"
            )
        raise InvalidRecord(f"a record must be a JSON object or array, got {type(values).__name__}")
    resource, instance, count, latency, size, status, ts, record_id = values
    # A row as Monitor makes it passes in one expression, names already found good; any other
    # row takes the checks below, which say what is wrong.
    if (
        type(resource) is str
        and resource in _GOOD_NAMES
        and type(instance) is str
        and instance in _GOOD_INSTANCES
        and type(count) is int
        and 0 <= count <= MAX_FIELD_COUNT
        and type(latency) is float
        and 0.0 <= latency < math.inf
        and type(size) is int
        and 0 <= size <= MAX_BYTES
        and (status is None or (type(status) is int and MIN_STATUS <= status <= MAX_STATUS))
        and type(ts) is int
        and MIN_TS_US <= ts <= MAX_TS_US
        and type(record_id) is str
        and _HEX_ID.fullmatch(record_id)
    ):
        return tuple(values)
    if resource is None or latency is None or size is None:
        missing = [name for name, value in zip(FIELDS, values, strict=True) if value is None]
        missing = sorted(set(missing) & REQUIRED_FIELDS)
        raise InvalidRecord(f"missing field(s) {', '.join(missing)}")
    return (
        _resource(resource),
        _instance_name(instance),
        _count(count, "field_count", MAX_FIELD_COUNT),
        _latency(latency),
        _count(size, "response_bytes"),
        _status(status),
        _row_timestamp(ts, now_us),
        _record_id(record_id, default_id),
    )


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
    if not _FIELD_SET.issuperset(fields):
        unknown = sorted(str(key) for key in fields if key not in _FIELD_SET)
        raise InvalidRecord(f"unknown field(s) {', '.join(map(repr, unknown))}")
    get = fields.get
    resource, latency, size = get("resource_name"), get("latency_ms"), get("response_bytes")
    if resource is None or latency is None or size is None:
        missing = sorted(name for name in REQUIRED_FIELDS if get(name) is None)
        raise InvalidRecord(f"missing field(s) {', '.join(missing)}")

    # Positional arguments, in field order: this runs once per record a worker stores.
    return RequestVitals(
        _resource(resource),
        _instance_name(get("instance_name")),
        _count(get("field_count"), "field_count", MAX_FIELD_COUNT),
        _latency(latency),
        _count(size, "response_bytes"),
        _status(get("status_code")),
        _timestamp(get("ts"), now),
        _record_id(get("id"), default_id),
    )


def _resource(value: object) -> str:
    if type(value) is str and value in _GOOD_NAMES:
        return value
    try:
        name = check_name(value)
    except InvalidName as exc:
        raise InvalidRecord(str(exc)) from None
    if len(_GOOD_NAMES) < MAX_GOOD_NAMES:
        _GOOD_NAMES.add(name)
    return name


def check_instance_name(value: object) -> str:
    """Return value if it can be stored as an instance name.

    Raises:
        InvalidRecord: value is not a string, holds a NUL character or a lone surrogate (text
            that is not Unicode, such as an undecodable byte of a host name), or is longer
            than MAX_INSTANCE_NAME_LENGTH; the message says which.
    """
    if not isinstance(value, str):
        raise InvalidRecord(f"instance_name must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidRecord(f"instance_name {shorten(repr(value))} contains a NUL character")
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidRecord(
            f"instance_name {shorten(repr(value))} is not valid Unicode "
            f"(character {exc.start} is a lone surrogate)"
        ) from None
    if len(value) > MAX_INSTANCE_NAME_LENGTH:
        raise InvalidRecord(
            f"instance_name {shorten(value)!r} has {len(value)} characters; "
            f"at most {MAX_INSTANCE_NAME_LENGTH}"
        )
    return value


def _instance_name(value: object) -> str:
    if value is None:
        return ""
    if type(value) is str and value in _GOOD_INSTANCES:
        return value
    name = check_instance_name(value)
    if len(_GOOD_INSTANCES) < MAX_GOOD_NAMES:
        _GOOD_INSTANCES.add(name)
    return name


def _count(value: object, name: str, most: int = MAX_BYTES) -> int:
    if type(value) is int and 0 <= value <= most:
        return value
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecord(f"{name} must be a whole number, got {shorten(repr(value))}")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidRecord(f"{name} must be a whole number, got {value!r}")
    if value < 0 or value > most:
        raise InvalidRecord(f"{name} must be between 0 and {most}, got {value!r}")
    return int(value)


def _latency(value: object) -> float:
    if type(value) is float and 0 <= value < math.inf:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRecord(f"latency_ms must be a number, got {shorten(repr(value))}")
    if not math.isfinite(value) or value < 0:
        raise InvalidRecord(f"latency_ms must be a finite number >= 0, got {value!r}")
    return float(value)


def _status(value: object) -> int | None:
    if type(value) is int and MIN_STATUS <= value <= MAX_STATUS:
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRecord(f"status_code must be an integer, got {shorten(repr(value))}")
    if not MIN_STATUS <= value <= MAX_STATUS:
        raise InvalidRecord(
            f"status_code must be between {MIN_STATUS} and {MAX_STATUS}, got {value!r}"
        )
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


def _row_timestamp(value: object, now_us: int | None) -> int:
    if type(value) is int and MIN_TS_US <= value <= MAX_TS_US:
        return value
    if value is None:
        return micros(datetime.now(UTC)) if now_us is None else now_us
    if isinstance(value, str):
        return micros(_timestamp(value, None))
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRecord(
            "ts must be whole microseconds since 1970-01-01 UTC or an ISO-8601 string, "
            f"got {shorten(repr(value))}"
        )
    raise InvalidRecord(f"ts {value!r} is outside the years 1 to 9999 (microseconds since 1970)")


def _record_id(value: object, default_id: str | None) -> str:
    if value is None:
        if default_id is None:
            raise InvalidRecord("missing field id")
        value = default_id
    if type(value) is str and _HEX_ID.fullmatch(value):
        return value
    try:
        return uuid.UUID(str(value)).hex
    except ValueError:
        raise InvalidRecord(f"id {shorten(str(value))!r} is not a UUID") from None
