"""What import and export jobs share so that they outlive their workers.

A job's work happens in a long transaction (an import) or a long write (an export), which
nobody else can see until it ends. So a running job also shows itself through a second
database connection, in autocommit:

- a PostgreSQL advisory lock, held for the whole run. PostgreSQL drops it the moment the
  worker's connection goes, so a task delivered again after its worker died (Celery's
  `reject_on_worker_lost`) takes over at once, and a second delivery of a job that is still
  running (the broker's visibility timeout, the sweep) leaves it alone;
- `heartbeat_at`, written after every batch; the same write reads `cancel_requested`.

A sweep run by beat every minute (`jobs_sweep`) re-queues a running job whose heartbeat
stopped and whose lock is free (its worker is gone), up to MAX_ATTEMPTS starts, and
dispatches again a job left queued for minutes (its message may have been lost with the
broker). Moderators (and an export's owner) cancel and retry jobs.

Job rows are locked FOR NO KEY UPDATE: the report rows a running import writes reference
its job, and once their foreign key is checked (at commit, as Django defers it, or earlier
under SET CONSTRAINTS ... IMMEDIATE) the import holds a KEY SHARE lock on the job row, which
a plain FOR UPDATE would wait for: a cancel must never wait for the import it cancels.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import zlib

from celery import current_app
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model, Q
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy

from tracker.history import is_moderator
from tracker.models import ExportJob, ImportJob, JobStatus

logger = logging.getLogger(__name__)

# Starts of one job before the sweep (or a redelivered task) gives up: a file that kills its
# worker every time must not take the queue down with it. A moderator's retry is always run.
MAX_ATTEMPTS = 3
# How long a delivered task waits for the lock of a job whose previous worker just died:
# PostgreSQL needs a moment to notice the closed connection and release the lock.
TAKEOVER_WAIT_SECONDS = 10.0

Job = ImportJob | ExportJob

# Lazy: translated when a message is made. A message kept on an import job is written in its
# uploader's language (ImportJob.language, see job_language); an answer to a request (a
# JobConflict) in the requester's.
NOTHING_DONE = {
    ImportJob: gettext_lazy("nothing was imported"),
    ExportJob: gettext_lazy("no file was written"),
}


def _cancelled(model: type[Model]) -> str:
    return gettext("Cancelled; %(nothing)s.") % {"nothing": NOTHING_DONE[model]}


def job_language(job: Job) -> translation.override:
    """The language of the job's own messages: its uploader's, else the active one."""
    return translation.override(getattr(job, "language", "") or translation.get_language())


class JobConflict(Exception):
    """The action does not fit the job's state (cancel a finished job, retry a queued one)."""


class StorageUnavailable(Exception):
    """The media folder cannot take a file (full, read-only, missing): the server's problem,
    answered 503 with Retry-After, since it goes away once an administrator frees space."""


def can_manage_job(user, job: Job) -> bool:
    """Moderators manage every job; an analyst only their own exports."""
    if is_moderator(user):
        return True
    return isinstance(job, ExportJob) and user.is_authenticated and job.created_by_id == user.pk


# By name: imports.tasks imports this module (inside its tasks), not the other way round.
JOB_TASKS = {ImportJob: "imports.tasks.import_job_run", ExportJob: "imports.tasks.export_job_run"}


def dispatch_job(job: Job) -> None:
    """Queue the job's task once the current transaction commits. A broker that is down is
    logged, not raised: the job stays queued and the sweep dispatches it again later.

    The task carries its time limit (Celery's worker takes the sender's): at
    JOB_TIME_LIMIT_SECONDS it gets SoftTimeLimitExceeded, and the job services fail the job
    with a message; a minute later the worker kills the process, should it not have ended."""
    name, pk = JOB_TASKS[type(job)], job.pk
    limit = settings.JOB_TIME_LIMIT_SECONDS
    transaction.on_commit(
        lambda: current_app.tasks[name].apply_async(
            (pk,), soft_time_limit=limit, time_limit=limit + 60
        ),
        robust=True,
    )


