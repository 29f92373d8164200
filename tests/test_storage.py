"""Storing request vitals: bulk writes, refusals that spare good records, duplicates, races."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from chomp_tasks import RequestVitals
from chomp_tasks.collector import counters, store_records
from chomp_tasks.last import read_last


def record(resource: str, **fields: Any) -> dict[str, Any]:
    base = {
        "resource_name": resource,
        "latency_ms": 12.5,
        "response_bytes": 100,
        "status_code": 200,
        "field_count": 3,
        "instance_name": "ingester-01",
        "ts": datetime.now(UTC).isoformat(),
        "id": uuid.uuid4().hex,
    }
    return {**base, **fields}


def store(settings: Any, records: list[Any]) -> Any:
    return store_records(settings, records, [None] * len(records))


def count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text(f'SELECT count(*) FROM "{table}"')))


def table_exists(engine: sa.Engine, table: str) -> bool:
    with engine.connect() as conn:
        return conn.scalar(sa.text("SELECT to_regclass(:t)"), {"t": f'"{table}"'}) is not None


def test_a_batch_lands_in_the_exact_case_table(settings: Any, engine: sa.Engine) -> None:
    outcome = store(settings, [record("BulkFeed") for _ in range(250)])

    assert outcome.stored == 250
    assert count(engine, "BulkFeed_monitor") == 250
    with engine.connect() as conn:
        columns = conn.execute(sa.text('SELECT * FROM "BulkFeed_monitor" LIMIT 1')).keys()
    assert list(columns)[:6] == [
        "ts",
        "instance_name",
        "field_count",
        "latency_ms",
        "response_bytes",
        "status_code",
    ]


def test_bad_records_are_refused_and_the_good_ones_beside_them_stored(
    settings: Any, engine: sa.Engine
) -> None:
    bad = [
        record("bad name"),
        record("Good-One", latency_ms=float("nan")),
        record("Good-One", latency_ms=-3),
        record("Good-One", response_bytes=-1),
        record("Good-One", status_code=1000),
        record("Good-One", instance_name="x" * 256),
        record("Good-One", ts="not a date"),
        {k: v for k, v in record("Good-One").items() if k != "latency_ms"},
        record("Good-One", surprise=1),
        "not even an object",
        record("Tab\tle"),
    ]
    good = [record("Good-One") for _ in range(5)]
    refused_before = counters["refused_records"]

    outcome = store(settings, bad[:6] + good + bad[6:])

    assert outcome.stored == 5
    assert len(outcome.refused) == len(bad)
    assert counters["refused_records"] - refused_before == len(bad)
    assert count(engine, "Good_One_monitor") == 5
    assert not table_exists(engine, "bad name_monitor")
    assert not table_exists(engine, "Tab\tle_monitor")


def test_rows_as_monitor_sends_them_are_stored_beside_named_records_and_bad_rows_refused(
    settings: Any, engine: sa.Engine
) -> None:
    sent = [
        RequestVitals("Mixed", "ingester-01", 3, 12.5, i, 200 if i % 2 else None).to_row()
        for i in range(10)
    ]
    bad = [
        [*sent[0][:2], 2**31, *sent[0][3:7], uuid.uuid4().hex],
        [*sent[0][:7]],
        ["Mixed", "ingester-01", 3, 12.5, 10, 200, "not a date", uuid.uuid4().hex],
    ]
    outcome = store(
        settings,
        [*map(list, sent[:5]), *bad, record("Mixed", instance_name="named"), *map(list, sent[5:])],
    )

    assert outcome.stored == 11
    assert [reason.split(": ", 1)[1] for reason in outcome.refused] == [
        "field_count must be between 0 and 2147483647, got 2147483648",
        "a record row must hold 8 values (resource_name, instance_name, field_count, "
        "latency_ms, response_bytes, status_code, ts, id), got 7",
        "ts 'not a date' is not an ISO-8601 timestamp",
    ]
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text(
                "SELECT instance_name, field_count, latency_ms, response_bytes, status_code, "
                "ts, replace(id::text, '-', '') FROM \"Mixed_monitor\" "
                "WHERE instance_name = 'ingester-01' ORDER BY response_bytes"
            )
        ).all()
    assert [tuple(row) for row in stored] == [
        (r[1], r[2], r[3], r[4], r[5], RequestVitals.from_row(r).ts, r[7]) for r in sent
    ]


def test_a_record_delivered_twice_is_stored_once(settings: Any, engine: sa.Engine) -> None:
    batch = [record("Twice") for _ in range(20)]
    store(settings, batch)
    again = store(settings, [*batch[5:], record("Twice")])

    assert again.stored == 1
    assert again.duplicates == 15
    assert count(engine, "Twice_monitor") == 21


def test_instance_names_with_tabs_newlines_and_backslashes_are_stored_intact(
    settings: Any, engine: sa.Engine
) -> None:
    names = ["tab\there", "line\nbreak", "back\\slash\\N", "carriage\rreturn", "\\N", "Zürich-東京"]
    store(settings, [record("OddInstances", instance_name=name) for name in names])

    with engine.connect() as conn:
        stored = conn.scalars(sa.text('SELECT instance_name FROM "OddInstances_monitor"')).all()
    assert sorted(stored) == sorted(names)


def test_every_three_digit_status_and_no_status_are_stored(
    settings: Any, engine: sa.Engine
) -> None:
    statuses = [100, 200, 404, 599, 999, None]
    # Half as named records, half as rows as Monitor sends them.
    named = [record("Statuses", status_code=status) for status in statuses[:3]]
    rows = [list(RequestVitals("Statuses", status_code=s).to_row()) for s in statuses[3:]]
    outcome = store(settings, [*named, *rows])

    assert outcome.stored == len(statuses) and not outcome.refused
    with engine.connect() as conn:
        stored = conn.scalars(sa.text('SELECT status_code FROM "Statuses_monitor"')).all()
    assert sorted(stored, key=lambda s: s or 0) == sorted(statuses, key=lambda s: s or 0)


def test_last_never_moves_back_to_an_older_row(settings: Any) -> None:
    newer = datetime(2026, 12, 3, 12, 0, 10, tzinfo=UTC)
    store(settings, [record("Ordered", ts=newer.isoformat(), latency_ms=2.0)])
    store(settings, [record("Ordered", ts=(newer - timedelta(seconds=5)).isoformat())])
    store(
        settings,
        [
            record("Ordered", ts=(newer - timedelta(seconds=1)).isoformat()),
            record("Ordered", ts=(newer - timedelta(seconds=9)).isoformat()),
        ],
    )

    last = read_last(settings, ["Ordered_monitor"])
    assert last["ts"] == last["date"] == "2026-12-03T12:00:10Z"
    assert last["latency_ms"] == 2.0


def test_names_that_would_share_a_table_are_refused_at_the_worker(
    settings: Any, engine: sa.Engine
) -> None:
    store(settings, [record("feed-a.b")])
    outcome = store(settings, [record("feed_a-b"), record("feed-a.b")])

    assert outcome.stored == 1
    assert "already holds resource 'feed-a.b'" in outcome.refused[0]
    with engine.connect() as conn:
        names = conn.scalars(sa.text('SELECT DISTINCT resource FROM "feed_a_b_monitor"')).all()
    assert names == ["feed-a.b"]


def test_two_workers_creating_one_new_table_at_once_both_succeed(
    settings: Any, engine: sa.Engine
) -> None:
    from chomp_tasks.storage import forget_known_monitors
    from chomp_tasks.storage.monitors import ensure_monitor

    racers = 6
    barrier = threading.Barrier(racers, timeout=30)
    errors: list[BaseException] = []

    def create() -> None:
        # Each racer has its own connection, as separate worker processes would.
        own = sa.create_engine(settings.database_url, poolclass=sa.pool.NullPool)
        conn = own.connect()
        try:
            barrier.wait()
            ensure_monitor(conn, "resource", "RaceTable")
            conn.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    forget_known_monitors()
    threads = [threading.Thread(target=create) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with engine.connect() as conn:
        registered = conn.scalar(
            sa.text("SELECT count(*) FROM chomp_monitors WHERE name = 'RaceTable_monitor'")
        )
        partitions = conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE c.relname = 'RaceTable_monitor'"
            )
        )
    assert (registered, partitions) == (1, 1)
