"""The expected numbers of the trends and the dashboard, written directly in SQL: one plain
GROUP BY over tracker_event (published rows), with no code of the app in between. Tests
compare every answer of the app with these."""

from __future__ import annotations

import datetime as dt

from django.db import connection

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
LABEL = {"year": "YYYY", "quarter": 'YYYY-"Q"Q', "month": "YYYY-MM", "week": 'IYYY-"W"IW'}
STEP = {"year": "1 year", "quarter": "3 months", "month": "1 month", "week": "7 days"}
# by= -> (join, the group's key as the API shows it, what to group by)
GROUP = {
    None: ("", None, None),
    "grievance": ("CROSS JOIN unnest(e.grievances) AS g(slug)", "g.slug", "g.slug"),
    "police_response": ("CROSS JOIN unnest(e.police_responses) AS g(slug)", "g.slug", "g.slug"),
    "city": ("LEFT JOIN tracker_city c ON c.id = e.city_id", "c.name", "e.city_id, c.name"),
    "admin1": ("", "e.admin1", "e.admin1"),
    "country": ("", "e.country", "e.country"),
}
SUMS = """
    count(*) AS events,
    coalesce(sum(e.arrests), 0) AS arrests,
    count(*) FILTER (WHERE e.arrests > 0) AS events_with_arrests,
    count(*) FILTER (WHERE e.police_responses && ARRAY['force', 'lethal']::varchar[])
        AS events_with_force,
    coalesce(sum(e.injuries), 0) AS injuries,
    coalesce(sum(e.deaths), 0) AS deaths,
    coalesce(sum(e.participants_low), 0) AS participants_low,
    coalesce(sum(e.participants_high), 0) AS participants_high,
    count(*) FILTER (WHERE e.participants_low IS NOT NULL OR e.participants_high IS NOT NULL)
        AS events_with_participants"""


def _fetch(sql: str, params) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def sql_trends(
    where: str = "TRUE",
    params=(),
    *,
    interval: str = "year",
    by: str | None = None,
    after: dt.date | None = None,
    before: dt.date | None = None,
) -> list[dict]:
    """Rows as /api/v1/stats/trends/ gives them: {"period": label, ["group": key,] metrics}.

    Without by=, every period from the one holding the first day (the later of `after` and
    the first published event) to the one holding the last (the earlier of `before` and
    the last published event) is listed, zeros included. `where` is over `e`, the events.
    """
    join, shown, grouped = GROUP[by]
    label = LABEL[interval]  # also checks `interval`, which is written into the SQL
    if by is not None:
        sql = f"""
            SELECT to_char(date_trunc('{interval}', e.date::timestamp), '{label}') AS period,
                   {shown} AS "group", {SUMS}
            FROM tracker_event e {join}
            WHERE e.status = 'published' AND ({where})
            GROUP BY date_trunc('{interval}', e.date::timestamp), {grouped}
        """
        rows = _fetch(sql, params)
        for row in rows:
            row.update((metric, int(row[metric])) for metric in METRICS)
        return sorted(rows, key=lambda r: (r["period"], r["group"] is None, str(r["group"])))
    zeros = ", ".join(f"coalesce(n.{metric}, 0) AS {metric}" for metric in METRICS)
    sql = f"""
        WITH bounds AS (
            SELECT greatest(min(date), %s::date) AS first, least(max(date), %s::date) AS last
            FROM tracker_event WHERE status = 'published'
        ), axis AS (
            SELECT generate_series(date_trunc('{interval}', first::timestamp), last::timestamp,
                                   '{STEP[interval]}'::interval) AS start
            FROM bounds WHERE first <= last
        ), counted AS (
            SELECT date_trunc('{interval}', e.date::timestamp) AS start, {SUMS}
            FROM tracker_event e
            WHERE e.status = 'published' AND ({where})
            GROUP BY 1
        )
        SELECT to_char(start, '{label}') AS period, {zeros}
        FROM axis FULL JOIN counted n USING (start)
        ORDER BY start
    """
    rows = _fetch(sql, [after, before, *params])
    for row in rows:
        row.update((metric, int(row[metric])) for metric in METRICS)
    return rows


def sql_top_cities(where: str = "TRUE", params=(), *, limit: int = 10) -> list[tuple[int, int]]:
    """(city id, events) of the cities with the most events, most first (ties by id)."""
    sql = f"""
        SELECT e.city_id, count(*) FROM tracker_event e
        WHERE e.status = 'published' AND e.city_id IS NOT NULL AND ({where})
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, limit])
        return cursor.fetchall()
