"""The HTML pages through Django's test client, against the demo data in real PostGIS."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.urls import reverse

from tracker.models import City, Event
from tracker.services.events import event_create

pytestmark = pytest.mark.django_db

DEMO_YEARS = {2015: 71, 2016: 52, 2017: 36, 2018: 32, 2019: 235, 2020: 254}


def sql_count(where: str, params=()) -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(YEAR FROM date)::int, COUNT(*) FROM tracker_event "
            f"WHERE status = 'published' AND {where} GROUP BY 1 ORDER BY 1",
            params,
        )
        return dict(cursor.fetchall())


def pending_event(*, user, title="A rally in Aktau", city_name="Aktau", date=None, **extra):
    city = City.objects.filter(name=city_name).order_by("-population").first()
    return event_create(
        fields={
            "title": title,
            "date": date or dt.date(2020, 6, 6),
            "city": city,
            "grievances": ["welfare"],
            **extra,
        },
        sources=[{"url": "https://example.org/report", "title": "A report"}],
        submitted_by=user,
        actor=user,
    )


# --- dashboard ---


def dashboard_chart(response, key):
    return next(chart for chart in response.context["charts"] if chart.key == key)


def test_dashboard_shows_the_demo_numbers_per_year(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    totals = {row["period"]: row["events"] for row in response.context["totals"]}
    for year, count in DEMO_YEARS.items():
        assert totals[str(year)] == count
    html = response.content.decode()
    assert '<tr data-period="2019" data-year="2019">' in html
    assert '<td data-key="events">235</td>' in html


def test_dashboard_filters_match_plain_sql(client):
    response = client.get(reverse("dashboard"), {"grievance": "welfare", "country": "KZ"})
    assert response.status_code == 200
    got = {int(row["period"]): row["events"] for row in response.context["totals"]}
    expected = sql_count("'welfare' = ANY(grievances) AND country = 'KZ'")
    # Every year from the first to the last published event is on the axis, zeros included.
    published = sql_count("TRUE")
    first, last = min(published), max(published)
    assert list(got) == list(range(first, last + 1))
    assert got == {year: expected.get(year, 0) for year in got}
    # welfare rose from 2019 to 2020, as the tracker reported (21 % -> 38 %)
    assert got[2020] > got[2019]


def test_dashboard_grievance_table_counts_each_grievance(client):
    response = client.get(reverse("dashboard"))
    chart = dashboard_chart(response, "grievances")
    rows = {
        int(period): {s.key: s.values[i] for s in chart.series}
        for i, period in enumerate(chart.rows)
    }
    assert rows[2019]["human_rights"] == sql_count("'human_rights' = ANY(grievances)")[2019]
    assert rows[2020]["welfare"] == sql_count("'welfare' = ANY(grievances)")[2020]


def test_dashboard_csv_has_the_table_numbers(client):
    response = client.get(reverse("dashboard-csv", args=["totals"]), {"date_after": "2019-01-01"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_year = {int(row["year"]): int(row["events"]) for row in rows}
    assert 2018 not in by_year
    assert by_year[2019] == 235 and by_year[2020] == 254
    cities = list(csv.reader(io.StringIO(client.get("/dashboard/cities.csv").content.decode())))
    assert cities[0] == ["city", "events"]
    assert cities[1][0] == "Almaty"


def test_dashboard_bad_filter_is_a_400_with_a_message(client):
    response = client.get(reverse("dashboard"), {"grievance": "nonsense", "arrests_min": "-3"})
    assert response.status_code == 400
    assert response.context["totals"] == []
    html = response.content.decode()
    assert "nonsense" in html  # Django's "Select a valid choice. nonsense is not one of ..."
    assert "greater than or equal to 0" in html
    assert client.get("/dashboard/nope.csv").status_code == 404
    assert client.get("/dashboard/totals.csv", {"date_after": "yesterday"}).status_code == 400


def test_comma_separated_filters_are_read_like_the_api(client):
    one = client.get(reverse("dashboard"), {"police_response": "force,lethal"})
    two = client.get(reverse("dashboard") + "?police_response=force&police_response=lethal")
    assert one.context["totals"] == two.context["totals"]
    expected = sql_count("police_responses && ARRAY['force','lethal']::varchar[]")
    got = {int(r["period"]): r["events"] for r in one.context["totals"]}
    assert got == {year: expected.get(year, 0) for year in got}
    assert set(expected) <= set(got)


# --- map ---


def test_map_page_keeps_filters_and_loads_only_own_scripts(client):
    response = client.get(reverse("map"), {"grievance": "welfare,labor", "country": "KZ"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="welfare"' in html and "checked" in html
    assert "<script>" not in html  # no inline script (CSP)
    assert 'type="application/json"' in html
    assert "https://" not in "".join(
        line for line in html.splitlines() if "<script" in line or "<link" in line
    )
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp


def test_map_page_with_a_bad_filter_says_what_is_wrong(client):
    response = client.get(reverse("map"), {"date_after": "2020-13-45", "city": "999999999"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "date_after" in errors and "city" in errors
    assert "Enter a valid date." in response.content.decode()


# --- event page ---


def test_event_page_shows_the_record_sources_and_history(client):
    event = (
        Event.objects.published()
        .filter(sources__url__startswith="https://", location__isnull=False)
        .exclude(title__contains="'")
        .first()
    )
    response = client.get(reverse("event-detail", args=[event.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert event.title in html
    assert event.sources.first().url in html
    assert response.context["history"], "the history summary is empty"
    assert 'id="event-point"' in html


def test_pending_event_is_visible_to_its_submitter_and_moderators_only(client, make_user):
    author = make_user("author-1", role="Contributor")
    other = make_user("other-1", role="Contributor")
    moderator = make_user("mod-1", role="Moderator")
    event = pending_event(user=author)
    url = reverse("event-detail", args=[event.pk])
    assert client.get(url).status_code == 404
    client.force_login(other)
    assert client.get(url).status_code == 404
    client.force_login(author)
    assert client.get(url).status_code == 200
    client.force_login(moderator)
    response = client.get(url)
    assert response.status_code == 200
    # Nobody, not even a moderator, learns from the pages who submitted it.
    assert "author-1" not in response.content.decode()
    assert client.get(reverse("event-detail", args=[10**9])).status_code == 404


# --- submission ---


def submission(**overrides):
    data = {
        "title": "Pensioners protest utility prices",
        "date": "2021-01-20",
        "date_precision": "day",
        "city_name": "Нұр-Сұлтан",
        "country": "",
        "grievances": ["welfare"],
        "police_responses": ["monitored"],
        "arrests": "0",
        "participants_low": "30",
        "participants_high": "50",
        "organizers": "Pensioners' council",
        "sources-TOTAL_FORMS": "3",
        "sources-INITIAL_FORMS": "0",
        "sources-MIN_NUM_FORMS": "0",
        "sources-MAX_NUM_FORMS": "10",
        "sources-0-url": "https://example.org/pensioners",
        "sources-0-title": "Pensioners rally",
        "sources-0-publisher": "Example News",
    }
    data.update(overrides)
    return data


def test_submit_needs_a_signed_in_contributor(client, make_user):
    response = client.get(reverse("submit"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(make_user("nobody"))
    assert client.get(reverse("submit")).status_code == 403


def test_contributor_submits_and_sees_the_status(client, make_user):
    user = make_user("contrib-1", role="Contributor")
    client.force_login(user)
    assert client.get(reverse("submit")).status_code == 200
    response = client.post(reverse("submit"), submission())
    assert response.status_code == 302, response.content.decode()[:2000]
    event = Event.objects.get(title="Pensioners protest utility prices")
    assert event.status == Event.Status.PENDING
    assert event.submitted_by == user
    assert event.city.name == "Astana"  # found by its Kazakh former name
    assert event.country == "KZ"
    assert event.sources.get().publisher == "Example News"
    assert [o.name for o in event.organizers.all()] == ["Pensioners' council"]
    page = client.get(response["Location"])
    html = page.content.decode()
    assert "Pensioners protest utility prices" in html
    assert "pending review" in html


def test_submit_with_a_map_point(client, make_user):
    client.force_login(make_user("contrib-2", role="Contributor"))
    data = submission(city_name="", country="KZ", latitude="43.2380", longitude="76.9450")
    response = client.post(reverse("submit"), data)
    assert response.status_code == 302
    event = Event.objects.get(title=data["title"])
    assert (round(event.location.x, 3), round(event.location.y, 3)) == (76.945, 43.238)
    assert event.geo_precision == Event.GeoPrecision.EXACT


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        (
            {"sources-0-url": "", "sources-0-title": "", "sources-0-publisher": ""},
            None,
            "at least one source",
        ),
        ({"sources-0-url": "", "sources-0-title": ""}, None, "needs a link or a headline"),
        ({"city_name": "Atlantis"}, "city_name", "No city called"),
        ({"grievances": []}, "grievances", "This field is required"),
        ({"date": "2999-01-01"}, "date", "in the future"),
        ({"participants_low": "90"}, "participants_low", "cannot exceed"),
        ({"arrests": "-1"}, "arrests", "greater than or equal to 0"),
        ({"latitude": "95", "longitude": "10"}, "latitude", "less than or equal to 90"),
        ({"sources-0-url": "not a url"}, None, "Enter a valid URL"),
    ],
)
def test_submit_errors_are_shown_next_to_the_fields(client, make_user, overrides, field, message):
    client.force_login(make_user("contrib-3", role="Contributor"))
    before = Event.objects.count()
    response = client.post(reverse("submit"), submission(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    if field:
        assert field in response.context["form"].errors
    assert Event.objects.count() == before  # nothing half-written


def test_city_suggestions_find_any_name_variant(client):
    response = client.get(reverse("city-suggestions"), {"q": "Алма"})
    names = [c["name"] for c in response.json()["results"]]
    assert "Almaty" in names
    assert client.get(reverse("city-suggestions"), {"q": ""}).json() == {"results": []}


# --- review ---


def test_review_is_for_moderators(client, make_user):
    client.force_login(make_user("contrib-4", role="Contributor"))
    assert client.get(reverse("review-queue")).status_code == 403
    event = pending_event(user=None)
    assert client.get(reverse("review-event", args=[event.pk])).status_code == 403
    assert (
        client.post(reverse("review-event", args=[event.pk]), {"decision": "publish"}).status_code
        == 403
    )
    event.refresh_from_db()
    assert event.status == Event.Status.PENDING


def test_queue_oldest_first_and_likely_duplicates(client, make_user):
    moderator = make_user("mod-2", role="Moderator")
    first = pending_event(user=None, title="First in queue", date=dt.date(2020, 6, 6))
    second = pending_event(user=None, title="Second in queue", date=dt.date(2020, 6, 8))
    far = pending_event(user=None, title="A week later", date=dt.date(2020, 6, 13))
    elsewhere = pending_event(user=None, title="Same day elsewhere", city_name="Shymkent")
    client.force_login(moderator)
    html = client.get(reverse("review-queue")).content.decode()
    assert html.index("First in queue") < html.index("Second in queue") < html.index("A week later")
    assert "/review/imports/" in html
    response = client.get(reverse("review-event", args=[first.pk]))
    duplicates = list(response.context["duplicates"])
    assert second in duplicates
    assert far not in duplicates and elsewhere not in duplicates
    assert "Second in queue" in response.content.decode()


def test_moderator_publishes_and_rejects_with_a_reason(client, make_user):
    author = make_user("contrib-5", role="Contributor")
    moderator = make_user("mod-3", role="Moderator")
    to_publish = pending_event(user=author, title="To publish")
    to_reject = pending_event(user=author, title="To reject")
    client.force_login(moderator)

    response = client.post(reverse("review-event", args=[to_reject.pk]), {"decision": "reject"})
    assert response.status_code == 400
    assert "Give a reason" in response.content.decode()
    to_reject.refresh_from_db()
    assert to_reject.status == Event.Status.PENDING

    response = client.post(
        reverse("review-event", args=[to_reject.pk]),
        {"decision": "reject", "note": "Duplicate of an earlier report."},
    )
    assert response.status_code == 302
    response = client.post(reverse("review-event", args=[to_publish.pk]), {"decision": "publish"})
    assert response.status_code == 302
    to_publish.refresh_from_db()
    to_reject.refresh_from_db()
    assert to_publish.status == Event.Status.PUBLISHED
    assert to_publish.reviewed_by == moderator
    assert to_reject.status == Event.Status.REJECTED

    # a second decision on the same submission is refused
    again = client.post(
        reverse("review-event", args=[to_publish.pk]), {"decision": "reject", "note": "x"}
    )
    assert again.status_code == 409
    assert "already published by a moderator" in again.content.decode()
    to_publish.refresh_from_db()
    assert to_publish.status == Event.Status.PUBLISHED

    client.force_login(author)
    html = client.get(reverse("my-submissions")).content.decode()
    assert "Duplicate of an earlier report." in html
    assert "rejected" in html and "published" in html


def test_moderator_edits_a_submission_and_the_history_records_it(client, make_user):
    moderator = make_user("mod-4", role="Moderator")
    event = pending_event(user=None, title="Typo in titel")
    client.force_login(moderator)
    response = client.get(reverse("review-edit", args=[event.pk]))
    assert response.status_code == 200
    assert response.context["form"].initial["city_name"] == "Aktau"
    data = submission(
        title="Typo in title",
        city_name="Aktau",
        date="2020-06-06",
        **{"sources-INITIAL_FORMS": "0", "sources-0-url": "https://example.org/report"},
    )
    response = client.post(reverse("review-edit", args=[event.pk]), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    event.refresh_from_db()
    assert event.title == "Typo in title"
    page = client.get(reverse("event-detail", args=[event.pk]))
    assert any("title" in item["changed"] for item in page.context["history"])


# --- languages ---


@pytest.mark.parametrize(
    ("language", "nav", "term"),
    [("ru", "Карта", "Социальное обеспечение"), ("kk", "Карта", "Әлеуметтік қамсыздандыру")],
)
def test_pages_in_russian_and_kazakh(client, language, nav, term):
    response = client.post(reverse("set_language"), {"language": language, "next": "/dashboard/"})
    assert response.status_code == 302
    html = client.get("/dashboard/").content.decode()
    assert f'<html lang="{language}">' in html
    assert nav in html
    assert term in html
    assert "Yearly trends" not in html


def test_healthz_still_answers(client):
    response = client.get("/healthz")
    assert response.status_code in (200, 503)
    assert "database" in response.json()["checks"]


def test_error_pages_are_ours(client, rf):
    from django.views import defaults

    page = defaults.server_error(rf.get("/dashboard/"))
    assert page.status_code == 500
    assert "Something went wrong on our side" in page.content.decode()
    missing = client.get("/no-such-page/")
    assert missing.status_code == 404
    assert "There is nothing at this address." in missing.content.decode()
