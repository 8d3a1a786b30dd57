import os
import subprocess
import sys
import time

import pytest
from django.core.cache import cache
from django.db.migrations.recorder import MigrationRecorder

from tracker.health import HEARTBEAT_KEY, HEARTBEAT_STALE_SECONDS

pytestmark = pytest.mark.django_db


def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["database"]["version"].startswith("15")
    assert checks["postgis"]["ok"] and checks["postgis"]["version"].startswith("3")
    assert checks["redis"]["ok"]
    assert checks["migrations"] == {"ok": True, "pending": 0}
    assert body["failing"] == []


def test_celery_without_a_heartbeat_is_reported_but_not_unhealthy(client):
    cache.delete(HEARTBEAT_KEY)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["celery"] == {"ok": False, "detail": "no heartbeat yet"}
    assert body["status"] == "ok" and body["failing"] == []


def test_a_stale_heartbeat_is_reported_but_not_unhealthy(client):
    cache.set(HEARTBEAT_KEY, time.time() - HEARTBEAT_STALE_SECONDS - 60, timeout=None)
    response = client.get("/healthz")
    assert response.status_code == 200
    celery = response.json()["checks"]["celery"]
    assert celery["ok"] is False
    assert celery["detail"].startswith("stale: last heartbeat")
    assert celery["seconds_ago"] >= HEARTBEAT_STALE_SECONDS + 60


def test_a_recent_heartbeat_is_ok(client):
    stamp = time.time() - 30
    cache.set(HEARTBEAT_KEY, stamp, timeout=None)
    celery = client.get("/healthz").json()["checks"]["celery"]
    assert celery["ok"] is True
    assert celery["last_heartbeat"] == stamp and 29 <= celery["seconds_ago"] <= 60


def test_redis_down_is_unhealthy(client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5},
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True
    assert body["failing"] == ["redis"]
    # the heartbeat lives in Redis: not checked, and not counted as a second failure
    assert body["checks"]["celery"]["ok"] is False and body["checks"]["celery"]["skipped"]


def test_pending_migrations_are_unhealthy(client):
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    # Forget that the newest tracker migration was applied (rolled back after the test).
    app, name = MigrationLoader(connection).graph.leaf_nodes("tracker")[0]
    MigrationRecorder.Migration.objects.filter(app=app, name=name).delete()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert f"tracker.{name}" in response.json()["checks"]["migrations"]["error"]
    assert response.json()["failing"] == ["migrations"]


def test_missing_postgis_is_unhealthy(client):
    from django.db import connection

    # Hide the extension from this transaction's view of the catalogue (rolled back after).
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP VIEW pg_extension AS "
            "SELECT NULL::name AS extname, NULL::text AS extversion WHERE false"
        )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "postgis extension is not installed" in response.json()["checks"]["postgis"]["error"]


def _preflight(**env):
    return subprocess.run(
        [sys.executable, "manage.py", "preflight"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_preflight_explains_an_unreachable_database_in_one_line():
    result = _preflight(DATABASE_URL="postgis://nobody@127.0.0.1:1/nowhere")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Cannot connect to PostgreSQL" in lines[0] and "DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr


def test_preflight_explains_a_stopped_redis_in_one_line():
    result = _preflight(REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Cannot reach Redis" in lines[0] and "REDIS_URL" in lines[0]


def _admin_connection():
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


def test_preflight_explains_a_missing_postgis_extension():
    from django.conf import settings

    db = settings.DATABASES["default"]
    with _admin_connection() as conn:
        conn.execute("DROP DATABASE IF EXISTS tracker_nogis")
        conn.execute("CREATE DATABASE tracker_nogis TEMPLATE template0")
    try:
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        url = f"postgis://{auth}@{db['HOST']}:{db['PORT'] or 5432}/tracker_nogis"
        result = _preflight(DATABASE_URL=url)
        assert result.returncode == 1
        assert "postgis extension is missing" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    finally:
        with _admin_connection() as conn:
            conn.execute("DROP DATABASE IF EXISTS tracker_nogis")


def test_run_refuses_a_taken_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            ["bash", "scripts/run.sh"],
            env={**os.environ, "PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "already taken" in result.stderr
