"""Crowd Counting Consortium, Mass Mobilization and the tracker's own files."""

import datetime as dt
import json

import pytest
from django.contrib.gis.geos import Point

from tests.importers.conftest import csv_bytes
from tracker.models import Event, ExternalId, ImportJob
from tracker.services.events import event_create

pytestmark = pytest.mark.django_db


def ccc_row(**values):
    row = {
        "date": "2021-01-10", "locality": "Алматы", "state": "Almaty", "country": "KZ",
        "location_detail": "Republic Square", "type": "demonstration", "title": "",
        "organizations": "DCK; Oyan Qazaqstan", "participants": "", "claims":
        "against the parliamentary elections", "size_low": "100", "size_high": "300",
        "arrests": "360", "injuries_crowd": "2", "injuries_police": "", "chemical_agents": "",
        "police_measures": "kettling; arrests", "source_1": "https://example.org/a",
        "source_2": "Radio Azattyk report", "source_3": "", "lat": "43.238", "lon": "76.945",
    }  # fmt: skip
    row.update(values)
    return row


def test_ccc_file(run_import):
    job = run_import(
        csv_bytes(
            [
                ccc_row(),
                ccc_row(locality="Shymkent", arrests="dozens", size_low="", size_high="",
                        participants="several hundred", police_measures="tear gas",
                        chemical_agents="1", claims="unpaid wages"),
                ccc_row(locality="Aktau", size_low="500", size_high="50"),
                ccc_row(locality="Aktobe", arrests="lots"),
            ]
        ),
        format="ccc",
    )  # fmt: skip
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    assert (job.rows_created, job.rows_failed) == (2, 2)
    assert list(job.issues.values_list("row", "column")) == [(4, "size_low"), (5, "arrests")]
    almaty = Event.objects.get(external_ids__scheme="ccc", city__name="Almaty")
    assert almaty.arrests == 360
    assert almaty.injuries == 2
    assert (almaty.participants_low, almaty.participants_high) == (100, 300)
    assert almaty.police_responses == ["kettled", "detained"]
    assert almaty.grievances == ["political"]
    assert almaty.location_detail == "Republic Square"
    assert sorted(s.url or s.title for s in almaty.sources.all()) == [
        "Radio Azattyk report",
        "https://example.org/a",
    ]
    assert sorted(o.name for o in almaty.organizers.all()) == ["DCK", "Oyan Qazaqstan"]
    assert almaty.auto_coded == ["grievances"]
    shymkent = Event.objects.get(external_ids__scheme="ccc", city__name="Shymkent")
    assert (shymkent.participants_low, shymkent.participants_high) == (200, 999)
    assert shymkent.police_responses == ["detained", "force"]
    assert shymkent.arrests == 24  # "dozens", read by the keyword rules
    assert {"arrests", "participants_low"} <= set(shymkent.auto_coded)
    assert shymkent.grievances == ["labor"]
    assert "participants_low" in shymkent.auto_coded
    again = run_import(csv_bytes([ccc_row()]), format="ccc")
    assert (again.rows_created, again.rows_unchanged) == (0, 1)


def mm_row(**values):
    row = {
        "id": "7052019001", "country": "Kazakhstan", "year": "2019", "protest": "1",
        "startday": "9", "startmonth": "6", "startyear": "2019", "endday": "10",
        "endmonth": "6", "endyear": "2019", "location": "Nur-Sultan, Almaty",
        "participants_category": "1000-1999", "participants": "1000s",
        "protesteridentity": "opposition supporters",
        "protesterdemand1": "political behavior, process", "protesterdemand2": "",
        "protesterdemand3": "", "protesterdemand4": "", "stateresponse1": "arrests",
        "stateresponse2": "crowd dispersal", "stateresponse3": "", "stateresponse4": "",
        "stateresponse5": "", "stateresponse6": "", "stateresponse7": "",
        "sources": "Reuters, 10 June 2019; RFE/RL", "notes": "Police detained about 500 people.",
    }  # fmt: skip
    row.update(values)
    return row


def test_mass_mobilization_file(run_import):
    job = run_import(
        csv_bytes(
            [
                mm_row(),
                mm_row(id="7052019002", protest="0"),
                mm_row(id="7052019003", stateresponse1="tickling"),
                mm_row(id="7052019004", endday="1"),
            ]
        ),
        format="mm",
    )
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    assert (job.rows_created, job.rows_skipped, job.rows_failed) == (1, 1, 2)
    assert list(job.issues.values_list("row", "kind", "column")) == [
        (3, "skipped", "protest"),
        (4, "failed", "stateresponse1"),
        (5, "failed", "endday"),
    ]
    event = Event.objects.get(external_ids__scheme="mm", external_ids__value="7052019001")
    assert (event.date, event.end_date) == (dt.date(2019, 6, 9), dt.date(2019, 6, 10))
    assert event.city.name == "Astana"
    assert event.grievances == ["political"]
    assert event.police_responses == ["dispersed", "detained"]
    assert (event.participants_low, event.participants_high) == (1000, 1999)
    assert event.arrests == 500
    assert event.auto_coded == ["arrests"]
    assert [s.title for s in event.sources.all()] == ["Reuters, 10 June 2019", "RFE/RL"]


