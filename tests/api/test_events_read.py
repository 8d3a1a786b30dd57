"""Reading events: every filter, every format, ordering, cursor pages, query counts."""

import csv
import io
import json
from datetime import datetime

import pytest
from django.db import connection
from django.utils import timezone

from tracker.models import City, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def bishkek_event():
    """The demo is all Kazakhstan; one published event elsewhere makes country filters bite."""
    from tracker.services.events import event_create

    return event_create(
        fields={
            "title": "Rally at Ala-Too square",
            "date": "2020-10-05",
            "city": City.objects.get(name="Bishkek"),
            "grievances": ["political"],
            "police_responses": ["force"],
            "arrests": 12,
        },
        sources=[{"url": "https://example.org/bishkek"}],
        status=Event.Status.PUBLISHED,
    )


def published_ids_sql(where: str = "TRUE", params=()) -> set[int]:
    """Independent expectation: plain SQL over the events table."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT e.id FROM tracker_event e LEFT JOIN tracker_city c ON c.id = e.city_id "
            f"WHERE e.status = 'published' AND ({where})",
            params,
        )
        return {row[0] for row in cursor.fetchall()}


def all_ids(api, query: str) -> set[int]:
    """Follow the cursor links through every page."""
    ids: list[int] = []
    url = f"/api/v1/events/?{query}&page_size=1000"
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        ids += [event["id"] for event in body["results"]]
        url = body["next"]
    assert len(ids) == len(set(ids)), "an event appeared on two pages"
    return set(ids)


@pytest.mark.parametrize(
    ("query", "where", "params"),
    [
        ("", "TRUE", ()),
        ("year=2019", "e.date BETWEEN '2019-01-01' AND '2019-12-31'", ()),
        ("date_after=2020-06-01", "e.date >= '2020-06-01'", ()),
        ("date_before=2016-03-31", "e.date <= '2016-03-31'", ()),
        (
            "date_after=2019-06-01&date_before=2019-06-30",
            "e.date BETWEEN '2019-06-01' AND '2019-06-30'",
            (),
        ),
        ("country=kz", "e.country = 'KZ'", ()),
        ("country=KG,UZ", "e.country IN ('KG', 'UZ')", ()),
        ("country=kz,uz", "e.country IN ('KZ', 'UZ')", ()),
        ("admin1=almaty", "lower(e.admin1) = 'almaty'", ()),
        ("grievance=human_rights", "e.grievances && ARRAY['human_rights']::varchar[]", ()),
        (
            "grievance=welfare,covid",
            "e.grievances && ARRAY['welfare','covid']::varchar[]",
            (),
        ),
        (
            "police_response=kettled,lethal",
            "e.police_responses && ARRAY['kettled','lethal']::varchar[]",
            (),
        ),
        ("arrests_min=100", "e.arrests >= 100", ()),
        ("arrests_max=0", "e.arrests <= 0", ()),
        ("arrests_min=1&arrests_max=5", "e.arrests BETWEEN 1 AND 5", ()),
        (
            "in_bbox=76.7,43.1,77.1,43.4",
            "ST_Intersects(e.location, ST_MakeEnvelope(76.7, 43.1, 77.1, 43.4, 4326))",
            (),
        ),
        (
            "near=71.45,51.17&radius_km=25",
            "ST_DistanceSphere(e.location, ST_SetSRID(ST_MakePoint(71.45, 51.17), 4326)) <= 25000",
            (),
        ),
        (
            "year=2020&grievance=welfare&country=KZ",
            "e.date BETWEEN '2020-01-01' AND '2020-12-31' "
            "AND e.grievances && ARRAY['welfare']::varchar[] AND e.country = 'KZ'",
            (),
        ),
    ],
)
def test_each_filter_returns_what_sql_returns(api, bishkek_event, query, where, params):
    expected = published_ids_sql(where, params)
    assert expected, f"demo data gives no event for {query!r}; the test would prove nothing"
    if query:
        assert expected != published_ids_sql(), f"{query!r} selects everything: proves nothing"
    assert all_ids(api, query) == expected


@pytest.mark.parametrize("name", ["Almaty", "алматы", "Alma-Ata", "ALMATY", "Алма-Ата"])
def test_city_filter_takes_any_name_variant(api, name):
    almaty = City.objects.get(name="Almaty")
    expected = published_ids_sql("e.city_id = %s", (almaty.pk,))
    assert len(expected) > 50
    assert all_ids(api, f"city={name}") == expected


def test_city_filter_takes_an_id_and_old_names(api):
    astana = City.objects.filter(names__name="Nur-Sultan").distinct().get()
    expected = published_ids_sql("e.city_id = %s", (astana.pk,))
    assert expected
    assert all_ids(api, f"city={astana.pk}") == expected
    assert all_ids(api, "city=Nur-Sultan") == expected
    assert all_ids(api, "city=Tselinograd") == expected


def test_updated_since_returns_only_later_changes(api):
    event = Event.objects.published().order_by("id").first()
    cutoff = timezone.now()
    Event.objects.filter(pk=event.pk).update(updated_at=cutoff + timezone.timedelta(seconds=1))
    query = "updated_since=" + cutoff.isoformat().replace("+", "%2B")
    assert all_ids(api, query) == {event.pk}


def test_event_json_shape_has_sources_and_no_submitter(api):
    body = api.get("/api/v1/events/?date_after=2019-06-09&date_before=2019-06-09").json()
    event = next(e for e in body["results"] if e["arrests"] and e["arrests"] >= 500)
    assert event["date"] == "2019-06-09"
    assert event["sources"] and {"url", "title", "publisher", "published_on"} <= set(
        event["sources"][0]
    )
    for key in ("organizers", "grievances", "police_responses", "external_ids", "geo_precision"):
        assert key in event
    for secret in ("submitted_by", "reviewed_by", "review_note", "status"):
        assert secret not in event


def test_detail_of_published_event(api):
    event = Event.objects.published().exclude(city=None).order_by("id").first()
    body = api.get(f"/api/v1/events/{event.pk}/").json()
    assert body["id"] == event.pk
    assert body["city"] == event.city.name
    assert body["longitude"] == pytest.approx(event.location.x)
    assert "submitted_by" not in body


def test_geojson_feature_collection(api):
    response = api.get("/api/v1/events/?format=geojson&year=2020&page_size=1000")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    expected = published_ids_sql("e.date BETWEEN '2020-01-01' AND '2020-12-31'")
    assert {f["id"] for f in body["features"]} == expected
    feature = next(f for f in body["features"] if f["geometry"])
    assert feature["geometry"]["type"] == "Point"
    lon, lat = feature["geometry"]["coordinates"]
    assert 40 < lon < 90 and 35 < lat < 56
    required = {
        "id", "title", "date", "end_date", "city", "country", "admin1", "location_detail",
        "grievances", "police_responses", "arrests", "injuries", "deaths",
        "participants_low", "participants_high", "sources", "organizers", "geo_precision",
    }  # fmt: skip
    assert required <= set(feature["properties"])
    assert feature["properties"]["id"] == feature["id"]
    assert "submitted_by" not in feature["properties"]


def test_geojson_by_accept_header(api):
    response = api.get("/api/v1/events/?page_size=3", HTTP_ACCEPT="application/geo+json")
    assert response["Content-Type"].startswith("application/geo+json")
    assert len(response.json()["features"]) == 3


def test_format_parameter_wins_over_accept_header(api):
    # What GDAL sends along with ?format=geojson.
    response = api.get(
        "/api/v1/events/?format=geojson&page_size=2", HTTP_ACCEPT="text/plain, application/json"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/geo+json")
    response = api.get("/api/v1/events/?format=csv", HTTP_ACCEPT="application/json")
    assert response["Content-Type"].startswith("text/csv")


def test_geojson_detail_is_a_feature(api):
    event = Event.objects.published().exclude(location=None).first()
    body = api.get(f"/api/v1/events/{event.pk}/?format=geojson").json()
    assert body["type"] == "Feature" and body["id"] == event.pk


def test_csv_streams_every_matching_event(api):
    response = api.get("/api/v1/events/?format=csv&country=KZ&grievance=welfare")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = published_ids_sql("e.country = 'KZ' AND e.grievances && ARRAY['welfare']::varchar[]")
    # Not paged: every event, one row each, even beyond the default page size.
    assert len(expected) > 100
    assert [int(row["id"]) for row in rows] != [] and {int(r["id"]) for r in rows} == expected
    assert len(rows) == len(expected)
    multi = next(row for row in rows if ";" in row["grievances"])
    assert all(slug for slug in multi["grievances"].split(";"))
    assert "submitted_by" not in rows[0]


def test_csv_joins_multi_valued_fields_and_defuses_formulas(api, as_user, moderator):
    client = as_user(moderator)
    created = client.post(
        "/api/v1/events/",
        {
            "title": '=HYPERLINK("http://x")',
            "date": "2020-05-01",
            "country": "KZ",
            "grievances": ["welfare", "covid"],
            "police_responses": ["dispersed", "detained"],
            "organizers": ["Group A", "Group B"],
            "sources": [{"url": "https://a.example/1"}, {"url": "https://b.example/2"}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    event_id = created.json()["id"]
    published = client.post(
        f"/api/v1/events/{event_id}/review/", {"decision": "publish"}, format="json"
    )
    assert published.status_code == 200
    response = api.get(f"/api/v1/events/{event_id}/?format=csv")
    (row,) = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert row["grievances"] == "welfare;covid"
    assert row["police_responses"] == "dispersed;detained"
    assert row["organizers"] == "Group A;Group B"
    assert row["source_urls"] == "https://a.example/1;https://b.example/2"
    assert row["title"].startswith("'=")


@pytest.mark.parametrize(
    ("ordering", "key", "reverse"),
    [("date", "date", False), ("-date", "date", True), ("-arrests", "arrests", True),
     ("updated_at", "updated_at", False)],
)  # fmt: skip
def test_ordering(api, ordering, key, reverse):
    body = api.get(f"/api/v1/events/?ordering={ordering}&page_size=200").json()
    values = [e[key] if e[key] is not None else -1 for e in body["results"]]
    assert values == sorted(values, reverse=reverse)


def test_cursor_pages_cover_everything_once_in_every_ordering(api):
    expected = published_ids_sql()
    for ordering in ("-date", "arrests", "-updated_at"):
        ids: list[int] = []
        url = f"/api/v1/events/?ordering={ordering}&page_size=37"
        while url:
            body = api.get(url).json()
            ids += [e["id"] for e in body["results"]]
            url = body["next"]
        assert len(ids) == len(expected) and set(ids) == expected, ordering


def test_previous_link_goes_back(api):
    first = api.get("/api/v1/events/?page_size=5").json()
    second = api.get(first["next"]).json()
    back = api.get(second["previous"]).json()
    assert [e["id"] for e in back["results"]] == [e["id"] for e in first["results"]]


def test_page_size_up_to_1000(api):
    body = api.get("/api/v1/events/?page_size=1000").json()
    assert len(body["results"]) == min(1000, len(published_ids_sql()))


@pytest.mark.parametrize("page_size", [5, 200])
def test_list_query_count_does_not_grow_with_page_size(api, django_assert_num_queries, page_size):
    # The page (filter + cursor), then every field of its events in one query.
    with django_assert_num_queries(2):
        response = api.get(f"/api/v1/events/?page_size={page_size}")
    assert len(response.json()["results"]) == page_size


@pytest.mark.parametrize("page_size", [5, 500])
def test_geojson_query_count_does_not_grow_with_page_size(
    api, django_assert_num_queries, page_size
):
    with django_assert_num_queries(2):
        response = api.get(f"/api/v1/events/?format=geojson&page_size={page_size}")
    assert len(response.json()["features"]) == page_size


def test_csv_query_count_is_fixed_not_per_event(api, django_assert_max_num_queries):
    # One COPY writes every row (imports.exports), inside a savepoint here because the test
    # runs in a transaction (SAVEPOINT, COPY, RELEASE), and the city filter's lookup.
    with django_assert_max_num_queries(4):
        response = api.get("/api/v1/events/?format=csv&city=Almaty")
        rows = b"".join(response.streaming_content).decode().splitlines()
    assert len(rows) > 50


def test_csv_cells_say_what_the_json_says(api):
    query = "country=KZ&year=2019"
    response = api.get(f"/api/v1/events/?format=csv&{query}")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    events = api.get(f"/api/v1/events/?{query}&page_size=1000").json()["results"]
    assert len(rows) == len(events) > 50
    # Same events in the same order (the list's ordering), each with the same values.
    assert [int(row["id"]) for row in rows] == [event["id"] for event in events]
    for row, event in zip(rows, events, strict=True):
        for key in ("title", "date", "country", "admin1", "location_detail", "description"):
            assert row[key].removeprefix("'") == (event[key] or "")
        assert row["city"] == (event["city"] or "")
        assert row["longitude"] == ("" if event["longitude"] is None else str(event["longitude"]))
        assert row["arrests"] == ("" if event["arrests"] is None else str(event["arrests"]))
        assert row["grievances"] == ";".join(event["grievances"])
        assert row["police_responses"] == ";".join(event["police_responses"])
        assert row["organizers"] == ";".join(event["organizers"])
        assert row["source_urls"] == ";".join(s["url"] for s in event["sources"] if s["url"])
        assert row["external_ids"] == ";".join(event["external_ids"])
        assert datetime.fromisoformat(row["updated_at"]) == datetime.fromisoformat(
            event["updated_at"].replace("Z", "+00:00")
        )


def test_filters_also_work_as_documented_with_json_body_shape(api):
    body = api.get("/api/v1/events/?year=2019&page_size=1").json()
    assert set(body) == {"next", "previous", "results"}
    assert json.loads(json.dumps(body))  # plain JSON, nothing exotic


def test_list_rows_equal_the_serializers_output(api, as_user, moderator, submission_data):
    """List pages are built by one SQL query (tracker.selectors.event_rows); they must say
    exactly what the serializers say about the same events, in JSON and GeoJSON."""
    from api.serializers.events import EventFeatureSerializer, EventSerializer
    from tracker.selectors import event_with_related

    client = as_user(moderator)
    submission_data["organizers"] = ["Zeta group", "Alpha group"]
    submission_data["sources"].append({"title": "A printed leaflet", "published_on": "2020-03-01"})
    created = client.post("/api/v1/events/", submission_data, format="json").json()
    client.post(f"/api/v1/events/{created['id']}/review/", {"decision": "publish"}, format="json")

    listed = api.get("/api/v1/events/?page_size=1000").json()["results"]
    events = {e.pk: e for e in event_with_related(Event.objects.published())}
    assert [row["id"] for row in listed] == sorted(
        events, key=lambda pk: (events[pk].date, pk), reverse=True
    )
    for row in listed:
        assert row == json.loads(json.dumps(EventSerializer(events[row["id"]]).data)), row["id"]

    features = api.get("/api/v1/events/?format=geojson&page_size=1000").json()["features"]
    for feature in features:
        expected = json.loads(json.dumps(EventFeatureSerializer(events[feature["id"]]).data))
        assert feature == expected, feature["id"]
    mine = next(row for row in listed if row["id"] == created["id"])
    assert mine["organizers"] == ["Alpha group", "Zeta group"]
    assert [s["published_on"] for s in mine["sources"]] == [None, "2020-03-01"]
