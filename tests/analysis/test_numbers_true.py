"""The numbers are true: every /api/v1/stats/trends/ answer and every number of the dashboard
(its charts' tables, which are also its CSVs) equals a plain SQL GROUP BY over
tracker_event, written here (tests/analysis/reference.py), for a grid of filters x by= x
interval, after each kind of write: bulk inserts, creates through the service, edits that
move events to another city, month or grievance, status changes (publish, reject,
withdraw), deletes, and an import through the real importer.

The trends of the date, place and category filters come from the rollup tables (migration
0008); the test also checks that the rollups answered those (rollup_counts is not None), so
the comparison proves the rollups do not drift, not only the raw GROUP BY.

One test walks through the writes in order, on top of the demo data, and checks the grid
after each (by=/interval in full after the last write; month, the rollups' own grain, for
every by= after the others) to keep the run to a minute or two.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections import Counter, defaultdict
from urllib.parse import urlencode

import pytest
from django.contrib.gis.geos import Point
from django.core.files.base import ContentFile
from django.db import connection
from django.http import QueryDict

from tests.analysis.reference import LABEL, METRICS, sql_trends
from tests.importers.conftest import acled_row, csv_bytes
from tracker.models import City, Event
from tracker.query import published_events
from tracker.rollups import rollup_counts
from tracker.services.events import ReviewDecision, event_create, event_review, event_update

pytestmark = pytest.mark.django_db

BYS = (None, "grievance", "police_response", "city", "admin1", "country")
INTERVALS = ("year", "quarter", "month")
D = dt.date


@dataclasses.dataclass
class Case:
    name: str
    query: dict
    where: str = "TRUE"
    params: tuple = ()
    after: dt.date | None = None
    before: dt.date | None = None
    # What the rollups answer (tracker.rollups' docstring): "place" (no category filter:
    # any by=), "term" (one grievance or response: by= none or a place), "combo" (several,
    # or both kinds, with at most a country filter: any by=, by city from the all-of cells
    # of migration 0017), "raw" (nothing required).
    rollup: str = "place"
    week: bool = False  # a range short enough for interval=week


def grid(places) -> list[Case]:
    almaty, aktau, shymkent = places["almaty"].pk, places["aktau"].pk, places["shymkent"].pk
    y2020 = "e.date BETWEEN '2020-01-01' AND '2020-12-31'"
    return [
        Case("no filter", {}),
        Case("year", {"year": 2020}, y2020, after=D(2020, 1, 1), before=D(2020, 12, 31),
             week=True),
        Case("days inside months", {"date_after": "2019-03-15", "date_before": "2020-08-20"},
             "e.date BETWEEN '2019-03-15' AND '2020-08-20'",
             after=D(2019, 3, 15), before=D(2020, 8, 20)),
        Case("a few weeks", {"date_after": "2019-05-20", "date_before": "2019-07-14"},
             "e.date BETWEEN '2019-05-20' AND '2019-07-14'",
             after=D(2019, 5, 20), before=D(2019, 7, 14), week=True),
        Case("from a day on", {"date_after": "2020-02-10"}, "e.date >= '2020-02-10'",
             after=D(2020, 2, 10)),
        Case("country", {"country": "KZ"}, "e.country = 'KZ'"),
        Case("countries", {"country": "kz,KG"}, "e.country IN ('KZ', 'KG')"),
        Case("admin1", {"admin1": "mangystau region"}, "upper(e.admin1) = 'MANGYSTAU REGION'"),
        Case("city", {"city": almaty}, "e.city_id = %s", (almaty,)),
        Case("cities", {"city": f"{almaty},{aktau},{shymkent}"}, "e.city_id = ANY(%s)",
             ([almaty, aktau, shymkent],)),
        Case("grievance", {"grievance": "welfare"}, "'welfare' = ANY(e.grievances)",
             rollup="term"),
        Case("grievances", {"grievance": "welfare,human_rights"},
             "e.grievances && ARRAY['welfare', 'human_rights']::varchar[]", rollup="combo"),
        Case("police response", {"police_response": "detained"},
             "'detained' = ANY(e.police_responses)", rollup="term"),
        Case("police responses", {"police_response": "detained,force"},
             "e.police_responses && ARRAY['detained', 'force']::varchar[]", rollup="combo"),
        Case("grievance and police", {"grievance": "human_rights",
                                      "police_response": "detained,dispersed"},
             "'human_rights' = ANY(e.grievances) "
             "AND e.police_responses && ARRAY['detained', 'dispersed']::varchar[]",
             rollup="combo"),
        Case("grievance in a city in a year", {"grievance": "welfare", "city": almaty,
                                               "year": 2019},
             "'welfare' = ANY(e.grievances) AND e.city_id = %s "
             "AND e.date BETWEEN '2019-01-01' AND '2019-12-31'", (almaty,),
             after=D(2019, 1, 1), before=D(2019, 12, 31), rollup="term", week=True),
        Case("grievances in a country from a day", {"grievance": "welfare,labor",
                                                    "country": "KZ",
                                                    "date_after": "2019-02-10"},
             "e.grievances && ARRAY['welfare', 'labor']::varchar[] AND e.country = 'KZ' "
             "AND e.date >= '2019-02-10'", after=D(2019, 2, 10), rollup="combo"),
        Case("grievances in a region", {"grievance": "welfare,human_rights",
                                        "admin1": "Almaty"},
             "e.grievances && ARRAY['welfare', 'human_rights']::varchar[] "
             "AND upper(e.admin1) = 'ALMATY'", rollup="raw"),
        # Words by their start, in the event's text, its sources and organizers, or (for
        # "welfare") the label of a grievance (tests/api/test_search.py has the rest).
        Case("q", {"q": "welfare protest"},
             " AND ".join(
                 f"(concat_ws(' ', e.title, e.description, e.location_detail, e.admin1) "
                 f"~* '\\m{word}' OR EXISTS (SELECT 1 FROM tracker_source s WHERE "
                 f"s.event_id = e.id AND concat_ws(' ', s.title, s.publisher) ~* '\\m{word}') "
                 f"OR EXISTS (SELECT 1 FROM tracker_event_organizers eo JOIN "
                 f"tracker_organization o ON o.id = eo.organization_id WHERE eo.event_id = e.id "
                 f"AND concat_ws(' ', o.name, o.name_ru) ~* '\\m{word}'){extra})"
                 for word, extra in (("welfare", " OR 'welfare' = ANY(e.grievances)"),
                                     ("protest", ""))
             ), rollup="raw"),
        Case("in_bbox", {"in_bbox": "76.7,43.1,77.1,43.4"},
             "ST_Intersects(e.location, ST_MakeEnvelope(76.7, 43.1, 77.1, 43.4, 4326))",
             rollup="raw"),
        Case("near", {"near": "51.2,43.65", "radius_km": 150},
             "ST_DistanceSphere(e.location, ST_SetSRID(ST_MakePoint(51.2, 43.65), 4326)) "
             "<= 150000", rollup="raw"),
        Case("arrests range", {"arrests_min": 1, "arrests_max": 50},
             "e.arrests BETWEEN 1 AND 50", rollup="raw"),
    ]  # fmt: skip


def rollup_expected(case: Case, interval: str, by: str | None) -> bool:
    if interval == "week" or case.rollup == "raw":
        return False
    if case.rollup == "term":
        return by in (None, "city", "admin1", "country")
    return True  # "place" and "combo"


# ---- the trends ----------------------------------------------------------------------------


def api_trends(client, case: Case, interval: str, by: str | None) -> list[dict]:
    query = {**case.query, "interval": interval, **({"by": by} if by else {})}
    response = client.get(f"/api/v1/stats/trends/?{urlencode(query)}")
    assert response.status_code == 200, (case.name, interval, by, response.content)
    body = response.json()
    assert body["interval"] == interval and body["by"] == by
    return body["results"]


def check_trends(client, cases, combos, stats: Counter) -> list:
    problems = []
    for case in cases:
        filterset = published_events(QueryDict(urlencode(case.query)))
        assert filterset.is_valid(), (case.name, filterset.errors)
        filters = filterset.form.cleaned_data
        for interval, by in combos(case):
            expected = sql_trends(
                case.where, case.params, interval=interval, by=by,
                after=case.after, before=case.before,
            )  # fmt: skip
            got = api_trends(client, case, interval, by)
            stats["trends"] += 1
            if got != expected:
                difference = _first_difference(got, expected)
                problems.append(("trends", case.name, interval, by, difference))
            answered = rollup_counts(filters=filters, interval=interval, by=by) is not None
            stats["rollups" if answered else "raw"] += 1
            if rollup_expected(case, interval, by) and not answered:
                problems.append(("rollups did not answer", case.name, interval, by))
    return problems


def _first_difference(got: list, expected: list):
    for index, (a, b) in enumerate(zip(got, expected, strict=False)):
        if a != b:
            return {"row": index, "got": a, "expected": b}
    return {"rows": len(got), "expected rows": len(expected)}


# ---- the dashboard -------------------------------------------------------------------------


def _number(value):
    if value in (None, ""):
        return None
    number = float(value)
    return int(number) if number.is_integer() and "." not in str(value) else number


def _share(part: int, whole: int):
    return round(100 * part / whole, 1) if whole else None


def _sql_medians(case: Case, interval: str) -> dict[str, dict]:
    sql = f"""
        SELECT to_char(date_trunc('{interval}', e.date::timestamp), '{LABEL[interval]}'),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY e.participants_low),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY e.participants_high)
        FROM tracker_event e
        WHERE e.status = 'published' AND ({case.where})
          AND (e.participants_low IS NOT NULL OR e.participants_high IS NOT NULL)
        GROUP BY 1
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, list(case.params))
        return {
            period: {
                "median_low": None if low is None else round(low, 1),
                "median_high": None if high is None else round(high, 1),
            }
            for period, low, high in cursor.fetchall()
        }


