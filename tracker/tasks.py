"""Thin Celery wrappers: each takes ids, imports its service inside, and is idempotent."""

from __future__ import annotations

import time

from celery import shared_task
from django.core.cache import cache


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
