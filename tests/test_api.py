"""The HTTP API over real PostgreSQL and Redis: answers, every error path, and no 500s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chomp_tasks.api import create_app
from chomp_tasks.config import Settings
from chomp_tasks.history import INTERVALS
from tests.read_fixtures import (  # noqa: F401  (fixtures used by name)
    WORKER,
    WORKER_MONITOR,
    big,
    read_env,
    read_settings,
    seeded,
)

ERROR_STATUSES = {"400", "404", "422", "503"}
SECRET = "s3cret-pw"


@pytest.fixture(scope="module")
def client(seeded: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(seeded)) as test_client:
        yield test_client


def detail(response: Any) -> str:
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    return str(body["detail"])


def test_last_of_one_monitor_is_its_newest_row(client: TestClient) -> None:
    response = client.get("/last/ReadTestAPI_monitor")

    assert response.status_code == 200
    assert response.json() == {
        "ts": "2024-01-01T13:30:00Z",
        "date": "2024-01-01T13:30:00Z",
        "instance_name": "ingester-d",
        "field_count": 5,
        "latency_ms": 400.0,
        "response_bytes": 0,
        "status_code": None,
    }


def test_last_of_several_monitors_is_keyed_by_name(client: TestClient) -> None:
    body = client.get(f"/last/ReadTestAPI_monitor,{WORKER_MONITOR}").json()

    assert list(body) == ["ReadTestAPI_monitor", WORKER_MONITOR]
    assert body["ReadTestAPI_monitor"]["latency_ms"] == 400.0
    # Nothing cached this instance, so its latest row comes from the table.
    assert body[WORKER_MONITOR]["cpu_usage"] == 30.0
    assert body[WORKER_MONITOR]["instance_name"] == WORKER


def test_last_of_an_unknown_monitor_is_404_naming_it(client: TestClient) -> None:
    response = client.get("/last/ReadTestAPI_monitor,Ghost_monitor")

    assert response.status_code == 404
    assert "'Ghost_monitor'" in detail(response)


@pytest.mark.parametrize(
    "path", ["/last/BinanceETH", "/last/1abc_monitor", "/schema/a%20b_monitor"]
)
def test_a_malformed_name_is_400(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 400
    assert "is not a table name" in detail(response)


def test_history_buckets_over_http(client: TestClient) -> None:
    response = client.get(
        "/history/ReadTestAPI_monitor",
        params={"from_date": "2024-01-01", "to_date": "2024-01-02", "interval": "h1"},
    )

    assert response.status_code == 200
    assert [(r["ts"], r["count"], r["latency_ms"]) for r in response.json()] == [
        ("2024-01-01T12:00:00Z", 3, 120.0),
        ("2024-01-01T13:00:00Z", 1, 400.0),
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from_date": "last tuesday"}, "from_date 'last tuesday' is not an ISO-8601 date"),
        ({"to_date": "2024-02-30"}, "to_date '2024-02-30' is not an ISO-8601 date"),
        ({"from_date": "2024-01-02", "to_date": "2024-01-01"}, "must be before to_date"),
        ({"interval": "h3"}, "interval 'h3' is unknown; use one of"),
    ],
)
def test_history_with_a_bad_parameter_is_400_naming_it(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    response = client.get("/history/ReadTestAPI_monitor", params=params)

    assert response.status_code == 400
    assert message in detail(response)


def test_history_of_an_unknown_monitor_is_404(client: TestClient) -> None:
    response = client.get("/history/Ghost_monitor")

    assert response.status_code == 404
    assert "'Ghost_monitor'" in detail(response)


def test_history_over_the_cap_is_422_saying_how_to_narrow(
    client: TestClient, big: Settings
) -> None:
    params = {"from_date": "2024-02-01", "to_date": "2024-02-02"}

    over = client.get("/history/ReadTestBig_monitor", params=params)
    hourly = client.get("/history/ReadTestBig_monitor", params={**params, "interval": "h1"})

    assert over.status_code == 422
    assert "more than 10000 rows; narrow the range or choose a wider interval" in detail(over)
    assert [r["count"] for r in hourly.json()] == [3600, 3600, 2801]


def test_schema_describes_kind_table_fields_and_first_sight(client: TestClient) -> None:
    body = client.get(f"/schema/ReadTestAPI_monitor,{WORKER_MONITOR}").json()

    resource, instance = body["ReadTestAPI_monitor"], body[WORKER_MONITOR]
    assert (resource["kind"], resource["table"], resource["source_name"]) == (
        "resource",
        "ReadTestAPI_monitor",
        "ReadTestAPI",
    )
    assert {"name": "latency_ms", "type": "float64", "transient": False} in resource["fields"]
    assert instance["kind"] == "instance"
    assert {"name": "location", "type": "string", "transient": True} in instance["fields"]
    assert resource["created"].endswith("Z")


def test_schema_without_names_lists_every_monitor(client: TestClient) -> None:
    body = client.get("/schema").json()

    assert {"ReadTestAPI_monitor", "ReadTestCal_monitor", WORKER_MONITOR} <= set(body)


def test_openapi_lists_every_endpoint_with_its_parameters_and_errors(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert set(paths) == {"/last/{names}", "/history/{name}", "/schema/{names}", "/schema"}
    for path, operations in paths.items():
        assert set(operations) == {"get"}, path
        assert set(operations["get"]["responses"]) >= ERROR_STATUSES, path
    history_params = {p["name"]: p for p in paths["/history/{name}"]["get"]["parameters"]}
    assert set(history_params) == {"name", "from_date", "to_date", "interval"}
    assert history_params["interval"]["schema"]["enum"] == list(INTERVALS)


def test_other_methods_are_refused_as_json(client: TestClient) -> None:
    response = client.post("/last/ReadTestAPI_monitor")

    assert response.status_code == 405
    assert detail(response) == "Method Not Allowed"


def test_an_unreachable_database_is_503_without_secrets() -> None:
    down = Settings.from_mapping(
        {
            "CHOMP_DATABASE_URL": f"postgresql+psycopg2://postgres:{SECRET}@127.0.0.1:1/nowhere",
            "CHOMP_REDIS_URL": f"redis://:{SECRET}@127.0.0.1:1/0",
        }
    )
    with TestClient(create_app(down)) as down_client:
        responses = [
            down_client.get(p) for p in ("/last/A_monitor", "/schema", "/history/A_monitor")
        ]

    assert [r.status_code for r in responses] == [503, 503, 503]
    assert all(detail(r) == "PostgreSQL is unreachable; try again later" for r in responses)


def test_an_unreachable_cache_falls_back_to_the_table(
    seeded: Settings, read_env: dict[str, str]
) -> None:
    no_cache = Settings.from_mapping({**read_env, "CHOMP_REDIS_URL": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(no_cache)) as no_cache_client:
        response = no_cache_client.get("/last/ReadTestAPI_monitor")

    assert response.status_code == 200
    assert response.json()["latency_ms"] == 400.0


def _value(schema: dict[str, Any]) -> st.SearchStrategy[str | None]:
    junk = st.text(st.characters(codec="utf-8"), max_size=30)
    dates = st.datetimes().map(lambda d: d.isoformat())
    choices = schema.get("enum") or []
    for option in schema.get("anyOf", []):
        choices = choices or option.get("enum", [])
    return st.one_of(st.none(), junk, dates, st.sampled_from(choices or ["x"]))


def _requests(openapi: dict[str, Any]) -> st.SearchStrategy[tuple[str, dict[str, str]]]:
    """Draw GET requests from the app's own OpenAPI document: real names, junk and dates."""
    names = st.sampled_from(["ReadTestAPI_monitor", WORKER_MONITOR, "Ghost_monitor", "a,b"])
    segment = st.one_of(names, st.text(st.characters(codec="utf-8"), max_size=70))

    def for_path(path: str) -> st.SearchStrategy[tuple[str, dict[str, str]]]:
        params = openapi["paths"][path]["get"].get("parameters", [])
        query = {p["name"]: _value(p["schema"]) for p in params if p["in"] == "query"}
        filled = st.builds(
            lambda s: path.replace("{names}", quote(s, safe="")).replace(
                "{name}", quote(s, safe="")
            ),
            segment,
        )
        return st.tuples(filled, st.fixed_dictionaries(query))

    return st.sampled_from(sorted(openapi["paths"])).flatmap(for_path)


def test_no_request_drawn_from_the_openapi_document_gives_a_500(client: TestClient) -> None:
    openapi = client.get("/openapi.json").json()

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_requests(openapi))
    def check(request: tuple[str, dict[str, str]]) -> None:
        path, query = request
        params = {k: v for k, v in query.items() if v is not None}
        response = client.get(path, params=params)

        assert response.status_code in {200, 400, 404, 422}, (path, params, response.text)
        if response.status_code != 200:
            detail(response)

    check()
