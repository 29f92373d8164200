import logging
import time
from collections.abc import Iterator

import orjson
import pytest
import requests

from chomp_tasks.geolocation import Geolocation, lookup, merge
from tests.lookup_server import DA_NANG as SEED_LOCATION
from tests.lookup_server import Answer, LookupServer, closed_port_url

TIMEOUT_SECONDS = 0.5
HANG_SECONDS = 30.0
IPV4 = "203.0.113.7"
IPV6 = "2001:db8::7"
DA_NANG = {**SEED_LOCATION, "query": IPV4}
PLACE = {
    "coordinates": "16.0685,108.2215",
    "timezone": "Asia/Ho_Chi_Minh",
    "country_code": "VN",
    "location": "Da Nang, Da Nang, Vietnam",
    "isp": "Viettel Group",
}
EVERYTHING = Geolocation(ipv4=IPV4, ipv6=IPV6, **PLACE)


@pytest.fixture
def server() -> Iterator[LookupServer]:
    with LookupServer() as running:
        running.answers.update(
            {
                "/ipv4": Answer.json({"ip": IPV4}),
                "/ipv6": Answer.json({"ip": IPV6}),
                "/geo": Answer.json(DA_NANG),
            }
        )
        yield running


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="chomp_tasks.geolocation")
    return caplog


def look_up(server: LookupServer, ipv6_url: str | None = None) -> Geolocation | None:
    return lookup(
        server.url("/ipv4"),
        ipv6_url or server.url("/ipv6"),
        server.url("/geo/{ip}?fields=66846719"),
        timeout_seconds=TIMEOUT_SECONDS,
    )


def warning_lines(logs: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in logs.records if r.levelno >= logging.WARNING]


def test_good_answers_give_addresses_and_place(
    server: LookupServer, logs: pytest.LogCaptureFixture
) -> None:
    found = look_up(server)

    assert found == EVERYTHING
    assert found.to_dict() == {"ipv4": IPV4, "ipv6": IPV6, **PLACE}
    assert server.paths[-1] == f"/geo/{IPV4}?fields=66846719"
    assert logs.records == []


def test_unreachable_ipv6_service_is_normal(
    server: LookupServer, logs: pytest.LogCaptureFixture
) -> None:
    found = look_up(server, ipv6_url=closed_port_url("/ipv6"))

    assert found == Geolocation(ipv4=IPV4, **PLACE)
    assert warning_lines(logs) == []


def test_ipv6_answered_with_an_error_is_warned_once(
    server: LookupServer, logs: pytest.LogCaptureFixture
) -> None:
    del server.answers["/ipv6"]

    found = look_up(server)

    assert found == Geolocation(ipv4=IPV4, **PLACE)
    assert warning_lines(logs) == [f"Address lookup at {server.host!r}: HTTP 404"]


def test_ipv6_is_the_primary_address_without_ipv4(
    server: LookupServer, logs: pytest.LogCaptureFixture
) -> None:
    server.answers["/ipv4"] = Answer(status=503)

    found = look_up(server)

    assert found == Geolocation(ipv6=IPV6, **PLACE)
    assert server.paths[-1] == f"/geo/{IPV6}?fields=66846719"
    assert warning_lines(logs) == [f"Address lookup at {server.host!r}: HTTP 503"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer(status=500, body=b"oops"), "HTTP 500"),
        (Answer.json({"error": "slow down"}, status=429), "rate limited (HTTP 429)"),
        (Answer(body=b"<html>hello</html>"), "answer is not JSON: '<html>hello</html>'"),
        (Answer.json({"address": IPV4}), "answer has no 'ip' text: {'address': '203.0.113.7'}"),
        (Answer.json({"ip": "999.1.1.1"}), "answer holds no valid address: '999.1.1.1'"),
        (Answer.json({"ip": IPV6}), f"answer {IPV6!r} is not an IPv4 address"),
        (Answer.json(["203.0.113.7"]), "answer has no 'ip' text: ['203.0.113.7']"),
    ],
)
def test_no_usable_address_gives_none_and_one_warning(
    server: LookupServer, logs: pytest.LogCaptureFixture, answer: Answer, reason: str
) -> None:
    server.answers["/ipv4"] = answer

    found = look_up(server, ipv6_url=closed_port_url("/ipv6"))

    assert found is None
    assert warning_lines(logs) == [f"Address lookup at {server.host!r}: {reason}"]
    assert not any(path.startswith("/geo") for path in server.paths)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            Answer.json({"status": "fail", "message": "reserved range", "query": IPV4}),
            "service answered status 'fail', 'reserved range'",
        ),
        (Answer(status=429, body=b""), "rate limited (HTTP 429)"),
        (Answer(status=500), "HTTP 500"),
        (Answer(body=b"\x00\xffgarbage"), "answer is not JSON: '\\x00\\ufffdgarbage'"),
        (Answer.json("Da Nang"), "answer is not a JSON object: 'Da Nang'"),
    ],
)
def test_failed_place_lookup_keeps_addresses_and_last_good_place(
    server: LookupServer, logs: pytest.LogCaptureFixture, answer: Answer, reason: str
) -> None:
    server.answers["/geo"] = answer

    found = look_up(server)

    assert found == Geolocation(ipv4=IPV4, ipv6=IPV6)
    assert merge(EVERYTHING, found) == EVERYTHING
    assert warning_lines(logs) == [f"Geolocation lookup at {server.host!r}: {reason}"]


