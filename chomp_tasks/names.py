"""The naming rule of monitors, and the table each name is stored in."""

from __future__ import annotations

import re

from chomp_tasks.errors import InvalidName

MAX_NAME_LENGTH = 55
TABLE_SUFFIX = "_monitor"

_ALLOWED = re.compile(r"[A-Za-z0-9_.\-]*")
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,54}_monitor$")


def check_name(name: object, what: str = "resource name") -> str:
    """Return the name unchanged if it follows the naming rule.

    The rule: 1 to 55 ASCII letters, digits, `_`, `-` or `.`, starting with a letter. With the
    `_monitor` suffix that fills PostgreSQL's 63-byte identifier limit exactly.

    Raises:
        InvalidName: the name breaks the rule; the message says which part.
    """
    if not isinstance(name, str):
        raise InvalidName(f"{what} must be a string, got {type(name).__name__}")
    if not name:
        raise InvalidName(f"{what} is empty; it needs 1 to {MAX_NAME_LENGTH} characters")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(
            f"{what} {shorten(name)!r} has {len(name)} characters; at most {MAX_NAME_LENGTH}"
        )
    if not ("a" <= name[0] <= "z" or "A" <= name[0] <= "Z"):
        raise InvalidName(f"{what} {shorten(name)!r} must start with an ASCII letter")
    if not _ALLOWED.fullmatch(name):
        bad = next(c for c in name if not _ALLOWED.fullmatch(c))
        raise InvalidName(
            f"{what} {shorten(name)!r} contains {bad!r}; "
            "only ASCII letters, digits, '_', '-' and '.' are allowed"
        )
    return name


def table_name(name: str) -> str:
    """Return the table of a resource or instance name: `-` and `.` become `_`, plus `_monitor`.

    Raises:
        InvalidName: the name breaks the naming rule.
    """
    check_name(name)
    return name.replace("-", "_").replace(".", "_") + TABLE_SUFFIX


def check_table_name(monitor: str) -> str:
    """Return a monitor (table) name such as `BinanceETH_monitor` if it can exist at all.

    Raises:
        InvalidName: the text cannot be the name of a monitor table.
    """
    if not isinstance(monitor, str) or not _TABLE_NAME.match(monitor):
        raise InvalidName(
            f"monitor name {shorten(str(monitor))!r} is not a table name such as "
            "'BinanceETH_monitor': a name of 1 to 55 ASCII letters, digits or '_', "
            "starting with a letter, then '_monitor'"
        )
    return monitor


def shorten(text: str, limit: int = 60) -> str:
    """Return text cut to limit characters with an ellipsis, for error messages."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
