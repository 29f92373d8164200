"""The Celery application of chomp_tasks, configured from the CHOMP_* settings."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import orjson
from celery import Celery
from kombu.serialization import register

from chomp_tasks.config import Settings, get_settings
from chomp_tasks.errors import ConfigError

logger = logging.getLogger(__name__)

BATCH_SERIALIZER = "chomp-json"
BATCH_CONTENT_TYPE = "application/x-chomp+json"
# Every wait on the broker is bounded. A broker that accepts connections but never answers
# would otherwise hold a publish for minutes: kombu gives redis-py no socket timeout unless told,
# and each publish attempt waits for the full timeout. With one retry, `.delay()` gives up after
# about three socket timeouts; a closed port fails at once.
BROKER_CONNECT_TIMEOUT_SECONDS = 3.0
BROKER_SOCKET_TIMEOUT_SECONDS = 2.0
PUBLISH_MAX_RETRIES = 1
# The Redis transport sweeps for unacknowledged messages of dead workers only every
# interval * throttle seconds (100 s by kombu's defaults); this keeps the sweep within a fifth of
# the visibility timeout and at most every 10 s, so a crashed worker's messages return soon after
# the timeout. One sweep is one ZRANGE under a short lock.
RESTORE_SWEEP_MAX_SECONDS = 10.0


def _register_batch_serializer() -> None:
    """Register orjson under its own content type for batches of records.

    Batches are encoded by a background thread of the ingester; orjson does that several times
    faster than the json module, which holds the interpreter lock for the whole encoding. It
    is still plain JSON, and its own content type leaves Celery's json codec untouched.
    """
    register(
        BATCH_SERIALIZER,
        orjson.dumps,
        orjson.loads,
        content_type=BATCH_CONTENT_TYPE,
        content_encoding="utf-8",
    )


def celery_settings(settings: Settings) -> dict[str, Any]:
    """Return the Celery configuration derived from chomp_tasks settings."""
    return {
        "broker_url": settings.broker_url,
        "broker_connection_timeout": BROKER_CONNECT_TIMEOUT_SECONDS,
        "broker_connection_retry_on_startup": True,
        # A worker that loses the broker keeps reconnecting rather than exiting after 100 tries.
        "broker_connection_max_retries": None,
        "broker_transport_options": _transport_options(settings),
        "worker_consumer": "chomp_tasks.consumer:ChompConsumer",
        "task_serializer": "json",
        "accept_content": ["json", BATCH_CONTENT_TYPE],
        "result_accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_default_queue": settings.queue,
        # Redis keeps unacknowledged messages of a worker that dies; RabbitMQ requeues them when
        # its connection drops. Either way the tasks running then are delivered again, so a
        # connection loss does not need to leave them running twice.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_publish_retry_policy": {
            "max_retries": PUBLISH_MAX_RETRIES,
            "interval_start": 0.1,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "worker_prefetch_multiplier": 4,
        "beat_schedule": {},
        "timezone": "UTC",
    }


def _transport_options(settings: Settings) -> dict[str, Any]:
    """Return the broker transport options: bounded socket waits and a prompt restore sweep.

    Redis reads all of them; RabbitMQ's transport ignores the ones it does not know.
    """
    visibility = settings.visibility_timeout_seconds
    return {
        "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
        "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_SECONDS,
        # A message a worker took but did not acknowledge within this time goes back to the
        # queue. Kept well above the longest retry delay (see tasks.py), and above the time a
        # batch takes to store, or the message would be delivered twice (stored once).
        "visibility_timeout": visibility,
        "unacked_restore_interval": max(1.0, min(RESTORE_SWEEP_MAX_SECONDS, visibility / 5)),
        "unacked_restore_throttle": 1,
        "confirm_publish": True,
    }


def _overrides(module_name: str) -> dict[str, Any]:
    """Return the Celery settings an operator set in an optional module such as celeryconfig."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"CHOMP_CELERY_CONFIG={module_name!r} cannot be imported: {exc}; "
            "run from the folder that holds it, or put that folder on PYTHONPATH"
        ) from None
    return {k: v for k, v in vars(module).items() if k.islower() and not k.startswith("_")}


def create_app(settings: Settings | None = None) -> Celery:
    """Return a Celery application configured for chomp_tasks."""
    settings = settings or get_settings()
    _register_batch_serializer()
    app = Celery("chomp_tasks", set_as_current=False)
    app.conf.update(celery_settings(settings))
    if settings.celery_config_module:
        app.conf.update(_overrides(settings.celery_config_module))
    return app


app = create_app()
