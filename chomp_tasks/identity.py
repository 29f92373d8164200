"""Names of the processes that produce and collect vitals."""

from __future__ import annotations

import re
import socket

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.-]")


def process_instance_name(name_override: str | None = None) -> str:
    """Return the instance name of an ingester process: the override, else the host's name."""
    if name_override:
        return name_override
    host = _NOT_ALLOWED.sub("-", socket.gethostname())[:46]
    return f"ingester-{host}" if host else "ingester"
