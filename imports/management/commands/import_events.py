"""Import a file from the shell, with a progress bar:

    python manage.py import_events --format acled export.csv [--publish] [--user NAME]

The job is recorded like an upload (see /review/imports/); the row-level report is written
next to the summary with --report FILE.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from tracker import csv_safety
from tracker.models import ImportFormat, ImportJob


class Command(BaseCommand):
    help = "Import events from an ACLED, CCC, Mass Mobilization or tracker CSV/GeoJSON file."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", required=True, choices=ImportFormat.values)
        parser.add_argument(
            "--publish", action="store_true", help="Trusted source: publish the events."
        )
        parser.add_argument("--user", help="Moderator recorded as the importer (default: the "
                            "first superuser).")  # fmt: skip
        parser.add_argument("--report", type=Path, help="Write the row-level report here (CSV).")

    def handle(self, *args, file: Path, format: str, publish: bool, **options):
        from imports.services import import_job_create, import_job_run, report_rows

        users = get_user_model().objects
        user = (
            users.filter(username=options["user"]).first()
            if options.get("user")
            else users.filter(is_superuser=True).order_by("pk").first()
        )
        if user is None:
            raise CommandError("No such user: name a moderator with --user.")
        if not file.is_file():
            raise CommandError(f"{file}: no such file.")
        with file.open("rb") as fh:
            job = import_job_create(
                file=File(fh, name=file.name), format=format, publish=publish, user=user,
                dispatch=False,
            )  # fmt: skip
        with tqdm(total=0, unit="rows", disable=options["verbosity"] == 0) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            job = import_job_run(job_id=job.pk, progress=progress)
        if options.get("report"):
            with options["report"].open("w", encoding="utf-8", newline="") as out:
                csv_safety.writer(out).writerows(report_rows(job=job))
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(f"Import job {job.pk} failed: {job.message}")
        self.stdout.write(f"Import job {job.pk}: {job.message} ({job.rows_total} rows).")
        if job.rows_failed or job.rows_skipped:
            self.stdout.write(
                f"Row-level report: /api/v1/imports/{job.pk}/report.csv"
                + (f" or {options['report']}" if options.get("report") else "")
            )
