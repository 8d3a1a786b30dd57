"""Jobs end to end: the API with a real Celery worker, the shell command, the exports."""

import csv
import gc
import io
import time
import warnings

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command
from rest_framework.test import APIClient

from config.celery import app
from imports import keywords
from tests.importers.conftest import acled_row, csv_bytes
from tracker.models import Event, ExportJob, ImportJob


@pytest.fixture
def celery_worker(demo):
    assert not app.conf.task_always_eager
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker
    # The stopped worker thread leaves Redis connections of kombu for the garbage collector;
    # collect them now, where their ResourceWarning is known and harmless, rather than at the
    # end of the session, where it fails the run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def _wait(job_model, pk, seconds=60):
    deadline = time.monotonic() + seconds
    job = job_model.objects.get(pk=pk)
    while job.status not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    return job


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_upload_through_the_api_is_imported_by_the_worker(celery_worker, make_user, settings,
                                                          tmp_path):  # fmt: skip
    settings.MEDIA_ROOT = tmp_path
    api = APIClient()
    api.force_authenticate(make_user("contrib-imports", "Contributor"))
    data = csv_bytes(
        [
            acled_row(event_id_cnty="KAZW1", notes="Police detained 3 people."),
            acled_row(event_id_cnty="KAZW2", event_type="Strategic developments"),
        ]
    )
    upload = {"file": io.BytesIO(data), "format": "acled", "publish": "true"}
    assert api.post("/api/v1/imports/", upload, format="multipart").status_code == 403

    api.force_authenticate(make_user("mod-worker", "Moderator"))
    upload["file"] = io.BytesIO(data)
    upload["file"].name = "acled.csv"
    response = api.post("/api/v1/imports/", upload, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"

    job = _wait(ImportJob, body["id"])
    assert job.status == "succeeded", job.message
    status = api.get(f"/api/v1/imports/{job.pk}/").json()
    assert status["progress"] == {"done": 2, "total": 2}
    assert status["counts"] == {
        "created": 1, "updated": 0, "unchanged": 0, "skipped": 1, "failed": 0
    }  # fmt: skip
    report = api.get(status["report_url"])
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert rows[0] == [
        "row", "column", "value", "reason", "kind", "event", "previous_value", "kept_value"
    ]  # fmt: skip
    assert status["places"] == {"by_name": 1, "by_point": 0, "unplaced": 0}
    assert status["conflicts"] == 0
    assert rows[1][:3] == ["3", "event_type", "Strategic developments"]
    event = Event.objects.get(external_ids__value="KAZW1")
    assert event.status == Event.Status.PUBLISHED
    assert event.arrests == 3
    # Running the task again for a finished job changes nothing.
    from imports.tasks import import_job_run

    assert import_job_run.delay(job.pk).get(timeout=30)["status"] == "succeeded"
    assert Event.objects.filter(external_ids__value="KAZW1").count() == 1


@pytest.mark.django_db
def test_upload_with_a_bad_format_is_a_clear_400(make_user):
    api = APIClient()
    api.force_authenticate(make_user("mod-400", "Moderator"))
    response = api.post(
        "/api/v1/imports/", {"file": io.BytesIO(b"x"), "format": "xlsx"}, format="multipart"
    )
    assert response.status_code == 400
    assert "xlsx" in str(response.json())
    assert api.get("/api/v1/imports/999999/").status_code == 404


@pytest.mark.django_db
def test_import_command_prints_the_summary_and_writes_the_report(make_user, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    make_user("mod-cmd", "Moderator")
    path = tmp_path / "acled.csv"
    path.write_bytes(
        csv_bytes([acled_row(event_id_cnty="KAZC1"), acled_row(event_id_cnty="KAZC2",
                                                               event_date="yesterday")])
    )  # fmt: skip
    out = io.StringIO()
    report = tmp_path / "report.csv"
    call_command(
        "import_events", str(path), "--format", "acled", "--publish", "--user", "mod-cmd",
        "--report", str(report), stdout=out, verbosity=0,
    )  # fmt: skip
    assert "1 created, 0 updated, 0 unchanged, 0 skipped, 1 failed" in out.getvalue()
    with report.open(encoding="utf-8") as fh:
        lines = list(csv.reader(fh))
    assert lines[1][:3] == ["3", "event_date", "yesterday"]
    assert Event.objects.get(external_ids__value="KAZC1").status == Event.Status.PUBLISHED


@pytest.mark.django_db
def test_acled_layout_export_uses_the_api_filters_and_imports_back(client, run_import):
    job = run_import(
        csv_bytes(
            [
                acled_row(event_id_cnty="KAZE1", event_date="2031-01-01"),
                acled_row(event_id_cnty="KAZE2", event_date="2018-03-03", time_precision="2",
                          sub_event_type="Excessive force against protesters"),
            ]
        )
    )  # fmt: skip
    assert job.rows_failed == 1  # a date in the future
    response = client.get("/api/v1/exports/acled.csv?year=2018&country=KZ")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == Event.objects.published().filter(date__year=2018, country="KZ").count()
    exported = next(r for r in rows if r["event_id_cnty"] == "KAZE2")
    assert exported["sub_event_type"] == "Excessive force against protesters"
    assert exported["event_date"] == "2018-03-03"
    # ACLED's own codes: "within a week" kept, the numeric ISO code and the country's name.
    assert Event.objects.get(external_ids__value="KAZE2").date_precision == "week"
    assert (exported["time_precision"], exported["iso"], exported["country"]) == (
        "2",
        "398",
        "Kazakhstan",
    )
    # The ACLED-like file is an ACLED file: importing it recognises the same event.
    back = run_import(csv_bytes([exported]))
    assert back.rows_failed == 0
    assert back.rows_created == 0

    bad = client.get("/api/v1/exports/acled.csv?year=abc")
    assert bad.status_code == 400
    assert client.get("/api/v1/exports/xlsx.csv").status_code == 404


@pytest.mark.django_db
def test_ccc_export_job_writes_a_file(make_user, settings, tmp_path):
    from imports.exports import export_job_run

    settings.MEDIA_ROOT = tmp_path
    user = make_user("analyst-export")
    api = APIClient()
    api.force_authenticate(user)
    response = api.post("/api/v1/exports/jobs/", {"layout": "ccc", "query": "year=2019"})
    assert response.status_code == 202, response.content
    job = export_job_run(job_id=response.json()["id"])
    assert job.status == ExportJob.Status.SUCCEEDED
    assert job.rows_written == Event.objects.published().filter(date__year=2019).count() > 0
    file = api.get(f"/api/v1/exports/jobs/{job.pk}/file")
    lines = b"".join(file.streaming_content).decode().splitlines()
    assert lines[0].startswith("date,locality,state")
    assert len(lines) == job.rows_written + 1
    bad = api.post("/api/v1/exports/jobs/", {"layout": "ccc", "query": "year=abc"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("text", "arrests"),
    [
        ("Police detained 50 protesters near the akimat.", 50),
        ("At least 1,200 people were detained across the country.", 1200),
        ("В Алматы задержаны 50 человек.", 50),
        ("Полиция задержала более 100 участников акции.", 100),
        ("No arrests were reported.", 0),
        ("Никто не был задержан.", 0),
        ("5 arrested.", 5),
        ("12 protesters detained after the rally.", 12),
        ("Police detained dozens of protesters.", 24),
        ("Dozens detained.", 24),
        ("Hundreds were arrested overnight.", 100),
        ("В Жанаозене задержаны десятки человек.", 24),
        ("Десятки задержанных доставлены в отделы полиции.", 24),
        ("Police detained 50 people; dozens more were arrested.", 50),
        ("In 2019 arrested activists were freed.", None),
        ("Residents gathered at the square.", None),
    ],
)
def test_arrest_keyword_rules(text, arrests):
    assert keywords.arrests_from_text(text) == arrests


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("crowd size=several hundred", (200, 999)),
        ("crowd size=around 50", (50, 50)),
        ("crowd size=no report", (None, None)),
        ("a crowd of 300 people", (300, 300)),
        ("около 200 человек собрались у акимата", (200, 200)),
        ("собрались несколько десятков человек", (None, None)),
    ],
)
def test_crowd_size_keyword_rules(text, size):
    assert keywords.crowd_size_from_text(text) == size


def test_grievance_keyword_rules():
    assert keywords.grievances_from_text("Protest against rising utility prices") == ["welfare"]
    assert keywords.grievances_from_text("Митинг против продажи земли китайцам") == [
        "land",
        "china",
    ]
    assert keywords.grievances_from_text("A walk in the park") == []
