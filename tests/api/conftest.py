import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

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


@pytest.fixture(scope="session")
def server(django_db_setup, django_db_blocker):
    """gunicorn serving this app on the test database, for real HTTP clients (GDAL,
    Chromium). It sees committed data only: the demo, loaded by the session fixture."""
    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]
    settings = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgis://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{name}",
        # DEBUG lets whitenoise serve static files from the finders (no collectstatic).
        "DJANGO_DEBUG": "1",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "tracker.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"]
    # A file, not a pipe: a pipe nobody reads would block the server once full.
    with tempfile.TemporaryFile() as log:
        yield from _serve(command, env, log)


def _serve(command, env, log):
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{command[command.index('-b') + 1]}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v1/taxonomy/", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"gunicorn did not start:\n{log.read().decode()}")
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
