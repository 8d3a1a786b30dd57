"""The state of what the app depends on, for /healthz and for `make`'s preflight."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

HEARTBEAT_KEY = "celery:heartbeat"
# Beat sends one every minute: three missed means no worker (or no beat) is running.
HEARTBEAT_STALE_SECONDS = 180


def _check(fn) -> dict:
    try:
        detail = fn()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()[:300]}
    return {"ok": True, **(detail or {})}


def _database() -> dict:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version')")
        return {"version": cursor.fetchone()[0]}


def _postgis() -> dict:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the postgis extension is not installed in this database")
    return {"version": row[0]}


def _redis() -> dict:
    client = cache.client.get_client(write=True)
    started = time.perf_counter()
    client.ping()
    return {"latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _migrations() -> dict:
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    pending = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    if pending:
        raise RuntimeError(f"{len(pending)} pending: {', '.join(pending[:10])}")
    return {"pending": 0}


def _celery() -> dict:
    # Informational: a worker that has not beaten recently does not make the app unhealthy
    # (pages and the API work without it), but the operator should see it.
    beat = cache.get(HEARTBEAT_KEY)
    if beat is None:
        return {"ok": False, "detail": "no heartbeat yet"}
    seconds_ago = round(time.time() - beat)
    report = {"last_heartbeat": beat, "seconds_ago": seconds_ago}
    if seconds_ago > HEARTBEAT_STALE_SECONDS:
        return {"ok": False, "detail": f"stale: last heartbeat {seconds_ago} s ago", **report}
    return {"ok": True, **report}


def _skipped(reason: str) -> dict:
    return {"ok": False, "skipped": True, "detail": f"not checked: {reason}"}


def health_report() -> tuple[bool, dict]:
    """(healthy, report). `failing` names the parts that are down; the Celery check is
    shown but does not count (see _celery), and checks that need a part that is down are
    skipped rather than listed as failing too."""
    checks = {"database": _check(_database)}
    if checks["database"]["ok"]:
        checks["postgis"] = _check(_postgis)
        checks["migrations"] = _check(_migrations)
    else:
        checks["postgis"] = checks["migrations"] = _skipped("the database is unavailable")
    checks["redis"] = _check(_redis)
    failing = [
        name for name, check in checks.items() if not check["ok"] and not check.get("skipped")
    ]
    if checks["redis"]["ok"]:
        checks["celery"] = _check(_celery)  # its own "ok" wins over _check's
    else:
        checks["celery"] = _skipped("Redis is unavailable")
    healthy = not failing
    report = {"status": "ok" if healthy else "unavailable", "failing": failing, "checks": checks}
    return healthy, report
