"""What `celery worker --monitored` adds to a worker: its identity, own queue and timers.

One row per worker per interval comes from the worker itself, not from beat. At each interval
boundary a timer in the worker's main process measures the worker (a few milliseconds, never
waiting) and sends the figures in `collect_instance_vitals` to a queue that only this worker
consumes, where a pool process stores them. So:

- every monitored worker samples itself, with or without `-B`, over Redis or RabbitMQ alike,
  with no fanout exchange (which the Redis transport only delivers when the producer has
  declared it) and no single-active beat to elect;
- several workers started with `-B` cannot duplicate a sample, since no beat sends it;
- a pool busy with long tasks delays the storing of a row, never its measurement;
- should a message still come twice (a redelivery after a crash), the row's ts is the
  interval's boundary and the table's key (instance_name, ts) keeps the first one only.

The embedded beat child is a child of the main process but no part of the worker's work, so
its pid is excluded from the sampled tree.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import TYPE_CHECKING, Any

from celery import bootsteps
from kombu.entity import Queue

from chomp_tasks.config import Settings, get_settings
from chomp_tasks.errors import ConfigError
from chomp_tasks.identity import Instance, instance_for_node
from chomp_tasks.instance_tasks import collect_instance_vitals, instance_args, refresh_geolocation
from chomp_tasks.names import table_name

if TYPE_CHECKING:
    from chomp_tasks.counters import Counters

logger = logging.getLogger(__name__)

# Figures are measured on time by the main process; only their storing waits for a free pool
# process. A row that could not be stored within this long is dropped, so a pool stuck on
# long tasks leaves gaps instead of an ever-growing queue.
VITALS_EXPIRY_SECONDS = 3600.0
# Long enough for the sample sent at an interval's boundary to have reached a pool process.
GEO_AFTER_SAMPLE_SECONDS = 1.0


def own_queue(settings: Settings, node_name: str) -> str:
    """Return the queue only the worker `node_name` consumes, for its own samples."""
    return f"{settings.queue}.instance.{node_name}"


class MonitoredWorker(bootsteps.Step):  # type: ignore[misc]
    """Give a --monitored worker its identity, its own queue and an empty resource count.

    Runs while the worker is built, before the pool forks, so that pool processes inherit
    the resource count's key and the consumer starts with the queue.
    """

    def __init__(self, worker: Any, monitored: bool = False, **kw: Any) -> None:
        # Imported here: an ingester importing chomp_tasks never loads Redis or psutil.
        from chomp_tasks.resource_tally import start_tally

        worker.chomp_instance = None
        if monitored:
            settings = get_settings()
            instance = _identity(worker.hostname, settings)
            worker.chomp_instance = instance
            # auto_delete: the queue of a worker that stops goes away with it on RabbitMQ.
            queue = own_queue(settings, worker.hostname)
            worker.app.amqp.queues.select_add(Queue(queue, routing_key=queue, auto_delete=True))
            start_tally(settings, instance.name)
            logger.info(
                "Instance %r: vitals every %g s into %r",
                instance.name,
                settings.vitals_interval_seconds,
                table_name(instance.name),
            )
        super().__init__(worker, **kw)


def _identity(node_name: str, settings: Settings) -> Instance:
    try:
        return instance_for_node(node_name, settings.instance_name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


class VitalsTimer(bootsteps.StartStopStep):  # type: ignore[misc]
    """Send this worker's vitals and geolocation tasks to its own queue, on time."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, consumer: Any, **kw: Any) -> None:
        self._entries: dict[str, Any] = {}
        self._queue = ""
        self._primed = False
        self._previous: Counters | None = None
        self._next_geo = 0.0
        self._send_failed = False
        super().__init__(consumer, **kw)

    def start(self, consumer: Any) -> None:
        """Prime the counters once, then arm the timers (again after a reconnection)."""
        worker = consumer.controller
        instance: Instance | None = getattr(worker, "chomp_instance", None)
        if instance is None:
            return

        settings = get_settings()
        self._queue = own_queue(settings, worker.hostname)
        first_start = not self._primed
        if first_start:
            self._prime(settings, instance, worker)
            self._next_geo = time.time()
        # Half an interval after priming, so the first rate is not over a sliver of time.
        after = time.time() + (settings.vitals_interval_seconds / 2 if first_start else 0.0)
        self._arm_vitals(consumer, settings, instance, after)
        self._arm_geolocation(consumer, settings, instance)

    def stop(self, consumer: Any) -> None:
        """Cancel the timers; a reconnection arms them again."""
        for entry in self._entries.values():
            entry.cancel()
        self._entries.clear()

    shutdown = stop

    def _prime(self, settings: Settings, instance: Instance, worker: Any) -> None:
        from chomp_tasks.sampler import collect_counters

        self._primed = True
        try:
            self._previous = collect_counters(os.getpid(), _excluded(worker))
        except Exception as exc:
            logger.warning(
                "Instance %r: start-up sample failed, first row is a gap: %s", instance.name, exc
            )

    def _arm_vitals(
        self, consumer: Any, settings: Settings, instance: Instance, after: float
    ) -> None:
        """Fire at the first interval boundary past `after`, for the interval just ended."""
        interval = settings.vitals_interval_seconds
        boundary = math.ceil(after / interval) * interval
        self._entries["vitals"] = consumer.timer.call_after(
            max(0.0, boundary - time.time()),
            self._send_vitals,
            (consumer, settings, instance, boundary),
        )

    def _send_vitals(
        self, consumer: Any, settings: Settings, instance: Instance, boundary: float
    ) -> None:
        # Armed first, so a failed send never ends the schedule; a late timer skips ahead.
        self._arm_vitals(consumer, settings, instance, max(boundary, time.time()) + 1e-3)
        from chomp_tasks.instance_vitals import measure

        try:
            current, figures = measure(
                instance.name, self._previous, os.getpid(), _excluded(consumer.controller)
            )
        except Exception:
            # Whatever psutil meets, the worker goes on; the next interval is a gap.
            logger.exception("Instance %r: sample failed", instance.name)
            self._previous = None
            return

        self._previous = current
        args = {
            "instance": instance_args(instance),
            "slot": boundary - settings.vitals_interval_seconds,
            "figures": figures.to_dict(),
        }
        self._send(collect_instance_vitals, args, VITALS_EXPIRY_SECONDS)

    def _arm_geolocation(self, consumer: Any, settings: Settings, instance: Instance) -> None:
        self._entries["geo"] = consumer.timer.call_after(
            max(0.0, self._next_geo - time.time()),
            self._send_geolocation,
            (consumer, settings, instance),
        )

    def _send_geolocation(self, consumer: Any, settings: Settings, instance: Instance) -> None:
        refresh = settings.geo_refresh_seconds
        self._next_geo = _just_after_a_sample(time.time() + refresh, settings)
        self._arm_geolocation(consumer, settings, instance)
        self._send(refresh_geolocation, {"instance": instance_args(instance)}, refresh)

    def _send(self, task: Any, kwargs: dict[str, Any], expires: float) -> None:
        """Publish to this worker's own queue; a failure is logged once until a send succeeds."""
        try:
            task.apply_async(kwargs=kwargs, queue=self._queue, expires=expires)
        except Exception as exc:
            if not self._send_failed:
                logger.warning("Queue %r: %s not sent: %s", self._queue, task.name, exc)
            self._send_failed = True
            return
        self._send_failed = False
        logger.debug("Queue %r: %s sent", self._queue, task.name)


def _just_after_a_sample(when: float, settings: Settings) -> float:
    """Return a moment just after the first sample due at or after `when`.

    A location lookup can take up to 6 x its timeout (18 s). Sent just after a sample, it has a
    whole interval to end before the next one, so even a pool of a single process never holds
    a sample behind a hanging lookup while the interval is longer than that; the default 30 s
    is. With a shorter interval and one pool process, a sample can wait up to 18 s, and its
    row still carries its own interval's ts.
    """
    interval = settings.vitals_interval_seconds
    return math.ceil(when / interval) * interval + GEO_AFTER_SAMPLE_SECONDS


def _excluded(worker: Any) -> list[int]:
    """Return the pids of the worker's children that are not its pool: the embedded beat."""
    beat = getattr(worker, "beat", None)
    pid = getattr(beat, "pid", None)
    return [pid] if isinstance(pid, int) else []
