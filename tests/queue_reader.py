"""A real Redis broker behind a proxy, and what reached a queue of its own, for sender tests."""

from __future__ import annotations

import base64
import dataclasses
import os
from typing import Any

import orjson
import redis

from chomp_tasks.config import Settings
from chomp_tasks.request_vitals import ID
from chomp_tasks.sender import publisher_for
from tests.faults import TcpProxy


class Broker:
    """The run's real Redis broker, reached through a proxy, and what reached its queue."""

    def __init__(self, proxy: TcpProxy, queue: str) -> None:
        from chomp_tasks.app import create_app

        db = Settings.from_mapping(os.environ).broker_url.rsplit("/", 1)[1]
        broker_url = self.broker_url = proxy.url("redis", f"/{db}")
        self.app = create_app(dataclasses.replace(Settings(), broker_url=broker_url, queue=queue))
        self.queue = queue
        self.client = redis.Redis.from_url(Settings.from_mapping(os.environ).broker_url)

        self.publish = publisher_for(self.app)

    def messages(self) -> list[tuple[list[Any], dict[str, Any]]]:
        """Return the args and kwargs of each message in the queue, oldest first."""
        found = []
        for raw in reversed(self.client.lrange(self.queue, 0, -1)):
            message = orjson.loads(raw)
            args, kwargs, _ = orjson.loads(base64.b64decode(message["body"]))
            found.append((args, kwargs))
        return found

    def batches(self) -> list[list[str]]:
        """Return the record ids of each message in the queue, oldest first."""
        return [[row[ID] for row in args[0]] for args, _ in self.messages()]

    def dropped_reported(self) -> int:
        """Return the sum of the drop counts the messages in the queue carry."""
        return sum(kwargs.get("dropped", 0) for _, kwargs in self.messages())

    def delivered_ids(self) -> list[str]:
        return [record_id for batch in self.batches() for record_id in batch]

    def relay_env(self) -> dict[str, str]:
        """Return the environment of a relay that publishes to this queue through the proxy."""
        return {**os.environ, "CHOMP_BROKER_URL": self.broker_url, "CHOMP_QUEUE": self.queue}