def _sql_place_totals(case: Case, column: str) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column}, count(*) FROM tracker_event e LEFT JOIN tracker_city c "
            f"ON c.id = e.city_id WHERE e.status = 'published' AND ({case.where}) GROUP BY 1",
            list(case.params),
        )
        return dict(cursor.fetchall())


def dashboard_tables(client, case: Case, interval: str, compare: str | None, *, via_csv: bool):
    """{chart key: (header, rows)} of the dashboard: from its charts, or from its CSVs."""
    from pages import dashboard

    query = {**case.query, "interval": interval, **({"compare": compare} if compare else {})}
    if not via_csv:
        filterset = published_events(QueryDict(urlencode(case.query)))
        assert filterset.is_valid()
        charts = dashboard.dashboard_charts(filterset, interval=interval, compare=compare)
        return {
            key: (chart.csv_header(), [list(row) for row in chart.csv_rows()])
            for key, chart in charts.items()
        }
    tables = {}
    for key in dashboard.CHART_KEYS:
        if key.startswith("compare") and not compare:
            continue
        if key == "compare-rate" and compare != "city":
            continue
        response = client.get(f"/dashboard/{key}.csv?{urlencode(query)}")
        assert response.status_code == 200, (key, response.content[:300])
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        tables[key] = (rows[0], rows[1:])
    return tables


