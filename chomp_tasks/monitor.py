"""Monitor: the request timer an ingester wraps around each HTTP request."""

from __future__ import annotations

import operator
import threading
import time

import orjson

from chomp_tasks.errors import InvalidName
from chomp_tasks.names import check_name, table_name
from chomp_tasks.request_vitals import (
    MAX_BYTES,
    MAX_FIELD_COUNT,
    MAX_STATUS,
    MIN_STATUS,
    RequestVitals,
    check_instance_name,
    from_micros,
    new_id,
)
from chomp_tasks.sender import get_sender

_tables: dict[str, str] = {}
_tables_lock = threading.Lock()


def _claim_table(resource_name: str) -> None:
    """Refuse a second resource name of this process that would land in the same table."""
    table = table_name(resource_name)
    with _tables_lock:
        owner = _tables.setdefault(table, resource_name)
    if owner != resource_name:
        raise InvalidName(
            f"resource name {resource_name!r} would share table {table!r} with {owner!r}; "
            "use one spelling for both"
        )


class Monitor:
    """Time the HTTP requests of one resource and hand their vitals to the chomp_tasks workers.

    One Monitor times one request at a time; give each thread that makes requests its own.

    Example:
        monitor = Monitor("BinanceETH", field_count=5)
        monitor.start_timer()
        resp = session.get(url)
        monitor.stop_timer(len(resp.content), resp.status_code)
    """

    def __init__(
        self, resource_name: str, field_count: int = 0, instance_name: str | None = None
    ) -> None:
        """Check the names and claim the resource's table for this process.

        Raises:
            InvalidName: the resource name breaks the naming rule, or another resource name of
                this process maps to the same table.
            ValueError: field_count is out of range, or instance_name is not a string that
                can be stored (InvalidRecord, which says why).
        """
        check_name(resource_name)
        if (
            isinstance(field_count, bool)
            or not isinstance(field_count, int)
            or not 0 <= field_count <= MAX_FIELD_COUNT
        ):
            raise ValueError(
                f"field_count must be a whole number from 0 to {MAX_FIELD_COUNT}, "
                f"got {field_count!r}"
            )
        if instance_name is not None:
            check_instance_name(instance_name)
        _claim_table(resource_name)
        get_sender()  # The process's first Monitor prepares the sender, off the timed path.

        self.resource_name = resource_name
        self.field_count = field_count
        self.instance_name = instance_name if instance_name is not None else _default_instance()
        self.vitals: RequestVitals | None = None
        self._started_ns: int | None = None
        self._started_wall_ns = 0

    def start_timer(self) -> None:
        """Start timing a request."""
        self._started_wall_ns = time.time_ns()
        self._started_ns = time.perf_counter_ns()

    def stop_timer(self, response_bytes: int, status_code: int | None = None) -> RequestVitals:
        """Stop timing, record the request's vitals and hand them to the sender.

        Never waits on the network and never raises because the broker is down: the record is
        buffered and sent by a background thread.

        Returns:
            The RequestVitals recorded, also kept as `self.vitals`.

        Raises:
            RuntimeError: start_timer was not called first.
            TypeError: response_bytes or status_code is not a whole number.
            ValueError: response_bytes is negative or beyond 64 bits, or status_code is not
                a three-digit HTTP status.
        """
        ended_ns = time.perf_counter_ns()
        if self._started_ns is None:
            raise RuntimeError(f"Monitor {self.resource_name!r}: stop_timer before start_timer")
        if type(response_bytes) is not int:
            response_bytes = _whole(response_bytes, "response_bytes")
        if type(status_code) is not int and status_code is not None:
            status_code = _whole(status_code, "status_code")
        # The worker would refuse these; refused here, the caller learns which value was wrong.
        if not 0 <= response_bytes <= MAX_BYTES:
            raise ValueError(
                f"stop_timer: response_bytes must be between 0 and {MAX_BYTES}, "
                f"got {response_bytes}"
            )
        if status_code is not None and not MIN_STATUS <= status_code <= MAX_STATUS:
            raise ValueError(
                f"stop_timer: status_code must be between {MIN_STATUS} and {MAX_STATUS} "
                f"or None, got {status_code}"
            )

        latency_ms = (ended_ns - self._started_ns) / 1e6
        ts_us, record_id = self._started_wall_ns // 1000, new_id()
        self._started_ns = None
        row = (self.resource_name, self.instance_name, self.field_count, latency_ms,
               response_bytes, status_code, ts_us, record_id)  # fmt: skip
        encoded = orjson.dumps(row)
        # Encoded here, the record costs the garbage collector nothing while it waits; see
        # the sender's buffer.
        get_sender().submit(encoded)
        self.vitals = vitals = RequestVitals(
            self.resource_name, self.instance_name, self.field_count, latency_ms,
            response_bytes, status_code, from_micros(ts_us), record_id,
        )  # fmt: skip
        return vitals

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record buffered in this process is handed to the broker.

        Returns:
            True if everything was delivered (or dropped for overflow) within the timeout.
        """
        return get_sender().flush(timeout)

    @staticmethod
    def stats() -> dict[str, int]:
        """Return the sender's counts of accepted, delivered, dropped and buffered records."""
        return get_sender().stats()


def _whole(value: object, name: str) -> int:
    """Return a whole number given as another integer type (numpy's, say) as an int."""
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"stop_timer: {name} must be a whole number, got {type(value).__name__} {value!r}"
        ) from None


_instance_name: str | None = None


def _default_instance() -> str:
    """Return this process's instance name: CHOMP_INSTANCE_NAME, or one derived from the host."""
    global _instance_name
    if _instance_name is None:
        from chomp_tasks.config import get_settings
        from chomp_tasks.identity import process_instance_name

        _instance_name = process_instance_name(get_settings().instance_name)
    return _instance_name