class JobRun:
    """The run lock and heartbeat of one job, through a connection of its own."""

    def __init__(self, model: type[Model], job_id: int):
        self.table = model._meta.db_table
        self.job_id = job_id
        # Two 32-bit keys: one per table, one per job (ids wrap after two billion jobs).
        self.key = (zlib.crc32(self.table.encode()) & 0x7FFFFFFF, job_id & 0x7FFFFFFF)
        self.connection = connections.create_connection(DEFAULT_DB_ALIAS)
        self.locked = False

    def _one(self, sql: str, params: list):
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the run lock; False if another live process holds it for `wait` seconds."""
        deadline = time.monotonic() + wait
        while True:
            (self.locked,) = self._one("SELECT pg_try_advisory_lock(%s, %s)", list(self.key))
            if self.locked or time.monotonic() >= deadline:
                return self.locked
            time.sleep(0.25)

    def beat(self) -> bool:
        """Write the heartbeat; True if a cancel was requested meanwhile."""
        row = self._one(
            f'UPDATE "{self.table}" SET heartbeat_at = now() WHERE id = %s '  # noqa: S608
            "RETURNING cancel_requested",
            [self.job_id],
        )
        return bool(row and row[0])

    def close(self) -> None:
        try:
            if self.locked:
                self._one("SELECT pg_advisory_unlock(%s, %s)", list(self.key))
        finally:
            self.locked = False
            self.connection.close()

    def __enter__(self) -> JobRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class JobCancelled(Exception):
    """Raised inside a running job when a moderator asked to cancel it."""


def job_end(job: Job, *, status: str, message: str) -> Job:
    job.status = status
    job.message = message
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "message", "finished_at"])
    return job


def job_begin(*, model: type[Model], job_id: int) -> tuple[Job, bool]:
    """Mark the job running, as attempt n + 1, under its row lock. Call it holding the run
    lock. Returns the job and whether to run it (not if it is finished or to be stopped)."""
    with transaction.atomic():
        job = model.objects.select_for_update(no_key=True).get(pk=job_id)
        if job.is_finished:
            return job, False
        if job.cancel_requested:
            with job_language(job):
                message = _cancelled(model)
            return job_end(job, status=JobStatus.CANCELLED, message=message), False
        if job.status == JobStatus.RUNNING and job.attempts >= MAX_ATTEMPTS:
            # Running but unlocked: the worker of the last attempt died.
            with job_language(job):
                message = _stopped(job)
            return job_end(job, status=JobStatus.FAILED, message=message), False
        now = timezone.now()
        job.status = JobStatus.RUNNING
        job.attempts += 1
        job.started_at = job.heartbeat_at = now
        job.save(update_fields=["status", "attempts", "started_at", "heartbeat_at"])
    return job, True


def _stopped(job: Job) -> str:
    return gettext(
        "The worker running this job stopped (%(attempts)s attempts); %(nothing)s. "
        "Retry it, or look for the cause in the worker log."
    ) % {"attempts": job.attempts, "nothing": NOTHING_DONE[type(job)]}


@transaction.atomic
def job_cancel(*, model: type[Model], job_id: int, user) -> Job:
    """A queued job is cancelled at once; a running one stops at its next batch."""
    job = model.objects.select_for_update(no_key=True).get(pk=job_id)
    if not can_manage_job(user, job):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied(
            gettext("Only moderators (or the owner of an export) manage this job.")
        )
    if job.is_finished:
        raise JobConflict(
            gettext("The job has already %(status)s; there is nothing to cancel.")
            % {"status": job.get_status_display()}
        )
    if job.status == JobStatus.QUEUED:
        job.cancel_requested = True
        job.save(update_fields=["cancel_requested"])
        with job_language(job):
            message = gettext("Cancelled before it ran; %(nothing)s.") % {
                "nothing": NOTHING_DONE[model]
            }
        return job_end(job, status=JobStatus.CANCELLED, message=message)
    if job.cancel_requested:
        raise JobConflict(
            gettext("A cancel was already requested; the job stops at its next batch.")
        )
    job.cancel_requested = True
    job.save(update_fields=["cancel_requested"])
    return job


@transaction.atomic
def job_retry(*, model: type[Model], job_id: int, user) -> Job:
    """Queue a failed or cancelled job again, from the start (its attempts are kept)."""
    job = model.objects.select_for_update(no_key=True).get(pk=job_id)
    if not can_manage_job(user, job):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied(
            gettext("Only moderators (or the owner of an export) manage this job.")
        )
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise JobConflict(
            gettext("Only a failed or cancelled job can be retried; this one is %(status)s.")
            % {"status": job.get_status_display()}
        )
    job.status = JobStatus.QUEUED
    job.message = ""
    job.cancel_requested = False
    job.started_at = job.finished_at = None
    job.heartbeat_at = timezone.now()  # for a queued job: when it was last queued
    fields = ["status", "message", "cancel_requested", "started_at", "finished_at"]
    if isinstance(job, ImportJob):
        job.rows_done = job.rows_created = job.rows_updated = job.rows_unchanged = 0
        job.rows_skipped = job.rows_failed = 0
        job.rows_placed_by_name = job.rows_placed_by_point = job.rows_unplaced = 0
        job.rows_conflicts = 0
        job.issues.all().delete()
        fields += ["rows_done", "rows_created", "rows_updated", "rows_unchanged"]
        fields += ["rows_skipped", "rows_failed", "rows_placed_by_name", "rows_placed_by_point"]
        fields += ["rows_unplaced", "rows_conflicts"]
    else:
        job.rows_written = 0
        fields += ["rows_written"]
    job.save(update_fields=[*fields, "heartbeat_at"])
    dispatch_job(job)
    return job


def _sweep_running(model: type[Model], stale_before: dt.datetime) -> dict[str, int]:
    counts = {"requeued": 0, "failed": 0, "cancelled": 0, "alive": 0}
    stale = model.objects.filter(status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True)
    )
    for job_id in stale.values_list("pk", flat=True):
        with JobRun(model, job_id) as run:
            if not run.acquire():
                # A live connection still holds the run: a slow batch, not a dead worker.
                logger.warning(
                    "%s %s: no heartbeat, but its worker holds the lock", model.__name__, job_id
                )
                counts["alive"] += 1
                continue
            with transaction.atomic():
                job = model.objects.select_for_update(no_key=True).get(pk=job_id)
                if job.status != JobStatus.RUNNING:
                    continue  # finished (or re-queued) between the two reads
                if job.cancel_requested:
                    with job_language(job):
                        message = _cancelled(model)
                    job_end(job, status=JobStatus.CANCELLED, message=message)
                    counts["cancelled"] += 1
                elif job.attempts >= MAX_ATTEMPTS:
                    with job_language(job):
                        message = _stopped(job)
                    job_end(job, status=JobStatus.FAILED, message=message)
                    counts["failed"] += 1
                else:
                    job.status = JobStatus.QUEUED
                    job.heartbeat_at = timezone.now()
                    job.save(update_fields=["status", "heartbeat_at"])
                    dispatch_job(job)
                    counts["requeued"] += 1
    return counts


def _sweep_queued(model: type[Model], queued_before: dt.datetime) -> int:
    with transaction.atomic():
        jobs = list(
            model.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(status=JobStatus.QUEUED)
            .annotate(last_queued=Coalesce("heartbeat_at", "created_at"))
            .filter(last_queued__lt=queued_before)
        )
        for job in jobs:
            job.heartbeat_at = timezone.now()
            job.save(update_fields=["heartbeat_at"])
            dispatch_job(job)
    return len(jobs)


def jobs_sweep(
    *, stale_after: dt.timedelta | None = None, queued_after: dt.timedelta | None = None
) -> dict[str, dict[str, int]]:
    """Re-queue (or fail) running jobs whose worker is gone; dispatch forgotten queued ones."""
    if stale_after is None:
        stale_after = dt.timedelta(seconds=settings.JOB_HEARTBEAT_STALE_SECONDS)
    if queued_after is None:
        queued_after = dt.timedelta(seconds=settings.JOB_QUEUED_STALE_SECONDS)
    now = timezone.now()
    result = {}
    for model in (ImportJob, ExportJob):
        counts = _sweep_running(model, now - stale_after)
        counts["redispatched"] = _sweep_queued(model, now - queued_after)
        result[model._meta.model_name] = counts
    if any(n for counts in result.values() for key, n in counts.items() if key != "alive"):
        logger.warning("jobs sweep: %s", result)
    return result