def check_dashboard(client, case: Case, interval: str, compare: str | None, *, via_csv: bool):
    """Every number of every chart of the dashboard against SQL."""
    problems = []
    tables = dashboard_tables(client, case, interval, compare, via_csv=via_csv)
    expected = sql_trends(
        case.where, case.params, interval=interval, after=case.after, before=case.before
    )
    totals = {row["period"]: row for row in expected}
    periods = list(totals)
    by_term = {}
    for by in ("grievance", "police_response"):
        cells = defaultdict(int)
        for row in sql_trends(case.where, case.params, interval=interval, by=by):
            cells[(row["period"], row["group"])] = row["events"]
        by_term[by] = cells
    medians = _sql_medians(case, interval)
    term_charts = {
        "grievances": ("grievance", False),
        "grievance-shares": ("grievance", True),
        "police": ("police_response", False),
        "police-shares": ("police_response", True),
    }

    def expect(key, label, column):
        row = totals[label]
        if column in METRICS:
            return row[column]
        if column == "share_with_arrests":
            return _share(row["events_with_arrests"], row["events"])
        if column == "share_with_force":
            return _share(row["events_with_force"], row["events"])
        if column in ("median_low", "median_high"):
            return medians.get(label, {}).get(column)
        by, share = term_charts[key]
        count = by_term[by].get((label, column), 0)
        return _share(count, row["events"]) if share else count

    expected_terms = {
        by: {slug for (_period, slug), n in cells.items() if n} for by, cells in by_term.items()
    }
    for key, (header, rows) in tables.items():
        if key in ("cities", "regions", "compare", "compare-rate"):
            continue
        assert header[0] == interval, (key, header)
        labels = [row[0] for row in rows]
        if labels != periods:
            problems.append(("dashboard periods", key, case.name, interval, labels, periods))
            continue
        if key in term_charts:
            slugs = set(header[1:]) - {"events"}
            if slugs != expected_terms[term_charts[key][0]]:
                problems.append(("dashboard series", key, case.name, interval, slugs))
        for row in rows:
            for column, value in zip(header[1:], row[1:], strict=True):
                want = expect(key, row[0], column)
                if _number(value) != want:
                    problems.append(
                        ("dashboard", key, case.name, interval, row[0], column, value, want)
                    )
    # Top cities and regions: counts over the whole selection.
    per_city = _sql_place_totals(case, "c.name")
    per_city.pop(None, None)
    header, rows = tables["cities"]
    want = sorted(per_city.values(), reverse=True)[:10]
    if sorted((int(r[1]) for r in rows), reverse=True) != want or any(
        per_city.get(name) != int(n) for name, n in rows
    ):
        problems.append(("dashboard cities", case.name, interval, rows, want))
    per_region = {key or "(no region given)": n for key, n in _sql_place_totals(
        case, "e.admin1").items()}  # fmt: skip
    header, rows = tables["regions"]
    want = sorted(per_region.values(), reverse=True)[:20]
    if sorted((int(r[1]) for r in rows), reverse=True) != want or any(
        per_region.get(name) != int(n) for name, n in rows
    ):
        problems.append(("dashboard regions", case.name, interval, rows, want))
    if compare:
        problems += _check_compare(case, interval, compare, tables, periods)
    return problems


