"""Time every streamed export against `COPY (SELECT ...) TO STDOUT` of the same rows.

    python manage.py benchmark_export \\
        --database-url postgis://postgres@127.0.0.1:5432/tracker_bench --markdown /tmp/exports.md

It is not a test and asserts nothing: it prints seconds, rows/s and ratios. It only reads:
GET requests and COPY ... TO.

For each export (the API's CSV, the streamed GeoJSON file, the ACLED-like and CCC-like
layouts) and each filter (all published events, and a subset):
- the app: a GET through Django's test client (every middleware, the view, the streaming
  response), the body read to its end, its records counted;
- the floor: psql's `\\copy (SELECT ...) TO '/dev/null' (FORMAT csv)`, a COPY TO STDOUT
  read by psql, of a hand-written SELECT of the same rows and the same columns as plain
  values (sources, organizers and external ids aggregated the same way, but no formatting,
  no spreadsheet guard, no JSON), with the aggregates restricted to the filtered events
  for a subset and not for all events, whichever is faster;
- both timed in turns, --repeat times, so that a noisy machine weighs on both sides of a
  ratio alike; the medians are reported, and the ratio of the medians against the budget
  of DESIGN.md (<= 3x).
The resident memory of this process is sampled while the app's answer is read: its peak
beside what it was before shows that an export does not grow with its size.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import shlex
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import environ
from django.conf import settings
from django.core.cache import caches
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client

from imports.acled_regions import REGION_OF_COUNTRY
from imports.exports import _acled_countries

BUDGET = 3.0
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Export:
    name: str
    path: str
    columns: str  # the floor's SELECT list
    joins: str  # the floor's aggregates, {restrict} where they read the filtered events
    order: str
    geojson: bool = False


ORGANIZERS = (
    "LEFT JOIN (SELECT eo.event_id, string_agg(o.name, '{sep}' ORDER BY o.name) AS names "
    "FROM tracker_event_organizers eo JOIN tracker_organization o "
    "ON o.id = eo.organization_id {restrict} GROUP BY eo.event_id) og ON og.event_id = e.id"
)


def _sources(aggregates: str) -> str:
    return (
        f"LEFT JOIN (SELECT s.event_id, {aggregates} FROM tracker_source s {{restrict}} "  # noqa: S608
        "GROUP BY s.event_id) s ON s.event_id = e.id"
    )


def _countries() -> str:
    rows = ", ".join(
        f"('{code}', '{numeric}', '{name.replace(chr(39), chr(39) * 2)}', "
        f"'{REGION_OF_COUNTRY.get(code, '')}')"
        for code, (numeric, name) in _acled_countries().items()
    )
    return f"LEFT JOIN (VALUES {rows}) AS k(code, iso, name, region) ON k.code = e.country"


EVENT_COLUMNS = (
    "e.id, e.title, e.date, e.end_date, e.date_precision, e.country, e.admin1, c.name, "
    "e.city_id, e.location_detail, ST_X(e.location), ST_Y(e.location), e.geo_precision, "
    "e.grievances, e.police_responses, e.arrests, e.injuries, e.deaths, e.participants_low, "
    "e.participants_high, og.names, s.urls, s.titles, x.ids, e.description, e.updated_at"
)
EXTERNAL_IDS = (
    "LEFT JOIN (SELECT x.event_id, string_agg(x.scheme || ':' || x.value, ';' "
    "ORDER BY x.scheme, x.value) AS ids FROM tracker_externalid x {restrict} "
    "GROUP BY x.event_id) x ON x.event_id = e.id"
)
EVENT_SOURCES = _sources(
    "string_agg(NULLIF(s.url, ''), ';' ORDER BY s.id) AS urls, "
    "string_agg(NULLIF(s.title, ''), ';' ORDER BY s.id) AS titles"
)

EXPORTS = (
    Export(
        "events CSV",
        "/api/v1/events/?format=csv",
        EVENT_COLUMNS,
        " ".join((ORGANIZERS.replace("{sep}", ";"), EVENT_SOURCES, EXTERNAL_IDS)),
        "e.date DESC, e.id DESC",
    ),
    Export(
        "GeoJSON file",
        "/api/v1/exports/events.geojson",
        EVENT_COLUMNS + ", e.created_at, s.publishers, s.published, s.languages",
        " ".join(
            (
                ORGANIZERS.replace("{sep}", ";"),
                _sources(
                    "array_agg(s.url ORDER BY s.id) AS urls, "
                    "array_agg(s.title ORDER BY s.id) AS titles, "
                    "array_agg(s.publisher ORDER BY s.id) AS publishers, "
                    "array_agg(s.published_on ORDER BY s.id) AS published, "
                    "array_agg(s.language ORDER BY s.id) AS languages"
                ),
                EXTERNAL_IDS,
            )
        ),
        "e.date, e.id",
        geojson=True,
    ),
    Export(
        "ACLED layout",
        "/api/v1/exports/acled.csv",
        "coalesce(x.acled, 'TRK' || e.id), e.date, e.date_precision, e.police_responses, "
        "e.country, k.iso, k.region, k.name, og.names, e.admin1, c.name, e.location_detail, "
        "ST_Y(e.location), ST_X(e.location), e.geo_precision, s.names, e.description, "
        "e.title, e.deaths, e.participants_low, e.participants_high, e.updated_at",
        " ".join(
            (
                ORGANIZERS.replace("{sep}", "; "),
                _sources(
                    "string_agg(coalesce(NULLIF(s.publisher, ''), NULLIF(s.title, ''), s.url), "
                    "'; ' ORDER BY s.id) AS names"
                ),
                "LEFT JOIN (SELECT x.event_id, min(x.value) FILTER (WHERE x.scheme = 'acled') "
                "AS acled FROM tracker_externalid x {restrict} GROUP BY x.event_id) x "
                "ON x.event_id = e.id",
                "{countries}",
            )
        ),
        "e.date, e.id",
    ),
    Export(
        "CCC layout",
        "/api/v1/exports/ccc.csv",
        "e.date, c.name, e.admin1, e.location_detail, e.country, e.title, og.names, "
        "e.grievances, e.participants_low, e.participants_high, e.arrests, e.injuries, "
        "e.police_responses, ST_Y(e.location), ST_X(e.location), s.urls",
        " ".join(
            (
                ORGANIZERS.replace("{sep}", "; "),
                _sources(
                    "(array_agg(coalesce(NULLIF(s.url, ''), s.title) ORDER BY s.id))[1:10] AS urls"
                ),
            )
        ),
        "e.date, e.id",
    ),
)

# (label, query string, the same filter in SQL over tracker_event e)
FILTERS = (
    ("all published", "", "e.status = 'published'"),
    (
        "country=KZ&year=2019",
        "country=KZ&year=2019",
        "e.status = 'published' AND e.country = 'KZ' "
        "AND e.date BETWEEN '2019-01-01' AND '2019-12-31'",
    ),
)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE / 1e6


def _median(values: list[float]) -> float:
    return statistics.median(values)


class Command(BaseCommand):
    help = "Time each streamed export against COPY (SELECT ...) TO STDOUT of the same rows."

    def add_arguments(self, parser):
        parser.add_argument(
            "--database-url",
            help="benchmark database (postgis://...); default: the configured one",
        )
        parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side")
        parser.add_argument(
            "--only", default="", metavar="TEXT", help="only the exports whose name has TEXT"
        )
        parser.add_argument(
            "--skip-all", action="store_true", help="only the filtered subset, not all events"
        )
        parser.add_argument("--cache-prefix", default="tracker-bench-export")
        parser.add_argument("--markdown", metavar="PATH", help="also write the table there")

    def handle(self, *args, **options):
        if options["database_url"]:
            config = environ.Env.db_url_config(options["database_url"])
            connection.close()
            for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
                connection.settings_dict[key] = config.get(key, "")
        caches["default"].key_prefix = options["cache_prefix"]
        from rest_framework.throttling import SimpleRateThrottle

        SimpleRateThrottle.THROTTLE_RATES = {
            **SimpleRateThrottle.THROTTLE_RATES,
            "anon": "1000000/minute",
            "user": "1000000/minute",
        }
        settings.DEBUG = False  # no query log in memory while timing
        self.client = Client(HTTP_HOST="127.0.0.1")
        repeat = options["repeat"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM tracker_event WHERE status = 'published'")
            published = cursor.fetchone()[0]
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
        started = dt.datetime.now(dt.UTC)
        self.stdout.write(
            f"database {connection.settings_dict['NAME']}: {published} published events, "
            f"PostgreSQL {version}, {os.cpu_count()} cores; each side x{repeat}, in turns, "
            "medians"
        )
        header = (
            f"{'export':14} {'filter':22} {'rows':>8} {'app s':>7} {'rows/s':>9} "
            f"{'COPY s':>7} {'ratio':>6} {'budget':>7} {'1st row':>8} {'RSS MB':>12}"
        )
        self.stdout.write(header)
        results = []
        for export in EXPORTS:
            if options["only"] and options["only"].lower() not in export.name.lower():
                continue
            for label, query, where in FILTERS:
                if options["skip_all"] and not query:
                    continue
                result = self._case(export, label, query, where, repeat)
                results.append(result)
                self._print(result)
        if options["markdown"]:
            self._markdown(Path(options["markdown"]), results, started, published, version)
            self.stdout.write(f"\nMarkdown table written to {options['markdown']}")

    # -- one case -------------------------------------------------------------------------

    def _case(self, export: Export, label: str, query: str, where: str, repeat: int) -> dict:
        url = export.path
        if query:
            url += ("&" if "?" in url else "?") + query
        floor_sql = self._floor_sql(export, where, restrict=bool(query))
        app_times, floor_times, first_bytes = [], [], []
        rss_before = _rss_mb()
        rss_peak = rss_before
        rows = floor_rows = None
        for _ in range(repeat):
            seconds, first, counted, peak = self._app(url, export.geojson)
            app_times.append(seconds)
            first_bytes.append(first)
            rss_peak = max(rss_peak, peak)
            if rows is not None and counted != rows:
                raise CommandError(f"{url}: {counted} rows, then {rows}")
            rows = counted
            seconds, floor_rows = self._floor(floor_sql)
            floor_times.append(seconds)
        if rows != floor_rows:
            raise CommandError(f"{url} gave {rows} rows where the COPY gave {floor_rows}.")
        app, floor = _median(app_times), _median(floor_times)
        return {
            "export": export.name,
            "filter": label,
            "rows": rows,
            "app": app,
            "floor": floor,
            "ratio": app / floor,
            "first_byte": _median(first_bytes),
            "rss_before": rss_before,
            "rss_peak": rss_peak,
            "url": url,
        }

    def _app(self, url: str, geojson: bool) -> tuple[float, float, int, float]:
        """Seconds to read the whole answer, seconds to its first row, its rows, and the
        peak resident memory meanwhile."""
        marker = b'"type" : "Feature"' if geojson else b"\r\n"
        started = time.perf_counter()
        response = self.client.get(url)
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code}: {response.content[:300]}")
        first = None
        records = 0
        peak = _rss_mb()
        header = 0 if geojson else 1  # a CSV's header line is not a row
        for number, chunk in enumerate(response.streaming_content):
            records += chunk.count(marker)
            if first is None and records > header:
                first = time.perf_counter() - started
            if number % 64 == 0:
                peak = max(peak, _rss_mb())
        response.close()
        seconds = time.perf_counter() - started
        return seconds, first or seconds, records - header, peak

    def _floor_sql(self, export: Export, where: str, *, restrict: bool) -> str:
        restriction = (
            f"WHERE event_id IN (SELECT e.id FROM tracker_event e WHERE {where})"  # noqa: S608
            if restrict
            else ""
        )
        joins = export.joins.replace("{countries}", _countries()).replace("{restrict}", restriction)
        return (
            f"SELECT {export.columns} FROM tracker_event e "  # noqa: S608 - our own SQL
            f"LEFT JOIN tracker_city c ON c.id = e.city_id {joins} "
            f"WHERE {where} ORDER BY {export.order}"
        )

    def _floor(self, select: str) -> tuple[float, int]:
        db = connection.settings_dict
        command = [
            "psql", "-X", "-v", "ON_ERROR_STOP=1",
            "-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432),
            "-U", db.get("USER") or "postgres", db["NAME"],
            "-c", f"\\copy ({select}) TO '/dev/null' WITH (FORMAT csv)",
        ]  # fmt: skip
        env = {"PGPASSWORD": db.get("PASSWORD") or "", "PATH": "/usr/bin:/bin"}
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise CommandError(f"psql failed: {done.stderr}\n{shlex.join(command)[:500]}")
        # psql reports the count of a \copy: "COPY 1000000".
        words = done.stdout.split()
        return seconds, int(words[-1]) if words else -1

    # -- output ---------------------------------------------------------------------------

    def _print(self, r: dict) -> None:
        verdict = "PASS" if r["ratio"] <= BUDGET else "FAIL"
        self.stdout.write(
            f"{r['export']:14} {r['filter']:22} {r['rows']:8} {r['app']:7.2f} "
            f"{r['rows'] / r['app']:9,.0f} {r['floor']:7.2f} {r['ratio']:6.2f} "
            f"{verdict + ' <=3':>7} {r['first_byte']:8.2f} "
            f"{r['rss_before']:5.0f}->{r['rss_peak']:<5.0f}"
        )

    def _markdown(self, path: Path, results, started, published: int, version: str) -> None:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
            cwd=settings.BASE_DIR,
        ).stdout.strip()
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        lines = [
            f"Measured {started:%Y-%m-%d %H:%M} UTC at {commit or '?'} on "
            f"{connection.settings_dict['NAME']} ({published:,} published events), "
            f"PostgreSQL {version}, {os.cpu_count()} cores; medians of the runs, app and COPY "
            "in turns.",
            "",
            "| export | filter | rows | app s | rows/s | COPY s | ratio (budget <= 3) "
            "| first row s | RSS MB before -> peak |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in results:
            verdict = "pass" if r["ratio"] <= BUDGET else "**FAIL**"
            lines.append(
                f"| {r['export']} | {r['filter']} | {r['rows']:,} | {r['app']:.2f} | "
                f"{r['rows'] / r['app']:,.0f} | {r['floor']:.2f} | {r['ratio']:.2f} {verdict} | "
                f"{r['first_byte']:.2f} | {r['rss_before']:.0f} -> {r['rss_peak']:.0f} |"
            )
        lines.append("")
        lines.append(f"Peak RSS of the whole run: {peak_kb / 1024:.0f} MB.")
        path.write_text("\n".join(lines) + "\n")
