"""Where imported rows were placed, and moderators' corrections that a re-import keeps."""

import csv
import io

import pytest

from imports.services import report_rows
from tests.importers.conftest import acled_row, csv_bytes
from tracker.models import Event, ExternalId, ImportIssue

pytestmark = pytest.mark.django_db


def _event(value: str) -> Event:
    return Event.objects.get(external_ids__scheme="acled", external_ids__value=value)


def test_summary_and_report_say_how_rows_were_placed(run_import):
    job = run_import(
        csv_bytes(
            [
                acled_row(event_id_cnty="P1", location="Almaty"),
                # Not a gazetteer name, but 2 km from Almaty's point.
                acled_row(
                    event_id_cnty="P2",
                    location="Medeu district",
                    latitude="43.24",
                    longitude="76.95",
                ),
                # Neither the name nor a city within 30 km (the Betpak-Dala steppe).
                acled_row(
                    event_id_cnty="P3",
                    location="Nowhereville",
                    latitude="46.0",
                    longitude="70.0",
                ),
                acled_row(
                    event_id_cnty="P4",
                    location="Nowhereville",
                    latitude="46.0",
                    longitude="70.0",
                ),
            ]
        )
    )
    assert job.status == "succeeded", job.message
    assert (job.rows_created, job.rows_failed) == (4, 0)
    places = (job.rows_placed_by_name, job.rows_placed_by_point, job.rows_unplaced)
    assert places == (1, 1, 2)
    assert "placed by name 1, by coordinates only 1, not placed 2 (Nowhereville ×2)" in job.message
    assert _event("P1").city.name == "Almaty"
    assert _event("P2").city.name == "Almaty"
    assert _event("P3").city_id is None
    assert _event("P3").location_detail == "Nowhereville"
    notes = list(
        job.issues.filter(kind=ImportIssue.Kind.UNPLACED).values_list("row", "column", "value")
    )
    assert notes == [(4, "location", "Nowhereville"), (5, "location", "Nowhereville")]


def _import_c1(run_import, *, arrested: int, deaths: int, timestamp: int):
    """Row C1 of an ACLED file, as a newer version of it would say."""
    row = acled_row(
        event_id_cnty="C1", notes=f"Police detained {arrested} people.",
        fatalities=str(deaths), timestamp=str(timestamp),
    )  # fmt: skip
    return run_import(csv_bytes([row]))


def _report(job) -> list[dict]:
    rows = list(report_rows(job=job))
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_a_moderators_correction_survives_a_newer_row_and_the_conflict_is_listed(run_import):
    first = _import_c1(run_import, arrested=5, deaths=0, timestamp=1600000000)
    assert first.status == "succeeded", first.message
    event = _event("C1")
    assert (event.arrests, event.deaths) == (5, 0)

    # A moderator corrects the deaths and the title; the file will change deaths and arrests.
    event.deaths = 2
    event.title = "Rally on Republic Square"
    event.save()

    second = _import_c1(run_import, arrested=7, deaths=1, timestamp=1600000500)
    assert second.status == "succeeded", second.message
    assert (second.rows_updated, second.rows_conflicts) == (1, 1)
    event.refresh_from_db()
    # The file changed arrests, nobody had corrected them: the file's value.
    assert event.arrests == 7
    # Both changed deaths: the moderator's value stays, and the report says so.
    assert event.deaths == 2
    # The file did not change the title: the correction stays, no conflict to report.
    assert event.title == "Rally on Republic Square"
    conflicts = [row for row in _report(second) if row["kind"] == "conflict"]
    assert len(conflicts) == 1
    conflict = conflicts[0]
    assert conflict["column"] == "fatalities"
    assert (conflict["value"], conflict["previous_value"], conflict["kept_value"]) == (
        "1",
        "0",
        "2",
    )
    assert conflict["event"] == str(event.pk)
    assert "correction" in second.message

    # The file's word is what the next import compares with: the same row again (newer
    # timestamp, same values) reports nothing new and changes nothing the moderator set.
    third = _import_c1(run_import, arrested=7, deaths=1, timestamp=1600000900)
    assert (third.rows_updated, third.rows_conflicts) == (1, 0)
    event.refresh_from_db()
    assert (event.arrests, event.deaths, event.title) == (7, 2, "Rally on Republic Square")


def test_events_imported_before_snapshots_use_their_last_import_history_row(run_import):
    run_import(csv_bytes([acled_row(event_id_cnty="L1", fatalities="0", timestamp="1")]))
    # As if imported before ExternalId.imported existed.
    ExternalId.objects.filter(scheme="acled", value="L1").update(imported={})
    event = _event("L1")
    event.deaths = 4
    event.save()

    job = run_import(csv_bytes([acled_row(event_id_cnty="L1", fatalities="3", timestamp="2")]))
    assert job.rows_conflicts == 1, job.message
    event.refresh_from_db()
    assert event.deaths == 4
    issue = job.issues.get(kind=ImportIssue.Kind.CONFLICT)
    assert (issue.value, issue.previous_value, issue.kept_value) == ("3", "0", "4")


def test_an_uncorrected_event_takes_the_newer_rows_values(run_import):
    run_import(csv_bytes([acled_row(event_id_cnty="U1", fatalities="0", timestamp="1")]))
    job = run_import(csv_bytes([acled_row(event_id_cnty="U1", fatalities="3", timestamp="2")]))
    assert (job.rows_updated, job.rows_conflicts) == (1, 0)
    assert _event("U1").deaths == 3
    assert not job.issues.filter(kind=ImportIssue.Kind.CONFLICT).exists()


@pytest.mark.parametrize("batch_size", [2000, 1], ids=["one-batch", "batch-per-row"])
def test_a_row_naming_an_earlier_rows_other_id_is_a_duplicate(run_import, monkeypatch, batch_size):
    # Rows are staged and moved in groups: the file's own ids must be known before they
    # reach the external id table, in one batch or across batches.
    monkeypatch.setattr("imports.services.BATCH_SIZE", batch_size)
    rows = [
        {"title": "Rally", "date": "2020-01-01", "country": "KZ", "grievances": "welfare",
         "external_ids": "acled:KAZ77;ccc:abc"},
        {"title": "Rally again", "date": "2020-01-01", "country": "KZ", "grievances": "welfare",
         "external_ids": "ccc:abc"},
        {"title": "Other", "date": "2020-01-02", "country": "KZ", "grievances": "land",
         "external_ids": "mm:5;ccc:abc"},
    ]  # fmt: skip
    job = run_import(csv_bytes(rows), format="native")
    assert job.status == "succeeded", job.message
    assert (job.rows_created, job.rows_failed) == (2, 1)
    issue = job.issues.get(kind=ImportIssue.Kind.FAILED)
    assert (issue.row, issue.value) == (3, "ccc:abc")
    assert "row 2 has the same id" in issue.reason
    first = Event.objects.get(external_ids__scheme="acled", external_ids__value="KAZ77")
    assert sorted(f"{x.scheme}:{x.value}" for x in first.external_ids.all()) == [
        "acled:KAZ77", "ccc:abc"
    ]  # fmt: skip
    other = Event.objects.get(external_ids__scheme="mm", external_ids__value="5")
    assert [f"{x.scheme}:{x.value}" for x in other.external_ids.all()] == ["mm:5"]
