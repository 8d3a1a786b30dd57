"""The moderators' upload and job pages."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.importers.conftest import acled_row, csv_bytes
from tracker.models import Event, ImportJob

pytestmark = pytest.mark.django_db


def test_only_moderators_see_the_upload_page(client, make_user):
    assert client.get("/review/imports/").status_code == 302  # to the login page
    client.force_login(make_user("contrib-page", "Contributor"))
    assert client.get("/review/imports/").status_code == 403


def test_upload_queues_a_job_and_its_page_shows_the_report(client, moderator, settings, tmp_path):
    from imports.services import import_job_run

    settings.MEDIA_ROOT = tmp_path
    client.force_login(moderator)
    page = client.get("/review/imports/")
    assert page.status_code == 200
    assert b'name="file"' in page.content

    data = csv_bytes(
        [acled_row(event_id_cnty="KAZP1"), acled_row(event_id_cnty="KAZP2", latitude="x")]
    )
    response = client.post(
        "/review/imports/",
        {"file": SimpleUploadedFile("acled.csv", data), "format": "acled"},
    )
    assert response.status_code == 302
    job = ImportJob.objects.get(pk=int(re.search(r"/(\d+)/$", response["Location"]).group(1)))
    assert job.status == ImportJob.Status.QUEUED
    assert job.publish is False

    queued = client.get(response["Location"])
    assert b'data-finished="false"' in queued.content
    assert b"imports/job.js" in queued.content

    import_job_run(job_id=job.pk)
    done = client.get(response["Location"]).content.decode()
    assert 'data-finished="true"' in done
    assert "latitude must be a decimal number of degrees." in done
    assert f"/api/v1/imports/{job.pk}/report.csv" in done
    assert Event.objects.get(external_ids__value="KAZP1").status == Event.Status.PENDING


def test_upload_without_a_file_says_what_is_missing(client, moderator):
    client.force_login(moderator)
    response = client.post("/review/imports/", {"format": "acled"})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
