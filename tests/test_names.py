"""The naming rule, as Monitor applies it to resource names."""

import pytest

from chomp_tasks import InvalidName, InvalidRecord, Monitor
from chomp_tasks.names import check_table_name, table_name


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("BinanceETH", "BinanceETH_monitor"),
        ("chomp-worker-01", "chomp_worker_01_monitor"),
        ("api.v2-prices", "api_v2_prices_monitor"),
        ("x", "x_monitor"),
        ("a" * 55, "a" * 55 + "_monitor"),
    ],
)
def test_names_map_to_tables_keeping_case(name: str, table: str) -> None:
    assert table_name(name) == table
    assert len(table) <= 63


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "empty"),
        ("a" * 56, "at most 55"),
        ("1abc", "start with an ASCII letter"),
        ("_abc", "start with an ASCII letter"),
        ("has space", "contains ' '"),
        ('quo"te', "contains '\"'"),
        ("it's", 'contains "\'"'),
        ("Binancé", "contains 'é'"),
        ("semi;colon", "contains ';'"),
        ("ΔETH", "start with an ASCII letter"),
    ],
)
def test_monitor_refuses_bad_names_naming_the_rule(name: str, rule: str) -> None:
    with pytest.raises(InvalidName, match=rule.replace("(", r"\(")) as caught:
        Monitor(name)
    assert isinstance(caught.value, ValueError)


def test_monitor_refuses_a_non_string_name() -> None:
    with pytest.raises(InvalidName, match="must be a string"):
        Monitor(42)  # type: ignore[arg-type]


def test_two_names_sharing_a_table_are_refused_in_one_process() -> None:
    Monitor("shared-table.name")
    Monitor("shared-table.name")  # the same name again is fine
    with pytest.raises(InvalidName, match="shared_table_name_monitor"):
        Monitor("shared_table-name")


@pytest.mark.parametrize("text", ["BinanceETH", "x_monitor_", "1a_monitor", "a b_monitor", ""])
def test_text_that_is_no_monitor_table_is_refused(text: str) -> None:
    with pytest.raises(InvalidName):
        check_table_name(text)


@pytest.mark.parametrize(
    ("instance_name", "rule"),
    [
        ("i" * 256, "256 characters; at most 255"),
        ("in\x00st", "contains a NUL character"),
        ("host\udcff", "not valid Unicode"),
        (7, "must be a string, got int"),
    ],
)
def test_monitor_refuses_an_instance_name_no_worker_would_store(
    instance_name: object, rule: str
) -> None:
    # Refused here, not by the worker after every record of the Monitor has been sent.
    with pytest.raises(InvalidRecord, match=f"instance_name .*{rule}"):
        Monitor("WellNamed", instance_name=instance_name)  # type: ignore[arg-type]