def _check_compare(case, interval, compare, tables, periods):
    problems = []
    grouped = {}
    for row in sql_trends(case.where, case.params, interval=interval, by=compare):
        grouped[(row["period"], row["group"])] = row["events"]
    ids = {}
    if compare == "city":
        # by=city groups show names; the comparison's columns are "Name (id)".
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT to_char(date_trunc(%s, e.date::timestamp), %s), e.city_id, count(*) "
                "FROM tracker_event e WHERE e.status = 'published' AND (" + case.where + ") "
                "GROUP BY 1, 2",
                [interval, LABEL[interval], *case.params],
            )
            grouped = {(period, city): n for period, city, n in cursor.fetchall()}
        ids = {city.pk: city for city in City.objects.filter(pk__in={k for _p, k in grouped})}
    header, rows = tables["compare"]
    assert header[0] == interval
    if [row[0] for row in rows] != periods:
        return [("compare periods", case.name, interval)]
    keys = []
    for column in header[1:]:
        if compare == "city":
            keys.append(int(column.rsplit("(", 1)[1].rstrip(")")))
        else:
            keys.append(column)
    for row in rows:
        for key, value in zip(keys, row[1:], strict=True):
            want = sum(
                n for (period, group), n in grouped.items()
                if period == row[0] and (group == key or (
                    compare == "admin1" and str(group).lower() == str(key).lower()))
            )  # fmt: skip
            if int(value) != want:
                problems.append(("compare", case.name, interval, row[0], key, value, want))
    if compare == "city" and "compare-rate" in tables:
        header, rows = tables["compare-rate"]
        for row in rows:
            for column, value in zip(header[1:], row[1:], strict=True):
                city = ids[int(column.rsplit("(", 1)[1].rstrip(")"))]
                want = round(100_000 * grouped.get((row[0], city.pk), 0) / city.population, 2)
                if float(value) != want:
                    problems.append(("compare-rate", case.name, row[0], column, value, want))
    return problems


