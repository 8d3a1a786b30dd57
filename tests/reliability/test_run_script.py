"""scripts/run.sh (what `make run` starts) on the test database: gunicorn, one Celery worker
per queue (named from the settings) and beat; an import queued by the app runs on the
jobs worker. The script itself, not a copy of its commands."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from imports.services import import_job_create
from tests.importers.conftest import acled_row, csv_bytes
from tests.reliability.jobs_support import ROOT, database_url, wait_for
from tracker.models import Event, ImportJob

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_commands(session: int) -> list[list[str]]:
    """The command lines of the processes of `session` (run.sh's and its children's)."""
    commands = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != session:
                continue
            raw = (entry / "cmdline").read_bytes()
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
        if raw:
            commands.append(raw.rstrip(b"\0").decode(errors="replace").split("\0"))
    return commands


def _workers_by_queue(session: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for command in _session_commands(session):
        if "celery" in " ".join(command[:2]) and "worker" in command and "-Q" in command:
            queue = command[command.index("-Q") + 1]
            found[queue] = found.get(queue, 0) + 1
    return found


def test_run_starts_a_worker_per_queue_and_the_jobs_worker_imports(settings, make_user, tmp_path):
    from tracker.roles import apply_roles

    apply_roles()
    settings.MEDIA_ROOT = tmp_path / "media"
    moderator = make_user("mod-run-script", "Moderator")
    port = _free_port()
    log = tmp_path / "run.log"
    env = {
        **os.environ,
        "PORT": str(port),
        "WEB_WORKERS": "1",
        "DATABASE_URL": database_url(),
        "DATABASE_CONN_MAX_AGE": "0",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_TASK_DEFAULT_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "CELERY_JOBS_QUEUE": settings.CELERY_JOBS_QUEUE,
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: b"is running at" in log.read_bytes(), 90, what=f"run.sh ({log})")
        # The supervised workers' main processes and their pool children (one each).
        workers = wait_for(
            lambda: (
                (w := _workers_by_queue(process.pid))
                and settings.CELERY_JOBS_QUEUE in w
                and settings.CELERY_TASK_DEFAULT_QUEUE in w
                and w
            ),
            60,
            what=f"a worker per queue ({log}: {log.read_text()[-2000:]})",
        )
        assert set(workers) == {settings.CELERY_TASK_DEFAULT_QUEUE, settings.CELERY_JOBS_QUEUE}
        job = import_job_create(
            file=ContentFile(csv_bytes([acled_row(event_id_cnty="KAZRUN1")]), name="f.csv"),
            format="acled",
            publish=True,
            user=moderator,
        )

        def finished():
            job.refresh_from_db()
            return job.status in ("succeeded", "failed") and job

        done = wait_for(finished, 90, what="the import on run.sh's jobs worker")
        assert done.status == "succeeded", done.message
        assert Event.objects.filter(external_ids__value="KAZRUN1").exists()
        assert ImportJob.objects.filter(pk=job.pk, status="succeeded").exists()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
