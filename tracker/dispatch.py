"""Queueing Celery tasks from services after commit, by task name.

Services name the task instead of importing its module: the tasks import the services
(inside their bodies), so an import the other way would tie the two in a circle."""

from __future__ import annotations

import logging
import time

from celery import current_app
from django.db import transaction

logger = logging.getLogger("tracker.tasks")


# After a failed publish, requests skip the broker for this long instead of each waiting
# for its timeouts (a Redis that hangs costs seconds per try); the sweeps catch up.
PUBLISH_BREAKER_SECONDS = 10.0
_publish_failed_at = float("-inf")


def dispatch_on_commit(task_name: str, *args, **kwargs) -> None:
    """Queue the task named `task_name` with `(*args, **kwargs)` once the current
    transaction commits, and never fail the request over it: with the broker down the
    write is already committed, so a 500 would only make the client retry a write that
    succeeded. A sweep (geocode_sweep, jobs_sweep)
    dispatches what was missed. Nobody reads these results, so none is subscribed to."""

    def send():
        task = current_app.tasks[task_name]
        global _publish_failed_at
        if time.monotonic() - _publish_failed_at < PUBLISH_BREAKER_SECONDS:
            logger.warning("%s%r not queued (broker failing); left to its sweep", task.name, args)
            return
        try:
            task.apply_async(args, kwargs, ignore_result=True)
        except Exception as exc:  # kombu OperationalError, redis errors, a full broker ...
            _publish_failed_at = time.monotonic()
            logger.warning(
                "%s%r not queued (%s: %s); its sweep will dispatch it again",
                task.name,
                args,
                type(exc).__name__,
                exc,
            )

    transaction.on_commit(send)
