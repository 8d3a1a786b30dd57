"""The cache: Redis, which the app must survive losing.

- A version number for the published data: cached aggregates put it in their keys, so one
  increment after any change of events makes every older cached answer unreachable.
- A circuit breaker on the Redis connections (settings.CACHES): after a failed connect or
  a timeout, Redis is skipped for a few seconds, so that a page doing ten cache calls
  during an outage does not wait ten timeouts. django-redis turns the error into a cache
  miss (IGNORE_EXCEPTIONS), and ThrottledLogFilter keeps those from flooding the log.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.core.cache import cache

EVENTS_VERSION_KEY = "events:version"

# Set when an invalidation could not reach Redis: the first later call that reaches it
# makes the answers cached before the outage unreachable (they may predate the change).
_invalidation_pending = threading.Event()


def events_version() -> int:
    if _invalidation_pending.is_set():
        events_changed()
    version = cache.get(EVENTS_VERSION_KEY)
    if version is None:
        cache.add(EVENTS_VERSION_KEY, 1, timeout=None)
        version = cache.get(EVENTS_VERSION_KEY, 1)
    return version


def events_changed() -> None:
    try:
        reached = cache.incr(EVENTS_VERSION_KEY) is not None
    except ValueError:
        reached = cache.set(EVENTS_VERSION_KEY, 2, timeout=None) is not None
    # django-redis answers None instead of raising when Redis is down (IGNORE_EXCEPTIONS).
    if reached:
        _invalidation_pending.clear()
    else:
        _invalidation_pending.set()


class _Breaker:
    """Per process (shared by its threads): open = skip Redis until `open_until`."""

    def __init__(self):
        self.open_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def trip(self, seconds: float) -> None:
        self.open_until = time.monotonic() + seconds

    def reset(self) -> None:
        self.open_until = 0.0


breaker = _Breaker()


class CircuitBreakerConnection(redis.Connection):
    """A redis-py connection that fails at once while the breaker is open, and opens it
    when connecting fails or an answer times out."""

    def __init__(self, *args, breaker_seconds: float = 5.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.breaker_seconds = breaker_seconds

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True):
        if self._sock:
            return
        if breaker.is_open():
            raise redis.ConnectionError(
                f"Redis skipped for up to {self.breaker_seconds:g} s after a failure"
            )
        try:
            super().connect_check_health(
                check_health=check_health, retry_socket_connect=retry_socket_connect
            )
        except (redis.ConnectionError, redis.TimeoutError):
            breaker.trip(self.breaker_seconds)
            raise

    def read_response(self, *args, **kwargs):
        try:
            return super().read_response(*args, **kwargs)
        except redis.TimeoutError:
            breaker.trip(self.breaker_seconds)
            raise


class CircuitBreakerPool(redis.ConnectionPool):
    """CACHES' CONNECTION_POOL_CLASS: plain redis:// connections get the breaker."""

    @classmethod
    def from_url(cls, url: str, **kwargs):
        seconds = kwargs.pop("breaker_seconds", 5.0)
        if url.startswith("redis://") and "connection_class" not in kwargs:
            kwargs.update(connection_class=CircuitBreakerConnection, breaker_seconds=seconds)
        return super().from_url(url, **kwargs)


class ThrottledLogFilter(logging.Filter):
    """Lets one record through per `interval` seconds (per logger), as a single line that
    says how many were held back: during an outage every cache call fails, and a traceback
    for each would bury everything else in the log."""

    def __init__(self, interval: float = 60.0):
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(record.name)
            if last is not None and now - last < self.interval:
                self._held[record.name] = self._held.get(record.name, 0) + 1
                return False
            self._last[record.name] = now
            held = self._held.pop(record.name, 0)
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            cause = error.__cause__ or error
            record.msg = "Redis unavailable, cache skipped: %s: %s"
            record.args = (type(cause).__name__, cause)
            record.exc_info = None
            record.exc_text = None
        if held:
            record.msg = f"{record.msg} ({held} more in the last {self.interval:g} s)"
        return True
