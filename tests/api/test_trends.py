"""Trends equal a plain SQL GROUP BY over the same filter, and the Redis cache follows
every change of the events."""

import pytest
from django.core.cache import cache
from django.db import connection

from tracker.models import Event

pytestmark = pytest.mark.django_db

FORCE = "ARRAY['force','lethal']::varchar[]"
Y2019 = "e.date BETWEEN '2019-01-01' AND '2019-12-31'"
Y2020 = "e.date BETWEEN '2020-01-01' AND '2020-12-31'"
UNNEST_G = "CROSS JOIN unnest(e.grievances) g"
UNNEST_P = "CROSS JOIN unnest(e.police_responses) p"
CITY = "LEFT JOIN tracker_city c ON c.id = e.city_id"


def sql_rows(period: str, group: str | None, join: str, where: str) -> list[dict]:
    """The expected numbers, written directly in SQL."""
    group_select = f", {group}" if group else ""
    sql = f"""
        SELECT to_char(e.date, '{period}'){group_select},
               count(*), coalesce(sum(e.arrests), 0),
               count(*) FILTER (WHERE e.arrests > 0),
               count(*) FILTER (WHERE e.police_responses && {FORCE})
        FROM tracker_event e {join}
        WHERE e.status = 'published' AND ({where})
        GROUP BY 1{", 2" if group else ""}
        ORDER BY 1{", 2" if group else ""}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    keys = ["period", *(["group"] if group else []), "events", "arrests",
            "events_with_arrests", "events_with_force"]  # fmt: skip
    return [dict(zip(keys, row, strict=True)) for row in rows]


def api_rows(api, query: str) -> list[dict]:
    response = api.get(f"/api/v1/stats/trends/?{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def _sorted(rows):
    return sorted(rows, key=lambda r: (r["period"], r.get("group") or ""))


@pytest.mark.parametrize(
    ("query", "period", "group", "join", "where"),
    [
        ("", "YYYY", None, "", "TRUE"),
        ("interval=month&year=2020", "YYYY-MM", None, "", Y2020),
        ("by=grievance", "YYYY", "g", UNNEST_G, "TRUE"),
        ("by=police_response&country=KZ", "YYYY", "p", UNNEST_P, "e.country = 'KZ'"),
        ("by=city&year=2019", "YYYY", "c.name", CITY, Y2019),
        ("by=country", "YYYY", "e.country", "", "TRUE"),
        ("interval=month&by=grievance&grievance=welfare,human_rights&arrests_min=1", "YYYY-MM", "g",
         "CROSS JOIN unnest(e.grievances) g",
         "e.grievances && ARRAY['welfare','human_rights']::varchar[] AND e.arrests >= 1"),
        ("in_bbox=76.7,43.1,77.1,43.4&police_response=kettled,detained", "YYYY", None, "",
         "ST_Intersects(e.location, ST_MakeEnvelope(76.7, 43.1, 77.1, 43.4, 4326)) "
         "AND e.police_responses && ARRAY['kettled','detained']::varchar[]"),
    ],
)  # fmt: skip
def test_trends_equal_plain_sql(api, query, period, group, join, where):
    expected = sql_rows(period, group, join, where)
    assert expected
    assert _sorted(api_rows(api, query)) == _sorted(expected)


def test_response_shape(api):
    body = api.get("/api/v1/stats/trends/").json()
    assert body["interval"] == "year" and body["by"] is None
    row = body["results"][0]
    assert set(row) == {"period", "events", "arrests", "events_with_arrests", "events_with_force"}
    body = api.get("/api/v1/stats/trends/?by=city&interval=month").json()
    assert body["interval"] == "month" and body["by"] == "city"
    assert set(body["results"][0]) == {
        "period", "group", "events", "arrests", "events_with_arrests", "events_with_force",
    }  # fmt: skip
    assert len(body["results"][0]["period"]) == 7


def test_seed_figures_per_year(api):
    """The demo reproduces the tracker's published counts; trends must report them."""
    rows = {r["period"]: r["events"] for r in api_rows(api, "country=KZ")}
    assert [rows[str(y)] for y in range(2015, 2021)] == [71, 52, 36, 32, 235, 254]


def test_events_without_city_group_as_null(api):
    rows = api_rows(api, "by=city&year=2021")
    assert None in {r["group"] for r in rows}


def test_cached_in_redis_and_invalidated_on_change(api, django_capture_on_commit_callbacks):
    from tracker.services.events import event_update

    query = "year=2019&country=KZ"
    first = api_rows(api, query)
    keys = cache.keys("trends:*")
    assert len(keys) == 1  # the answer is in Redis
    # A second identical (differently written) query is served from the same entry.
    assert api_rows(api, "country=kz&year=2019") == first
    assert len(cache.keys("trends:*")) == 1

    event = Event.objects.published().filter(date__year=2019, country="KZ").first()
    with django_capture_on_commit_callbacks(execute=True):
        event_update(event=event, actor=None, fields={"arrests": (event.arrests or 0) + 1000})
    second = api_rows(api, query)
    assert second[0]["arrests"] == first[0]["arrests"] + 1000


def test_bulk_writers_invalidate_with_events_changed(api):
    from tracker.cache import events_changed

    first = api_rows(api, "year=2018")
    Event.objects.filter(date__year=2018, status="published").update(arrests=1)
    assert api_rows(api, "year=2018") == first  # cached: bulk update sent no signal
    events_changed()
    assert api_rows(api, "year=2018")[0]["arrests"] == first[0]["events"]