# ---- the data and the writes ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_throttle(monkeypatch):
    """Hundreds of anonymous requests in a minute: above the anonymous rate limit."""
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES,
                                               "anon": "100000/minute"}
    )  # fmt: skip


@pytest.fixture
def places():
    found = {
        key: City.objects.filter(country=country, name=name).order_by("-population").first()
        for key, country, name in (
            ("almaty", "KZ", "Almaty"),
            ("aktau", "KZ", "Aktau"),
            ("shymkent", "KZ", "Shymkent"),
            ("zhanaozen", "KZ", "Zhanaozen"),
            ("bishkek", "KG", "Bishkek"),
        )
    }
    assert all(found.values()), found
    return found


def _event(city: City | None, day: dt.date, **values) -> Event:
    fields = {
        "title": "Welfare protest",
        "date": day,
        "country": city.country if city else "KZ",
        "admin1": city.admin1 if city else "Mangystau Region",
        "city": city,
        "location": city.location if city else Point(52.0, 44.0, srid=4326),
        "geo_precision": 2 if city else 3,
        "grievances": ["welfare"],
        "police_responses": ["detained"],
        "arrests": 5,
        "status": Event.Status.PUBLISHED,
    }
    fields.update(values)
    return Event(**fields)


def _create(moderator, city, day, *, status=Event.Status.PUBLISHED, **fields) -> Event:
    return event_create(
        fields={"title": "Pensioners' welfare protest", "date": day, "city": city,
                "grievances": ["welfare"], "police_responses": ["monitored"], **fields},
        sources=[{"url": f"https://example.org/{city.name}/{day}"}],
        organizers=["Pensioners"],
        status=status,
        actor=moderator,
    )  # fmt: skip


