"""Measure the API against its budgets (DESIGN.md, "Budgets") and print the numbers.

It is not a test and asserts nothing: it prints times, ratios and counts.

    # a database of its own, filled once with a million published events (COPY):
    DATABASE_URL=postgis://postgres@127.0.0.1:5432/tracker_bench python manage.py preflight --create
    DATABASE_URL=... python manage.py migrate && DATABASE_URL=... python manage.py loadgazetteer
    python manage.py benchmark_api --database-url postgis://postgres@127.0.0.1:5432/tracker_bench \
        --events 1000000

Sections (each can be skipped; --skip-list, --skip-trends, --skip-dashboard, --skip-edit,
--skip-load, --skip-exports):
- the list page against the same page built by raw SQL (page sizes, first and deep cursor
  pages, filters);
- trends: /api/v1/stats/trends/ in-process for a grid of filters, intervals and by= (see
  bench/trends.py), p50/p95, beside the hand-written GROUP BY of the same rows, timed in
  turns, with the numbers of both compared; PASS/FAIL against the budget of each case;
- the dashboard page's server time, with a few filters, interval=month and compare=;
- one edit of one event: the answers right before and after (nothing is cached, so they
  cost the same) and that they show the edit;
- the gunicorn of scripts/run.sh (its command line, gthread workers and all), started on a
  free port against the same database, hit by `--clients` concurrent clients with a mixed
  request set, counting 5xx answers and dropped connections; then two big CSV downloads.
--markdown PATH writes the tables as Markdown, for the README.
"""

from __future__ import annotations

import base64
import csv
import http.client
import io
import json
import os
import random
import re
import shlex
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import environ
import psycopg
from django.conf import settings
from django.core.cache import caches
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.http import QueryDict
from django.test import Client

from api.views.stats import TrendsView
from bench.trends import (
    OTHER_BUDGET_RATIO,
    ROLLUP_BUDGET_MS,
    TrendCase,
    raw_call,
    same_numbers,
    trend_cases,
)
from tracker import taxonomy
from tracker.models import Event
from tracker.query import filter_errors_text, published_events
from tracker.rollups import rollup_counts

PAGE_SQL = """
SELECT e.id, e.title, e.description, e.date, e.end_date, e.date_precision, c.name, e.city_id,
       e.country, e.admin1, e.location_detail, ST_X(e.location), ST_Y(e.location),
       e.geo_precision, e.grievances, e.police_responses, e.arrests, e.injuries, e.deaths,
       e.participants_low, e.participants_high,
       (SELECT coalesce(array_agg(o.name ORDER BY o.name), '{{}}')
          FROM tracker_event_organizers eo JOIN tracker_organization o ON o.id = eo.organization_id
         WHERE eo.event_id = e.id),
       (SELECT coalesce(json_agg(json_build_object('url', s.url, 'title', s.title,
                'publisher', s.publisher, 'published_on', s.published_on,
                'language', s.language) ORDER BY s.id), '[]')
          FROM tracker_source s WHERE s.event_id = e.id),
       (SELECT coalesce(array_agg(x.scheme || ':' || x.value ORDER BY x.scheme, x.value), '{{}}')
          FROM tracker_externalid x WHERE x.event_id = e.id),
       e.created_at, e.updated_at
FROM (SELECT e.id FROM tracker_event e
       WHERE e.status = 'published' {where}
       ORDER BY {order}
       LIMIT %s) page
JOIN tracker_event e ON e.id = page.id
LEFT JOIN tracker_city c ON c.id = e.city_id
ORDER BY {order}
"""
KEYS = ["id", "title", "description", "date", "end_date", "date_precision", "city", "city_id",
        "country", "admin1", "location_detail", "longitude", "latitude", "geo_precision",
        "grievances", "police_responses", "arrests", "injuries", "deaths", "participants_low",
        "participants_high", "organizers", "sources", "external_ids", "created_at",
        "updated_at"]  # fmt: skip

DEEP_DATE = "2016-06-15"
# (API query, the same condition in SQL): the whole file must arrive, every row of it.
BIG_CSV_QUERIES = [("year=2019", "date BETWEEN '2019-01-01' AND '2019-12-31'"), ("", "TRUE")]
BBOX = (68.5, 40.5, 70.5, 42.0)  # Tashkent and its region
# A word of `q=` as someone who knows the schema would write it: by its start in the event's
# search document (its text, its sources' and organizers'), or, for a place, the city of
# any of its names. (No category label of the benchmark's data matches these words.)
TSQUERY = "(to_tsquery('russian', '{word}:*') || to_tsquery('simple', '{word}:*'))"


def word_sql(word: str, *, city: bool = False) -> str:
    sql = f"(e.search @@ {TSQUERY.format(word=word)}"
    if city:
        sql += (
            " OR e.city_id IN (SELECT n.city_id FROM tracker_cityname n "  # noqa: S608
            f"WHERE n.normalized LIKE '{word}%%' OR similarity(n.normalized, '{word}') >= 0.6)"
        )
    return sql + ")"


