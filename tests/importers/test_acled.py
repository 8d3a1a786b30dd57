"""ACLED files through the import service, against the real database."""

import datetime as dt

import pytest

from tests.importers.conftest import acled_row, csv_bytes
from tracker.models import Event, ExternalId, ImportJob

pytestmark = pytest.mark.django_db


def _issues(job):
    return list(job.issues.values_list("row", "kind", "column", "value"))


def acled_events():
    return Event.objects.filter(external_ids__scheme="acled").order_by("date")


@pytest.mark.parametrize("parallel", [False, True], ids=["in-process", "parsing-process"])
def test_acled_file_maps_protests_and_reports_every_other_row(run_import, settings, parallel):
    # With IMPORT_PARALLEL_MIN_ROWS a spawned process parses; the result must be the same.
    settings.IMPORT_PARALLEL_MIN_ROWS = 1 if parallel else 0
    data = csv_bytes(
        [
            acled_row(
                event_id_cnty="KAZ1",
                event_date="09 June 2019",
                sub_event_type="Protest with intervention",
                assoc_actor_1="Oyan Qazaqstan",
                notes="Protesters rejected the presidential election. Police detained 50 people.",
                tags="crowd size=several hundred",
            ),
            acled_row(
                event_id_cnty="KAZ2",
                event_date="2020-02-25",
                location="Нур-Султан",
                latitude="51.18",
                longitude="71.45",
                admin1="",
                notes="Митинг против роста цен на коммунальные услуги, задержаны 12 человек.",
            ),
            acled_row(event_id_cnty="KAZ3", event_type="Battles", sub_event_type="Armed clash"),
            acled_row(event_id_cnty="KAZ4", event_date="2019-13-40"),
            acled_row(event_id_cnty="KAZ1", notes="the same id again"),
            acled_row(event_id_cnty="KAZ5", latitude="95", longitude="76.9"),
        ]
    )
    job = run_import(data)

    assert job.status == ImportJob.Status.SUCCEEDED
    assert (job.rows_total, job.rows_done) == (6, 6)
    assert (job.rows_created, job.rows_skipped, job.rows_failed) == (2, 1, 3)
    assert _issues(job) == [
        (4, "skipped", "event_type", "Battles"),
        (5, "failed", "event_date", "2019-13-40"),
        (6, "failed", "event_id_cnty", "acled:KAZ1"),
        (7, "failed", "latitude", "95"),
    ]
    almaty, astana = acled_events()
    assert almaty.date == dt.date(2019, 6, 9)
    assert almaty.city.name == "Almaty"
    assert almaty.status == Event.Status.PUBLISHED
    assert almaty.arrests == 50
    assert (almaty.participants_low, almaty.participants_high) == (200, 999)
    assert almaty.grievances == ["political"]
    assert almaty.police_responses == ["dispersed", "detained"]
    assert set(almaty.auto_coded) == {
        "arrests", "police_responses", "participants_low", "participants_high", "grievances"
    }  # fmt: skip
    assert [s.publisher for s in almaty.sources.all()] == ["Radio Azattyk", "Vlast.kz"]
    assert [o.name for o in almaty.organizers.all()] == ["Oyan Qazaqstan"]
    assert almaty.history.get().history_type == "+"
    # A Cyrillic place name finds the gazetteer city, whose region fills the blank admin1.
    assert astana.city.name == "Astana"
    assert astana.admin1 == "Astana"
    assert astana.arrests == 12
    assert astana.grievances == ["welfare"]
    assert ExternalId.objects.get(value="KAZ1").version == "1600000000"


def test_reimport_changes_nothing_and_a_newer_timestamp_updates(run_import):
    rows = [acled_row(event_id_cnty="KAZ10", notes="Police detained 5 people.")]
    first = run_import(csv_bytes(rows))
    assert first.rows_created == 1
    event = acled_events().get()
    stamp = event.updated_at

    again = run_import(csv_bytes(rows))
    assert (again.rows_created, again.rows_updated, again.rows_unchanged) == (0, 0, 1)
    event.refresh_from_db()
    assert event.updated_at == stamp
    assert event.history.count() == 1

    rows[0].update(notes="Police detained 7 people.", timestamp="1700000000")
    newer = run_import(csv_bytes(rows))
    assert (newer.rows_created, newer.rows_updated) == (0, 1)
    event.refresh_from_db()
    assert event.arrests == 7
    assert event.history.first().history_type == "~"
    assert ExternalId.objects.filter(scheme="acled", value="KAZ10").count() == 1

    rows[0].update(notes="Police detained 9 people.", timestamp="1500000000")
    older = run_import(csv_bytes(rows))
    assert older.rows_unchanged == 1
    event.refresh_from_db()
    assert event.arrests == 7


