"""The state of what the app depends on, for /healthz and for `make`'s preflight."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

HEARTBEAT_KEY = "celery:heartbeat"


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
    return {"last_heartbeat": beat, "seconds_ago": round(time.time() - beat) if beat else None}


def health_report() -> tuple[bool, dict]:
    checks = {
        "database": _check(_database),
        "postgis": _check(_postgis),
        "redis": _check(_redis),
        "migrations": _check(_migrations),
    }
    healthy = all(check["ok"] for check in checks.values())
    checks["celery"] = _check(_celery) if checks["redis"]["ok"] else {"ok": False}
    return healthy, {"status": "ok" if healthy else "unavailable", "checks": checks}
