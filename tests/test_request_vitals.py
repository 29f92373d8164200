"""How a worker checks one record: every bad field is refused with a message naming it."""

import math
import uuid
from datetime import UTC, datetime

import pytest

from chomp_tasks import InvalidRecord
from chomp_tasks.request_vitals import FIELDS, RequestVitals, micros, parse_record, parse_row

GOOD = {
    "resource_name": "BinanceETH",
    "latency_ms": 150.5,
    "response_bytes": 2048,
    "status_code": 200,
    "field_count": 5,
    "instance_name": "ingester-01",
    "ts": "2026-12-03T12:00:00+00:00",
    "id": "6f1c1c5e-9d7e-4d44-8f5d-2a3c4b5d6e7f",
}


def test_a_good_record_is_parsed() -> None:
    record = parse_record(GOOD)
    assert record.resource_name == "BinanceETH"
    assert record.ts == datetime(2026, 12, 3, 12, tzinfo=UTC)
    assert record.id == "6f1c1c5e9d7e4d448f5d2a3c4b5d6e7f"


def test_defaults_fill_optional_fields() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    record = parse_record(
        {"resource_name": "r", "latency_ms": 1, "response_bytes": 0},
        default_id="00000000000000000000000000000001",
        now=now,
    )
    assert (record.ts, record.status_code, record.field_count, record.instance_name) == (
        now,
        None,
        0,
        "",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"resource_name": "bad name"}, "contains ' '"),
        ({"resource_name": None}, "missing field.*resource_name"),
        ({"latency_ms": None}, "missing field.*latency_ms"),
        ({"latency_ms": "fast"}, "latency_ms must be a number"),
        ({"latency_ms": math.nan}, "latency_ms must be a finite number"),
        ({"latency_ms": math.inf}, "latency_ms must be a finite number"),
        ({"latency_ms": -1.0}, "latency_ms must be a finite number >= 0"),
        ({"latency_ms": True}, "latency_ms must be a number"),
        ({"response_bytes": -5}, "response_bytes must be between 0"),
        ({"response_bytes": 1.5}, "response_bytes must be a whole number"),
        ({"status_code": 99}, "status_code must be between 100 and 999"),
        ({"status_code": 1000}, "status_code must be between 100 and 999"),
        ({"status_code": "200"}, "status_code must be an integer"),
        ({"field_count": -1}, "field_count must be between 0"),
        ({"field_count": 2**31}, "field_count must be between 0 and 2147483647"),
        ({"instance_name": "i" * 256}, "instance_name .* 256 characters; at most 255"),
        ({"instance_name": "in\x00st"}, "instance_name .* contains a NUL character"),
        ({"instance_name": "in\udcffst"}, "character 2 is a lone surrogate"),
        ({"instance_name": 7}, "instance_name must be a string, got int"),
        ({"ts": "yesterday"}, "ts 'yesterday' is not an ISO-8601 timestamp"),
        ({"ts": 1700000000}, "ts must be an ISO-8601 string"),
        ({"id": "not-a-uuid"}, "id 'not-a-uuid' is not a UUID"),
        ({"colour": "blue"}, "unknown field.*'colour'"),
    ],
)
def test_bad_fields_are_refused_with_their_name(change: dict[str, object], message: str) -> None:
    record = {**GOOD, **change}
    record = {k: v for k, v in record.items() if v is not None}
    with pytest.raises(InvalidRecord, match=message):
        parse_record(record)


def test_a_record_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidRecord, match="must be a JSON object"):
        parse_record(["BinanceETH", 1.0])  # type: ignore[arg-type]


def test_ids_in_any_uuid_spelling_are_stored_as_32_lowercase_hex_digits() -> None:
    plain = uuid.uuid4()
    for spelling in (plain.hex, str(plain), plain.hex.upper(), f"{{{plain}}}"):
        assert parse_record({**GOOD, "id": spelling}).id == plain.hex


GOOD_ROW = [GOOD[name] for name in FIELDS]


def test_a_row_is_checked_like_a_record_and_keeps_its_values() -> None:
    row = parse_row([*GOOD_ROW[:6], 1_796_299_200_000_000, GOOD["id"]])

    assert row == (
        "BinanceETH",
        "ingester-01",
        5,
        150.5,
        2048,
        200,
        1_796_299_200_000_000,
        "6f1c1c5e9d7e4d448f5d2a3c4b5d6e7f",
    )
    vitals = RequestVitals.from_row(row)
    assert vitals.ts == datetime(2026, 12, 3, 12, tzinfo=UTC) and vitals.to_row() == row


def test_a_row_may_carry_an_iso_timestamp_and_defaults_fill_its_gaps() -> None:
    assert parse_row(GOOD_ROW)[6] == micros(datetime(2026, 12, 3, 12, tzinfo=UTC))
    row = parse_row(["r", None, None, 1, 0, None, None, None], default_id="0" * 32, now_us=7)
    assert row == ("r", "", 0, 1.0, 0, None, 7, "0" * 32)


@pytest.mark.parametrize(
    ("position", "value", "message"),
    [
        (0, "bad name", "contains ' '"),
        (0, None, "missing field.*resource_name"),
        (3, None, "missing field.*latency_ms"),
        (3, "fast", "latency_ms must be a number"),
        (4, -5, "response_bytes must be between 0"),
        (2, 2**31, "field_count must be between 0 and 2147483647"),
        (5, 1000, "status_code must be between 100 and 999"),
        (1, "in\x00st", "instance_name .* contains a NUL character"),
        (6, 1.5e15, "ts must be whole microseconds since 1970-01-01 UTC or an ISO-8601 string"),
        (6, 10**18, "ts 1000000000000000000 is outside the years 1 to 9999"),
        (6, "yesterday", "ts 'yesterday' is not an ISO-8601 timestamp"),
        (7, "not-a-uuid", "id 'not-a-uuid' is not a UUID"),
    ],
)
def test_bad_values_of_a_row_are_refused_with_their_field_name(
    position: int, value: object, message: str
) -> None:
    row = list(GOOD_ROW)
    row[position] = value
    with pytest.raises(InvalidRecord, match=message):
        parse_row(row)


def test_a_row_of_the_wrong_length_says_what_a_row_holds() -> None:
    with pytest.raises(InvalidRecord, match=r"a record row must hold 8 values .*resource_name"):
        parse_row(GOOD_ROW[:7])
    with pytest.raises(InvalidRecord, match="must be a JSON object or array, got str"):
        parse_row("BinanceETH")