def test_pending_when_the_uploader_does_not_trust_the_source(run_import):
    job = run_import(csv_bytes([acled_row(event_id_cnty="KAZ20")]), publish=False)
    assert job.rows_created == 1
    assert acled_events().get().status == Event.Status.PENDING


def test_a_trusted_reimport_publishes_the_pending_rows_and_leaves_rejected_ones(run_import):
    rows = [acled_row(event_id_cnty="KAZ21"), acled_row(event_id_cnty="KAZ22")]
    run_import(csv_bytes(rows), publish=False)
    pending, rejected = acled_events().order_by("external_ids__value")
    rejected.status = Event.Status.REJECTED
    rejected.save()
    # The same file, unchanged, now from an uploader who trusts it.
    job = run_import(csv_bytes(rows))
    assert (job.rows_updated, job.rows_unchanged, job.rows_created) == (1, 1, 0)
    pending.refresh_from_db()
    rejected.refresh_from_db()
    assert pending.status == Event.Status.PUBLISHED
    assert pending.reviewed_at is not None
    assert pending.history.first().status == Event.Status.PUBLISHED
    assert rejected.status == Event.Status.REJECTED
    # Once published, a third import changes nothing.
    again = run_import(csv_bytes(rows))
    assert (again.rows_updated, again.rows_unchanged) == (0, 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            csv_bytes([acled_row(event_id_cnty="KAZ30", location="Шымкент")], encoding="cp1251"),
            "not UTF-8",
        ),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a CSV"),
        (b"", "empty"),
        (b"date,place\n2019-01-01,Almaty\n", "Required columns missing: event_id_cnty"),
        (csv_bytes([acled_row(event_id_cnty="KAZ31")])[:-30] + b',"unclosed', "not a readable CSV"),
    ],
    ids=["cp1251", "binary", "empty", "columns", "broken-quote"],
)
def test_a_broken_file_fails_with_one_message_and_changes_nothing(run_import, data, message):
    before = Event.objects.count()
    job = run_import(data)
    assert job.status == ImportJob.Status.FAILED
    assert message in job.message
    assert job.rows_created == job.rows_done == 0
    assert not job.issues.exists()
    assert Event.objects.count() == before


def test_a_row_with_missing_cells_is_reported_not_fatal(run_import):
    data = csv_bytes([acled_row(event_id_cnty="KAZ40")]) + b"KAZ41,2019-06-10\n"
    job = run_import(data)
    assert (job.rows_created, job.rows_failed) == (1, 1)
    issue = job.issues.get()
    assert issue.row == 3
    assert "cells" in issue.reason


def test_places_are_resolved_again_once_the_gazetteer_knows_them(run_import):
    from django.contrib.gis.geos import Point

    from imports.relink import relink_places
    from tracker.models import City, CityName, normalize_name

    # A place the gazetteer does not know, its point far from every city: no city.
    place = {"location": "Kyzylzhar Test", "admin1": "", "latitude": "47.0", "longitude": "60.0"}
    first = acled_row(event_id_cnty="KAZP1", **place)
    second = acled_row(event_id_cnty="KAZP2", event_date="2019-06-10", **place)
    run_import(csv_bytes([first, second]))
    one, two = acled_events().filter(external_ids__value__startswith="KAZP")
    assert (one.city, two.city, one.location_detail) == (None, None, "Kyzylzhar Test")

    # The gazetteer learns the place.
    city = City.objects.create(
        name="Kyzylzhar Test", country="KZ", admin1="Test Region", location=Point(61.5, 47.5)
    )
    CityName.objects.create(city=city, name=city.name, normalized=normalize_name(city.name))

    # A re-import of the unchanged row places its event, and changes nothing else.
    again = run_import(csv_bytes([first]))
    assert (again.rows_updated, again.rows_unchanged) == (1, 0)
    one.refresh_from_db()
    assert (one.city, one.admin1, one.location_detail) == (city, "Test Region", "")
    assert one.location.coords == (60.0, 47.0)  # its own point, not the city's
    assert one.history.first().history_type == "~"

    # relink_places places the other one, by its name.
    found = relink_places()
    assert found["by_name"] >= 1
    two.refresh_from_db()
    assert (two.city, two.admin1) == (city, "Test Region")
    assert two.version == one.version
    assert run_import(csv_bytes([first, second])).rows_unchanged == 2
