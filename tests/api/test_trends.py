"""/api/v1/stats/trends/: numbers equal a plain SQL GROUP BY over the same filter (every
metric, every interval, every by=), periods without events are listed as zeros, and every
write shows in the very next answer (no cache to go stale)."""

import datetime as dt

import pytest
from django.db import connection

from tests.analysis.reference import METRICS, sql_trends
from tracker.models import City, Event
from tracker.services.events import ReviewDecision, event_create, event_review, event_update

pytestmark = pytest.mark.django_db

Y2019 = "e.date BETWEEN '2019-01-01' AND '2019-12-31'"
Y2020 = "e.date BETWEEN '2020-01-01' AND '2020-12-31'"


def api_body(api, query: str) -> dict:
    response = api.get(f"/api/v1/stats/trends/?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def api_rows(api, query: str) -> list[dict]:
    return api_body(api, query)["results"]


@pytest.mark.parametrize(
    ("query", "interval", "by", "where", "after", "before"),
    [
        ("", "year", None, "TRUE", None, None),
        ("interval=month&year=2020", "month", None, Y2020, "2020-01-01", "2020-12-31"),
        ("interval=quarter", "quarter", None, "TRUE", None, None),
        ("interval=quarter&by=police_response&year=2019", "quarter", "police_response", Y2019,
         None, None),
        ("interval=week&date_after=2019-05-20&date_before=2019-08-04", "week", None,
         "e.date BETWEEN '2019-05-20' AND '2019-08-04'", "2019-05-20", "2019-08-04"),
        ("interval=week&year=2020&by=grievance", "week", "grievance", Y2020, None, None),
        ("by=grievance", "year", "grievance", "TRUE", None, None),
        ("by=police_response&country=KZ", "year", "police_response", "e.country = 'KZ'",
         None, None),
        ("by=city&year=2019", "year", "city", Y2019, None, None),
        ("by=admin1", "year", "admin1", "TRUE", None, None),
        ("by=admin1&interval=month&admin1=mangystau%20region", "month", "admin1",
         "upper(e.admin1) = 'MANGYSTAU REGION'", None, None),
        ("by=country", "year", "country", "TRUE", None, None),
        ("interval=month&by=grievance&grievance=welfare,human_rights&arrests_min=1", "month",
         "grievance", "e.grievances && ARRAY['welfare','human_rights']::varchar[] "
         "AND e.arrests >= 1", None, None),
        ("in_bbox=76.7,43.1,77.1,43.4&police_response=kettled,detained", "year", None,
         "ST_Intersects(e.location, ST_MakeEnvelope(76.7, 43.1, 77.1, 43.4, 4326)) "
         "AND e.police_responses && ARRAY['kettled','detained']::varchar[]", None, None),
    ],
)  # fmt: skip
def test_trends_equal_plain_sql(api, query, interval, by, where, after, before):
    expected = sql_trends(
        where,
        interval=interval,
        by=by,
        after=after and dt.date.fromisoformat(after),
        before=before and dt.date.fromisoformat(before),
    )
    assert any(row["events"] for row in expected)
    assert api_rows(api, query) == expected


def test_response_shape(api):
    body = api_body(api, "")
    assert body["interval"] == "year" and body["by"] is None
    assert set(body["results"][0]) == {"period", *METRICS}
    body = api_body(api, "by=city&interval=month")
    assert body["interval"] == "month" and body["by"] == "city"
    assert set(body["results"][0]) == {"period", "group", *METRICS}
    assert len(body["results"][0]["period"]) == 7
    assert api_rows(api, "interval=quarter")[0]["period"] == "2015-Q1"
    week = api_rows(api, "interval=week&date_after=2019-12-30&date_before=2020-01-12")
    assert [row["period"] for row in week] == ["2020-W01", "2020-W02"]


def test_seed_figures_per_year(api):
    """The demo reproduces the tracker's published counts; trends must report them."""
    rows = {r["period"]: r["events"] for r in api_rows(api, "country=KZ")}
    assert [rows[str(y)] for y in range(2015, 2021)] == [71, 52, 36, 32, 235, 254]


def test_events_without_city_group_as_null(api):
    rows = api_rows(api, "by=city&year=2021")
    assert None in {r["group"] for r in rows}


def test_periods_without_events_are_zeros(api):
    # Oyan, Qazaqstan! began in June 2019: the years before are listed, as zeros.
    rows = api_rows(api, "organizer=Oyan")
    periods = [row["period"] for row in rows]
    first, last = periods[0], periods[-1]
    assert first == "2015" and periods == [str(y) for y in range(int(first), int(last) + 1)]
    assert all(row["events"] == 0 for row in rows if row["period"] < "2019")
    assert all(set(row.values()) == {row["period"], 0} for row in rows if row["period"] < "2019")
    # Months without welfare protests in Aktau in 2020 are there, as zeros.
    months = api_rows(api, "interval=month&year=2020&city=Aktau&grievance=welfare")
    assert [row["period"] for row in months] == [f"2020-{m:02d}" for m in range(1, 13)]
    assert any(row["events"] == 0 for row in months) and any(row["events"] for row in months)
    # Nothing matches: every period of the range, all zeros.
    none = api_rows(api, "year=2019&interval=quarter&q=nothing-matches-this")
    assert [row["period"] for row in none] == ["2019-Q1", "2019-Q2", "2019-Q3", "2019-Q4"]
    assert all(row["events"] == 0 for row in none)


def test_week_needs_a_short_range(api):
    response = api.get("/api/v1/stats/trends/?interval=week")
    assert response.status_code == 400
    assert "interval" in response.json()["errors"]
    response = api.get("/api/v1/stats/trends/?interval=week&date_after=2019-01-01")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("query", "field"),
    [("interval=decade", "interval"), ("by=organizer", "by"), ("bogus=1", "non_field_errors")],
)
def test_bad_parameters_are_400(api, query, field):
    response = api.get(f"/api/v1/stats/trends/?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def _year_2019_kz(api) -> dict:
    return api_rows(api, "year=2019&country=KZ")[0]


def test_an_edit_shows_in_the_very_next_answer(api, make_user):
    moderator = make_user("trends-mod", "Moderator")
    first = _year_2019_kz(api)
    event = Event.objects.published().filter(date__year=2019, country="KZ").first()
    event_update(event=event, actor=moderator, fields={"arrests": (event.arrests or 0) + 1000})
    second = _year_2019_kz(api)
    assert second["arrests"] == first["arrests"] + 1000
    # Moved out of 2019: gone from 2019 at once, in 2020 at once.
    before_2020 = api_rows(api, "year=2020&country=KZ")[0]["events"]
    event_update(event=event, actor=moderator, fields={"date": dt.date(2020, 4, 1)})
    assert _year_2019_kz(api)["events"] == first["events"] - 1
    assert api_rows(api, "year=2020&country=KZ")[0]["events"] == before_2020 + 1


def test_status_changes_show_in_the_very_next_answer(api, make_user):
    moderator = make_user("trends-mod", "Moderator")
    first = _year_2019_kz(api)
    pending = event_create(
        fields={"title": "Pending", "date": dt.date(2019, 9, 1),
                "city": City.objects.get(country="KZ", name="Almaty"),
                "grievances": ["welfare"], "arrests": 4},
        sources=[{"url": "https://example.org/pending"}],
    )  # fmt: skip
    assert _year_2019_kz(api) == first  # not published: not counted
    event_review(event=pending, moderator=moderator, decision=ReviewDecision.PUBLISH)
    published = _year_2019_kz(api)
    assert published["events"] == first["events"] + 1
    assert published["arrests"] == first["arrests"] + 4
    # Withdrawn (archived) and bulk status updates: gone in the next answer.
    pending.refresh_from_db()
    pending.status = Event.Status.ARCHIVED
    pending.save()
    assert _year_2019_kz(api) == first
    Event.objects.filter(status="published", date__year=2019, country="KZ", city__name="Almaty") \
        .update(status=Event.Status.PENDING)  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tracker_event WHERE status = 'published' AND country = 'KZ' "
            "AND date BETWEEN '2019-01-01' AND '2019-12-31'"
        )
        (left,) = cursor.fetchone()
    assert left < first["events"]
    assert _year_2019_kz(api)["events"] == left


def test_cities_of_one_name_in_the_order_of_their_ids(api):
    """by=city names each city: two of one name (the gazetteer has two Aksu) keep one
    order, by id, so that a client can tell them apart by position, answer after answer."""
    first, second = City.objects.filter(name="Aksu").order_by("id")[:2]
    Event.objects.bulk_create(
        [
            Event(title="Rally in Aksu", date=dt.date(2031, 4, 2), country=city.country,
                  admin1=city.admin1, city=city, grievances=["labor"], police_responses=[],
                  arrests=arrests, status=Event.Status.PUBLISHED)
            for city, arrests in ((second, 200), (first, 100))
        ]
    )  # fmt: skip
    rows = api_rows(api, "by=city&interval=month&date_after=2031-04-01&date_before=2031-04-30")
    assert [(row["group"], row["arrests"]) for row in rows] == [("Aksu", 100), ("Aksu", 200)]
