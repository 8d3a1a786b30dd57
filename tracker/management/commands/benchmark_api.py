"""Measure the API against its budgets (DESIGN.md): a list page against the same page built
by raw SQL, and the trends endpoint. Prints numbers; it is not a test and asserts nothing.

    python manage.py benchmark_api --repeat 30 --page-size 100
"""

from __future__ import annotations

import json
import statistics
import time

from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client

from tracker.models import Event
from tracker.selectors import event_trends

PAGE_SQL = """
SELECT e.id, e.title, e.description, e.date, e.end_date, e.date_precision, c.name, e.city_id,
       e.country, e.admin1, e.location_detail, ST_X(e.location), ST_Y(e.location),
       e.geo_precision, e.grievances, e.police_responses, e.arrests, e.injuries, e.deaths,
       e.participants_low, e.participants_high,
       (SELECT coalesce(array_agg(o.name ORDER BY o.name), '{}')
          FROM tracker_event_organizers eo JOIN tracker_organization o ON o.id = eo.organization_id
         WHERE eo.event_id = e.id),
       (SELECT coalesce(json_agg(json_build_object('url', s.url, 'title', s.title,
                'publisher', s.publisher, 'published_on', s.published_on,
                'language', s.language) ORDER BY s.id), '[]')
          FROM tracker_source s WHERE s.event_id = e.id),
       (SELECT coalesce(array_agg(x.scheme || ':' || x.value ORDER BY x.scheme, x.value), '{}')
          FROM tracker_externalid x WHERE x.event_id = e.id),
       e.created_at, e.updated_at
FROM tracker_event e LEFT JOIN tracker_city c ON c.id = e.city_id
WHERE e.status = 'published'
ORDER BY e.date DESC, e.id DESC
LIMIT %s
"""
KEYS = ["id", "title", "description", "date", "end_date", "date_precision", "city", "city_id",
        "country", "admin1", "location_detail", "longitude", "latitude", "geo_precision",
        "grievances", "police_responses", "arrests", "injuries", "deaths", "participants_low",
        "participants_high", "organizers", "sources", "external_ids", "created_at",
        "updated_at"]  # fmt: skip


def _timed(function, repeat: int) -> list[float]:
    function()  # warm-up: connections, caches of the database and of Python
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return times


def _ms(times: list[float], q: float = 0.5) -> float:
    ordered = sorted(times)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Command(BaseCommand):
    help = "Time a list page against raw SQL, and the trends endpoint (p50/p95)."

    def add_arguments(self, parser):
        parser.add_argument("--repeat", type=int, default=30)
        parser.add_argument("--page-size", type=int, default=100)

    def handle(self, *args, repeat: int, page_size: int, **options):
        # Requests count against the anonymous throttle (API_THROTTLE_ANON): keep
        # 4 x repeat under it, or raise it for the run.
        client = Client(HTTP_HOST="127.0.0.1")
        published = Event.objects.published().count()
        self.stdout.write(f"published events: {published}, page size {page_size}, x{repeat}")

        def api_page():
            response = client.get(f"/api/v1/events/?page_size={page_size}")
            assert response.status_code == 200, response.status_code
            return response.content

        def sql_page():
            with connection.cursor() as cursor:
                cursor.execute(PAGE_SQL, [page_size])
                rows = [dict(zip(KEYS, row, strict=True)) for row in cursor.fetchall()]
            return json.dumps({"next": None, "previous": None, "results": rows}, default=str)

        api_times = _timed(api_page, repeat)
        sql_times = _timed(sql_page, repeat)
        ratio = statistics.median(api_times) / statistics.median(sql_times)
        self.stdout.write(
            f"list page  API p50 {_ms(api_times):.1f} ms  raw SQL p50 {_ms(sql_times):.1f} ms  "
            f"ratio {ratio:.2f} (budget <= 2)"
        )

        queries = [
            "by=grievance",
            "interval=month&by=city&year=2020",
            "country=KZ&police_response=detained,force",
        ]
        for query in queries:
            params = dict(pair.split("=") for pair in query.split("&"))
            interval = params.pop("interval", "year")
            by = params.pop("by", None)

            def uncached(params=params, interval=interval, by=by):
                from django.http import QueryDict

                from api.filters import EventFilterSet

                filterset = EventFilterSet(
                    data=QueryDict("&".join(f"{k}={v}" for k, v in params.items())),
                    queryset=Event.objects.published(),
                )
                assert filterset.is_valid()
                return event_trends(queryset=filterset.qs, interval=interval, by=by)

            def cached(query=query):
                response = client.get(f"/api/v1/stats/trends/?{query}")
                assert response.status_code == 200
                return response.content

            raw = _timed(uncached, repeat)
            hot = _timed(cached, repeat)
            self.stdout.write(
                f"trends {query:45} SQL p50 {_ms(raw):.1f} ms p95 {_ms(raw, 0.95):.1f} ms | "
                f"endpoint (cached) p50 {_ms(hot):.1f} ms p95 {_ms(hot, 0.95):.1f} ms"
            )
