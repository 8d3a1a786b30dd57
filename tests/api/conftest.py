import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tracker.models import Event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def contributor(make_user):
    return make_user("alice", "Contributor")


@pytest.fixture
def other_contributor(make_user):
    return make_user("bob", "Contributor")


@pytest.fixture
def moderator(make_user):
    return make_user("mod", "Moderator")


def client_for(user) -> APIClient:
    """A client that authenticates the way scripts do: with a token header."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def as_user():
    return client_for


SUBMISSION = {
    "title": "Pensioners at the akimat",
    "description": "Pensioners asked for the promised increase.",
    "date": "2020-03-02",
    "city": "Alma-Ata",
    "location_detail": "Akimat square",
    "grievances": ["welfare"],
    "police_responses": ["monitored"],
    "arrests": 0,
    "participants_low": 20,
    "participants_high": 40,
    "organizers": ["Pensioners of Almaty"],
    "sources": [{"url": "https://example.org/news/1", "title": "Pensioners protest"}],
    "external_ids": ["test:almaty-1"],
}


@pytest.fixture
def submission_data():
    return {**SUBMISSION, "sources": [dict(s) for s in SUBMISSION["sources"]]}


@pytest.fixture
def pending_event(as_user, contributor, submission_data):
    response = as_user(contributor).post("/api/v1/events/", submission_data, format="json")
    assert response.status_code == 201, response.content
    return Event.objects.get(pk=response.json()["id"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(name: str) -> str:
    """The test settings' server and credentials (password included), database `name`."""
    db = connection.settings_dict
    auth = quote(db.get("USER") or "postgres", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgis://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


@pytest.fixture(scope="session")
def server(django_db_setup, django_db_blocker):
    """gunicorn serving this app on the test database, for real HTTP clients (GDAL,
    Chromium). It sees committed data only: the demo, loaded by the session fixture."""
    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]
    with serve_app(database_url(name)) as base:
        yield base


@contextmanager
def serve_app(db_url: str, *, workers: int = 1, log=None, **extra_env: str):
    """gunicorn on `db_url`, on a free port; yields its base URL once it answers a request
    that reads the database. Its log (into `log`, an open binary file, if given) is shown if
    it does not start."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        # DEBUG lets whitenoise serve static files from the finders (no collectstatic).
        "DJANGO_DEBUG": "1",
        **extra_env,
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers)]
    # A file, not a pipe: a pipe nobody reads would block the server once full.
    if log is not None:
        yield from _serve(command, env, log)
        return
    with tempfile.TemporaryFile() as own_log:
        yield from _serve(command, env, own_log)


def _serve(command, env, log):
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{command[command.index('-b') + 1]}"
    # An event list touches the database (a health probe on a static page would pass with a
    # server that cannot read its database, e.g. a DATABASE_URL without the password).
    probe = f"{base}/api/v1/events/?page_size=1"
    try:
        deadline = time.monotonic() + 30
        while True:
            problem = None
            try:
                with urllib.request.urlopen(probe, timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        break
                    problem = f"HTTP {response.status}"
            except urllib.error.HTTPError as error:
                problem = f"HTTP {error.code}: {error.read()[:500]!r}"
            except OSError as error:
                problem = repr(error)
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"gunicorn did not serve {probe} ({problem}):\n{log.read().decode()}")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
