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
BROKER_CONNECT_TIMEOUT_SECONDS = 3.0
BROKER_SOCKET_TIMEOUT_SECONDS = 5.0
# Long enough for a worker to finish a batch, short enough that the messages of a worker killed
# mid-batch come back within minutes rather than the transport's default hour.
VISIBILITY_TIMEOUT_SECONDS = 300


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
        "broker_transport_options": {
            "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_SECONDS,
            "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
            "confirm_publish": True,
        },
        "task_serializer": "json",
        "accept_content": ["json", BATCH_CONTENT_TYPE],
        "result_accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_default_queue": settings.queue,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0.1,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "worker_prefetch_multiplier": 4,
        "beat_schedule": {},
        "timezone": "UTC",
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
