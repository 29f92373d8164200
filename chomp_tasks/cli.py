"""The chomp-tasks command: migrate and prune the database, and read what the workers stored."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from chomp_tasks.cli_read import add_read_commands
from chomp_tasks.config import Settings, get_settings
from chomp_tasks.errors import ChompError

logger = logging.getLogger(__name__)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from chomp_tasks.storage import migrate

    migrate(settings)
    print("database schema is up to date")
    return 0


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    import redis

    from chomp_tasks.cache import get_cache
    from chomp_tasks.errors import StorageUnavailable

    cache = get_cache(settings)
    try:
        counts = cache.get_counts()
    except redis.RedisError as exc:
        raise StorageUnavailable(f"cache {cache.describe()} is unreachable: {exc}") from None
    known = (
        "stored_records",
        "duplicate_records",
        "refused_records",
        "refused_messages",
        "dropped_by_ingesters",
    )
    print(json.dumps({**dict.fromkeys(known, 0), **counts}, indent=2))
    return 0


def _prune(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from chomp_tasks.durations import parse_duration
    from chomp_tasks.errors import StorageUnavailable
    from chomp_tasks.storage import get_engine
    from chomp_tasks.storage.engine import driver_reason
    from chomp_tasks.storage.retention import prune

    cutoff = datetime.now(UTC) - parse_duration(args.older_than)
    try:
        pruned = prune(get_engine(settings), cutoff, dry_run=args.dry_run)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise StorageUnavailable(f"the database is unreachable: {driver_reason(exc)}") from None
    report = {
        "cutoff": cutoff.isoformat().replace("+00:00", "Z"),
        "dry_run": args.dry_run,
        "rows": sum(p.rows for p in pruned),
        "tables": {p.table: p.rows for p in pruned if p.rows},
    }
    print(json.dumps(report, indent=2))
    return 0


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from chomp_tasks.bench import run_bench

    return run_bench(settings, quick=args.quick, as_json=args.json)


Command = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the chomp-tasks command and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="chomp-tasks", description="Request and instance vitals of data ingesters."
    )
    parser.add_argument("--verbose", action="store_true", help="log debug details and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    migrate = commands.add_parser(
        "migrate", help="create the database if missing and apply the migrations"
    )
    migrate.set_defaults(run=_migrate)

    add_read_commands(commands)

    stats = commands.add_parser(
        "stats",
        help="print the cluster's counts of stored, duplicate and refused records, and of "
        "records ingesters dropped",
    )
    stats.set_defaults(run=_stats)

    prune = commands.add_parser(
        "prune",
        help="delete the stored rows older than a duration from every monitor table",
    )
    prune.add_argument(
        "--older-than", required=True, help="how old a row must be to go, such as 30d or 12w"
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="count the rows that would go; delete nothing"
    )
    prune.set_defaults(run=_prune)

    bench = commands.add_parser(
        "bench", help="measure monitoring cost and storage speed on the local services"
    )
    bench.add_argument("--quick", action="store_true", help="a short run that shows it all works")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chomp-tasks command; return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    run: Command = args.run
    try:
        return run(args, get_settings())
    except ChompError as exc:
        if args.verbose:
            logger.exception("chomp-tasks %s failed", args.command)
        print(f"chomp-tasks {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
