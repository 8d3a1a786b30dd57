"""Time an ACLED import against `psql \\copy` of the same rows.

    python manage.py benchmark_import --rows 100000 1000000 [--markdown FILE]

Writes a synthetic ACLED export (real header, gazetteer places, English and Russian notes,
one row in ten not a protest, ids of this run's own), imports it exactly as a job would,
then times two floors: `psql \\copy` of the events the import wrote, as the event table
stores them, into the event table itself (its indexes and rollup triggers: the budget's
floor, "the same indexed table"), and `psql \\copy` of the file into a table of its own
shape with a few indexes. Everything is rolled back unless --keep is given.
"""

from __future__ import annotations

import csv
import random
import resource
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from imports.acled import COLUMNS
from tracker.models import City, Event, ExternalId, ImportJob

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


def write_synthetic_acled(path: Path, rows: int, *, seed: int = 7, prefix: str = "") -> None:
    """`prefix` makes the ids this run's own (BENCH<i> are benchmark_api's filler's)."""
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
                f"{prefix or 'IMP'}{i}", date, year, 1,
                "Demonstrations" if protest else "Political violence",
                "Protests" if protest else "Battles",
                rng.choice(SUB_EVENT_TYPES) if protest else "Armed clash",
                "Protesters (Kazakhstan)", "", 6, "", "", 0, 60, "", 398, "Central Asia",
                "Kazakhstan", admin1, "", "", name_ru if rng.random() < 0.3 else name,
                round(point.y, 4), round(point.x, 4), 1, "Radio Azattyk; Vlast.kz", "National",
                note, 0, "crowd size=around 100" if rng.random() < 0.5 else "",
                1_600_000_000 + i,
            ])  # fmt: skip


def _psql() -> tuple[list[str], dict[str, str]]:
    db = settings.DATABASES["default"]
    host, port = db.get("HOST") or "127.0.0.1", str(db.get("PORT") or 5432)
    user = db.get("USER") or "postgres"
    base = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", port, "-U", user]
    base.append(db["NAME"])
    return base, {"PGPASSWORD": db.get("PASSWORD") or "", "PATH": "/usr/bin:/bin"}


def event_table_copy_seconds(path: Path) -> float:
    """`psql \\copy` of the import's events (as the event table holds them) into the event
    table itself: its indexes, and its rollup triggers, in one statement; rolled back,
    so that its foreign keys are not even checked (a floor that flatters nobody)."""
    base, env = _psql()
    script = Path(path).with_suffix(".sql")
    script.write_text(
        f"BEGIN;\n\\copy {Event._meta.db_table} FROM '{path}'\nROLLBACK;\n", encoding="utf-8"
    )
    started = time.perf_counter()
    subprocess.run([*base, "-f", str(script)], check=True, env=env)  # noqa: S603 - our own SQL
    return time.perf_counter() - started


def dump_events(path: Path, event_ids_sql: str) -> int:
    """The events the import wrote, in the event table's own COPY text, to a file."""
    with path.open("wb") as out, connection.cursor() as cursor:
        sql = f"COPY (SELECT * FROM {Event._meta.db_table} WHERE id IN ({event_ids_sql})) TO STDOUT"  # noqa: S608
        with cursor.cursor.copy(sql) as copy:
            for data in copy:
                out.write(data)
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def psql_copy_seconds(path: Path) -> float:
    table = "benchmark_acled_copy"
    columns = ", ".join(f"{name} text" for name in COLUMNS)
    setup = (
        f"SET client_min_messages = warning; DROP TABLE IF EXISTS {table};"
        f"CREATE TABLE {table} ({columns}, id bigserial primary key);"
        f"CREATE UNIQUE INDEX ON {table} (event_id_cnty);"
        f"CREATE INDEX ON {table} (event_date); CREATE INDEX ON {table} (country, event_date);"
    )
    base, env = _psql()
    subprocess.run([*base, "-c", setup], check=True, env=env)  # noqa: S603 - our own SQL
    started = time.perf_counter()
    copy = f"\\copy {table} ({', '.join(COLUMNS)}) FROM '{path}' CSV HEADER"
    subprocess.run([*base, "-c", copy], check=True, env=env)  # noqa: S603
    seconds = time.perf_counter() - started
    subprocess.run([*base, "-c", f"DROP TABLE {table}"], check=True, env=env)  # noqa: S603
    return seconds


class Command(BaseCommand):
    help = (
        "Import a synthetic ACLED file and compare the time with psql \\copy of the same rows "
        "into the event table (and of the file into a table of its shape)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
        parser.add_argument("--keep", action="store_true", help="Keep the imported events.")
        parser.add_argument("--markdown", help="Also write the table as Markdown to this file.")

    def handle(self, *args, rows: list[int], keep: bool, markdown: str | None, **options):
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(is_superuser=True).first()
        if user is None:
            raise CommandError("Create a superuser first (the import runs as a moderator).")
        results = [self._one(n, user, keep=keep) for n in rows]
        lines = [
            "| rows in the file | events | import | rows/s | `\\copy` into the event table "
            "| ratio | `\\copy` of the file (text table) | ratio | peak RSS |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results:
            lines.append(
                f"| {r['rows']:,} | {r['events']:,} | {r['import']:.1f} s | "
                f"{r['rows'] / r['import']:,.0f} | {r['floor']:.1f} s | "
                f"**{r['import'] / r['floor']:.2f}** | {r['file_copy']:.2f} s | "
                f"{r['import'] / r['file_copy']:.1f} | {r['rss_mb']:.0f} MB |"
            )
        self.stdout.write("\n".join(lines))
        if markdown:
            Path(markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _one(self, rows: int, user, *, keep: bool) -> dict:
        from imports.services import import_job_create, import_job_run

        prefix = f"IMP{uuid.uuid4().hex[:8]}-"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "acled-benchmark.csv"
            write_synthetic_acled(path, rows, prefix=prefix)
            size_mb = path.stat().st_size / 1e6
            self.stdout.write(f"synthetic ACLED file: {rows} rows, {size_mb:.1f} MB")
            file_copy = psql_copy_seconds(path)
            dumped = Path(tmp) / "events.copy"
            rss_before = _peak_rss_mb()
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
                    rss = _peak_rss_mb()
                    job.file.delete(save=False)
                    if job.status != ImportJob.Status.SUCCEEDED:
                        raise CommandError(f"The import failed: {job.message}")
                    # The prefix is hex digits and a dash: nothing to quote.
                    ids = (
                        f"SELECT event_id FROM {ExternalId._meta.db_table} "  # noqa: S608
                        f"WHERE scheme = 'acled' AND value LIKE '{prefix}%'"
                    )
                    events = dump_events(dumped, ids)
                    if not keep:
                        raise _Rollback
            except _Rollback:
                pass
            floor = event_table_copy_seconds(dumped)
        self.stdout.write(
            f"import:       {seconds:7.2f} s  {rows / seconds:10.0f} rows/s  ({job.message})\n"
            f"\\copy into the event table ({events} events): {floor:7.2f} s; "
            f"ratio {seconds / floor:.2f}\n"
            f"\\copy of the file into a text table: {file_copy:7.2f} s; "
            f"ratio {seconds / file_copy:.1f}\n"
            f"peak RSS {rss:.0f} MB (before the import {rss_before:.0f} MB)"
        )
        connection.close()
        return {
            "rows": rows, "events": events, "import": seconds, "floor": floor,
            "file_copy": file_copy, "rss_mb": rss,
        }  # fmt: skip


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
