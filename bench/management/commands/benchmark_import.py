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
from tracker.models import City, Event, ExternalId, ImportJob, Source

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


# The event table's written columns: its generated ones (the search document) PostgreSQL
# computes on the way in, for the floor's rows as for the import's.
EVENT_COLUMNS = [f'"{field.column}"' for field in Event._meta.concrete_fields]


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
    columns = ", ".join(EVENT_COLUMNS)
    script.write_text(
        f"BEGIN;\n\\copy {Event._meta.db_table} ({columns}) FROM '{path}'\nROLLBACK;\n",
        encoding="utf-8",
    )
    started = time.perf_counter()
    subprocess.run([*base, "-f", str(script)], check=True, env=env)  # noqa: S603 - our own SQL
    return time.perf_counter() - started


def dump_events(path: Path, event_ids_sql: str) -> int:
    """The events the import wrote, in the event table's own COPY text, to a file."""
    with path.open("wb") as out, connection.cursor() as cursor:
        sql = (
            f"COPY (SELECT {', '.join(EVENT_COLUMNS)} FROM {Event._meta.db_table} "  # noqa: S608
            f"WHERE id IN ({event_ids_sql})) TO STDOUT"
        )
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


def write_synthetic_mm(path: Path, rows: int, *, seed: int = 11, prefix: str = "") -> None:
    """A Mass Mobilization file of the same places and years (its own columns and words)."""
    from tracker import taxonomy

    rng = random.Random(seed)  # noqa: S311 - synthetic test data, not secrets
    names = list(City.objects.filter(country="KZ").values_list("name", flat=True))
    demands = sorted(taxonomy.MM_PROTESTER_DEMAND)
    responses = sorted(taxonomy.MM_STATE_RESPONSE)
    columns = [
        "id", "country", "year", "protest", "startday", "startmonth", "startyear", "endday",
        "endmonth", "endyear", "location", "participants_category", "participants",
        "protesteridentity", *(f"protesterdemand{i}" for i in range(1, 5)),
        *(f"stateresponse{i}" for i in range(1, 8)), "sources", "notes",
    ]  # fmt: skip
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for i in range(rows):
            year, month, day = rng.randint(2015, 2024), rng.randint(1, 12), rng.randint(1, 28)
            protest = rng.random() < 0.9
            writer.writerow([
                f"{prefix or 'MM'}{i}", "Kazakhstan", year, 1 if protest else 0, day, month,
                year, day, month, year, rng.choice(names), "100-999", "about 200",
                "residents", rng.choice(demands), "", "", "", rng.choice(responses),
                *[""] * 6, "Radio Azattyk; Vlast.kz", rng.choice(NOTES).format(
                    date=f"{year}-{month:02d}-{day:02d}", city="", n=rng.randint(1, 99)
                ),
            ])  # fmt: skip


def job_events_sql(job: ImportJob) -> str:
    """The events a job created, by the history rows it wrote (its reason names it)."""
    historical = Event.history.model._meta.db_table
    return (
        f"SELECT id FROM {historical} WHERE history_type = '+' "  # noqa: S608 - our own text
        f"AND history_change_reason = 'import job {int(job.pk)} ({job.format})'"
    )


