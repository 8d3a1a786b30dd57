"""Thin Celery wrappers: each takes ids, imports its service inside, and is idempotent."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)


# After a failed publish, requests skip the broker for this long instead of each waiting
# for its timeouts (a Redis that hangs costs seconds per try); the sweeps catch up.
PUBLISH_BREAKER_SECONDS = 10.0
_publish_failed_at = float("-inf")


def dispatch_on_commit(task, *args, **kwargs) -> None:
    """Queue `task(*args, **kwargs)` once the current transaction commits, and never fail the
    request over it: with the broker down the write is already committed, so a 500 would
    only make the client retry a write that succeeded. A sweep (geocode_sweep, jobs_sweep)
    dispatches what was missed. Nobody reads these results, so none is subscribed to."""

    def send():
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


@shared_task(bind=True, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=5)
def event_geocode(self, event_id: int) -> dict:
    """Give an event placed by coordinates only its gazetteer city and region."""
    from tracker.services.geocoding import event_geocode as geocode

    return geocode(event_id=event_id)


@shared_task
def geocode_sweep(limit: int = 200, grace_seconds: int = 120) -> dict:
    """Run by beat: queue geocoding again for events whose dispatch was missed (broker down
    at the time, task lost with an unpersisted Redis). Idempotent and bounded per run;
    events younger than `grace_seconds` are left to their own dispatch."""
    import datetime as dt

    from tracker.services.geocoding import events_awaiting_geocoding

    ids = events_awaiting_geocoding(limit=limit, grace=dt.timedelta(seconds=grace_seconds))
    for event_id in ids:
        event_geocode.apply_async((event_id,), ignore_result=True)
    return {"dispatched": len(ids)}


@shared_task
def heartbeat() -> float:
    """Run by beat every minute; /healthz shows how long ago a worker last ran it."""
    from tracker.health import HEARTBEAT_KEY

    now = time.time()
    cache.set(HEARTBEAT_KEY, now, timeout=None)
    return now


# The job tasks are acknowledged when they end, and handed back to the broker when their
# worker process dies (a SIGKILL, the OOM killer): another worker then runs the job again,
# from the start, since its transaction died with the worker (see tracker.services.jobs).
JOB_TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def import_job_run(self, job_id: int) -> dict:
    """Import the file of a queued ImportJob; a finished job is left as it is."""
    from tracker.services.imports import import_job_run as run

    job = run(job_id=job_id)
    return {"job": job.pk, "status": job.status, "message": job.message}


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def export_job_run(self, job_id: int) -> dict:
    """Write the file of a queued ExportJob; a finished job is left as it is."""
    from tracker.services.exports import export_job_run as run

    job = run(job_id=job_id)
    return {"job": job.pk, "status": job.status, "rows": job.rows_written}


@shared_task
def jobs_sweep() -> dict:
    """Run by beat every minute: re-queue (or fail) import and export jobs whose worker is
    gone, and dispatch again jobs left queued for minutes."""
    from tracker.services.jobs import jobs_sweep as sweep

    return sweep()
