"""A real GIS client reads the API: GDAL's GeoJSON driver (ogrinfo) against a running
gunicorn serving this app, and reports the feature count the database holds.

The server is a subprocess on the test database; it sees the demo data, which the session
fixture committed, and the test does not write, so no flush is needed.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from tracker.models import Event

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]
    settings = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgis://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{name}",
        "DJANGO_DEBUG": "0",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "tracker.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v1/taxonomy/", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"gunicorn did not start:\n{output}")
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def ogrinfo(url: str) -> str:
    assert shutil.which("ogrinfo"), "gdal-bin is part of the set-up (scripts/setup.sh)"
    result = subprocess.run(
        ["ogrinfo", "-ro", "-so", "-al", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GDAL_HTTP_TIMEOUT": "30", "CPL_CURL_VERBOSE": "NO"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("year=2019&country=KZ", lambda qs: qs.filter(date__year=2019, country="KZ")),
        (
            "grievance=human_rights&police_response=detained,kettled",
            lambda qs: qs.filter(
                grievances__overlap=["human_rights"],
                police_responses__overlap=["detained", "kettled"],
            ),
        ),
        (
            "city=Almaty&date_after=2020-01-01",
            lambda qs: qs.filter(city__name="Almaty", date__gte="2020-01-01"),
        ),
    ],
)  # fmt: skip
def test_ogrinfo_reads_the_geojson_endpoint(server, query, expected):
    count = expected(Event.objects.published()).count()
    assert 0 < count <= 1000  # one page holds them all: GDAL's GeoJSON driver does not page
    report = ogrinfo(f"{server}/api/v1/events/?format=geojson&page_size=1000&{query}")
    match = re.search(r"Feature Count: (\d+)", report)
    assert match, report
    assert int(match.group(1)) == count
    assert "Geometry: Point" in report
    for field in ("title: String", "date: Date", "arrests: Integer"):
        assert field in report, report
    assert "submitted" not in report
