"""The two Celery queues: imports and exports run only on workers of the jobs queue, the
light tasks on the default queue, and a job that runs past JOB_TIME_LIMIT_SECONDS fails
with a message and leaves nothing behind, while its worker goes on. Real workers on the
real Redis broker (tests.reliability.jobs_support)."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.core.files.base import ContentFile

from imports.services import import_job_create
from tests.importers.conftest import acled_row, csv_bytes
from tests.reliability.jobs_support import Worker, big_acled_file, forget_unacked_messages, wait_for
from tracker.models import Event, ImportJob

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def moderator(make_user, settings, tmp_path):
    from tracker.roles import apply_roles

    settings.MEDIA_ROOT = tmp_path / "media"
    apply_roles()  # an earlier transactional test may have flushed the role groups
    return make_user("mod-queues", "Moderator")


@pytest.fixture
def workers(tmp_path):
    started: list[Worker] = []

    def start(queues: str, **env: str) -> Worker:
        worker = Worker(tmp_path / f"worker-{len(started)}.log", queues=queues, **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    forget_unacked_messages(settings.CELERY_TASK_DEFAULT_QUEUE)


def _import(moderator, data: bytes) -> ImportJob:
    return import_job_create(
        file=ContentFile(data, name="f.csv"), format="acled", publish=True, user=moderator
    )


def _finished(job: ImportJob):
    job.refresh_from_db()
    return job.status in ("succeeded", "failed", "cancelled") and job


def test_imports_run_on_the_jobs_queue_only(moderator, workers):
    assert settings.CELERY_JOBS_QUEUE != settings.CELERY_TASK_DEFAULT_QUEUE
    workers(settings.CELERY_TASK_DEFAULT_QUEUE)  # a light worker: geocoding, sweeps
    job = _import(moderator, csv_bytes([acled_row(event_id_cnty=f"KAZQ{i}") for i in range(20)]))
    time.sleep(5)  # time enough for the light worker to have taken it, had it been sent there
    job.refresh_from_db()
    assert job.status == "queued"
    workers(settings.CELERY_JOBS_QUEUE)
    done = wait_for(lambda: _finished(job), 90, what="the import on the jobs worker")
    assert done.status == "succeeded", done.message
    assert Event.objects.filter(external_ids__value__startswith="KAZQ").count() == 20


def test_a_job_past_its_time_limit_fails_and_keeps_nothing(moderator, workers, settings):
    settings.JOB_TIME_LIMIT_SECONDS = 2  # the task carries it (imports.jobs.dispatch_job)
    worker = workers(settings.CELERY_JOBS_QUEUE)
    slow = _import(moderator, big_acled_file(20_000, "KAZT"))
    done = wait_for(lambda: _finished(slow), 120, what="the import to stop at its limit")
    assert done.status == "failed", worker.log.read_text()[-3000:]
    assert "time limit" in done.message and "nothing was imported" in done.message
    assert not Event.objects.filter(external_ids__value__startswith="KAZT").exists()
    # The worker goes on with the next job.
    assert worker.process.poll() is None
    small = _import(moderator, csv_bytes([acled_row(event_id_cnty="KAZT-small")]))
    after = wait_for(lambda: _finished(small), 60, what="the next import")
    assert after.status == "succeeded", after.message
