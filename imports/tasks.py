"""Thin Celery wrappers around the import and export jobs (imports.services, .exports,
.jobs): each takes an id, imports its service inside, and leaves a finished job as it is."""

from __future__ import annotations

from celery import shared_task

# The job tasks are acknowledged when they end, and handed back to the broker when their
# worker process dies (a SIGKILL, the OOM killer): another worker then runs the job again,
# from the start, since its transaction died with the worker (see imports.jobs). They run
# on the jobs queue (settings.CELERY_TASK_ROUTES), with the time limit that dispatch_job
# gives them.
JOB_TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def import_job_run(self, job_id: int) -> dict:
    """Import the file of a queued ImportJob; a finished job is left as it is."""
    from imports.services import import_job_run as run

    job = run(job_id=job_id)
    return {"job": job.pk, "status": job.status, "message": job.message}


@shared_task(bind=True, **JOB_TASK_OPTIONS)
def export_job_run(self, job_id: int) -> dict:
    """Write the file of a queued ExportJob; a finished job is left as it is."""
    from imports.exports import export_job_run as run

    job = run(job_id=job_id)
    return {"job": job.pk, "status": job.status, "rows": job.rows_written}


@shared_task
def jobs_sweep() -> dict:
    """Run by beat every minute: re-queue (or fail) import and export jobs whose worker is
    gone, and dispatch again jobs left queued for minutes."""
    from imports.jobs import jobs_sweep as sweep

    return sweep()
