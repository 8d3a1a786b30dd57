"""Time the Django admin's pages that a moderator uses against the budget of 500 ms.

It is not a test and asserts nothing: it prints times and the SQL each page runs.

    python manage.py benchmark_admin \
        --database-url postgis://postgres@127.0.0.1:5432/tracker_bench --markdown /tmp/admin.md

Each page is fetched in-process with Django's test client, logged in as a superuser (one
named `bench-admin` is created, with a random password nobody knows, if it is missing: the
only write, with its session), p50/p95 of --repeat calls of server time. A first call, not
timed, counts its SQL queries: all of them, the COUNT(*) ones (over the whole table when the
page is unfiltered) and the DISTINCT ones. A page whose first call takes longer than
--slow-seconds is timed by that call alone (the event search of the stock admin took a
minute at a million events).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import environ
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings

from tracker.models import City, Event, ExternalId

BUDGET_MS = 500.0
USERNAME = "bench-admin"
EVENTS = "/admin/tracker/event/"


@dataclass
class Result:
    label: str
    url: str
    status: int
    times: list[float]
    queries: int
    counts: int
    distincts: int


def _ms(times: list[float], q: float = 0.5) -> float:
    ordered = sorted(times)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


_COUNT = re.compile(r"\bCOUNT\(\*\)", re.IGNORECASE)
_DISTINCT = re.compile(r"\bSELECT DISTINCT\b", re.IGNORECASE)


class Command(BaseCommand):
    help = "Time the admin's changelists, searches, filters and pages against 500 ms."

    def add_arguments(self, parser):
        parser.add_argument(
            "--database-url",
            help="benchmark database (postgis://...); default: the configured one",
        )
        parser.add_argument("--repeat", type=int, default=5, help="timed calls per page")
        parser.add_argument(
            "--slow-seconds",
            type=float,
            default=10.0,
            help="a page whose first call takes longer is timed by that call alone",
        )
        parser.add_argument(
            "--timeout-seconds",
            type=float,
            default=60.0,
            help="statement_timeout of the benchmark's queries: a page that needs longer is "
            "reported as a timeout (the stock admin's search would hold the database minutes)",
        )
        parser.add_argument(
            "--only", default="", metavar="TEXT", help="only the pages whose label has TEXT"
        )
        parser.add_argument("--cache-prefix", default="tracker-bench-admin")
        parser.add_argument("--markdown", metavar="PATH", help="also write the table there")

    def handle(self, *args, **options):
        # The pages' static links without a collected manifest (nothing is served here).
        storages = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        with override_settings(STORAGES=storages):
            self._handle(**options)

    def _handle(self, **options):
        if options["database_url"]:
            config = environ.Env.db_url_config(options["database_url"])
            connection.close()
            for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
                connection.settings_dict[key] = config.get(key, "")
        self.timeout_seconds = options["timeout_seconds"]
        timeout_ms = int(self.timeout_seconds * 1000)
        connection.close()
        connection.settings_dict["OPTIONS"] = {
            **connection.settings_dict.get("OPTIONS", {}),
            "options": f"-c statement_timeout={timeout_ms}",
        }
        caches["default"].key_prefix = options["cache_prefix"]
        settings.DEBUG = False  # no query log in memory while timing
        self.client = Client(HTTP_HOST="127.0.0.1")
        self.client.force_login(
            self._superuser(), backend="django.contrib.auth.backends.ModelBackend"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = 'tracker_event'::regclass"
            )
            estimate = cursor.fetchone()[0]
        self.stdout.write(
            f"database {connection.settings_dict['NAME']}: about {estimate} events; "
            f"x{options['repeat']} per page, server time in-process, budget {BUDGET_MS:.0f} ms"
        )
        self.stdout.write(
            f"{'page':58} {'status':>6} {'p50':>8} {'p95':>8} {'queries':>7} {'COUNT':>5} "
            f"{'DISTINCT':>8}  result"
        )
        results = []
        for label, url in self._cases():
            if options["only"] and options["only"].lower() not in label.lower():
                continue
            result = self._case(label, url, options["repeat"], options["slow_seconds"])
            results.append(result)
            self._print(result)
        passed = sum(1 for r in results if r.status == 200 and _ms(r.times, 0.95) <= BUDGET_MS)
        self.stdout.write(f"{passed} of {len(results)} pages within budget (p95)")
        if options["markdown"]:
            self._markdown(Path(options["markdown"]), results, estimate, options["repeat"])
            self.stdout.write(f"\nMarkdown table written to {options['markdown']}")

    def _superuser(self):
        User = get_user_model()
        user = User.objects.filter(username=USERNAME, is_superuser=True).first()
        if user is None:
            if User.objects.filter(username=USERNAME).exists():
                raise CommandError(f"A user {USERNAME!r} exists and is not a superuser.")
            os.environ["DJANGO_SUPERUSER_PASSWORD"] = secrets.token_urlsafe(24)
            try:
                call_command(
                    "createsuperuser",
                    "--noinput",
                    username=USERNAME,
                    email="bench-admin@example.invalid",
                    verbosity=0,
                )
            finally:
                del os.environ["DJANGO_SUPERUSER_PASSWORD"]
            user = User.objects.get(username=USERNAME)
        return user

    def _cases(self) -> list[tuple[str, str]]:
        event = Event.objects.order_by("id").values_list("id", flat=True).first()
        external = ExternalId.objects.order_by("id").first()
        city = City.objects.filter(names__normalized="almaty").order_by("id").first()
        title_word = "Sit-in"
        cases = [
            ("events", EVENTS),
            ("events, page 2", f"{EVENTS}?p=2"),
            ("events, deep page p=5000", f"{EVENTS}?p=5000"),
            ("events, last pages p=10000", f"{EVENTS}?p=10000"),
            ("events ?status=published", f"{EVENTS}?status__exact=published"),
            ("events ?status=pending", f"{EVENTS}?status__exact=pending"),
            ("events ?year=2019", f"{EVENTS}?year=2019"),
            ("events ?country=KZ", f"{EVENTS}?country=KZ"),
            ("events ?country=KZ deep page p=1000", f"{EVENTS}?country=KZ&p=1000"),
            ("events ?grievance=labor", f"{EVENTS}?grievance=labor"),
            ("events ?grievance=labor deep page p=500", f"{EVENTS}?grievance=labor&p=500"),
            ("events ?police_response=force", f"{EVENTS}?police_response=force"),
            ("events ?geo_precision=3", f"{EVENTS}?geo_precision__exact=3"),
            ("events ?is_generated=yes", f"{EVENTS}?is_generated__exact=1"),
            ("events ?date__year=2019 (hierarchy)", f"{EVENTS}?date__year=2019"),
            ("events ?year=2019&month=6", f"{EVENTS}?year=2019&month=6"),
            ("events ?geo_precision=1", f"{EVENTS}?geo_precision__exact=1"),
            ("events ?geo_precision unknown", f"{EVENTS}?geo_precision__isnull=True"),
            ("events ?year=2019&country=KZ&grievance=labor",
             f"{EVENTS}?year=2019&country=KZ&grievance=labor"),
            ("events sorted by arrests (o=-6)", f"{EVENTS}?o=-6"),
            ("events sorted by updated_at (o=-8)", f"{EVENTS}?o=-8"),
            ("events ?q=Almaty", f"{EVENTS}?q=Almaty"),
            ("events ?q=Алматы", f"{EVENTS}?q=%D0%90%D0%BB%D0%BC%D0%B0%D1%82%D1%8B"),
            ("events ?q=Alma-Ata", f"{EVENTS}?q=Alma-Ata"),
            (f"events ?q={title_word} (title word)", f"{EVENTS}?q={title_word}"),
            ("events ?q=pensi (partial word)", f"{EVENTS}?q=pensi"),
            ("events ?q=protest deep page p=100", f"{EVENTS}?q=protest&p=100"),
            ("events ?q=Almaty protest&country=KZ", f"{EVENTS}?q=Almaty+protest&country=KZ"),
        ]  # fmt: skip
        if external is not None:
            key = f"{external.scheme}:{external.value}"
            cases.append((f"events ?q={key} (external id)", f"{EVENTS}?q={key}"))
        cases.append(("events ?q=zzzqqq (nothing)", f"{EVENTS}?q=zzzqqq"))
        if event is not None:
            cases += [
                ("event change page", f"{EVENTS}{event}/change/"),
                ("event history page", f"{EVENTS}{event}/history/"),
            ]
        cases += [
            ("event add page", f"{EVENTS}add/"),
            ("city autocomplete term=Alm",
             "/admin/autocomplete/?app_label=tracker&model_name=event&field_name=city&term=Alm"),
            ("cities", "/admin/tracker/city/"),
            ("cities ?q=Almaty", "/admin/tracker/city/?q=Almaty"),
            ("cities ?country=KZ", "/admin/tracker/city/?country=KZ"),
            ("organizations", "/admin/tracker/organization/"),
            ("import jobs", "/admin/tracker/importjob/"),
            ("export jobs", "/admin/tracker/exportjob/"),
            ("users", "/admin/auth/user/"),
            ("admin log (recent actions) index", "/admin/"),
        ]  # fmt: skip
        if city is not None:
            cases.append(("city change page (Almaty)", f"/admin/tracker/city/{city.pk}/change/"))
        return cases

    def _case(self, label: str, url: str, repeat: int, slow_seconds: float) -> Result:
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            try:
                status = self.client.get(url).status_code
            except OperationalError:  # statement_timeout
                status = 0
            first = time.perf_counter() - started
        if status == 503 and first >= self.timeout_seconds * 0.9:
            status = 0  # the site's outage answer to the statement_timeout
        sqls = [q["sql"] for q in captured.captured_queries]
        counts = sum(1 for sql in sqls if _COUNT.search(sql))
        distincts = sum(1 for sql in sqls if _DISTINCT.search(sql))
        times = [first]
        if status == 200 and first < slow_seconds:
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                self.client.get(url)
                times.append(time.perf_counter() - started)
        return Result(label, url, status, times, len(sqls), counts, distincts)

    def _print(self, r: Result) -> None:
        ok = r.status == 200 and _ms(r.times, 0.95) <= BUDGET_MS
        once = " (1 call)" if len(r.times) == 1 else ""
        if r.status == 0:
            once = " (statement_timeout: longer than the time shown)"
        self.stdout.write(
            f"{r.label[:58]:58} {r.status:>6} {_ms(r.times):8.1f} {_ms(r.times, 0.95):8.1f} "
            f"{r.queries:>7} {r.counts:>5} {r.distincts:>8}  "
            f"{'PASS' if ok else 'FAIL'}{once}"
        )

    def _markdown(self, path: Path, results: list[Result], estimate: int, repeat: int) -> None:
        lines = [
            f"Admin pages at about {estimate:,} events, server time in-process, p50/p95 of "
            f"{repeat} calls (a page slower than the cut-off: one call), budget "
            f"{BUDGET_MS:.0f} ms:",
            "",
            "| page | status | p50 ms | p95 ms | queries | COUNT(*) | DISTINCT | pass |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in results:
            ok = r.status == 200 and _ms(r.times, 0.95) <= BUDGET_MS
            status = "timeout" if r.status == 0 else str(r.status)
            p50 = f"> {_ms(r.times):.0f}" if r.status == 0 else f"{_ms(r.times):.1f}"
            lines.append(
                f"| {r.label} | {status} | {p50} | {_ms(r.times, 0.95):.1f} | "
                f"{r.queries} | {r.counts} | {r.distincts} | {'PASS' if ok else 'FAIL'} |"
            )
        path.write_text("\n".join(lines) + "\n")