def test_odd_place_fields_are_left_empty(server: LookupServer) -> None:
    server.answers["/geo"] = Answer.json(
        {"status": "success", "lat": "16.0", "lon": 108.2, "city": "Da Nang", "country": "Vietnam"}
    )

    found = look_up(server)

    assert found == Geolocation(ipv4=IPV4, ipv6=IPV6, location="Da Nang, Vietnam")


@pytest.mark.parametrize("route", ["/ipv4", "/geo"])
def test_hanging_service_is_given_up_on(
    server: LookupServer, logs: pytest.LogCaptureFixture, route: str
) -> None:
    server.answers[route] = Answer(hang_seconds=HANG_SECONDS)
    started = time.monotonic()

    found = look_up(server)

    assert time.monotonic() - started < HANG_SECONDS
    assert merge(EVERYTHING, found) == EVERYTHING
    assert warning_lines(logs) == [
        f"{'Address' if route == '/ipv4' else 'Geolocation'} lookup at {server.host!r}: "
        f"no answer within {TIMEOUT_SECONDS:g} s"
    ]


def test_trickling_answer_is_cut_off(server: LookupServer, logs: pytest.LogCaptureFixture) -> None:
    server.answers["/geo"] = Answer(body=orjson.dumps(DA_NANG), trickle_seconds_per_byte=0.1)

    found = look_up(server)

    assert found == Geolocation(ipv4=IPV4, ipv6=IPV6)
    assert warning_lines(logs) == [
        f"Geolocation lookup at {server.host!r}: answer still arriving at the deadline"
    ]


def test_oversized_answer_is_refused(server: LookupServer, logs: pytest.LogCaptureFixture) -> None:
    server.answers["/ipv4"] = Answer(body=b'{"ip": "' + b"1" * 20_000 + b'"}')

    assert look_up(server) == Geolocation(ipv6=IPV6, **PLACE)
    assert warning_lines(logs) == [
        f"Address lookup at {server.host!r}: answer larger than 16384 bytes"
    ]


def test_credentials_and_query_never_reach_the_log(
    server: LookupServer, logs: pytest.LogCaptureFixture
) -> None:
    server.answers["/geo"] = Answer(status=403)
    geo_url = f"http://user:hunter2@{server.host}/geo/{{ip}}?key=s3cret"

    lookup(server.url("/ipv4"), server.url("/ipv6"), geo_url, timeout_seconds=TIMEOUT_SECONDS)

    assert warning_lines(logs) == [f"Geolocation lookup at {server.host!r}: HTTP 403"]


def test_given_session_is_used_and_left_open(server: LookupServer) -> None:
    with requests.Session() as session:
        session.headers["User-Agent"] = "chomp-tasks-test"
        first = lookup(
            server.url("/ipv4"), server.url("/ipv6"), server.url("/geo/{ip}"), session=session
        )
        second = lookup(
            server.url("/ipv4"), server.url("/ipv6"), server.url("/geo/{ip}"), session=session
        )

    assert first == second == EVERYTHING


def test_merge_keeps_last_good_values() -> None:
    partial = Geolocation(ipv4="198.51.100.1", timezone="Asia/Bangkok")

    assert merge(None, None) is None
    assert merge(None, partial) == partial
    assert merge(EVERYTHING, None) == EVERYTHING
    assert merge(EVERYTHING, partial) == Geolocation(
        **{**EVERYTHING.to_dict(), "ipv4": "198.51.100.1", "timezone": "Asia/Bangkok"}
    )