class Command(BaseCommand):
    help = (
        "Import a synthetic ACLED file and compare the time with psql \\copy of the same rows "
        "into the event table (and of the file into a table of its shape)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
        parser.add_argument(
            "--formats", nargs="+", default=["acled"], choices=["acled", "ccc", "mm", "native"],
            help="Also import, as files of the other formats, the same events: the CCC-like "
            "and the tracker's CSV exports of the ACLED file's events, and a synthetic Mass "
            "Mobilization file of as many rows.",
        )  # fmt: skip
        parser.add_argument("--keep", action="store_true", help="Keep the imported events.")
        parser.add_argument("--markdown", help="Also write the table as Markdown to this file.")

    def handle(
        self, *args, rows: list[int], formats: list[str], keep: bool, markdown: str | None,
        **options,
    ):  # fmt: skip
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(is_superuser=True).first()
        if user is None:
            raise CommandError("Create a superuser first (the import runs as a moderator).")
        results = [r for n in rows for r in self._one(n, user, formats=formats, keep=keep)]
        lines = [
            "| format | rows in the file | events | import | rows/s | `\\copy` into the event "
            "table | ratio | `\\copy` of the file (text table) | ratio | peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results:
            lines.append(
                f"| {r['format']} | {r['rows']:,} | {r['events']:,} | {r['import']:.1f} s | "
                f"{r['rows'] / r['import']:,.0f} | {r['floor']:.1f} s | "
                f"**{r['import'] / r['floor']:.2f}** | "
                + (
                    f"{r['file_copy']:.2f} s | {r['import'] / r['file_copy']:.1f} | "
                    if r["file_copy"]
                    else "– | – | "
                )
                + f"{r['rss_mb']:.0f} MB |"
            )
        self.stdout.write("\n".join(lines))
        if markdown:
            Path(markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _one(self, rows: int, user, *, formats: list[str], keep: bool) -> list[dict]:
        prefix = f"IMP{uuid.uuid4().hex[:8]}-"
        results = []
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            path = folder / "acled.csv"
            write_synthetic_acled(path, rows, prefix=prefix)
            files = {"acled": (path, rows)}

            def derived(job):
                """The other formats' files, of the ACLED file's events, before rollback."""
                from imports.exports import event_csv_blocks, export_csv_lines

                # The exports' plans need the statistics of the rows just written (not yet
                # committed, which ANALYZE counts in its own transaction).
                with connection.cursor() as cursor:
                    for model in (Event, Source, ExternalId, Event.organizers.through):
                        cursor.execute(f"ANALYZE {model._meta.db_table}")

                # By their id range: a filter the export's query plans as the primary key
                # (nothing else writes events in a benchmark's database meanwhile).
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT min(id), max(id) FROM ({job_events_sql(job)}) j")  # noqa: S608
                    low, high = cursor.fetchone()
                events = Event.objects.filter(id__range=(low, high))
                if "ccc" in formats:
                    with (folder / "ccc.csv").open("wb") as out:
                        out.writelines(export_csv_lines(events=events, layout="ccc"))
                    files["ccc"] = (folder / "ccc.csv", job.rows_created)
                if "native" in formats:
                    with (folder / "native.csv").open("wb") as out:
                        out.writelines(event_csv_blocks(events))
                    files["native"] = (folder / "native.csv", job.rows_created)

            results.append(self._measure("acled", path, rows, user, keep=keep, then=derived))
            if "mm" in formats:
                write_synthetic_mm(folder / "mm.csv", rows, prefix=prefix)
                files["mm"] = (folder / "mm.csv", rows)
            for name in ("ccc", "mm", "native"):
                if name in files:
                    file, n = files[name]
                    results.append(self._measure(name, file, n, user, keep=False))
        connection.close()
        return results

    def _measure(self, format: str, path: Path, rows: int, user, *, keep: bool, then=None):
        from imports.services import import_job_create, import_job_run

        size_mb = path.stat().st_size / 1e6
        self.stdout.write(f"{format} file: {rows} rows, {size_mb:.1f} MB")
        file_copy = psql_copy_seconds(path) if format == "acled" else None
        dumped = path.with_suffix(".events")
        rss_before = _peak_rss_mb()
        try:
            with transaction.atomic():
                with path.open("rb") as fh:
                    job = import_job_create(
                        file=File(fh, name=path.name), format=format, publish=True, user=user,
                        dispatch=False,
                    )  # fmt: skip
                started = time.perf_counter()
                job = import_job_run(job_id=job.pk)
                seconds = time.perf_counter() - started
                rss = _peak_rss_mb()
                job.file.delete(save=False)
                if job.status != ImportJob.Status.SUCCEEDED:
                    raise CommandError(f"The {format} import failed: {job.message}")
                events = dump_events(dumped, job_events_sql(job))
                if then is not None:
                    then(job)
                if not keep:
                    raise _Rollback
        except _Rollback:
            pass
        floor = event_table_copy_seconds(dumped)
        self.stdout.write(
            f"import:       {seconds:7.2f} s  {rows / seconds:10.0f} rows/s  ({job.message})\n"
            f"\\copy into the event table ({events} events): {floor:7.2f} s; "
            f"ratio {seconds / floor:.2f}\n"
            + (
                f"\\copy of the file into a text table: {file_copy:7.2f} s; "
                f"ratio {seconds / file_copy:.1f}\n"
                if file_copy
                else ""
            )
            + f"peak RSS {rss:.0f} MB (before the import {rss_before:.0f} MB)"
        )
        return {
            "format": format, "rows": rows, "events": events, "import": seconds,
            "floor": floor, "file_copy": file_copy, "rss_mb": rss,
        }  # fmt: skip


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
