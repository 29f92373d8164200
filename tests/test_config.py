"""Settings from the environment: defaults that work, and errors that name the variable."""

import pytest

from chomp_tasks.app import celery_settings
from chomp_tasks.config import Settings, mask_url
from chomp_tasks.errors import ConfigError


def test_defaults_point_at_local_services() -> None:
    settings = Settings.from_mapping({})

    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.database_url == "postgresql+psycopg2://postgres@127.0.0.1:5432/chomp"
    assert (settings.vitals_interval_seconds, settings.geo_refresh_seconds) == (30.0, 21600.0)


def test_a_bare_postgresql_url_gets_the_installed_driver() -> None:
    settings = Settings.from_mapping({"CHOMP_DATABASE_URL": "postgres://u:p@db:5432/chomp"})

    assert settings.database_url == "postgresql+psycopg2://u:p@db:5432/chomp"


def test_a_dead_workers_messages_come_back_within_two_minutes_by_default() -> None:
    options = celery_settings(Settings.from_mapping({}))["broker_transport_options"]

    assert options["visibility_timeout"] + options["unacked_restore_interval"] <= 120


def test_celery_accepts_json_only_and_keeps_no_results() -> None:
    conf = celery_settings(Settings.from_mapping({}))

    assert conf["task_serializer"] == "json"
    assert set(conf["accept_content"]) == {"json", "application/x-chomp+json"}
    assert conf["result_backend"] is None and conf["task_acks_late"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CHOMP_VITALS_INTERVAL", "soon", "CHOMP_VITALS_INTERVAL='soon' is not a number"),
        ("CHOMP_VITALS_INTERVAL", "0", "CHOMP_VITALS_INTERVAL='0' must be a number at least 1"),
        ("CHOMP_BATCH_SIZE", "9999", "CHOMP_BATCH_SIZE='9999' must be a number between 1 and 5000"),
        ("CHOMP_GEO_URL", "http://geo/", "CHOMP_GEO_URL='http://geo/' must contain"),
        ("CHOMP_REDIS_PREFIX", "a b", "CHOMP_REDIS_PREFIX='a b' must be"),
        ("CHOMP_DATABASE_URL", "mysql://u:pw@h/db", "must be a PostgreSQL URL"),
        ("CHOMP_SENDER", "threads", "CHOMP_SENDER='threads' must be one of process, thread"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as caught:
        Settings.from_mapping({name: value})
    assert "pw" not in str(caught.value)


def test_passwords_are_masked_in_urls() -> None:
    assert mask_url("amqp://guest:secret@127.0.0.1:5672//") == "amqp://guest:***@127.0.0.1:5672//"
    assert mask_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