# (label, API query, SQL condition, its parameters, SQL ordering); a hand-written query
# for each, as someone who knows the schema would write it: the page chosen first, its
# rows' fields and related rows then built for those rows only.
LIST_CASES = [
    ("no filter", "", "", [], "e.date DESC, e.id DESC"),
    ("country=KZ", "country=KZ", "AND e.country = ANY(%s)", [["KZ"]], "e.date DESC, e.id DESC"),
    (
        "grievance=labor,land",
        "grievance=labor,land",
        "AND e.grievances && %s::varchar[]",
        [["labor", "land"]],
        "e.date DESC, e.id DESC",
    ),
    (
        "year=2019&police_response=force",
        "year=2019&police_response=force",
        "AND e.date BETWEEN '2019-01-01' AND '2019-12-31' AND e.police_responses && %s::varchar[]",
        [["force"]],
        "e.date DESC, e.id DESC",
    ),
    (
        "in_bbox (Tashkent region)",
        "in_bbox={},{},{},{}".format(*BBOX),
        "AND ST_Intersects(e.location, ST_MakeEnvelope(%s, %s, %s, %s, 4326))",
        list(BBOX),
        "e.date DESC, e.id DESC",
    ),
    (
        "q=pensions",
        "q=pensions",
        f"AND {word_sql('pensions')}",
        [],
        "e.date DESC, e.id DESC",
    ),
    (
        "q=Almaty protest",
        "q=Almaty protest",
        f"AND {word_sql('almaty', city=True)} AND {word_sql('protest')}",
        [],
        "e.date DESC, e.id DESC",
    ),
    (
        "q=pensions&ordering=-search_rank",
        "q=pensions&ordering=-search_rank",
        f"AND {word_sql('pensions')}",
        [],
        f"ts_rank(e.search, {TSQUERY.format(word='pensions')})::float8 DESC, e.id DESC",
    ),
    (
        "ordering=-arrests",
        "ordering=-arrests",
        "",
        [],
        "coalesce(e.arrests, -1) DESC, e.id DESC",
    ),
]
DEEP_CASES = {"no filter", "country=KZ", "grievance=labor,land", "q=pensions"}
# The event list page (/events/): its query, and the same rows, page and count in raw SQL.
EVENT_LIST_CASES = [
    ("no filter", "", ""),
    ("year=2019&country=KZ", "year=2019&country=KZ",
     "AND e.date BETWEEN '2019-01-01' AND '2019-12-31' AND e.country = 'KZ'"),
    ("q=pensions", "q=pensions&sort=-date", f"AND {word_sql('pensions')}"),
    ("q=Almaty protest", "q=Almaty protest&sort=-date",
     f"AND {word_sql('almaty', city=True)} AND {word_sql('protest')}"),
    ("grievance=labor&sort=-arrests", "grievance=labor&sort=-arrests",
     "AND e.grievances && ARRAY['labor']::varchar[]"),
]  # fmt: skip
EVENT_LIST_SQL = """
SELECT e.id, e.title, e.date, e.end_date, e.date_precision, e.country, e.admin1,
       e.location_detail, e.grievances, e.police_responses, e.arrests, e.participants_low,
       e.participants_high, c.name, c.name_ru, c.name_kk
FROM (SELECT e.id FROM tracker_event e WHERE e.status = 'published' {where}
      ORDER BY {order} LIMIT 51) page
JOIN tracker_event e ON e.id = page.id LEFT JOIN tracker_city c ON c.id = e.city_id
ORDER BY {order}
"""
EVENT_LIST_COUNT_SQL = "SELECT count(*) FROM tracker_event e WHERE e.status = 'published' {where}"

DASHBOARD_BUDGET_MS = 150.0
DASHBOARD_CASES = [
    "",
    "year=2020",
    "country=KZ&grievance=labor,land",
    "interval=month",
    "interval=month&year=2020&city=Almaty",
    "compare=city&city=Almaty,Astana,Bishkek",
    "compare=city&city=Almaty,Astana,Bishkek&interval=month",
]


def _arrests_by_row(body: bytes) -> dict[tuple, int]:
    """(period, group) -> arrests, from a trends answer or the dashboard's totals CSV."""
    if body.lstrip().startswith(b"{"):
        return {
            (row["period"], row.get("group")): row["arrests"] for row in json.loads(body)["results"]
        }
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    return {(row["year"], None): int(row["arrests"]) for row in rows}


def _shows_edit(before: bytes, after: bytes, keys: set[tuple], delta: int) -> bool:
    """The rows `keys` gained `delta` arrests, and no other row changed."""
    old, new = _arrests_by_row(before), _arrests_by_row(after)
    if set(old) != set(new) or not keys <= set(old):
        return False
    return all(new[k] - old[k] == (delta if k in keys else 0) for k in old)


_RUN_SH_DEFAULT = re.compile(r"^[A-Z_]+=\$\{[A-Z_]+:-[^}]*\}$", re.MULTILINE)
_RUN_SH_GUNICORN = re.compile(r"^\.venv/bin/gunicorn\b(?:[^\n]*\\\n)*[^\n]*&[ \t]*$", re.MULTILINE)


