"""The read side of the chomp-tasks command: last, history, schema, report and serve."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import orjson

from chomp_tasks.config import Settings
from chomp_tasks.table import format_table

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
FORMATS = ("json", "table")

Tabulate = Callable[[Any], str]


def add_read_commands(commands: Any) -> None:
    """Add the read-side subcommands to the chomp-tasks parser's subcommands."""
    last = commands.add_parser("last", help="print the latest row of monitors")
    last.add_argument("names", help="monitor names, comma-separated, e.g. BinanceETH_monitor")
    _add_format(last)
    last.set_defaults(run=_last)

    history = commands.add_parser("history", help="print the rows of a monitor over a time range")
    history.add_argument("name", help="one monitor name, e.g. BinanceETH_monitor")
    history.add_argument("--from", dest="from_date", help="ISO-8601 start (a day before --to)")
    history.add_argument("--to", dest="to_date", help="ISO-8601 end, excluded (now)")
    history.add_argument("--interval", help="bucket width such as m5, h1, D1, W1 or M1")
    _add_format(history)
    history.set_defaults(run=_history)

    schema = commands.add_parser("schema", help="describe monitors: kind, table and fields")
    schema.add_argument("names", nargs="?", help="monitor names, comma-separated (all if absent)")
    _add_format(schema)
    schema.set_defaults(run=_schema)

    report = commands.add_parser("report", help="print the hourly request summary per resource")
    report.add_argument("--since", default="1h", help="how far back, such as 30m, 6h, 2d (1h)")
    _add_format(report, default="table")
    report.set_defaults(run=_report)

    serve = commands.add_parser("serve", help="serve /last, /history and /schema over HTTP")
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"address ({DEFAULT_HOST})")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    serve.set_defaults(run=_serve)


def _add_format(parser: argparse.ArgumentParser, default: str = "json") -> None:
    parser.add_argument(
        "--format", choices=FORMATS, default=default, help=f"output format ({default})"
    )


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"port {text!r} must be a number from 1 to 65535")
    return int(text)


def _last(args: argparse.Namespace, settings: Settings) -> int:
    from chomp_tasks.last import read_last, split_names
    from chomp_tasks.reading import read_connection, require_monitors

    names = split_names(args.names)
    with read_connection(settings) as conn:
        require_monitors(conn, names)
    rows = read_last(settings, names)
    by_name = {names[0]: rows} if len(names) == 1 else rows
    _emit(rows, args.format, lambda _: _fields_by_monitor(by_name))
    return 0


def _fields_by_monitor(rows: dict[str, dict[str, Any]]) -> str:
    """Return the latest rows side by side: one line per field, one column per monitor."""
    fields = dict.fromkeys(key for row in rows.values() for key in row)
    lines = [{"field": f, **{name: row.get(f) for name, row in rows.items()}} for f in fields]
    return format_table(lines, ["field", *rows])


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from chomp_tasks.history import parse_query, read_history
    from chomp_tasks.names import check_table_name

    name = check_table_name(args.name)
    query = parse_query(name, args.from_date, args.to_date, args.interval)
    _emit(read_history(settings, query), args.format, format_table)
    return 0


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    from chomp_tasks.last import split_names
    from chomp_tasks.schema_info import describe_monitors

    names = split_names(args.names) if args.names else None
    described = describe_monitors(settings, names)
    _emit(described, args.format, _schema_table)
    return 0


def _schema_table(described: dict[str, dict[str, Any]]) -> str:
    rows = [
        {"monitor": name, "kind": info["kind"], "created": info["created"], **field}
        for name, info in described.items()
        for field in info["fields"]
    ]
    return format_table(rows, ["monitor", "kind", "created", "name", "type", "transient"])


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from chomp_tasks.durations import parse_duration
    from chomp_tasks.report import REPORT_COLUMNS, read_report

    rows = read_report(settings, parse_duration(args.since))
    _emit(rows, args.format, lambda r: format_table(r, REPORT_COLUMNS))
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from chomp_tasks.api import create_app

    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


def _emit(value: Any, fmt: str, tabulate: Tabulate) -> None:
    if fmt == "table":
        sys.stdout.write(tabulate(value) + "\n")
    else:
        sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