def test_every_trend_and_dashboard_number_equals_sql_after_every_kind_of_write(
    client, places, make_user, settings, tmp_path
):
    almaty, aktau, shymkent = places["almaty"], places["aktau"], places["shymkent"]
    zhanaozen, bishkek = places["zhanaozen"], places["bishkek"]
    moderator = make_user("numbers-mod", "Moderator")
    cases = grid(places)
    stats: Counter = Counter()
    problems: list = []

    def month_grid(case):
        combos = [("month", by) for by in BYS] + [("year", None), ("quarter", None)]
        return combos + ([("week", None)] if case.week else [])

    def full_grid(case):
        combos = [(interval, by) for interval in INTERVALS for by in BYS]
        return combos + ([("week", by) for by in BYS] if case.week else [])

    def check(step: str, *, full: bool = False) -> None:
        found = check_trends(client, cases, full_grid if full else month_grid, stats)
        for case in cases:
            intervals = [*INTERVALS, *(["week"] if case.week else [])] if full else ["month"]
            for interval in intervals:
                found += check_dashboard(client, case, interval, None, via_csv=False)
                stats["dashboards"] += 1
        assert not found, (step, len(found), found[:5])

    # Bulk inserts: boundary days of the grid's ranges, a city-less event, another country,
    # a pending one, crowd sizes, and an event in 2023 that leaves 2022 (and months of
    # 2021) empty: periods the axes must show as zeros.
    Event.objects.bulk_create(
        [
            _event(almaty, D(2020, 3, 3), participants_low=100, participants_high=300),
            _event(aktau, D(2019, 6, 10), grievances=["human_rights", "welfare"],
                   police_responses=["force", "detained"], arrests=40, injuries=2),
            _event(bishkek, D(2020, 11, 7), title="Rally", grievances=["political"],
                   police_responses=["dispersed"], arrests=None, deaths=1),
            _event(None, D(2020, 8, 20), grievances=["labor"], police_responses=[]),
            _event(shymkent, D(2019, 3, 15), grievances=["land"], police_responses=[],
                   arrests=0, participants_low=30, participants_high=None),
            _event(shymkent, D(2019, 3, 14), grievances=["land"]),
            _event(almaty, D(2019, 5, 20), grievances=["human_rights"],
                   police_responses=["kettled", "detained"], arrests=120),
            _event(almaty, D(2019, 7, 14), grievances=["welfare", "labor"]),
            _event(almaty, D(2020, 5, 5), status=Event.Status.PENDING),
            _event(zhanaozen, D(2023, 2, 14), grievances=["labor"], arrests=3, injuries=4),
        ]
    )  # fmt: skip
    check("after bulk inserts")

    # Creates through the service (which fills country, region and point from the city).
    created = [
        _create(moderator, almaty, D(2020, 3, 16), arrests=12, participants_low=50,
                participants_high=80),
        _create(moderator, aktau, D(2019, 12, 31), grievances=["welfare", "human_rights"],
                police_responses=["force"], arrests=7),
        _create(moderator, bishkek, D(2020, 2, 10), grievances=["labor"], arrests=None),
    ]  # fmt: skip
    pending = [
        _create(moderator, shymkent, D(2020, 6, 1), status=Event.Status.PENDING, arrests=9),
        _create(moderator, almaty, D(2019, 6, 1), status=Event.Status.PENDING, arrests=2),
    ]
    check("after creates through the service")

    # Edits: another city (and region), another month, another grievance; one through
    # the service, one as a bulk UPDATE of a demo event.
    moved = event_update(
        event=created[0],
        actor=moderator,
        fields={"city": aktau, "admin1": aktau.admin1, "country": aktau.country,
                "date": D(2020, 7, 2), "grievances": ["human_rights"]},
    )  # fmt: skip
    assert moved.city_id == aktau.pk and moved.location == aktau.location
    event_update(event=created[1], actor=moderator, fields={"police_responses": [], "arrests": 70})
    demo = Event.objects.filter(status="published", city=shymkent, date__year=2018).first()
    Event.objects.filter(pk=demo.pk).update(
        date=D(2020, 8, 21), grievances=["covid", "welfare"], police_responses=["force"]
    )
    check("after edits")

    # Status changes: publish, reject, withdraw (published -> archived, and -> pending).
    event_review(event=pending[0], moderator=moderator, decision=ReviewDecision.PUBLISH)
    event_review(
        event=pending[1], moderator=moderator, decision=ReviewDecision.REJECT, note="Duplicate."
    )
    withdrawn = created[2]
    withdrawn.status = Event.Status.ARCHIVED
    withdrawn.save()
    Event.objects.filter(status="published", city=almaty, date__year=2016).update(
        status=Event.Status.PENDING
    )
    check("after status changes")

    # Deletes: one, and several in one statement.
    created[1].delete()
    Event.objects.filter(status="published", city=aktau, date__year=2019).delete()
    check("after deletes")

    # An import through the importer (published on import).
    from imports.services import import_job_create, import_job_run

    settings.MEDIA_ROOT = tmp_path
    rows = [
        acled_row(event_id_cnty=f"NUM{n}", event_date=f"2020-{1 + n % 12:02d}-{10 + n}",
                  notes=f"Welfare protest, police detained {n} people.")
        for n in range(12)
    ]  # fmt: skip
    rows.append(acled_row(event_id_cnty="NUMX", event_date="2019-07-01", location="Aktau",
                          admin1="Mangystau", latitude="43.65", longitude="51.16"))  # fmt: skip
    job = import_job_create(
        file=ContentFile(csv_bytes(rows), name="numbers.csv"),
        format="acled",
        publish=True,
        user=moderator,
        dispatch=False,
    )
    job = import_job_run(job_id=job.pk)
    assert job.rows_created == 13, (job.status, job.message)
    check("after an import", full=True)

    # The dashboard's CSVs say what its charts say, compare= included.
    for case in cases:
        if case.name in ("no filter", "cities", "admin1", "countries", "year"):
            compare = {"cities": "city", "admin1": "admin1", "countries": "country"}.get(
                case.name, "city"
            )
            for interval in ("year", "month"):
                problems += check_dashboard(client, case, interval, compare, via_csv=True)
                stats["dashboard csvs"] += 1
    assert not problems, (len(problems), problems[:5])

    # The comparison really ran through both paths.
    assert stats["rollups"] > 300 and stats["raw"] > 100, stats
