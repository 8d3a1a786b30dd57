"""schemathesis over the whole OpenAPI schema, against gunicorn serving the app.

Two runs, anonymous and with a moderator's token: every operation, examples + coverage +
fuzzing phases (positive and negative data), a fixed seed and a fixed number of examples per
operation, so that a run is repeatable and takes a few minutes. Checks: no 5xx, every
response's body matches its documented schema, and every status code is a documented one.

The server runs on a copy of the test database (made with scripts/backup.sh and restore.sh,
dropped afterwards): the moderator's run creates, edits and reviews events and starts import
and export jobs, which the other tests' demo figures must not see. Its path ids are drawn
mostly from rows that exist (events published with and without a point, a pending one,
cities, jobs), or the fuzzer would see little but 404s.

Nothing is excluded. Bodies of text/csv responses are not validated by schemathesis (it
validates JSON bodies only); the CSV formats are covered by their own tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings
from django.test import Client

from tests.api.conftest import database_url, serve_app

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("st")
EXAMPLES_PER_OPERATION = 20
SEED = 20261201
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"

MAKE_MODERATOR = """
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
user = User.objects.create_user("schemathesis-moderator", password="unused-Pw-12345")
user.groups.add(Group.objects.get(name="Moderator"))
print(Token.objects.create(user=user).key)
"""


def _psycopg(url: str) -> str:
    return "postgresql" + url[len("postgis") :]


def _drop(name: str) -> None:
    with psycopg.connect(_psycopg(database_url("postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def schema_db(db, tmp_path):
    """A copy of the test database (demo data, gazetteer, roles) for the server to write to."""
    source = settings.DATABASES["default"]["NAME"]
    name = f"{source}_schemathesis"
    _drop(name)
    archive = tmp_path / "copy.tar"
    env = {**os.environ, "MEDIA_ROOT": str(tmp_path / "no-media")}
    for script, url in (("backup.sh", database_url(source)), ("restore.sh", database_url(name))):
        result = subprocess.run(
            [f"scripts/{script}", str(archive)],
            cwd=ROOT,
            env={**env, "DATABASE_URL": url},
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
    try:
        yield database_url(name)
    finally:
        _drop(name)


def _run_schemathesis(base: str, config: Path, report: Path, *headers: str):
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{base}/api/schema/?format=json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        # One worker: hypothesis' lambda introspection is not thread-safe on Python 3.11
        # (schemathesis then reports internal errors that say nothing about the API).
        "--workers",
        "1",
        "--no-shrink",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
    ]
    for header in headers:
        command += ["--header", header]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=os.environ.copy()
    )


def _existing_ids(db_url: str) -> dict[str, list[int]]:
    with psycopg.connect(_psycopg(db_url), autocommit=True) as conn:

        def ids(sql: str) -> list[int]:
            return [row[0] for row in conn.execute(sql).fetchall()]

        return {
            "event_ids": ids(
                "(SELECT id FROM tracker_event WHERE status = 'published' AND location IS NULL "
                "ORDER BY id LIMIT 2) UNION ALL (SELECT id FROM tracker_event WHERE status = "
                "'published' AND location IS NOT NULL ORDER BY id LIMIT 2) UNION ALL (SELECT id "
                "FROM tracker_event WHERE status <> 'published' ORDER BY id LIMIT 2)"
            ),
            "city_ids": ids("SELECT id FROM tracker_city ORDER BY id LIMIT 3"),
            "import_ids": ids("SELECT id FROM tracker_importjob ORDER BY id LIMIT 3"),
            "export_ids": ids("SELECT id FROM tracker_exportjob ORDER BY id LIMIT 3"),
        }


def _config(path: Path, ids: dict[str, list[int]]) -> None:
    """schemathesis.toml: path ids from existing rows 80 % of the time."""
    lines = []
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    for prefix, name in (
        ("/api/v1/events/", "event_ids"),
        ("/api/v1/cities/", "city_ids"),
        ("/api/v1/imports/", "import_ids"),
        ("/api/v1/exports/jobs/", "export_ids"),
    ):
        lines += [
            "[[operations]]",
            f'include-path-regex = "^{prefix}\\\\{{id\\\\}}"',
            f'parameters = {{ "path.id" = {{ dictionary = "{name}", probability = 0.8 }} }}',
            "",
        ]
    path.write_text("\n".join(lines))


def _seed_writes(base: str, token: str) -> None:
    """A pending event and an import and an export job, so that their ids exist."""
    auth = {"Authorization": f"Token {token}"}
    created = requests.post(
        f"{base}/api/v1/events/",
        json={
            "title": "Pending, for schemathesis",
            "date": "2020-01-02",
            "country": "KZ",
            "grievances": ["welfare"],
            "sources": [{"title": "A source"}],
        },
        headers=auth,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    export = requests.post(
        f"{base}/api/v1/exports/jobs/", json={"layout": "acled"}, headers=auth, timeout=30
    )
    assert export.status_code == 202, export.text
    upload = requests.post(
        f"{base}/api/v1/imports/",
        files={"file": ("events.csv", b"date,title\n2020-01-01,A protest\n", "text/csv")},
        data={"format": "native"},
        headers=auth,
        timeout=30,
    )
    assert upload.status_code == 202, upload.text


def test_schemathesis_finds_no_server_error_and_no_schema_violation(schema_db, tmp_path):
    env = {**os.environ, "DATABASE_URL": schema_db}
    made = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", MAKE_MODERATOR],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]

    prefix = os.environ.get("CACHE_KEY_PREFIX", "tracker-test") + "-schemathesis"
    log_path = tmp_path / "server.log"
    with (
        open(log_path, "w+b") as log,
        serve_app(
            schema_db,
            workers=2,
            log=log,
            # Production-like: DEBUG off (the local-HTTP switch comes from pytest's env).
            DJANGO_DEBUG="0",
            MEDIA_ROOT=str(tmp_path / "media"),
            CACHE_KEY_PREFIX=prefix,
            # Tasks the run dispatches wait in a queue no worker reads (dropped with Redis'
            # key prefix below); the run is about the HTTP answers.
            CELERY_TASK_DEFAULT_QUEUE=prefix,
            # Thousands of requests a minute from one client: the rate limits would turn
            # most of them into 429s, which is documented, but leaves the rest untested.
            API_THROTTLE_ANON="1000000/minute",
            API_THROTTLE_USER="1000000/minute",
        ) as base,
    ):
        _seed_writes(base, token)
        config = tmp_path / "schemathesis.toml"
        _config(config, _existing_ids(schema_db))
        runs = {
            "anonymous": _run_schemathesis(base, config, tmp_path / "anonymous.xml"),
            "moderator": _run_schemathesis(
                base, config, tmp_path / "moderator.xml", f"Authorization: Token {token}"
            ),
        }
    _drop_queue(prefix)
    server_log = log_path.read_text(errors="replace")
    for who, result in runs.items():
        assert result.returncode == 0, (
            f"schemathesis ({who}) failed:\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"
            f"\n--- server log (tail) ---\n{server_log[-10000:]}"
        )
        generated = re.search(r"(\d+) generated, \1 passed", result.stdout)
        # Every operation was exercised: about 24 operations x (coverage cases + examples).
        assert generated and int(generated.group(1)) >= 1000, result.stdout[-5000:]
        print(f"schemathesis ({who}): {generated.group(1)} cases, all passed")
    # The token worked: the moderator's run reached the operations behind it.
    assert "Authentication failed" not in runs["moderator"].stdout, runs["moderator"].stdout
    # Nothing was hidden behind a documented 500 either.
    assert "Internal Server Error" not in server_log, server_log[-10000:]


def _drop_queue(name: str) -> None:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.delete(name)
    finally:
        client.close()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/imports/null,null/cancel/"),
        ("patch", "/api/v1/events/0.5/"),
        ("post", "/api/v1/events/0.5/review/"),
    ],
)
def test_unknown_api_paths_answer_json_404_not_a_csrf_page(method, path):
    """Found by schemathesis: a write to a path no route matches got Django's HTML 403
    "CSRF verification failed" from the catch-all, not the API's JSON 404."""
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)(path, data="{}", content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
