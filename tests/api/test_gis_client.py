"""A real GIS client reads the API: GDAL's GeoJSON driver (ogrinfo) against a running
gunicorn serving this app, and reports the feature count the database holds.

The server (tests/api/conftest.py) is a subprocess on the test database: it sees the demo
data, which the session fixture committed, and the test does not write, so no flush is
needed.
"""

import os
import re
import shutil
import subprocess

import pytest

from tracker.models import Event

pytestmark = pytest.mark.django_db


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
