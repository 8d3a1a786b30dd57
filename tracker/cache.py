"""A version number for the published data: cached aggregates put it in their keys, so one
increment after any change of events makes every older cached answer unreachable."""

from __future__ import annotations

from django.core.cache import cache

EVENTS_VERSION_KEY = "events:version"


def events_version() -> int:
    version = cache.get(EVENTS_VERSION_KEY)
    if version is None:
        cache.add(EVENTS_VERSION_KEY, 1, timeout=None)
        version = cache.get(EVENTS_VERSION_KEY, 1)
    return version


def events_changed() -> None:
    try:
        cache.incr(EVENTS_VERSION_KEY)
    except ValueError:
        cache.set(EVENTS_VERSION_KEY, 2, timeout=None)
