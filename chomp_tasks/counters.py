"""Cumulative counters of a worker's process tree and its host, as plain JSON-ready data.

A counters snapshot survives JSON, so the process that stores one sample and the process that
computes the next rate need not be the same: any pool child can pick up the sampling task.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import orjson


@dataclass(frozen=True)
class Counters:
    """Cumulative counters of one process tree and of its host, taken at `wall_time`.

    `process_disk_bytes` maps "pid:create_time" to (bytes read+written, parent's key); the
    create time keeps a reused pid apart from the process that had it before.
    """

    wall_time: float
    tree_cpu_seconds: float
    tree_memory_bytes: int
    process_disk_bytes: dict[str, tuple[int, str]] | None
    pids: frozenset[int]
    host_cpu_busy_seconds: float
    host_cpu_total_seconds: float
    host_memory_used_bytes: int
    host_disk_bytes: int | None
    host_network_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        """Return the counters as JSON-ready data."""
        data = {field.name: getattr(self, field.name) for field in fields(self)}
        data["pids"] = sorted(self.pids)
        if self.process_disk_bytes is not None:
            data["process_disk_bytes"] = {k: list(v) for k, v in self.process_disk_bytes.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counters:
        """Rebuild counters from `to_dict` data.

        Raises:
            ValueError: a field is missing or holds the wrong kind of value.
        """
        try:
            return cls(
                wall_time=float(data["wall_time"]),
                tree_cpu_seconds=float(data["tree_cpu_seconds"]),
                tree_memory_bytes=int(data["tree_memory_bytes"]),
                process_disk_bytes=_disk_map(data["process_disk_bytes"]),
                pids=frozenset(int(pid) for pid in data["pids"]),
                host_cpu_busy_seconds=float(data["host_cpu_busy_seconds"]),
                host_cpu_total_seconds=float(data["host_cpu_total_seconds"]),
                host_memory_used_bytes=int(data["host_memory_used_bytes"]),
                host_disk_bytes=_optional_int(data["host_disk_bytes"]),
                host_network_bytes=_optional_int(data["host_network_bytes"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"counters: stored data cannot be read ({error!r})") from error

    def to_json(self) -> bytes:
        """Return the counters as JSON bytes."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Counters:
        """Rebuild counters from `to_json` bytes.

        Raises:
            ValueError: the bytes are not JSON, or not counters.
        """
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise ValueError(f"counters: stored data is not JSON ({error})") from error
        if not isinstance(data, dict):
            raise ValueError(f"counters: stored data is a {type(data).__name__}, not an object")
        return cls.from_dict(data)


def _disk_map(raw: Any) -> dict[str, tuple[int, str]] | None:
    """Return stored per-process disk bytes as {key: (bytes, parent key)}."""
    if raw is None:
        return None
    return {str(key): (int(nbytes), str(parent)) for key, (nbytes, parent) in raw.items()}


def _optional_int(raw: Any) -> int | None:
    """Return a stored counter that may be missing."""
    return None if raw is None else int(raw)
