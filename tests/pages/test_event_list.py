"""/events/: the list of published events, its filters, search, sorts, pages and links."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection

from tests.api.test_events_read import all_ids

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    from rest_framework.test import APIClient

    return APIClient()


ROW = re.compile(r'<tr>\s*<td><time datetime="([\d-]+)">.*?<a href="/events/(\d+)/">', re.S)


def sql_ids(where: str = "TRUE", params=()) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM tracker_event WHERE status = 'published' AND ({where})", params
        )
        return {row[0] for row in cursor.fetchall()}


def shown_total(html: str) -> int:
    match = re.search(r'id="result-count">\s*([\d\s,.\xa0]+?) event', html)
    assert match, "no result count on the page"
    return int(re.sub(r"\D", "", match.group(1)))


def every_page(client, query: str) -> tuple[list[tuple[str, int]], int]:
    """All rows (date, id) of the list for a query, following its Next links."""
    url = f"/events/?{query}"
    rows, totals = [], set()
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content[:500]
        html = response.content.decode()
        totals.add(shown_total(html))
        rows += [(day, int(pk)) for day, pk in ROW.findall(html)]
        found = re.search(r'rel="next" href="([^"]+)"', html)
        url = unescape(found.group(1)) if found else None
    assert len(totals) == 1, "the count changed from page to page"
    return rows, totals.pop()


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("", "TRUE"),
        ("year=2020", "date BETWEEN '2020-01-01' AND '2020-12-31'"),
        ("grievance=labor,land&country=KZ", "grievances && ARRAY['labor','land']::varchar[]"),
        ("police_response=detained&arrests_min=10", "'detained' = ANY(police_responses) "
         "AND arrests >= 10"),
    ],
)  # fmt: skip
def test_every_event_of_a_filter_is_listed_once_newest_first(client, query, where):
    rows, total = every_page(client, query)
    ids = [pk for _, pk in rows]
    expected = sql_ids(where)
    assert len(ids) == len(set(ids)) == total == len(expected)
    assert set(ids) == expected
    assert [day for day, _ in rows] == sorted((day for day, _ in rows), reverse=True)


@pytest.mark.parametrize("q", ["Almaty", "Алматы", "kettl", "кеттлинг", "Alma-Ata protest"])
def test_the_search_lists_what_the_api_finds(client, api, q):
    rows, total = every_page(client, f"q={q}")
    assert {pk for _, pk in rows} == all_ids(api, f"q={q}")
    assert total == len(rows) > 0


def test_sorts(client):
    response = client.get("/events/?sort=-arrests")
    html = response.content.decode()
    ids = [int(pk) for _, pk in ROW.findall(html)]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM tracker_event WHERE status = 'published' "
            "ORDER BY coalesce(arrests, -1) DESC, id DESC LIMIT 50"
        )
        assert ids == [row[0] for row in cursor.fetchall()]
    response = client.get("/events/?sort=-crowd")
    ids = [int(pk) for _, pk in ROW.findall(response.content.decode())]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM tracker_event WHERE status = 'published' "
            "ORDER BY coalesce(participants_high, participants_low, -1) DESC, id DESC LIMIT 50"
        )
        assert ids == [row[0] for row in cursor.fetchall()]
    oldest = ROW.findall(client.get("/events/?sort=date").content.decode())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM tracker_event WHERE status = 'published' ORDER BY date, id LIMIT 50"
        )
        assert [int(pk) for _, pk in oldest] == [row[0] for row in cursor.fetchall()]


def test_links_keep_the_filters(client):
    html = client.get("/events/?year=2019&q=Almaty").content.decode()
    assert 'href="/?year=2019&amp;q=Almaty"' in html  # the map
    assert 'href="/dashboard/?year=2019&amp;q=Almaty"' in html
    assert 'href="/api/v1/events/?year=2019&amp;q=Almaty&amp;format=csv"' in html
    assert 'href="/api/v1/exports/events.geojson?year=2019&amp;q=Almaty"' in html
    assert '<option value="-search_rank" selected>' in html  # a search sorts by match


def test_the_csv_download_holds_the_listed_events(client):
    import csv
    import io

    rows, _total = every_page(client, "year=2019&q=Almaty")
    response = client.get("/api/v1/events/?year=2019&q=Almaty&format=csv")
    body = b"".join(response.streaming_content).decode()
    ids = {int(row["id"]) for row in csv.DictReader(io.StringIO(body))}
    assert ids == {pk for _, pk in rows}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("sort=size", "Unknown sort"),
        ("cursor=nonsense", "This page link is broken"),
        ("year=abc", "Enter a whole number"),
        ("q=%25", "q needs a word to find"),
        ("colour=red", "Unknown parameter"),
    ],
)
def test_bad_parameters_are_a_400_with_the_reason(client, query, message):
    response = client.get(f"/events/?{query}")
    assert response.status_code == 400
    assert message in unescape(response.content.decode())


def test_the_map_links_to_the_list_of_its_selection(client):
    html = client.get("/?year=2019&q=Almaty&colour=police").content.decode()
    # The map's own parameter (colour) stays behind: the list would refuse it.
    assert 'id="list-link" class="button secondary" href="/events/?year=2019&amp;q=Almaty"' in html
    assert client.get("/events/?year=2019&q=Almaty").status_code == 200


def test_titles_and_places_are_escaped(client):
    from tracker.models import City, Event
    from tracker.services.events import event_create

    event = event_create(
        fields={
            "title": '<img src=x onerror="alert(1)"> rally',
            "date": "2021-06-01",
            "city": City.objects.get(name="Aktobe"),
            "grievances": ["labor"],
        },
        sources=[{"url": "https://example.org/escape"}],
        status=Event.Status.PUBLISHED,
    )
    html = client.get("/events/?q=rally&sort=-date").content.decode()
    assert (
        f'<a href="/events/{event.pk}/">&lt;img src=x onerror=&quot;alert(1)&quot;&gt; rally</a>'
        in html
    )
    assert "<img src=x" not in html
