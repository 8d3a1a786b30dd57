"""Time an ACLED import against `psql \\copy` of the same file.

    python manage.py benchmark_import --rows 100000

Writes a synthetic ACLED export (real header, gazetteer places, English and Russian notes,
one row in ten not a protest), imports it exactly as a job would, and copies the same file
with psql into a table of the file's shape with the indexes an import needs. Everything is
rolled back at the end unless --keep is given.
"""

from __future__ import annotations

import csv
import random
import subprocess
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from imports.acled import COLUMNS
from tracker.models import City, ImportJob

NOTES = [
    "On {date}, around 200 residents protested against rising utility prices in {city}.",
    "Police detained 15 activists who demanded the release of political prisoners.",
    "Митинг против повышения цен, задержаны {n} человек.",
    "Workers went on strike over unpaid wages; no arrests were reported.",
    "Residents protested against the sale of land to Chinese companies.",
]
SUB_EVENT_TYPES = [
    "Peaceful protest",
    "Protest with intervention",
    "Excessive force against protesters",
]


class _Rollback(Exception):
    pass


def write_synthetic_acled(path: Path, rows: int, *, seed: int = 7) -> None:
    rng = random.Random(seed)  # noqa: S311 - synthetic test data, not secrets
    cities = list(
        City.objects.filter(country="KZ").values_list("name", "name_ru", "admin1", "location")
    )
    if not cities:
        raise CommandError("The gazetteer is empty: run `manage.py loadgazetteer` first.")
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for i in range(rows):
            name, name_ru, admin1, point = rng.choice(cities)
            year = rng.randint(2015, 2024)
            date = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            protest = rng.random() < 0.9
            note = rng.choice(NOTES).format(date=date, city=name, n=rng.randint(1, 99))
            writer.writerow([
                f"BENCH{i}", date, year, 1, "Demonstrations" if protest else "Political violence",
                "Protests" if protest else "Battles",
                rng.choice(SUB_EVENT_TYPES) if protest else "Armed clash",
                "Protesters (Kazakhstan)", "", 6, "", "", 0, 60, "", 398, "Central Asia",
                "Kazakhstan", admin1, "", "", name_ru if rng.random() < 0.3 else name,
                round(point.y, 4), round(point.x, 4), 1, "Radio Azattyk; Vlast.kz", "National",
                note, 0, "crowd size=around 100" if rng.random() < 0.5 else "",
                1_600_000_000 + i,
            ])  # fmt: skip


def psql_copy_seconds(path: Path) -> float:
    db = settings.DATABASES["default"]
    table = "benchmark_acled_copy"
    columns = ", ".join(f"{name} text" for name in COLUMNS)
    setup = (
        f"SET client_min_messages = warning; DROP TABLE IF EXISTS {table};"
        f"CREATE TABLE {table} ({columns}, id bigserial primary key);"
        f"CREATE UNIQUE INDEX ON {table} (event_id_cnty);"
        f"CREATE INDEX ON {table} (event_date); CREATE INDEX ON {table} (country, event_date);"
    )
    host, port = db.get("HOST") or "127.0.0.1", str(db.get("PORT") or 5432)
    user = db.get("USER") or "postgres"
    base = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U", user]
    base.append(db["NAME"])
    env = {"PGPASSWORD": db.get("PASSWORD") or "", "PATH": "/usr/bin:/bin"}
    subprocess.run([*base, "-c", setup], check=True, env=env)  # noqa: S603 - our own SQL
    started = time.perf_counter()
    copy = f"\\copy {table} ({', '.join(COLUMNS)}) FROM '{path}' CSV HEADER"
    subprocess.run([*base, "-c", copy], check=True, env=env)  # noqa: S603
    seconds = time.perf_counter() - started
    subprocess.run([*base, "-c", f"DROP TABLE {table}"], check=True, env=env)  # noqa: S603
    return seconds


class Command(BaseCommand):
    help = "Import a synthetic ACLED file and compare the time with psql \\copy of that file."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=100_000)
        parser.add_argument("--keep", action="store_true", help="Keep the imported events.")

    def handle(self, *args, rows: int, keep: bool, **options):
        from django.contrib.auth import get_user_model

        from imports.services import import_job_create, import_job_run

        user = get_user_model().objects.filter(is_superuser=True).first()
        if user is None:
            raise CommandError("Create a superuser first (the import runs as a moderator).")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "acled-benchmark.csv"
            write_synthetic_acled(path, rows)
            size_mb = path.stat().st_size / 1e6
            self.stdout.write(f"synthetic ACLED file: {rows} rows, {size_mb:.1f} MB")
            copy_seconds = psql_copy_seconds(path)
            try:
                with transaction.atomic():
                    with path.open("rb") as fh:
                        job = import_job_create(
                            file=File(fh, name=path.name), format="acled", publish=True,
                            user=user, dispatch=False,
                        )  # fmt: skip
                    started = time.perf_counter()
                    job = import_job_run(job_id=job.pk)
                    seconds = time.perf_counter() - started
                    job.file.delete(save=False)
                    if not keep:
                        raise _Rollback
            except _Rollback:
                pass
        if job.status != ImportJob.Status.SUCCEEDED:
            raise CommandError(f"The import failed: {job.message}")
        self.stdout.write(
            f"import:     {seconds:7.2f} s  {rows / seconds:10.0f} rows/s  ({job.message})"
        )
        self.stdout.write(f"psql \\copy: {copy_seconds:7.2f} s  {rows / copy_seconds:10.0f} rows/s")
        self.stdout.write(f"ratio import / \\copy: {seconds / copy_seconds:.1f}")
        connection.close()
