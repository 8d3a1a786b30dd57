"""Cancel and retry of jobs (pages and API), the sweep's limits, export jobs that hit an
error, and uploads to a media folder that is full or unusable. The faults are real: a file
size limit set with setrlimit (the kernel answers EFBIG, as a full disk answers ENOSPC), a
media folder below a regular file, rows the export cannot convert, a worker process."""

from __future__ import annotations

import datetime as dt
import io
import re
import resource
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from imports.jobs import MAX_ATTEMPTS, jobs_sweep
from imports.services import import_job_create, import_job_progress, import_job_run
from tests.importers.conftest import acled_row, csv_bytes
from tests.reliability.jobs_support import Worker, big_acled_file, forget_unacked_messages, wait_for
from tracker.models import Event, ExportJob, ExternalId, ImportJob

UPLOAD = csv_bytes([acled_row(event_id_cnty=f"KAZU{i}") for i in range(400)])  # ~150 KB


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def moderator(make_user):
    return make_user("mod-jobs", "Moderator")


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@contextmanager
def file_size_limit(limit: int):
    """Writes past `limit` bytes fail with EFBIG, as on a disk that filled up mid-file."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@contextmanager
def media_fault(kind: str, media: Path, settings):
    if kind == "full":
        with file_size_limit(32 * 1024):
            yield
    else:  # the media folder cannot be created: its parent is a regular file
        blocker = media.parent / "not-a-folder"
        blocker.write_text("x")
        settings.MEDIA_ROOT = blocker / "media"
        yield


def _job(moderator, data: bytes = UPLOAD) -> ImportJob:
    return import_job_create(
        file=ContentFile(data, name="f.csv"),
        format="acled",
        publish=True,
        user=moderator,
        dispatch=False,
    )


# --- uploads to a media folder that cannot take them ------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["full", "unusable"])
def test_api_upload_to_a_full_or_unusable_media_folder_is_a_503_and_leaves_nothing(
    fault, media, settings, moderator
):
    api = APIClient()
    api.force_authenticate(moderator)
    jobs_before = ImportJob.objects.count()
    upload = io.BytesIO(UPLOAD)
    upload.name = "acled.csv"
    with media_fault(fault, media, settings):
        response = api.post(
            "/api/v1/imports/", {"file": upload, "format": "acled"}, format="multipart"
        )
    print(f"\n{fault} media folder: {response.status_code} {response.json()}")
    assert response.status_code == 503
    assert response["Retry-After"] == "600"
    body = response.json()
    assert body["code"] == "storage_unavailable"
    assert "media folder is full or not writable" in body["detail"]
    assert ImportJob.objects.count() == jobs_before
    assert _files(media) == []  # the partial file of the full disk was deleted


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["full", "unusable"])
def test_page_upload_to_a_full_or_unusable_media_folder_says_so(
    fault, client, media, settings, moderator
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(moderator)
    jobs_before = ImportJob.objects.count()
    with media_fault(fault, media, settings):
        response = client.post(
            "/review/imports/",
            {"file": SimpleUploadedFile("acled.csv", UPLOAD), "format": "acled"},
        )
    assert response.status_code == 503
    assert response["Retry-After"] == "600"
    assert "storage is full or not writable" in response.content.decode()
    assert ImportJob.objects.count() == jobs_before
    assert _files(media) == []


# --- cancel and retry ----------------------------------------------------------------------


@pytest.mark.django_db
def test_api_cancel_and_retry_of_a_queued_import(media, moderator, make_user):
    job = _job(moderator)
    api = APIClient()
    api.force_authenticate(make_user("contrib-jobs", "Contributor"))
    assert api.post(f"/api/v1/imports/{job.pk}/cancel/").status_code == 403

    api.force_authenticate(moderator)
    assert api.post(f"/api/v1/imports/{job.pk}/retry/").status_code == 409  # still queued
    response = api.post(f"/api/v1/imports/{job.pk}/cancel/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert "nothing was imported" in response.json()["message"]
    again = api.post(f"/api/v1/imports/{job.pk}/cancel/")
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    assert "nothing to cancel" in again.json()["detail"]
    # The task arriving after the cancel changes nothing.
    assert import_job_run(job_id=job.pk).status == "cancelled"
    assert not ExternalId.objects.filter(value__startswith="KAZU").exists()

    response = api.post(f"/api/v1/imports/{job.pk}/retry/")
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    job = import_job_run(job_id=job.pk)
    assert job.status == "succeeded"
    assert job.rows_created == 400
    assert api.post(f"/api/v1/imports/{job.pk}/retry/").status_code == 409
    assert api.post("/api/v1/imports/999999/cancel/").status_code == 404


@pytest.mark.django_db
def test_page_buttons_cancel_and_retry_with_csrf_in_three_languages(media, moderator):
    job = _job(moderator)
    client = Client(enforce_csrf_checks=True)
    client.force_login(moderator)
    page = client.get(f"/review/imports/{job.pk}/")
    html = page.content.decode()
    assert f'action="/review/imports/{job.pk}/cancel/"' in html
    assert "Cancel import" in html
    assert f'action="/review/imports/{job.pk}/retry/"' not in html  # queued: nothing to retry
    # Without the form's CSRF token the POST is refused.
    assert client.post(f"/review/imports/{job.pk}/cancel/").status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    response = client.post(
        f"/review/imports/{job.pk}/cancel/", {"csrfmiddlewaretoken": token}, follow=True
    )
    assert response.status_code == 200
    assert "cancelled before it ran" in response.content.decode()
    job.refresh_from_db()
    assert job.status == "cancelled"
    conflict = client.post(f"/review/imports/{job.pk}/cancel/", {"csrfmiddlewaretoken": token})
    assert conflict.status_code == 409
    assert "already finished" in conflict.content.decode()

    for language, retry_label in (("ru", "Повторить импорт"), ("kk", "Импортты қайталау")):
        page = client.get(f"/review/imports/{job.pk}/", HTTP_ACCEPT_LANGUAGE=language)
        assert retry_label in page.content.decode(), language
    response = client.post(f"/review/imports/{job.pk}/retry/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "queued"


@pytest.mark.django_db
def test_sweep_fails_a_job_after_three_dead_workers_and_a_retry_runs_it(media, moderator):
    job = _job(moderator)
    old = timezone.now() - dt.timedelta(minutes=10)
    ImportJob.objects.filter(pk=job.pk).update(
        status="running", attempts=MAX_ATTEMPTS, heartbeat_at=old
    )
    swept = jobs_sweep()
    assert swept["importjob"]["failed"] == 1
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.message.startswith("The worker running this job stopped (3 attempts)")

    api = APIClient()
    api.force_authenticate(moderator)
    response = api.post(f"/api/v1/imports/{job.pk}/retry/")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["attempts"], body["message"]) == ("queued", MAX_ATTEMPTS, "")
    job = import_job_run(job_id=job.pk)
    assert (job.status, job.attempts, job.rows_created) == ("succeeded", MAX_ATTEMPTS + 1, 400)


@pytest.mark.django_db
def test_a_redelivered_task_after_three_dead_workers_fails_the_job(media, moderator):
    job = _job(moderator)
    ImportJob.objects.filter(pk=job.pk).update(status="running", attempts=MAX_ATTEMPTS)
    job = import_job_run(job_id=job.pk)
    assert job.status == "failed"
    assert "nothing was imported" in job.message


@pytest.mark.django_db
def test_sweep_requeues_a_dead_workers_job_and_redispatches_a_forgotten_one(media, moderator):
    dead, forgotten, fresh = _job(moderator), _job(moderator), _job(moderator)
    old = timezone.now() - dt.timedelta(minutes=10)
    ImportJob.objects.filter(pk=dead.pk).update(status="running", attempts=1, heartbeat_at=old)
    ImportJob.objects.filter(pk=forgotten.pk).update(heartbeat_at=old)
    swept = jobs_sweep()["importjob"]
    assert (swept["requeued"], swept["redispatched"]) == (1, 1)
    dead.refresh_from_db()
    forgotten.refresh_from_db()
    fresh.refresh_from_db()
    assert dead.status == "queued"
    assert dead.attempts == 1
    # Both are marked as just queued, so the next sweep does not dispatch them again.
    assert dead.heartbeat_at > old and forgotten.heartbeat_at > old
    assert jobs_sweep()["importjob"]["redispatched"] == 0
    assert fresh.status == "queued"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancel_of_a_running_import_stops_it_and_keeps_nothing(media, make_user, tmp_path):
    from tracker.roles import apply_roles

    apply_roles()
    moderator = make_user("mod-cancel-running", "Moderator")
    worker = Worker(tmp_path / "worker.log")
    try:
        job = import_job_create(
            # Bad rows too: their report rows, which reference the job, are rolled back too.
            file=ContentFile(big_acled_file(20_000, "KAZX", bad_every=500), name="big.csv"),
            format="acled",
            publish=True,
            user=moderator,
        )

        def rows_done():
            job.refresh_from_db()
            return job.status == "running" and import_job_progress(job=job)[0] >= 2000

        wait_for(rows_done, 90, what="the import to be under way")
        api = APIClient()
        api.force_authenticate(moderator)
        asked = time.monotonic()
        response = api.post(f"/api/v1/imports/{job.pk}/cancel/")
        assert time.monotonic() - asked < 5  # not held up by the import's locks
        assert response.status_code == 200
        assert response.json()["cancel_requested"] is True
        assert response.json()["status"] == "running"
        done_at_cancel = import_job_progress(job=job)[0]

        def finished():
            job.refresh_from_db()
            return job.is_finished

        wait_for(finished, 60, step=0.2, what="the job to stop")
    finally:
        worker.stop()
        forget_unacked_messages(worker.queue)
    print(f"\ncancelled at {done_at_cancel}/20000 rows: {job.status}: {job.message}")
    assert job.status == "cancelled"
    assert job.message == "Cancelled while running; nothing was imported."
    assert job.rows_created == job.rows_failed == 0
    assert not ExternalId.objects.filter(value__startswith="KAZX").exists()
    assert not job.issues.exists()  # the report rows were rolled back with the rest
    assert api.post(f"/api/v1/imports/{job.pk}/retry/").json()["status"] == "queued"


# --- export jobs that hit an error -----------------------------------------------------------


def _export(user, query: str = "") -> ExportJob:
    api = APIClient()
    api.force_authenticate(user)
    response = api.post("/api/v1/exports/jobs/", {"layout": "acled", "query": query})
    assert response.status_code == 202, response.content
    return ExportJob.objects.get(pk=response.json()["id"])


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["full", "unusable"])
def test_an_export_job_that_cannot_write_its_file_fails_with_a_message(
    fault, media, settings, make_user
):
    from imports.exports import export_job_run

    # 400 more published events: the file is then well past the 32 KB the "full" disk takes.
    assert import_job_run(job_id=_job(make_user("mod-full", "Moderator")).pk).rows_created == 400
    user = make_user("analyst-full")
    job = _export(user)
    with media_fault(fault, media, settings):
        job = export_job_run(job_id=job.pk)
    print(f"\nexport to a {fault} media folder: {job.status}: {job.message}")
    assert job.status == "failed"
    assert "could not be written" in job.message
    assert job.finished_at is not None
    assert not job.file
    assert _files(media / "exports") == []
    # Once the disk has room again, the owner retries it.
    api = APIClient()
    api.force_authenticate(user)
    assert api.post(f"/api/v1/exports/jobs/{job.pk}/retry/").json()["status"] == "queued"
    settings.MEDIA_ROOT = media
    job = export_job_run(job_id=job.pk)
    assert job.status == "succeeded"
    assert job.rows_written == Event.objects.published().count()
    assert job.attempts == 2


@pytest.mark.django_db
def test_an_export_job_whose_query_fails_fails_with_a_message(media, make_user, monkeypatch):
    from imports import exports
    from imports.exports import export_job_run

    event = Event.objects.published().first()
    # PostgreSQL writes the file (one COPY): make that statement fail on one row, as a
    # broken row, a cancelled query or a lost connection would.
    monkeypatch.setattr(exports, "LAYOUT_ORDER", f"e.date, 1 / (e.id - {event.pk})")
    job = export_job_run(job_id=_export(make_user("analyst-bad-row")).pk)
    print(f"\nexport whose query fails: {job.status}: {job.message}")
    assert job.status == "failed"
    assert "division by zero" in job.message
    assert job.finished_at is not None
    assert job.rows_written == 0
    assert _files(media) == []


@pytest.mark.django_db
def test_an_export_job_writes_a_row_python_could_not_read(media, make_user):
    """A date past year 9999 (as a faulty import or a manual fix could leave it) has no
    Python date; the export, written by PostgreSQL, writes it as it is stored."""
    from imports.exports import export_job_run

    event = Event.objects.published().first()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tracker_event SET date = '10000-01-01' WHERE id = %s", [event.pk])
    job = export_job_run(job_id=_export(make_user("analyst-odd-row")).pk)
    assert job.status == "succeeded", job.message
    assert job.rows_written == Event.objects.published().count()
    with job.file.open("rb") as fh:
        assert b"10000-01-01" in fh.read()


@pytest.mark.django_db
def test_export_cancel_and_retry_belong_to_the_owner_or_a_moderator(media, make_user):
    owner, other = make_user("analyst-owner"), make_user("analyst-other")
    job = _export(owner)
    api = APIClient()
    api.force_authenticate(other)
    assert api.post(f"/api/v1/exports/jobs/{job.pk}/cancel/").status_code == 404
    api.force_authenticate(owner)
    response = api.post(f"/api/v1/exports/jobs/{job.pk}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert api.post(f"/api/v1/exports/jobs/{job.pk}/cancel/").status_code == 409
    api.force_authenticate(make_user("mod-export", "Moderator"))
    assert api.post(f"/api/v1/exports/jobs/{job.pk}/retry/").json()["status"] == "queued"


# --- what an import leaves in events and their history ---------------------------------------


@pytest.mark.django_db
def test_an_import_update_raises_the_version_and_the_history_hides_the_file_name(media, moderator):
    first = import_job_run(job_id=_job(moderator, csv_bytes([acled_row(event_id_cnty="KAZV1")])).pk)
    event = Event.objects.get(external_ids__value="KAZV1")
    assert (first.rows_created, event.version) == (1, 1)
    newer = csv_bytes([acled_row(event_id_cnty="KAZV1", notes="Updated.", timestamp="1700000000")])
    job = import_job_create(
        file=ContentFile(newer, name="secret-source-name.csv"),
        format="acled",
        publish=True,
        user=moderator,
        dispatch=False,
    )
    job = import_job_run(job_id=job.pk)
    assert job.rows_updated == 1
    event.refresh_from_db()
    assert event.version == 2
    assert event.description == "Updated."
    reasons = set(event.history.values_list("history_change_reason", flat=True))
    assert reasons == {f"import job {first.pk} (acled)", f"import job {job.pk} (acled)"}
    assert event.history.first().version == 2
    # The stored file is named at random, not after the upload.
    assert "secret-source-name" not in job.file.name
    assert job.original_name == "secret-source-name.csv"