def gunicorn_command_of_run_sh(
    base_dir: Path, *, host: str, port: int, workers: int | None = None
) -> list[str]:
    """The gunicorn command line that scripts/run.sh (`make run`) starts, as argv: the
    script's own text, its variables (HOST, PORT, WEB_WORKERS and their defaults) expanded
    by bash, so the benchmark serves with exactly the flags that ship, not a copy."""
    script = (base_dir / "scripts" / "run.sh").read_text()
    found = _RUN_SH_GUNICORN.search(script)
    if found is None:
        raise CommandError("scripts/run.sh: no `.venv/bin/gunicorn ... &` line found")
    line = found.group(0).rstrip().removesuffix("&")
    defaults = "\n".join(_RUN_SH_DEFAULT.findall(script))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOST": host, "PORT": str(port)}
    if workers is not None:
        env["WEB_WORKERS"] = str(workers)
    expanded = subprocess.run(  # noqa: S603 - bash expands our own script's arguments
        ["/bin/bash", "-c", f'{defaults}\nset -- {line}\nprintf "%s\\0" "$@"'],
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    argv = expanded.decode().split("\0")[:-1]
    argv[0] = str(base_dir / argv[0])
    return argv


def _server_errors(log: str, count: int = 2, lines: int = 60) -> str:
    """The first `count` error reports of a server log (Django's "ERROR ..." line and its
    traceback, up to the next access-log line), else the log's end."""
    text = log.splitlines()
    starts = [i for i, line in enumerate(text) if " ERROR " in line][:count]
    if not starts:
        return "\n".join(text[-40:])
    blocks = []
    for start in starts:
        block = [text[start]]
        for line in text[start + 1 : start + lines]:
            if line.startswith("["):  # the next access-log line
                break
            block.append(line)
        blocks.append("\n".join(block))
    return "\n...\n".join(blocks)


def _cursor(position: str) -> str:
    """A `cursor` value as DRF's CursorPagination writes it: past `position`, no offset."""
    return base64.b64encode(f"p={position}".encode()).decode()


def _timed(function: Callable, repeat: int) -> list[float]:
    function()  # warm-up: connections, caches of the database and of Python
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def _timed_pair(first: Callable, second: Callable, repeat: int) -> tuple[list, list]:
    """Both functions timed in turns, so that whatever else loads the machine weighs on
    both sides of a ratio alike."""
    first(), second()
    times: tuple[list, list] = ([], [])
    for _ in range(repeat):
        for function, bucket in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            function()
            bucket.append(time.perf_counter() - started)
    return times


def _ms(times: list[float], q: float = 0.5) -> float:
    ordered = sorted(times)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Command(BaseCommand):
    help = (
        "Fill a benchmark database (--events N), then time list pages against raw SQL, "
        "trends and the dashboard against the raw GROUP BY, an edit's effect, and the "
        "gunicorn of scripts/run.sh under concurrent clients."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--database-url",
            help="benchmark database (postgis://...); default: the configured one",
        )
        parser.add_argument(
            "--events",
            type=int,
            default=0,
            help="fill the --database-url database up to this many published events first",
        )
        parser.add_argument("--repeat", type=int, default=15, help="timed calls per case")
        parser.add_argument("--page-sizes", "--page-size", dest="page_sizes", default="100,1000")
        parser.add_argument("--clients", type=int, default=32, help="concurrent HTTP clients")
        parser.add_argument("--seconds", type=int, default=30, help="length of the load run")
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="gunicorn workers (default: as scripts/run.sh, its WEB_WORKERS default)",
        )
        parser.add_argument("--cache-prefix", default="tracker-bench")
        parser.add_argument("--skip-list", action="store_true")
        parser.add_argument("--skip-event-list", action="store_true")
        parser.add_argument("--skip-trends", action="store_true")
        parser.add_argument(
            "--trends-only",
            default="",
            metavar="TEXT",
            help="time only the trends cases whose query contains TEXT",
        )
        parser.add_argument("--skip-dashboard", action="store_true")
        parser.add_argument("--skip-edit", action="store_true")
        parser.add_argument("--skip-load", action="store_true")
        parser.add_argument(
            "--skip-exports",
            action="store_true",
            help="in the load section, leave out the two big CSV downloads (minutes)",
        )
        parser.add_argument(
            "--markdown",
            metavar="PATH",
            help="also write the tables measured as Markdown (for the README) to PATH",
        )

    def handle(self, *args, **options):
        manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
        if (
            not options["skip_dashboard"]
            and "Manifest" in settings.STORAGES["staticfiles"]["BACKEND"]
            and not manifest.exists()
        ):
            raise CommandError(
                f"The dashboard page needs the static files' manifest ({manifest}), as on a "
                "server: run `python manage.py collectstatic --noinput` first (make run does)."
            )
        self.database_url = options["database_url"]
        if self.database_url:
            self._use_database(self.database_url)
        elif options["events"]:
            raise CommandError("--events fills a database: name it with --database-url.")
        if options["events"]:
            fill_events(self._conninfo(), target=options["events"], say=self.stdout.write)
        # Keep this run's cached answers and throttle counters apart from the app's own,
        # and out of the way: the requests below are all "anonymous" and would be throttled.
        self.cache_prefix = options["cache_prefix"]
        caches["default"].key_prefix = self.cache_prefix
        from rest_framework.throttling import SimpleRateThrottle

        SimpleRateThrottle.THROTTLE_RATES = {
            **SimpleRateThrottle.THROTTLE_RATES,
            "anon": "1000000/minute",
            "user": "1000000/minute",
        }
        settings.DEBUG = False  # no query log in memory while timing
        self.client = Client(HTTP_HOST="127.0.0.1")
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM tracker_event WHERE status = 'published'")
            published = cursor.fetchone()[0]
        self.stdout.write(
            f"database {connection.settings_dict['NAME']}: {published} published events; "
            f"x{options['repeat']} per case"
        )
        self.markdown: list[str] = []
        self.markdown_path = options["markdown"]
        if not options["skip_list"]:
            sizes = [int(size) for size in options["page_sizes"].split(",")]
            self._list_pages(sizes, options["repeat"])
        if not options["skip_event_list"]:
            self._event_list(options["repeat"])
            self._write_markdown()
        if not options["skip_trends"]:
            self._trends(options["repeat"], options["trends_only"])
            self._write_markdown()
        if not options["skip_dashboard"]:
            self._dashboard(options["repeat"])
            self._write_markdown()
        if not options["skip_edit"]:
            self._edit(options["repeat"])
            self._write_markdown()
        if not options["skip_load"]:
            self._load(
                options["clients"],
                options["seconds"],
                options["workers"],
                exports=not options["skip_exports"],
            )
            self._write_markdown()
        if self.markdown_path:
            self.stdout.write(f"\nMarkdown tables written to {self.markdown_path}")

    def _write_markdown(self) -> None:
        """After each section, so that a run stopped later keeps what it measured."""
        if self.markdown_path:
            Path(self.markdown_path).write_text("\n".join(self.markdown) + "\n")

    # -- database -----------------------------------------------------------------------

    def _use_database(self, url: str) -> None:
        config = environ.Env.db_url_config(url)
        connection.close()
        for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
            connection.settings_dict[key] = config.get(key, "")

    def _conninfo(self) -> str:
        db = connection.settings_dict
        return psycopg.conninfo.make_conninfo(
            host=db["HOST"] or "127.0.0.1",
            port=db["PORT"] or 5432,
            user=db["USER"] or None,
            password=db["PASSWORD"] or None,
            dbname=db["NAME"],
        )

    # -- list pages ---------------------------------------------------------------------

    def _list_pages(self, sizes: list[int], repeat: int) -> None:
        self.stdout.write("\nlist page: API (in-process, JSON) vs the same page by raw SQL")
        self.stdout.write(f"{'case':52} {'API p50':>9} {'SQL p50':>9} {'ratio':>6}  budget <= 2")
        ratios = []
        for label, query, where, params, order in LIST_CASES:
            for size in sizes:
                pages = [("first", query, where, params)]
                if label in DEEP_CASES:
                    deep_query = f"{query}&cursor={_cursor(DEEP_DATE)}".lstrip("&")
                    pages.append(
                        ("deep", deep_query, where + " AND e.date < %s", [*params, DEEP_DATE])
                    )
                for page, api_query, sql_where, sql_params in pages:
                    api, raw = _timed_pair(
                        self._api_page(api_query, size),
                        self._sql_page(sql_where, sql_params, order, size),
                        repeat,
                    )
                    ratio = statistics.median(api) / statistics.median(raw)
                    ratios.append(ratio)
                    name = f"{label} size={size} {page}"
                    flag = "" if ratio <= 2 else "  OVER"
                    self.stdout.write(
                        f"{name:52} {_ms(api):7.1f}ms {_ms(raw):7.1f}ms {ratio:6.2f}{flag}"
                    )
        self.stdout.write(f"list page ratio: worst {max(ratios):.2f}, median "
                          f"{statistics.median(ratios):.2f}")  # fmt: skip

    def _event_list(self, repeat: int) -> None:
        """/events/ (the whole page: filters, search, the page of rows, the total, HTML)
        against its rows, its page and its count in raw SQL."""
        self.stdout.write("\nevent list page /events/ (HTML, in-process) vs raw SQL")
        self.stdout.write(f"{'case':40} {'page p50':>9} {'SQL p50':>9} {'ratio':>6}  budget <= 2")
        self.markdown += [
            "", "| /events/ case | page p50 | raw SQL p50 | ratio |", "|---|---:|---:|---:|",
        ]  # fmt: skip
        for label, query, where in EVENT_LIST_CASES:
            order = (
                "coalesce(e.arrests, -1) DESC, e.id DESC"
                if "sort=-arrests" in query
                else "e.date DESC, e.id DESC"
            )
            url = "/events/" + (f"?{query}" if query else "")

            def page(url=url):
                response = self.client.get(url)
                if response.status_code != 200:
                    raise CommandError(f"{url}: {response.status_code}")
                return response.content

            def raw(where=where, order=order):
                with connection.cursor() as cursor:
                    cursor.execute(EVENT_LIST_SQL.format(where=where, order=order), [])
                    rows = cursor.fetchall()
                    cursor.execute(EVENT_LIST_COUNT_SQL.format(where=where), [])
                    return rows, cursor.fetchone()[0]

            pages, raws = _timed_pair(page, raw, repeat)
            ratio = statistics.median(pages) / statistics.median(raws)
            flag = "" if ratio <= 2 else "  OVER"
            self.stdout.write(
                f"{label:40} {_ms(pages):7.1f}ms {_ms(raws):7.1f}ms {ratio:6.2f}{flag}"
            )
            self.markdown.append(
                f"| `{label}` | {_ms(pages):.1f} ms | {_ms(raws):.1f} ms | {ratio:.2f} |"
            )

    def _api_page(self, query: str, size: int) -> Callable:
        url = f"/api/v1/events/?page_size={size}" + (f"&{query}" if query else "")

        def call():
            response = self.client.get(url)
            if response.status_code != 200:
                raise CommandError(f"{url}: {response.status_code} {response.content[:300]!r}")
            return response.content

        return call

    def _sql_page(self, where: str, params: list, order: str, size: int) -> Callable:
        sql = PAGE_SQL.format(where=where, order=order)

        def call():
            with connection.cursor() as cursor:
                cursor.execute(sql, [*params, size])
                rows = [dict(zip(KEYS, row, strict=True)) for row in cursor.fetchall()]
            return json.dumps({"next": None, "previous": None, "results": rows}, default=str)

        return call

    # -- trends -------------------------------------------------------------------------

    def _get(self, url: str, *, expect: int | None = 200) -> Callable[[], bytes]:
        def call():
            response = self.client.get(url)
            if expect is not None and response.status_code != expect:
                raise CommandError(f"{url}: {response.status_code} {response.content[:300]!r}")
            return response.content

        return call

    def _trends_source(self, case: TrendCase) -> str:
        """Which way event_counts answers this case: the rollup tables or the events."""
        filterset = published_events(
            QueryDict(case.query), extra_params=TrendsView.query_params_of_view
        )
        if not filterset.is_valid():
            raise CommandError(f"{case.url}: {filter_errors_text(filterset)}")
        rows = rollup_counts(
            filters=filterset.form.cleaned_data,
            interval=case.params.get("interval", "year"),
            by=case.params.get("by"),
        )
        return "events" if rows is None else "rollup"

    def _trends(self, repeat: int, pattern: str) -> None:
        cases = trend_cases(pattern)
        self.stdout.write(
            "\ntrends: /api/v1/stats/trends/ in-process (nothing is cached: every answer is "
            "cold) beside the hand-written GROUP BY over tracker_event, timed in turns"
        )
        self.stdout.write(
            f"{'case':76} {'from':6} {'p50':>7} {'p95':>7} {'raw p50':>8} {'ratio':>6} "
            f"{'budget':>9}  result"
        )
        self.markdown += [
            f"Trends, {len(cases)} cases, p50/p95 of {repeat} calls each, beside the raw "
            "GROUP BY of the same rows (`from`: what answered, rollup tables or events):",
            "",
            "| case | from | p50 ms | p95 ms | raw p50 ms | ratio | budget | pass |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        failed = 0
        for case in cases:
            source = self._trends_source(case)
            last: dict[str, object] = {}

            def api(case=case, last=last):
                last["api"] = self._get(case.url)()

            raw_query = raw_call(case)

            def raw(call=raw_query, last=last):
                last["raw"] = call()

            api_times, raw_times = _timed_pair(api, raw, repeat)
            p50, raw_p50 = _ms(api_times), _ms(raw_times)
            ratio = p50 / raw_p50
            if case.rollup_class:
                budget, passed = f"<= {ROLLUP_BUDGET_MS:.0f} ms", p50 <= ROLLUP_BUDGET_MS
            else:
                budget, passed = f"<= {OTHER_BUDGET_RATIO}x raw", ratio <= OTHER_BUDGET_RATIO
            same = same_numbers(last["api"], last["raw"])
            result = ("PASS" if passed else "FAIL") + ("" if same else " NUMBERS DIFFER")
            failed += not (passed and same)
            self.stdout.write(
                f"{case.label:76} {source:6} {p50:7.1f} {_ms(api_times, 0.95):7.1f} "
                f"{raw_p50:8.1f} {ratio:6.2f} {budget:>9}  {result}"
            )
            self.markdown.append(
                f"| `{case.label}` | {source} | {p50:.1f} | {_ms(api_times, 0.95):.1f} | "
                f"{raw_p50:.1f} | {ratio:.2f} | {budget.replace('<=', '≤')} | {result} |"
            )
        self.stdout.write(f"trends: {len(cases) - failed} of {len(cases)} within budget")
        self.markdown += ["", f"{len(cases) - failed} of {len(cases)} within budget.", ""]

    # -- dashboard ----------------------------------------------------------------------

    def _dashboard(self, repeat: int) -> None:
        self.stdout.write(
            f"\ndashboard page, server time in-process (nothing cached), "
            f"budget p50 <= {DASHBOARD_BUDGET_MS:.0f} ms"
        )
        self.markdown += [
            f"Dashboard page, server time in-process, {repeat} calls each:",
            "",
            "| page | status | p50 ms | p95 ms | budget | pass |",
            "|---|---|---:|---:|---|---|",
        ]
        for query in DASHBOARD_CASES:
            url = "/dashboard/" + (f"?{query}" if query else "")
            status = self.client.get(url).status_code
            if status != 200:
                self.stdout.write(f"  {url:70} {status}: not measured")
                self.markdown.append(f"| `{url}` | {status} | | | ≤ 150 ms | not measured |")
                continue
            times = _timed(self._get(url), repeat)
            result = "PASS" if _ms(times) <= DASHBOARD_BUDGET_MS else "FAIL"
            self.stdout.write(
                f"  {url:70} p50 {_ms(times):7.1f} ms p95 {_ms(times, 0.95):7.1f} ms  {result}"
            )
            self.markdown.append(
                f"| `{url}` | 200 | {_ms(times):.1f} | {_ms(times, 0.95):.1f} | ≤ 150 ms | "
                f"{result} |"
            )
        self.markdown.append("")

    # -- one edit -----------------------------------------------------------------------

    def _edit(self, repeat: int) -> None:
        """Time answers before and after an edit of one event and check that they show it;
        then edit it back. Nothing is cached, so an edit cannot turn anything cold."""
        from tracker.services.events import event_update

        event = (
            Event.objects.published()
            .filter(country="KZ", date__year=2020)
            .exclude(city=None)
            .order_by("id")
            .first()
        )
        if event is None:
            self.stdout.write("\none edit: no published 2020 event in KZ, skipped")
            return
        old = event.arrests
        new = (old or 0) + 7
        month, year = event.date.strftime("%Y-%m"), str(event.date.year)
        city = event.city.name
        checks = [
            # (url, the rows an edit of arrests must change: (period, group))
            ("/api/v1/stats/trends/?country=KZ&year=2020&interval=month", {(month, None)}),
            (
                "/api/v1/stats/trends/?country=KZ&by=grievance",
                {(year, g) for g in event.grievances},
            ),
            (f"/api/v1/stats/trends/?city={event.city_id}&by=city", {(year, city)}),
            ("/dashboard/totals.csv?country=KZ", {(year, None)}),
        ]
        timed = [url for url, _ in checks] + ["/dashboard/?country=KZ"]

        def measure() -> tuple[dict[str, float], dict[str, bytes]]:
            times = {url: _ms(_timed(self._get(url), repeat)) for url in timed}
            return times, {url: self._get(url)() for url, _ in checks}

        self.stdout.write(
            f"\none edit: event {event.pk} ({event.date}, {city}, arrests {old} -> {new}) "
            "through tracker.services.events.event_update, then back"
        )
        before, before_bodies = measure()
        edit_started = time.perf_counter()
        event_update(event=event, actor=None, fields={"arrests": new}, reason="benchmark: one edit")
        edit_ms = 1000 * (time.perf_counter() - edit_started)
        try:
            after, after_bodies = measure()
        finally:
            event_update(event=event, actor=None, fields={"arrests": old}, reason="benchmark: undo")
        restored = {url: self._get(url)() for url, _ in checks}
        self.stdout.write(f"  the edit itself (rollup triggers included): {edit_ms:.0f} ms")
        self.markdown += [
            f"One edit (event_update of one event's arrests, {edit_ms:.0f} ms with the rollup "
            "triggers), p50 before and right after, and whether the answer shows it:",
            "",
            "| request | before ms | after ms | shows the edit |",
            "|---|---:|---:|---|",
        ]
        for url in timed:
            shown = ""
            for check_url, keys in checks:
                if check_url == url:
                    ok = _shows_edit(before_bodies[url], after_bodies[url], keys, new - (old or 0))
                    ok = ok and restored[url] == before_bodies[url]
                    shown = "yes" if ok else "NO"
            self.stdout.write(
                f"  {url:66} before {before[url]:7.1f} ms after {after[url]:7.1f} ms"
                + (f"  shows the edit (and its undo): {shown}" if shown else "")
            )
            self.markdown.append(
                f"| `{url}` | {before[url]:.1f} | {after[url]:.1f} | {shown or '—'} |"
            )
        self.markdown.append("")

    # -- concurrent clients against gunicorn -------------------------------------------

    def _load_urls(self) -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT max(id) FROM tracker_event")
            max_id = cursor.fetchone()[0] or 1
        rng = random.Random(7)  # noqa: S311 - reproducible load, not secrets
        urls = []
        for _ in range(400):
            kind = rng.random()
            year = rng.randrange(2015, 2022)
            country = rng.choice(("KZ", "KG", "UZ", "TJ", "TM"))
            grievance = rng.choice(taxonomy.GRIEVANCE_SLUGS)
            if kind < 0.25:
                query = rng.choice(
                    ("", f"country={country}", f"grievance={grievance}", f"year={year}",
                     f"year={year}&country={country}", "q=pensions", "ordering=-arrests",
                     f"cursor={_cursor(f'{year}-0{rng.randrange(1, 10)}-15')}",
                     "in_bbox={},{},{},{}".format(*BBOX))
                )  # fmt: skip
                size = rng.choice((100, 100, 1000))
                urls.append(f"/api/v1/events/?page_size={size}&{query}")
            elif kind < 0.35:
                urls.append(f"/api/v1/events/?format=geojson&page_size=1000&year={year}")
            elif kind < 0.55:
                query = rng.choice(
                    ("", f"year={year}", f"country={country}", f"grievance={grievance}",
                     "by=grievance", "by=city", f"by=country&year={year}",
                     f"interval=month&year={year}&country={country}",
                     f"grievance={grievance}&by=police_response")
                )  # fmt: skip
                urls.append(f"/api/v1/stats/trends/?{query}")
            elif kind < 0.70:
                urls.append(f"/api/v1/events/{rng.randrange(1, max_id + 1)}/")
            elif kind < 0.78:
                urls.append(f"/api/v1/events/?format=csv&city=Naryn&year={year}")
            elif kind < 0.83:
                urls.append(rng.choice(("/api/v1/taxonomy/", "/api/v1/cities/?q=al")))
            elif kind < 0.86:
                query = rng.choice(
                    ("", f"year={year}", f"country={country}&interval=month",
                     f"grievance={grievance}")
                )  # fmt: skip
                urls.append(f"/dashboard/?{query}")
            elif kind < 0.93:
                # Bad input: must be a 4xx, never a 5xx.
                urls.append(
                    rng.choice(
                        (
                            "/api/v1/events/?page_size=0",
                            "/api/v1/events/?cursor=bad",
                            "/api/v1/stats/trends/?by=nothing",
                            "/api/v1/events/?in_bbox=1,2",
                            "/api/v1/events/?year=abc",
                            f"/api/v1/events/{max_id + 10}/",
                        )
                    )
                )
            else:
                urls.append("/healthz")
        return urls

    def _load(self, clients: int, seconds: int, workers: int | None, *, exports: bool) -> None:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "CACHE_KEY_PREFIX": self.cache_prefix,
            "API_THROTTLE_ANON": "1000000/minute",
            "API_THROTTLE_USER": "1000000/minute",
            "DJANGO_DEBUG": "0",
        }
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        # What ships: the gunicorn command line of scripts/run.sh (`make run`), expanded by
        # bash itself, with gunicorn.conf.py read from the repository root as there.
        command = gunicorn_command_of_run_sh(
            Path(settings.BASE_DIR), host="127.0.0.1", port=port, workers=workers
        )
        urls = self._load_urls()
        self.stdout.write(
            f"\n{clients} concurrent clients for {seconds} s against the gunicorn of "
            f"scripts/run.sh, {len(urls)} mixed URLs:\n  {shlex.join(command)}"
        )
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen(  # noqa: S603 - our own gunicorn, our own script's flags
                command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
            try:
                self._wait_for(base, process, log)
                results = self._hammer(base, urls, clients, seconds)
                downloads = (
                    [self._download(base, *case) for case in BIG_CSV_QUERIES] if exports else []
                )
            finally:
                process.terminate()
                process.wait(timeout=60)
            log.seek(0)
            server_log = log.read().decode(errors="replace")
        self._report_load(results, seconds, server_log, command)
        if downloads:
            self.stdout.write("\nbig CSV downloads, one at a time, through that gunicorn:")
        for query, lines, expected, elapsed, error in downloads:
            if error or lines != expected:
                outcome = f"CUT after {lines} of {expected} lines {error}".rstrip()
            else:
                outcome = "complete"
            self.stdout.write(
                f"  format=csv&{query or '(no filter)':20} {lines:8} lines in {elapsed:5.1f} s "
                f"({lines / elapsed:,.0f}/s): {outcome}"
            )

    def _download(self, base: str, query: str, where: str) -> tuple[str, int, int, float, str]:
        """Stream a CSV to the end, counting lines: a worker killed mid-stream shows as a
        file cut short (a 502 behind a proxy), which the status code, sent first, hides."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT count(*) + 1 FROM tracker_event WHERE status = 'published' AND {where}"  # noqa: S608
            )
            expected = cursor.fetchone()[0]
        lines, error = 0, ""
        started = time.perf_counter()
        try:
            url = f"{base}/api/v1/events/?format=csv&{query}"
            with urllib.request.urlopen(url, timeout=300) as answer:  # noqa: S310
                # Records, not text lines: a description may hold a line break.
                for _ in csv.reader(io.TextIOWrapper(answer, encoding="utf-8", newline="")):
                    lines += 1
        except (OSError, http.client.HTTPException) as exc:
            error = type(exc).__name__
        return query, lines, expected, time.perf_counter() - started, error

    def _wait_for(self, base: str, process: subprocess.Popen, log) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/v1/taxonomy/", timeout=5) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise CommandError(f"gunicorn did not start:\n{log.read().decode()}") from None
                time.sleep(0.3)

    def _hammer(self, base: str, urls: list[str], clients: int, seconds: int) -> list[tuple]:
        results: list[tuple] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        def client(number: int) -> None:
            rng = random.Random(number)  # noqa: S311
            mine = []
            while time.monotonic() < stop_at:
                path = rng.choice(urls)
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(base + path, timeout=60) as answer:  # noqa: S310
                        answer.read()
                        status = answer.status
                except urllib.error.HTTPError as exc:
                    exc.read()
                    status = exc.code
                except OSError as exc:  # a dropped connection counts as a failure
                    status = f"error: {type(exc).__name__}"
                mine.append((path, status, time.perf_counter() - started))
            with lock:
                results.extend(mine)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def _report_load(
        self, results: list[tuple], seconds: int, server_log: str, command: list[str]
    ) -> None:
        # The server's access log lines are not failures; only the answers count.
        statuses = Counter(status for _, status, _ in results)
        failures = [r for r in results if not isinstance(r[1], int) or r[1] >= 500]
        times = [elapsed for _, _, elapsed in results]
        self.stdout.write(
            f"requests {len(results)} ({len(results) / seconds:.1f}/s); statuses "
            + ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items(), key=str))
        )
        self.stdout.write(
            f"latency p50 {_ms(times):.0f} ms, p95 {_ms(times, 0.95):.0f} ms, "
            f"p99 {_ms(times, 0.99):.0f} ms, max {1000 * max(times):.0f} ms"
        )
        by_kind: dict[str, list[float]] = {}
        for path, _, elapsed in results:
            kind = path.split("?")[0]
            kind = "/api/v1/events/<id>/" if kind.rstrip("/").split("/")[-1].isdigit() else kind
            if "format=csv" in path:
                kind += " (csv)"
            elif "format=geojson" in path:
                kind += " (geojson)"
            by_kind.setdefault(kind, []).append(elapsed)
        self.markdown += [
            f"Load: {len(results)} requests in {seconds} s from "
            f"{len({p for p, _, _ in results})} mixed URLs, `{shlex.join(command[1:])}` "
            "(the command line of scripts/run.sh):",
            "",
            "| requests | requests/s | p50 ms | p99 ms | 5xx or dropped |",
            "|---:|---:|---:|---:|---:|",
            f"| {len(results)} | {len(results) / seconds:.1f} | {_ms(times):.0f} | "
            f"{_ms(times, 0.99):.0f} | {len(failures)} |",
            "",
            "| kind | n | p50 ms | p99 ms |",
            "|---|---:|---:|---:|",
        ]
        for kind, kind_times in sorted(by_kind.items()):
            self.stdout.write(
                f"  {kind:40} n={len(kind_times):5} p50 {_ms(kind_times):6.0f} ms "
                f"p95 {_ms(kind_times, 0.95):6.0f} ms p99 {_ms(kind_times, 0.99):6.0f} ms"
            )
            self.markdown.append(
                f"| `{kind}` | {len(kind_times)} | {_ms(kind_times):.0f} | "
                f"{_ms(kind_times, 0.99):.0f} |"
            )
        self.markdown.append("")
        self.stdout.write(f"5xx or dropped: {len(failures)} (budget 0)")
        for path, status, _ in failures[:10]:
            self.stdout.write(f"  {status} {path}")
        if failures:
            self.stdout.write("gunicorn log, the first errors:\n" + _server_errors(server_log))


# -- filling the benchmark database ----------------------------------------------------

COUNTRIES = ("KZ", "KG", "UZ", "TJ", "TM")
# More events in the years with large waves of protest; the exact shape matters less than
# the years not being equal, which is what real data looks like to the planner.
YEAR_WEIGHTS = {2015: 6, 2016: 10, 2017: 8, 2018: 9, 2019: 14, 2020: 13, 2021: 16}
KINDS = ("Rally", "Protest", "Picket", "Strike", "March", "Sit-in", "Gathering", "Hunger strike")
TOPIC_WORDS = {
    "political": ("elections", "reform", "parliament", "opposition", "referendum"),
    "human_rights": ("prisoners", "repression", "activists", "torture", "detention"),
    "welfare": ("pensions", "allowances", "prices", "utilities", "benefits"),
    "labor": ("wages", "workers", "miners", "layoffs", "salaries"),
    "land": ("land", "lease", "farmers", "pastures", "reform"),
    "property": ("mortgages", "evictions", "housing", "loans", "demolition"),
    "justice": ("courts", "corruption", "police", "verdict", "prosecutors"),
    "china": ("China", "Xinjiang", "factory", "investment", "camps"),
    "covid": ("quarantine", "lockdown", "masks", "vaccination", "markets"),
    "environment": ("pollution", "water", "smog", "mining", "trees"),
    "other": ("residents", "neighbours", "road", "school", "market"),
}
FILLER = (  # noqa: SIM905 - prose reads better than a list of words
    "residents gathered near the akimat demanding answers from local officials about the "
    "decision; several speakers addressed the crowd while police watched from the square; "
    "organisers said they would return next week if nothing changed; a petition was handed "
    "to the deputy head of the district administration and the crowd dispersed by evening"
).split()
PUBLISHERS = ("RFE/RL", "Vlast.kz", "Kloop", "Eurasianet", "Fergana", "Asia-Plus", "24.kg")
GRIEVANCES = taxonomy.GRIEVANCE_SLUGS
RESPONSES = tuple(slug for slug in taxonomy.POLICE_RESPONSE_SLUGS if slug != "none")

COPY_COLUMNS = (
    "title, description, date, end_date, date_precision, country, admin1, city_id, "
    "location_detail, location, geo_precision, grievances, police_responses, arrests, "
    "injuries, deaths, participants_low, participants_high, status, is_generated, auto_coded, "
    "review_note, created_at, updated_at, version"
)


def _cities(conn) -> list[tuple]:
    rows = conn.execute(
        "SELECT id, name, country, admin1, ST_X(location), ST_Y(location), population "
        "FROM tracker_city WHERE country = ANY(%s) ORDER BY id",
        [list(COUNTRIES)],
    ).fetchall()
    if not rows:
        raise RuntimeError("No gazetteer cities: run `manage.py loadgazetteer` first.")
    return rows


def _array(values) -> str:
    return "{" + ",".join(values) + "}"


def _count(rng: random.Random) -> str:
    """Arrests, injuries, deaths: not reported (NULL), reported none (0) or a number."""
    roll = rng.random()
    if roll < 0.5:
        return r"\N"
    if roll < 0.75:
        return "0"
    return str(int(rng.paretovariate(1.3)))


def _lines(count: int, seed: int, cities: list[tuple]) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - reproducible data
    weights = [max(city[6], 5000) ** 0.7 for city in cities]
    years = list(YEAR_WEIGHTS)
    year_weights = list(YEAR_WEIGHTS.values())
    chosen_cities = rng.choices(cities, weights=weights, k=count)
    chosen_years = rng.choices(years, weights=year_weights, k=count)
    lines = []
    for city, year in zip(chosen_cities, chosen_years, strict=True):
        city_id, name, country, admin1, lon, lat, _ = city
        day = date(year, 1, 1) + timedelta(days=rng.randrange(365))
        grievances = sorted(
            rng.sample(GRIEVANCES, rng.choice((1, 1, 1, 2, 2, 3))), key=GRIEVANCES.index
        )
        roll = rng.random()
        if roll < 0.35:
            responses: list[str] = []
        elif roll < 0.55:
            responses = ["none"]
        else:
            responses = sorted(
                rng.sample(RESPONSES, rng.choice((1, 1, 2))),
                key=taxonomy.POLICE_RESPONSE_SLUGS.index,
            )
        topic = rng.choice(TOPIC_WORDS[grievances[0]])
        title = f"{rng.choice(KINDS)} in {name} over {topic}"
        words = rng.sample(FILLER, 18)
        words.insert(rng.randrange(len(words)), rng.choice(TOPIC_WORDS[grievances[-1]]))
        description = " ".join(words).capitalize() + "."
        exact = rng.random() < 0.3
        jitter = 0.02 if exact else 0.0
        point = f"SRID=4326;POINT({lon + rng.uniform(-jitter, jitter):.6f} "
        point += f"{lat + rng.uniform(-jitter, jitter):.6f})"
        low = rng.choice((r"\N", str(rng.randrange(5, 200))))
        high = r"\N" if low == r"\N" else str(int(low) + rng.randrange(0, 300))
        end = r"\N" if rng.random() < 0.9 else str(day + timedelta(days=rng.randrange(1, 4)))
        created = datetime(year, 1, 1, tzinfo=UTC) + timedelta(
            days=day.timetuple().tm_yday + rng.randrange(1, 30), seconds=rng.randrange(86400)
        )
        created = min(created, datetime(2022, 1, 31, tzinfo=UTC))
        fields = (
            title,
            description,
            day.isoformat(),
            end,
            "day",
            country,
            admin1 or "",
            str(city_id),
            "Central square" if exact else "",
            point,
            "1" if exact else "2",
            _array(grievances),
            _array(responses),
            _count(rng),
            _count(rng),
            r"\N" if rng.random() < 0.97 else "0",
            low,
            high,
            "published",
            "t",
            "{}",
            "",
            created.isoformat(),
            created.isoformat(),
            "1",
        )
        lines.append("\t".join(fields) + "\n")
    return lines


def fill_events(conninfo: str, *, target: int, say: Callable[[str], None], seed: int = 2015) -> int:
    """Add published events until the database holds `target`, each with one source
    (a tenth with an organizer, a fifth with an ACLED id). Returns how many were added."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM tracker_event").fetchone()[0]
        missing = target - have
        if missing <= 0:
            say(f"fill: {have} events already there, nothing to add")
            return 0
        cities = _cities(conn)
        first_new = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM tracker_event").fetchone()[0]
        say(f"fill: adding {missing} events to the {have} there")
        batch = 100_000
        done = 0
        with conn.transaction(), conn.cursor() as cursor:
            with cursor.copy(f"COPY tracker_event ({COPY_COLUMNS}) FROM STDIN") as copy:
                while done < missing:
                    size = min(batch, missing - done)
                    copy.write("".join(_lines(size, seed + have + done, cities)))
                    done += size
                    say(f"fill: {done}/{missing} events copied")
            cursor.execute(
                """
                INSERT INTO tracker_source (event_id, url, publisher, title, published_on,
                                            language)
                SELECT e.id, 'https://news.example.org/' || e.id,
                       (%s::text[])[1 + e.id %% %s], e.title, e.date + 1,
                       CASE WHEN e.id %% 3 = 0 THEN 'en' ELSE 'ru' END
                  FROM tracker_event e WHERE e.id >= %s
                """,
                [list(PUBLISHERS), len(PUBLISHERS), first_new],
            )
            cursor.execute(
                """
                INSERT INTO tracker_organization (name, name_ru, description)
                SELECT 'Bench movement ' || n, '', '' FROM generate_series(1, 40) n
                ON CONFLICT DO NOTHING
                """
            )
            cursor.execute(
                """
                INSERT INTO tracker_event_organizers (event_id, organization_id)
                SELECT e.id, o.id
                  FROM tracker_event e
                  JOIN tracker_organization o ON o.name = 'Bench movement ' || (1 + e.id %% 40)
                 WHERE e.id >= %s AND e.id %% 10 = 0
                """,
                [first_new],
            )
            cursor.execute(
                """
                INSERT INTO tracker_externalid (event_id, scheme, value, version, fingerprint,
                                                imported)
                SELECT e.id, 'acled', 'BENCH' || e.id, '', '', '{}'::jsonb
                  FROM tracker_event e WHERE e.id >= %s AND e.id %% 5 = 0
                """,
                [first_new],
            )
        say("fill: sources, organizers and external ids added; VACUUM ANALYZE")
        for table in (
            "tracker_event",
            "tracker_source",
            "tracker_event_organizers",
            "tracker_externalid",
            "tracker_organization",
        ):
            conn.execute(f"VACUUM ANALYZE {table}")
        return missing
