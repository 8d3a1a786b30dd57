"""The trends cases of `benchmark_api` and, for each, the GROUP BY a careful person would
write by hand over tracker_event for the same rows.

A case is an API query string. Its hand-written SQL is derived here from the parameters,
one condition per filter, written as someone who knows the schema and its indexes would
write it, independently of the app's query layer (tracker.query, tracker.rollups): the
two meet only in the numbers, which the benchmark compares.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from django.db import connection

from tracker.models import normalize_name

# Filters the rollup tables are meant to answer (issue 9: "date or year range; country,
# admin1 or city; one or more grievances, one or more police responses; any by=, interval
# year or month"): budget <= 50 ms p50. Any other filter: <= 1.2x the raw GROUP BY.
ROLLUP_FILTERS = {
    "date_after",
    "date_before",
    "year",
    "country",
    "admin1",
    "city",
    "grievance",
    "police_response",
}
VIEW_PARAMS = {"interval", "by"}
ROLLUP_BUDGET_MS = 50.0
OTHER_BUDGET_RATIO = 1.2

BBOX = (68.5, 40.5, 70.5, 42.0)  # Tashkent and its region
NEAR = "76.95,43.24&radius_km=25"  # Almaty
RANGE = "date_after=2019-03-15&date_before=2020-09-10"  # day-precise ends
YEARS = "date_after=2017-01-01&date_before=2019-12-31"  # whole years

# Date/place/category filters (the rollup budget), then the other filters.
TREND_CASES = [
    "",
    "interval=month",
    "by=grievance",
    "by=police_response",
    "by=city",
    "by=admin1",
    "by=country&interval=month",
    "year=2020",
    "year=2020&interval=month&by=grievance",
    RANGE,
    f"{RANGE}&interval=month&by=city",
    f"{YEARS}&by=country",
    f"{YEARS}&interval=month&by=police_response",
    "country=KZ",
    "country=KZ,KG&by=admin1",
    "admin1=Karaganda Region",
    "admin1=Almaty,Astana&interval=month",
    "city=Almaty",
    "city=Almaty,Bishkek&by=grievance",
    "grievance=labor",
    "grievance=labor&by=city",
    "grievance=labor,land",
    "grievance=labor,land&by=police_response",
    "police_response=force",
    "police_response=detained,force&by=grievance",
    "country=KZ&police_response=force&by=admin1&interval=month",
    "grievance=labor,land&police_response=force&by=city&interval=month",
    "grievance=welfare&police_response=force,lethal&by=country",
    "country=KZ&grievance=human_rights,welfare&by=grievance",
    "year=2020&city=Almaty&grievance=welfare&interval=month",
    "date_after=2019-06-09&date_before=2019-06-30&country=KZ&police_response=detained&by=city",
    f"{RANGE}&admin1=Karaganda Region&grievance=labor,welfare&by=police_response",
    "city=Almaty&police_response=detained,force&by=police_response&interval=month",
    "year=2021&country=UZ&grievance=political&by=admin1",
    # other filters
    "q=pensions",
    "q=pensions&by=grievance",
    "in_bbox={},{},{},{}".format(*BBOX),
    "in_bbox={},{},{},{}&by=city&interval=month".format(*BBOX),
    f"near={NEAR}",
    f"near={NEAR}&by=police_response",
    "arrests_min=10",
    "arrests_min=1&arrests_max=50&country=KZ&by=grievance",
]

MEASURES_SQL = """count(*) AS events,
       coalesce(sum(e.arrests), 0) AS arrests,
       count(*) FILTER (WHERE e.arrests > 0) AS events_with_arrests,
       count(*) FILTER (WHERE e.police_responses && '{force,lethal}'::varchar[])
           AS events_with_force,
       coalesce(sum(e.injuries), 0) AS injuries,
       coalesce(sum(e.deaths), 0) AS deaths,
       coalesce(sum(e.participants_low), 0) AS participants_low,
       coalesce(sum(e.participants_high), 0) AS participants_high,
       count(*) FILTER (WHERE e.participants_low IS NOT NULL
                           OR e.participants_high IS NOT NULL) AS events_with_participants"""
METRICS = (
    "events",
    "arrests",
    "events_with_arrests",
    "events_with_force",
    "injuries",
    "deaths",
    "participants_low",
    "participants_high",
    "events_with_participants",
)


@dataclass
class TrendCase:
    query: str
    params: dict[str, str]

    @property
    def rollup_class(self) -> bool:
        return set(self.params) <= ROLLUP_FILTERS | VIEW_PARAMS

    @property
    def url(self) -> str:
        return "/api/v1/stats/trends/" + (f"?{self.query}" if self.query else "")

    @property
    def label(self) -> str:
        return self.query or "(no filter)"


def trend_cases(pattern: str = "") -> list[TrendCase]:
    return [
        TrendCase(query=query, params=dict(parse_qsl(query)))
        for query in TREND_CASES
        if pattern in query
    ]


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def city_ids(names: list[str]) -> list[int]:
    """Gazetteer ids for city names, resolved once before timing (as a client would pass
    ids): any name in any language, as the API's city filter takes it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT city_id FROM tracker_cityname WHERE normalized = ANY(%s)",
            [[normalize_name(name) for name in names]],
        )
        return sorted(row[0] for row in cursor.fetchall())


