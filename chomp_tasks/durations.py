"""Durations written as a number and a unit, such as 30m or 2d, as the commands take them."""

from __future__ import annotations

import re
from datetime import timedelta

from chomp_tasks.errors import InvalidQuery
from chomp_tasks.names import shorten

_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str) -> timedelta:
    """Read a duration such as 90s, 30m, 1h, 2d or 1w.

    Raises:
        InvalidQuery: the text is not a whole number followed by s, m, h, d or w.
    """
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidQuery(
            f"duration {shorten(text)!r} must be a positive whole number followed by "
            "s, m, h, d or w, such as 30m or 1h"
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
