"""Refreshing a worker's location: shared lookups, last good values, never a column."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from chomp_tasks.cache import get_cache
from chomp_tasks.config import Settings
from chomp_tasks.identity import Instance
from chomp_tasks.location_refresh import refresh_location
from chomp_tasks.storage.kinds import INSTANCE
from tests.lookup_server import DA_NANG, Answer, LookupServer

DA_NANG_BYTES = orjson.dumps(DA_NANG)
LOCATION = {
    "coordinates": "16.0685,108.2215",
    "timezone": "Asia/Ho_Chi_Minh",
    "country_code": "VN",
    "location": "Da Nang, Da Nang, Vietnam",
    "isp": "Viettel Group",
}


@pytest.fixture
def server() -> Iterator[LookupServer]:
    with LookupServer() as running:
        running.answers.update(
            {
                "/ipv4": Answer.json({"ip": "203.0.113.20"}),
                "/ipv6": Answer(status=404, body=b"no route"),
                "/geo": Answer.json(DA_NANG),
            }
        )
        yield running


@pytest.fixture
def looked_up(settings: Settings, server: LookupServer) -> Settings:
    """Return this run's settings with the lookup services on the test server."""
    return dataclasses.replace(
        settings,
        ipv4_url=server.url("/ipv4"),
        ipv6_url=server.url("/ipv6"),
        geo_url=server.url("/geo/{ip}"),
    )


def instance(name: str) -> Instance:
    return Instance(uid=f"uid-{name}", pid=1234, hostname="test-host", name=name)


def transient(settings: Settings, name: str) -> dict[str, str]:
    cache = get_cache(settings)
    held = cache.client.hgetall(cache.transient_key(name.replace("-", "_") + "_monitor"))
    return {k.decode(): v.decode() for k, v in held.items()}


def registered(engine: sa.Engine, name: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT * FROM chomp_instances WHERE instance_name = :n"), {"n": name}
        ).one()
    return dict(row._mapping)


def geo_requests(server: LookupServer) -> int:
    return sum(path.startswith("/geo/") for path in server.paths)


def test_a_location_is_cached_as_transient_fields_and_registered(
    looked_up: Settings, server: LookupServer, engine: sa.Engine
) -> None:
    refresh_location(looked_up, instance("loc-first"))

    assert transient(looked_up, "loc-first") == {
        "ipv4": "203.0.113.20",
        "ipv6": "",
        **LOCATION,
    }
    row = registered(engine, "loc-first")
    assert (row["location"], row["isp"], row["uid"]) == (
        LOCATION["location"],
        "Viettel Group",
        "uid-loc-first",
    )
    assert row["located"] is not None
    assert not {f.name for f in INSTANCE.transient_fields} & vitals_columns(engine)


def vitals_columns(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        names = conn.scalars(
            sa.text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'chomp_instance_vitals'"
            )
        )
        return set(names)


@pytest.mark.parametrize(
    ("name", "failure"),
    [
        pytest.param("loc-error", Answer(status=500, body=b"oops"), id="http error"),
        pytest.param("loc-429", Answer(status=429, body=b"slow down"), id="rate limited"),
        pytest.param(
            "loc-fail", Answer.json({"status": "fail", "message": "private"}), id="status fail"
        ),
        pytest.param("loc-garbage", Answer(body=b"<html>not json</html>"), id="not json"),
    ],
)
def test_a_failed_location_lookup_keeps_the_last_good_values(
    looked_up: Settings, server: LookupServer, engine: sa.Engine, name: str, failure: Answer
) -> None:
    refresh_location(looked_up, instance(name))
    server.answers["/ipv4"] = Answer.json({"ip": "198.51.100.30"})  # a new address: not cached
    server.answers["/geo"] = failure

    held = refresh_location(looked_up, instance(name))

    assert held is not None and held.ipv4 == "198.51.100.30"
    assert {k: transient(looked_up, name)[k] for k in LOCATION} == LOCATION
    assert registered(engine, name)["location"] == LOCATION["location"]
    assert "/geo/198.51.100.30" in server.paths  # the failing service was asked


def test_no_address_at_all_keeps_everything(looked_up: Settings, server: LookupServer) -> None:
    refresh_location(looked_up, instance("loc-offline"))
    server.answers["/ipv4"] = Answer(status=503, body=b"down")

    refresh_location(looked_up, instance("loc-offline"))

    assert transient(looked_up, "loc-offline") == {"ipv4": "203.0.113.20", "ipv6": "", **LOCATION}


def test_workers_on_one_address_share_one_location_lookup(
    looked_up: Settings, server: LookupServer
) -> None:
    server.answers["/ipv4"] = Answer.json({"ip": "192.0.2.44"})
    server.answers["/geo"] = Answer(status=200, body=DA_NANG_BYTES, hang_seconds=0.5)
    names = [f"loc-shared-{i}" for i in range(4)]
    threads = [
        threading.Thread(target=refresh_location, args=(looked_up, instance(n))) for n in names
    ]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert geo_requests(server) == 1
    for name in names:
        assert transient(looked_up, name)["location"] == LOCATION["location"]
