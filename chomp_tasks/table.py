"""Aligned text tables of rows, for a person reading the output of chomp-tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

EMPTY_TABLE = "(no rows)"


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = ()) -> str:
    """Return the rows as a table: a header, a rule, then one line per row.

    Numbers are right-aligned, everything else left-aligned. Without columns, every key of the
    rows is a column, in the order first seen.
    """
    if not rows:
        return EMPTY_TABLE
    columns = list(columns) or list(dict.fromkeys(key for row in rows for key in row))
    cells = [[cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    numeric = [_is_numeric_column(rows, column) for column in columns]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = ["-" * w for w in widths]
    return "\n".join([line(columns), line(rule), *(line(values) for values in cells)])


def cell(value: Any) -> str:
    """Return one value as table text: empty for None, floats without needless decimals."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def _is_numeric_column(rows: Sequence[Mapping[str, Any]], column: str) -> bool:
    values = [row.get(column) for row in rows if row.get(column) is not None]
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )
