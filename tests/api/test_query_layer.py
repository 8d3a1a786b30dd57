"""The one query layer (tracker.query.EventFilterSet) behind every view that selects events:
the API list in its three formats, the trends, the layout exports and export jobs, the map,
the dashboard and its CSVs. Each rejects what it does not know with a 400 that names the
known parameters, and each honours every filter the API has (organizer, several cities,
regions and countries included), with the numbers SQL gives."""

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.db import connection

from tracker.models import City, Event
from tracker.services.events import event_create

pytestmark = pytest.mark.django_db

FILTERS = (
    "date_after", "date_before", "year", "country", "admin1", "city", "organizer",
    "grievance", "police_response", "arrests_min", "arrests_max", "in_bbox", "near",
    "radius_km", "q", "updated_since",
)  # fmt: skip

# Every endpoint that selects events: (path, the parameters of its own it accepts besides
# the filters, kind of answer). OWN_VALUES gives each of those a valid value.
LIST_OWN = ("cursor", "page_size", "ordering", "format")
GET_ENDPOINTS = [
    ("/api/v1/events/", LIST_OWN, "json"),
    ("/api/v1/events/?format=geojson", LIST_OWN, "json"),
    ("/api/v1/events/?format=csv", LIST_OWN, "json"),
    ("/api/v1/stats/trends/", ("interval", "by", "format"), "json"),
    ("/api/v1/exports/acled.csv", ("format",), "json"),
    ("/api/v1/exports/ccc.csv", ("format",), "json"),
    ("/api/v1/exports/events.geojson", ("format",), "json"),
    ("/", ("colour",), "html"),
    ("/dashboard/", ("interval",), "html"),
    ("/dashboard/totals.csv", ("interval",), "text"),
    ("/dashboard/grievances.csv", ("interval",), "text"),
    ("/dashboard/police.csv", ("interval",), "text"),
    ("/dashboard/cities.csv", ("interval",), "text"),
]
OWN_VALUES = {
    "page_size": "5",
    "ordering": "-date",
    "interval": "month",
    "by": "grievance",
    "colour": "police",
}