def _snapshot(event: Event) -> dict:
    return {
        **{
            f: getattr(event, f)
            for f in (
                "title", "description", "date", "end_date", "date_precision", "country",
                "admin1", "city_id", "location_detail", "geo_precision", "grievances",
                "police_responses", "arrests", "injuries", "deaths", "participants_low",
                "participants_high", "status",
            )
        },
        "location": event.location.coords if event.location else None,
        "organizers": sorted(o.name for o in event.organizers.all()),
        "sources": sorted(
            (s.url, s.title, s.publisher, s.published_on, s.language) for s in event.sources.all()
        ),
        "external_ids": sorted(f"{x.scheme}:{x.value}" for x in event.external_ids.all()),
    }  # fmt: skip


def _make_events():
    first = event_create(
        fields={
            "title": "=Picket at the akimat",
            "description": '-dash first; and a line\nbreak, with "quotes"',
            "date": dt.date(2020, 7, 1),
            "end_date": dt.date(2020, 7, 2),
            "country": "KZ",
            "location": Point(71.43, 51.13, srid=4326),
            "location_detail": "Akimat",
            "grievances": ["welfare", "covid"],
            "police_responses": ["kettled", "detained"],
            "arrests": 0,
            "participants_low": 20,
            "participants_high": 50,
        },
        sources=[{"url": "https://example.org/picket", "title": "Picket report"}],
        organizers=["Oyan, Qazaqstan!"],
        external_ids=["acled:KAZ900"],
        status=Event.Status.PUBLISHED,
    )
    second = event_create(
        fields={
            "title": "Пикет в Шымкенте",
            "date": dt.date(2021, 1, 10),
            "date_precision": "month",
            "country": "KZ",
            "city": Event._meta.get_field("city").related_model.objects.get(
                names__normalized="shymkent"
            ),
            "grievances": ["political"],
        },
        sources=[{"title": "Printed leaflet"}],
        status=Event.Status.PUBLISHED,
    )
    return [first, second]


@pytest.mark.parametrize("output", ["csv", "geojson"])
def test_export_then_import_gives_identical_events(client, run_import, output):
    events = _make_events()
    before = [_snapshot(e) for e in events]
    ids = ",".join(str(e.pk) for e in events)
    response = client.get(f"/api/v1/events/?format={output}&q=&page_size=1000")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if output == "geojson":
        data = json.loads(body)
        data["features"] = [f for f in data["features"] if str(f["id"]) in ids.split(",")]
        body = json.dumps(data).encode()
    Event.objects.filter(pk__in=[e.pk for e in events]).delete()

    job = run_import(body, format="native", name=f"events.{output}")
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    assert job.rows_failed == 0, list(job.issues.values_list("reason", flat=True))
    restored = Event.objects.filter(title__in=[e.title for e in events]).order_by("date")
    after = [_snapshot(e) for e in restored]
    # The event without an external id is recognised by its id in the exporting tracker.
    assert after[1]["external_ids"] == [f"tracker:{events[1].pk}"]
    after[1]["external_ids"] = []
    assert after == before

    again = run_import(body, format="native", name=f"events.{output}")
    assert again.rows_created == again.rows_updated == 0


def test_native_geojson_must_be_a_feature_collection(run_import):
    job = run_import(b'{"type": "Feature"}', format="native", name="x.geojson")
    assert job.status == ImportJob.Status.FAILED
    assert "FeatureCollection" in job.message
    job = run_import(b"{not json", format="native", name="x.geojson")
    assert "not valid GeoJSON" in job.message


def test_native_row_with_unknown_grievance_is_reported(run_import):
    rows = [{"id": "1", "title": "T", "date": "2020-01-01", "country": "KZ",
             "grievances": "welfare;bread"}]  # fmt: skip
    job = run_import(csv_bytes(rows), format="native")
    assert job.rows_failed == 1
    issue = job.issues.get()
    assert issue.column == "grievances"
    assert "bread" in issue.reason
    assert not ExternalId.objects.filter(scheme="tracker", value="1").exists()
