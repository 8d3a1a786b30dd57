"""A worker killed during a 20,000-row import: the job still ends with exactly the file's
events, once. Real prefork workers (subprocesses) on the real Redis and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.files.base import ContentFile

from imports.jobs import jobs_sweep
from imports.services import import_job_create, import_job_progress
from tests.reliability.jobs_support import (
    PrivateRedis,
    Worker,
    big_acled_file,
    forget_unacked_messages,
    wait_for,
)
from tracker.models import Event, ExternalId, ImportJob

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROWS = 20_000


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def workers(transactional_db, media, tmp_path):
    from tracker.roles import apply_roles

    apply_roles()  # an earlier transactional test may have flushed the role groups
    started: list[Worker] = []

    def start(**env) -> Worker:
        worker = Worker(tmp_path / f"worker-{len(started)}.log", **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    if started:
        forget_unacked_messages(started[0].queue)


def _queue_import(moderator, prefix: str) -> ImportJob:
    data = big_acled_file(ROWS, prefix)
    return import_job_create(
        file=ContentFile(data, name="big.csv"), format="acled", publish=True, user=moderator
    )


def _rows_done(job: ImportJob) -> int:
    job.refresh_from_db()
    return import_job_progress(job=job)[0] if job.status == "running" else 0


def _wait_mid_file(job: ImportJob, low: int = 4000, seconds: float = 90) -> int:
    done = wait_for(lambda: _rows_done(job) >= low and _rows_done(job), seconds, what="rows")
    assert done < job.rows_total, f"the import was too fast to interrupt ({done} rows done)"
    return done


def _wait_finished(job: ImportJob, seconds: float = 120) -> ImportJob:
    def finished():
        job.refresh_from_db()
        return job.is_finished

    wait_for(finished, seconds, step=0.2, what=f"job {job.pk} to finish")
    return job


def _assert_imported_once(job: ImportJob, prefix: str, rows: int = ROWS) -> None:
    assert job.status == "succeeded", job.message
    assert job.rows_created == rows
    ids = ExternalId.objects.filter(scheme="acled", value__startswith=prefix)
    assert ids.count() == rows
    events = Event.objects.filter(external_ids__in=ids)
    assert events.count() == rows
    assert events.values("id").distinct().count() == rows
    # One creation in the history per event: nothing of the killed attempt survived.
    created = Event.history.filter(
        history_type="+", history_change_reason=f"import job {job.pk} (acled)"
    )
    assert created.count() == rows


def test_a_killed_pool_child_is_redelivered_and_the_job_completes_once(workers, make_user):
    moderator = make_user("mod-loss-child", "Moderator")
    worker = workers()
    job = _queue_import(moderator, "KAZK")
    done_at_kill = _wait_mid_file(job)
    child = worker.kill_pool_child()
    started = time.monotonic()

    job = _wait_finished(job)
    print(
        f"\npool child {child} SIGKILLed at {done_at_kill}/{ROWS} rows; redelivered and done in "
        f"{time.monotonic() - started:.1f} s: {job.status}, attempts {job.attempts}, "
        f"{job.rows_created} created"
    )
    _assert_imported_once(job, "KAZK")
    assert job.attempts == 2  # the first, killed, and the redelivered one
    assert worker.process.poll() is None  # the main process lived on and forked a new child


def test_a_whole_dead_worker_is_swept_and_a_new_worker_completes_the_job(workers, make_user):
    moderator = make_user("mod-loss-all", "Moderator")
    first = workers()
    job = _queue_import(moderator, "KAZM")
    _wait_mid_file(job, low=2000)

    # While the worker lives, the sweep leaves the job alone, even when told that any
    # heartbeat is too old: the worker holds the job's run lock.
    assert jobs_sweep(stale_after=dt.timedelta(0))["importjob"]["alive"] == 1
    job.refresh_from_db()
    assert job.status == "running"
    assert job.attempts == 1

    done_at_kill = _rows_done(job)
    first.kill_all()
    job.refresh_from_db()
    assert job.status == "running"  # nobody else will say it stopped

    # A fresh heartbeat keeps the job out of the sweep (with the default threshold).
    assert jobs_sweep()["importjob"]["requeued"] == 0
    second = workers()
    time.sleep(1.5)
    swept = jobs_sweep(stale_after=dt.timedelta(seconds=1))
    assert swept["importjob"]["requeued"] == 1, swept
    job = _wait_finished(job)
    print(
        f"\nworker (main + pool) SIGKILLed at {done_at_kill}/{ROWS} rows; swept back into the "
        f"queue and done by a new worker: {job.status}, attempts {job.attempts}, "
        f"{job.rows_created} created"
    )
    _assert_imported_once(job, "KAZM")
    assert job.attempts == 2
    assert second.process.poll() is None


def test_the_visibility_timeout_brings_back_the_task_of_a_whole_dead_worker(
    workers, make_user, tmp_path
):
    """No sweep here: the broker alone gives the task of a SIGKILLed worker (main and pool)
    to the next worker once it has gone unacknowledged for the visibility timeout."""
    from config.celery import app
    from imports.tasks import import_job_run

    broker = PrivateRedis(tmp_path)
    started: list[Worker] = []
    try:
        private = {"CELERY_BROKER_URL": broker.url, "CELERY_RESULT_BACKEND": broker.url}
        moderator = make_user("mod-loss-visibility", "Moderator")
        first = workers(**private)
        started.append(first)
        job = import_job_create(
            # Half the file: this test is about the broker, not the size.
            file=ContentFile(big_acled_file(ROWS // 2, "KAZY"), name="big.csv"),
            format="acled",
            publish=True,
            user=moderator,
            dispatch=False,
        )
        with app.connection_for_write(broker.url) as connection:
            import_job_run.apply_async((job.pk,), connection=connection, ignore_result=True)
        done_at_kill = _wait_mid_file(job, low=2000)
        first.kill_all()
        # The next worker counts unacknowledged tasks older than 2 s as lost (an hour in
        # production); it looks for them as it starts.
        started.append(workers(**private, CELERY_VISIBILITY_TIMEOUT="2"))
        job = _wait_finished(job)
    finally:
        for worker in started:  # before their broker goes
            worker.stop()
        broker.stop()
    print(
        f"\nworker SIGKILLed at {done_at_kill}/{ROWS // 2} rows; redelivered after the visibility "
        f"timeout: {job.status}, attempts {job.attempts}, {job.rows_created} created"
    )
    _assert_imported_once(job, "KAZY", rows=ROWS // 2)
    assert job.attempts == 2