def _join(path: str, query: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{query}"


def _message(response, kind: str) -> str:
    """The error text of a 400, whatever the kind of answer."""
    if kind == "json":
        assert response["Content-Type"].startswith("application/json"), response.content[:300]
        body = response.json()
        return body["detail"] + " " + " ".join(map(str, body.get("errors", {}).values()))
    text = response.content.decode()
    if kind == "html":
        assert response["Content-Type"].startswith("text/html")
    else:
        assert response["Content-Type"].startswith("text/plain")
    return text


def _known_named(message: str, own: tuple[str, ...]) -> None:
    """The message lists the known parameters: every filter and the view's own."""
    found = re.search(r"Known parameters: ([a-z_0-9, ]+)", message)
    assert found, message[:2000]
    known = {name.strip() for name in found.group(1).split(",")}
    assert set(FILTERS) | set(own) <= known, known
    assert "bogus" not in known


@pytest.mark.parametrize(("path", "own", "kind"), GET_ENDPOINTS)
def test_unknown_parameter_is_a_400_naming_the_known_ones(client, path, own, kind):
    response = client.get(_join(path, "bogus=1&year=2020"))
    assert response.status_code == 400, (path, response.status_code, response.content[:300])
    message = _message(response, kind)
    assert "Unknown parameter" in message and "bogus" in message
    _known_named(message, own)


@pytest.mark.parametrize(("path", "own", "kind"), GET_ENDPOINTS)
def test_the_views_own_parameters_and_every_filter_are_accepted(client, path, own, kind):
    query = "year=2020&country=KZ&grievance=welfare&organizer=Oyan&q=protest"
    own_values = "&".join(f"{name}={OWN_VALUES[name]}" for name in own if name in OWN_VALUES)
    if own_values:
        query += "&" + own_values
    response = client.get(_join(path, query))
    assert response.status_code == 200, (path, response.content[:500])


@pytest.mark.parametrize(("path", "own", "kind"), GET_ENDPOINTS)
def test_a_repeated_single_valued_parameter_is_a_400(client, path, own, kind):
    response = client.get(_join(path, "year=2019&year=2020"))
    assert response.status_code == 400, (path, response.content[:300])
    message = _message(response, kind)
    assert "year was given more than once" in message, message[:2000]


@pytest.mark.parametrize(("path", "own", "kind"), GET_ENDPOINTS)
def test_a_number_too_large_for_the_database_is_a_400_not_a_500(client, path, own, kind):
    response = client.get(_join(path, "arrests_min=99999999999999999999999"))
    assert response.status_code == 400, (path, response.status_code, response.content[:300])
    message = _message(response, kind)
    assert "arrests_min" in message or "less than or equal" in message, message[:2000]


def test_export_job_with_an_unknown_parameter_is_a_400(as_user, make_user):
    client = as_user(make_user("exporter", "Contributor"))
    response = client.post(
        "/api/v1/exports/jobs/", {"layout": "acled", "query": "year=2020&bogus=1"}, format="json"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    text = str(body["errors"]["query"])
    assert "Unknown parameter" in text and "bogus" in text
    assert "Known parameters" in text and "organizer" in text
    response = client.post(
        "/api/v1/exports/jobs/", {"layout": "acled", "query": "year=2019&year=2020"}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "more than once" in str(response.json()["errors"]["query"])
    ok = client.post(
        "/api/v1/exports/jobs/", {"layout": "acled", "query": "organizer=Oyan"}, format="json"
    )
    assert ok.status_code == 202, ok.content


# ---- filters give the rows SQL gives, in every view --------------------------------------


def sql_ids(where: str, params=()) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.id FROM tracker_event e WHERE e.status = 'published' AND ({where})",
            list(params),
        )
        return {row[0] for row in cursor.fetchall()}


def api_ids(client, query: str) -> set[int]:
    ids, url = set(), f"/api/v1/events/?page_size=1000&{query}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        ids |= {event["id"] for event in body["results"]}
        url = body["next"]
    return ids


def csv_ids(client, query: str) -> set[int]:
    response = client.get(f"/api/v1/events/?format=csv&{query}")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return {int(row["id"]) for row in csv.DictReader(io.StringIO(text))}


def geojson_ids(client, query: str) -> set[int]:
    ids, url = set(), f"/api/v1/events/?format=geojson&page_size=1000&{query}"
    while url:
        body = client.get(url).json()
        ids |= {feature["id"] for feature in body["features"]}
        url = body.get("next")
    return ids


def geojson_file_ids(client, query: str) -> set[int]:
    response = client.get(f"/api/v1/exports/events.geojson?{query}")
    assert response.status_code == 200, response.content[:500]
    body = json.loads(b"".join(response.streaming_content))
    return {feature["id"] for feature in body["features"]}


def trends_total(client, query: str) -> int:
    response = client.get(f"/api/v1/stats/trends/?{query}")
    assert response.status_code == 200, response.content
    return sum(row["events"] for row in response.json()["results"])


def dashboard_total(client, query: str) -> int:
    response = client.get(f"/dashboard/totals.csv?{query}")
    assert response.status_code == 200, response.content
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    return sum(int(row["events"]) for row in rows)


def export_count(client, query: str) -> int:
    response = client.get(f"/api/v1/exports/acled.csv?{query}")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return len(list(csv.DictReader(io.StringIO(text))))


def assert_every_view_selects(client, query: str, expected: set[int]) -> None:
    assert api_ids(client, query) == expected, query
    assert geojson_ids(client, query) == expected, query
    assert geojson_file_ids(client, query) == expected, query
    assert csv_ids(client, query) == expected, query
    assert export_count(client, query) == len(expected), query
    assert trends_total(client, query) == len(expected), query
    assert dashboard_total(client, query) == len(expected), query
    for page in ("/", "/dashboard/"):
        assert client.get(f"{page}?{query}").status_code == 200, (page, query)


@pytest.fixture
def kyrgyz_event():
    """An event in another country, with two organizers (one name with a comma)."""
    bishkek = City.objects.filter(country="KG").order_by("-population").first()
    assert bishkek is not None, "the gazetteer should hold Kyrgyz cities"
    return event_create(
        fields={
            "title": "Rally at the White House",
            "date": dt.date(2020, 10, 6),
            "city": bishkek,
            "grievances": ["political"],
            "police_responses": ["dispersed"],
            "arrests": 12,
        },
        organizers=["Oyan, Qazaqstan!", "Bishkek Citizens"],
        sources=[{"url": "https://example.org/bishkek"}],
        status=Event.Status.PUBLISHED,
    )


def test_organizer_filters(client, kyrgyz_event):
    total = sql_ids("TRUE")
    organizer_where = """EXISTS (SELECT 1 FROM tracker_event_organizers eo
        JOIN tracker_organization o ON o.id = eo.organization_id
        WHERE eo.event_id = e.id AND ({}))"""
    oyan = sql_ids(organizer_where.format("o.name ILIKE %s"), ["%oyan%"])
    assert kyrgyz_event.pk in oyan and 20 < len(oyan) < len(total)
    assert_every_view_selects(client, "organizer=Oyan", oyan)
    # The full name, comma and all, is one organizer.
    assert api_ids(client, "organizer=Oyan,%20Qazaqstan!") == oyan
    # Repeated: any of them.
    either = sql_ids(
        organizer_where.format("o.name ILIKE %s OR o.name ILIKE %s"),
        ["%democratic party%", "%bishkek citizens%"],
    )
    assert len(either) >= 2
    assert_every_view_selects(
        client, "organizer=Democratic%20Party&organizer=Bishkek%20Citizens", either
    )
    assert api_ids(client, "organizer=Nobody%20Known") == set()
    assert trends_total(client, "organizer=Nobody%20Known") == 0


def test_several_cities_regions_and_countries(client, kyrgyz_event):
    almaty = City.objects.get(country="KZ", name="Almaty")
    aktau = City.objects.get(country="KZ", name="Aktau")
    cities = sql_ids("e.city_id = ANY(%s)", [[almaty.pk, aktau.pk]])
    assert len(cities) > 200
    assert_every_view_selects(client, f"city={almaty.pk},{aktau.pk}", cities)
    # Repeated, by names in other languages and former names: the same cities.
    assert api_ids(client, "city=Алматы&city=Aktau") == cities
    assert api_ids(client, "city=Alma-Ata,Актау") == cities

    regions = sql_ids("upper(e.admin1) = ANY(%s)", [["MANGYSTAU REGION", "PAVLODAR REGION"]])
    assert len(regions) > 60
    assert_every_view_selects(client, "admin1=Mangystau%20Region,pavlodar%20region", regions)
    assert api_ids(client, "admin1=Mangystau%20Region&admin1=Pavlodar%20Region") == regions

    both = sql_ids("e.country = ANY(%s)", [["KZ", "KG"]])
    assert kyrgyz_event.pk in both and len(both) == len(sql_ids("TRUE"))
    assert_every_view_selects(client, "country=kz,KG", both)
    assert api_ids(client, "country=KG") == {kyrgyz_event.pk}
    assert api_ids(client, "country=KG&country=UZ") == {kyrgyz_event.pk}


def test_map_honours_year(client):
    response = client.get("/?year=2020")
    assert response.status_code == 200
    html = response.content.decode()
    # The panel shows the year; the map's API call reads the panel's fields (map.js
    # filterParams), so the year goes into it.
    field = re.search(r'<input[^>]*name="year"[^>]*>', html)
    assert field, "the map's filter panel has a year field"
    assert 'value="2020"' in field.group(0), field.group(0)
    assert re.search(r'<form[^>]*id="filters"', html)
    # A bad year is refused, not ignored.
    bad = client.get("/?year=twenty")
    assert bad.status_code == 400
    assert "year" in bad.content.decode()


def test_dashboard_honours_every_filter_the_api_has(client):
    query = (
        "year=2019&country=KZ&admin1=Almaty&city=Almaty&grievance=human_rights,welfare"
        "&police_response=detained&arrests_min=1&arrests_max=1000&q=protest"
        "&in_bbox=76.7,43.1,77.1,43.4&near=76.95,43.24&radius_km=50"
        "&updated_since=2000-01-01T00:00:00Z&organizer=Oyan"
    )
    api_total = trends_total(client, query)
    assert dashboard_total(client, query) == api_total
    assert client.get(f"/dashboard/?{query}").status_code == 200
    assert client.get(f"/?{query}").status_code == 200