def raw_sql(case: TrendCase) -> tuple[str, list]:
    """The hand-written GROUP BY for `case`, with its parameters."""
    p = case.params
    where, args = ["e.status = 'published'"], []
    if "year" in p:
        where.append("e.date BETWEEN %s AND %s")
        args += [f"{p['year']}-01-01", f"{p['year']}-12-31"]
    if "date_after" in p:
        where.append("e.date >= %s")
        args.append(p["date_after"])
    if "date_before" in p:
        where.append("e.date <= %s")
        args.append(p["date_before"])
    if "country" in p:
        where.append("e.country = ANY(%s)")
        args.append([code.upper() for code in _split(p["country"])])
    if "admin1" in p:
        where.append("e.admin1 = ANY(%s)")
        args.append(_split(p["admin1"]))
    if "city" in p:
        where.append("e.city_id = ANY(%s)")
        args.append(city_ids(_split(p["city"])))
    if "grievance" in p:
        where.append("e.grievances && %s::varchar[]")
        args.append(_split(p["grievance"]))
    if "police_response" in p:
        where.append("e.police_responses && %s::varchar[]")
        args.append(_split(p["police_response"]))
    if "arrests_min" in p:
        where.append("e.arrests >= %s")
        args.append(int(p["arrests_min"]))
    if "arrests_max" in p:
        where.append("e.arrests <= %s")
        args.append(int(p["arrests_max"]))
    for word in p.get("q", "").split():
        where.append("(e.title ILIKE %s OR e.description ILIKE %s OR e.location_detail ILIKE %s)")
        args += [f"%{word}%"] * 3
    if "in_bbox" in p:
        where.append("ST_Intersects(e.location, ST_MakeEnvelope(%s, %s, %s, %s, 4326))")
        args += [float(x) for x in _split(p["in_bbox"])]
    if "near" in p:
        lon, lat = (float(x) for x in _split(p["near"]))
        metres = float(p["radius_km"]) * 1000
        # The box in degrees for the GiST index, the sphere for the truth.
        where.append(
            "ST_DWithin(e.location, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s) AND "
            "ST_DistanceSphere(e.location, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) <= %s"
        )
        args += [lon, lat, metres / 111_000 / 0.7 + 0.01, lon, lat, metres]
    interval = p.get("interval", "year")
    label = "YYYY" if interval == "year" else "YYYY-MM"
    by = p.get("by")
    join, key = {
        None: ("", None),
        "grievance": ("CROSS JOIN LATERAL unnest(e.grievances) g(slug)", "g.slug"),
        "police_response": ("CROSS JOIN LATERAL unnest(e.police_responses) g(slug)", "g.slug"),
        "country": ("", "e.country"),
        "admin1": ("", "e.admin1"),
        "city": ("", "e.city_id"),
    }[by]
    key_select = f", {key} AS grp" if key else ""
    grouped = (
        f"SELECT date_trunc('{interval}', e.date)::date AS period{key_select}, {MEASURES_SQL} "  # noqa: S608
        f"FROM tracker_event e {join} WHERE {' AND '.join(where)} "
        f"GROUP BY 1{', 2' if key else ''}"
    )
    group_out = ", c.name" if by == "city" else (", t.grp" if key else "")
    city_join = "LEFT JOIN tracker_city c ON c.id = t.grp" if by == "city" else ""
    sql = (
        f"SELECT to_char(t.period, '{label}'){group_out}, "  # noqa: S608
        f"{', '.join('t.' + m for m in METRICS)} FROM ({grouped}) t {city_join} "
        f"ORDER BY 1{', 2' if key else ''}"
    )
    return sql, args


def raw_call(case: TrendCase) -> Callable[[], str]:
    """The hand-written query as a function returning the JSON body it would send."""
    sql, args = raw_sql(case)
    grouped = "by" in case.params

    def call() -> str:
        with connection.cursor() as cursor:
            cursor.execute(sql, args)
            rows = cursor.fetchall()
        results = []
        for row in rows:
            item = {"period": row[0]}
            if grouped:
                item["group"] = row[1]
            item.update(zip(METRICS, (int(v) for v in row[2 if grouped else 1 :]), strict=True))
            results.append(item)
        return json.dumps({"results": results})

    return call


def same_numbers(api_body: bytes, raw_body: str) -> bool:
    """The API's rows with events equal the hand-written query's rows (the API also lists
    periods without events, as zeros, when there is no by=). Compared as multisets of
    whole rows: cities of the same name are groups of their own under one name."""

    def rows(results) -> list[tuple]:
        return sorted(
            tuple(str(row.get(key)) for key in ("period", "group", *METRICS)) for row in results
        )

    api = [row for row in json.loads(api_body)["results"] if row["events"]]
    return rows(api) == rows(json.loads(raw_body)["results"])
