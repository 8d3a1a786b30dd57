"""What counts as an outage (PostgreSQL, the broker or Redis unreachable), and its one
message and log line: shared by config.middleware (pages) and api.exceptions (the API)."""

from __future__ import annotations

import logging

import kombu.exceptions
import psycopg
import redis
from django.db import InterfaceError, OperationalError

logger = logging.getLogger("tracker.outage")

RETRY_AFTER_SECONDS = 30
OUTAGE_ERRORS = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    kombu.exceptions.OperationalError,
    redis.ConnectionError,
    redis.TimeoutError,
)
DATABASE_ERRORS = (OperationalError, InterfaceError, psycopg.Error)


def is_outage(exc: BaseException | None) -> bool:
    return isinstance(exc, OUTAGE_ERRORS)


def outage_part(exc: BaseException) -> str:
    return "database" if isinstance(exc, DATABASE_ERRORS) else "task queue"


def outage_detail(exc: BaseException) -> str:
    return (
        f"The {outage_part(exc)} is unavailable. Nothing was lost; "
        f"try again in {RETRY_AFTER_SECONDS} seconds."
    )


def log_outage(request_path: str, exc: BaseException) -> None:
    # One line (throttled in settings.LOGGING), no traceback: an outage fails every request.
    logger.error("503 for %s: %s: %s", request_path, type(exc).__name__, exc)
