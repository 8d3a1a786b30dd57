"""Inputs a hostile (or careless) client sends get a 4xx with a message, or a row in the
import report, never a 500, a database error or a CSV cut off after its 200.

Each case was a 500 (or a failed import) before; the fuzz tests at the end try every query
parameter and body field with the same kinds of values and print how many they tried."""

import csv
import io
import json
import time
from urllib.parse import parse_qsl

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient

from tests.importers.conftest import acled_row, csv_bytes, moderator, run_import  # noqa: F401
from tests.importers.test_other_formats import ccc_row, mm_row
from tracker.models import City, Event, ImportJob

pytestmark = pytest.mark.django_db

UNICODE_DIGITS = ["²", "٣", "１２", "߃"]  # str.isdigit() is true for all; int() refuses "²"
EXTREME_MOMENTS = [
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59-15:00",
    "0001-01-01T00:00:00+23:59",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00",  # naive: read in the server's zone (UTC+5), before year 1 in UTC
]
FILTERED_API = [
    "/api/v1/events/",
    "/api/v1/events/?format=geojson",
    "/api/v1/events/?format=csv",
    "/api/v1/stats/trends/",
    "/api/v1/stats/trends/?by=city",
    "/api/v1/exports/acled.csv",
    "/api/v1/exports/ccc.csv",
]
PAGES = ["/", "/dashboard/", "/dashboard/totals.csv", "/dashboard/cities.csv"]

_address = iter(range(1, 1 << 24))


def _get(client, url: str, params: dict):
    """A GET from its own address (the anonymous throttle counts per address), with a
    streamed body read to its end, inside a savepoint so that a database error shows as
    what it is instead of breaking every later request of the test."""
    path, _, query = url.partition("?")
    # The test client drops the URL's own query string when given data: merge them.
    data = {**dict(parse_qsl(query)), **params}
    n = next(_address)
    address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
    with transaction.atomic():
        response = client.get(path, data, REMOTE_ADDR=address)
        body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


@pytest.fixture
def web():
    return Client(raise_request_exception=False)


def _assert_api_400(response, body, field: str):
    assert response.status_code == 400, (response.status_code, body[:300])
    assert not response.streaming, "an error must come before any row of a CSV"
    data = json.loads(body)
    assert field in data["errors"], data
    assert data["detail"].startswith("Invalid input")


@pytest.mark.parametrize("value", UNICODE_DIGITS)
def test_unicode_digits_as_city_are_a_400_everywhere(web, value):
    for url in FILTERED_API:
        response, body = _get(web, url, {"city": value})
        _assert_api_400(response, body, "city")
    for url in PAGES:
        response, body = _get(web, url, {"city": value})
        assert response.status_code == 400, (url, response.status_code)


def test_unicode_digits_in_numeric_filters(web):
    for param in ("year", "arrests_min", "arrests_max", "radius_km", "page_size"):
        response, body = _get(web, "/api/v1/events/", {param: "²"})
        assert response.status_code == 400, (param, body[:200])
    for url in PAGES:
        for param in ("arrests_min", "arrests_max", "date_after"):
            response, body = _get(web, url, {param: "²"})
            assert response.status_code == 400, (url, param)


@pytest.mark.parametrize("moment", EXTREME_MOMENTS)
def test_extreme_updated_since_is_a_400_before_any_stream(web, moment):
    for url in FILTERED_API:
        response, body = _get(web, url, {"updated_since": moment})
        _assert_api_400(response, body, "updated_since")
        assert b"range" in body


def test_extreme_but_valid_dates_answer_in_full(web):
    """Year 1 and 9999 are dates PostgreSQL can compare: an answer, complete, not a 500."""
    published = Event.objects.published().count()
    for url in FILTERED_API:
        for params, expected in (
            ({"date_after": "9999-12-31"}, 0),
            ({"date_before": "0001-01-01"}, 0),
            ({"updated_since": "9999-12-31T23:59:59+14:00"}, 0),
            ({"updated_since": "0001-01-01T12:00:00Z"}, published),
        ):
            response, body = _get(web, url, params)
            assert response.status_code == 200, (url, params, body[:200])
            if "csv" in url:  # every row arrived: the stream was not cut off
                rows = list(csv.reader(io.StringIO(body.decode())))
                assert len(rows) - 1 == expected, (url, params)
    for params in ({"date_after": "10000-01-01"}, {"date_before": "0000-12-31"}):
        response, body = _get(web, "/api/v1/events/?format=csv", params)
        _assert_api_400(response, body, next(iter(params)))


def test_huge_counts_on_the_pages_are_a_400_next_to_the_field(web):
    for url in PAGES:
        for param in ("arrests_min", "arrests_max"):
            response, body = _get(web, url, {param: "99999999999999999999999"})
            assert response.status_code == 400, (url, param, body[:200])
            text = body.decode()
            assert "2147483647" in text.replace(",", "").replace("\xa0", "")
    response, body = _get(web, "/dashboard/", {"arrests_min": "99999999999999999999999"})
    html = body.decode()
    start = html.index('id="id_arrests_min_error"')  # the field's own error list
    assert "2147483647" in html[start : html.index("</ul>", start)]


# --- bodies --------------------------------------------------------------------------------


@pytest.fixture
def author(make_user):
    user = make_user("hostile-author", "Contributor")
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def mod_client(make_user):
    user = make_user("hostile-mod", "Moderator")
    client = APIClient()
    client.force_authenticate(user)
    return client


def _submission(**changes):
    body = {
        "title": "Hostile test",
        "date": "2020-03-02",
        "country": "KZ",
        "grievances": ["welfare"],
        "sources": [{"url": "https://example.org/a", "title": "A"}],
    }
    body.update(changes)
    return body


def _post(client, url, body, method="post", raw=False):
    with transaction.atomic():
        send = getattr(client, method)
        if raw:
            return send(url, body, content_type="application/json")
        return send(url, body, format="json")


def test_unicode_digits_as_city_in_a_body(author, mod_client):
    for value in ("²", "٣²"):
        response = _post(author, "/api/v1/events/", _submission(city=value))
        assert response.status_code == 400, response.content
        assert "city" in response.json()["errors"]
    event = Event.objects.published().first()
    response = _post(mod_client, f"/api/v1/events/{event.pk}/", {"city": "²"}, method="patch")
    assert response.status_code == 400, response.content
    assert "city" in response.json()["errors"]


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deeply_nested_json_is_a_400(author, mod_client, depth):
    nested = "[" * depth + "]" * depth
    event = Event.objects.published().first()
    cases = [
        (author, "/api/v1/events/", nested, "post"),
        (author, "/api/v1/events/", '{"title": ' + nested + "}", "post"),
        (mod_client, f"/api/v1/events/{event.pk}/", '{"sources": ' + nested + "}", "patch"),
        (mod_client, f"/api/v1/events/{event.pk}/review/", nested, "post"),
        (author, "/api/v1/exports/jobs/", nested, "post"),
        (APIClient(), "/api/v1/auth/token/", nested, "post"),
    ]
    for client, url, body, method in cases:
        response = _post(client, url, body, method=method, raw=True)
        assert response.status_code == 400, (url, response.status_code, response.content[:200])
        assert "deep" in response.json()["detail"], response.json()


def test_external_ids_longer_than_their_columns(author):
    for external_id in ("s" * 21 + ":x", "acled:" + "v" * 101, "x" * 120):
        response = _post(author, "/api/v1/events/", _submission(external_ids=[external_id]))
        assert response.status_code == 400, (external_id, response.content)
        assert "external_ids" in response.json()["errors"]
    ok = _post(author, "/api/v1/events/", _submission(external_ids=["s" * 20 + ":" + "v" * 99]))
    assert ok.status_code == 201, ok.content


# --- imports: one bad cell fails one row ---------------------------------------------------


def _failed_rows(job: ImportJob) -> dict[int, str]:
    return dict(job.issues.filter(kind="failed").values_list("row", "column"))


def test_acled_bad_cells_fail_only_their_rows(run_import):  # noqa: F811
    rows = [
        # Long enough that the NUL of the last row is past the binary-file test of check().
        acled_row(event_id_cnty="KAZH1", notes="Protest. " + "Long notes. " * 400),
        acled_row(event_id_cnty="KAZH2", iso="²", country="²"),
        acled_row(event_id_cnty="KAZH3", fatalities="99999999999"),
        acled_row(event_id_cnty="KAZH4", latitude="nan"),
        acled_row(event_id_cnty="KAZH5", longitude="inf"),
        acled_row(event_id_cnty="K" * 200),
        acled_row(event_id_cnty="KAZH7", timestamp="²"),
        acled_row(event_id_cnty="KAZH9", geo_precision="٣"),
        # A number in running text beyond any count is "not said", and the row is taken.
        acled_row(event_id_cnty="KAZH10", notes="99999999999999 people were detained."),
        acled_row(event_id_cnty="KAZH11", iso="²", country="Kazakhstan"),
        acled_row(event_id_cnty="KAZH12", latitude="٤٣.٢", longitude="٧٦.٩"),
        acled_row(event_id_cnty="KAZH8", notes="Protest.\x00"),
    ]
    job = run_import(csv_bytes(rows), format="acled")
    assert job.status == ImportJob.Status.SUCCEEDED, job.message
    assert _failed_rows(job) == {
        3: "country",
        4: "fatalities",
        5: "latitude",
        6: "longitude",
        7: "event_id_cnty",
        8: "timestamp",
        9: "geo_precision",
        12: "latitude",
        13: "notes",
    }
    assert job.rows_created == 3
    assert Event.objects.get(external_ids__value="KAZH10").arrests is None
    assert Event.objects.get(external_ids__value="KAZH11").country == "KZ"


def test_other_formats_bad_cells_fail_only_their_rows(run_import):  # noqa: F811
    job = run_import(
        csv_bytes([ccc_row(), ccc_row(locality="Aktau", size_low="99999999999")]), format="ccc"
    )
    assert (job.status, job.rows_created, _failed_rows(job)) == ("succeeded", 1, {3: "size_low"})
    job = run_import(
        csv_bytes([mm_row(id="H1"), mm_row(id="H2", startyear="²"), mm_row(id="H3" * 60)]),
        format="mm",
    )
    assert (job.status, job.rows_created) == ("succeeded", 1), job.message
    assert _failed_rows(job) == {3: "startyear", 4: "id"}

    base = {"title": "T", "date": "2020-01-01", "country": "KZ", "grievances": "welfare"}
    city = City.objects.get(name="Almaty")
    native = [
        {**base, "id": "h1", "city_id": str(city.pk), "arrests": "3"},
        {**base, "id": "h2", "city_id": "²", "arrests": "3"},
        {**base, "id": "h3", "city_id": "", "arrests": "99999999999"},
        {**base, "id": "h4", "city_id": "", "arrests": "-5"},
        {**base, "id": "h5" * 60, "city_id": "", "arrests": ""},
    ]
    job = run_import(csv_bytes(native), format="native")
    assert (job.status, job.rows_created) == ("succeeded", 1), job.message
    assert _failed_rows(job) == {3: "city_id", 4: "arrests", 5: "arrests", 6: "id"}

    def feature(properties, coordinates=(76.9, 43.2)):
        return {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(coordinates)},
            "properties": {**base, "grievances": ["welfare"], **properties},
        }

    collection = {
        "type": "FeatureCollection",
        "features": [
            feature({"id": "g1", "arrests": 2}),
            feature({"id": "g2", "arrests": 10**30}),
            feature({"id": "g3", "arrests": True}),
            feature({"id": "g4"}, coordinates=(float("nan"), 43.2)),
            feature({"id": "g5"}, coordinates=(float("inf"), 43.2)),
            feature({"id": "g6", "title": "T\x00"}),
            feature({"id": "g7", "external_ids": ["acled:" + "x" * 101]}),
        ],
    }
    job = run_import(json.dumps(collection).encode(), format="native", name="e.geojson")
    assert (job.status, job.rows_created) == ("succeeded", 1), job.message
    assert _failed_rows(job) == {
        2: "arrests",
        3: "arrests",
        4: "longitude",
        5: "longitude",
        6: "title",
        7: "external_ids",
    }


def test_deeply_nested_geojson_rejects_the_file(run_import):  # noqa: F811
    body = b'{"type": "FeatureCollection", "features": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    job = run_import(body, format="native", name="deep.geojson")
    assert job.status == ImportJob.Status.FAILED
    assert "too deeply" in job.message


# --- fuzz ----------------------------------------------------------------------------------

HOSTILE_QUERY_VALUES = [
    "²",
    "٣",
    "\x00",
    "a\x00b",
    "9" * 30,
    "-" + "9" * 30,
    "1e309",
    "nan",
    "x" * 3000,
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "nan,nan,nan,nan",
]
EVENT_PARAMETERS = [
    "date_after", "date_before", "year", "country", "admin1", "city", "grievance",
    "police_response", "arrests_min", "arrests_max", "in_bbox", "near", "radius_km", "q",
    "updated_since", "ordering", "page_size", "cursor", "format",
]  # fmt: skip
TREND_PARAMETERS = [*EVENT_PARAMETERS[:15], "interval", "by"]


def test_fuzz_query_parameters(web):
    tried, errors = 0, []
    started = time.monotonic()
    for url, parameters in (
        ("/api/v1/events/", EVENT_PARAMETERS),
        ("/api/v1/stats/trends/", TREND_PARAMETERS),
    ):
        for parameter in parameters:
            for value in HOSTILE_QUERY_VALUES:
                params = {parameter: value}
                if parameter == "near":
                    params["radius_km"] = "5"
                response, body = _get(web, url, params)
                tried += 1
                if response.status_code >= 500:
                    errors.append((url, parameter, value[:30], response.status_code))
                elif response.status_code >= 400:
                    assert json.loads(body)["detail"], (url, parameter)
    print(f"\nquery fuzz: {tried} requests, {len(errors)} 5xx, {time.monotonic() - started:.0f} s")
    assert not errors
    assert tried == len(HOSTILE_QUERY_VALUES) * (len(EVENT_PARAMETERS) + len(TREND_PARAMETERS))


HOSTILE_BODY_VALUES = [
    "\x00",
    "T\x00itle",
    10**30,
    -(10**30),
    2**31,
    -1,
    1.5,
    True,
    None,
    [],
    {},
    ["\x00"],
    [{"url": "javascript:alert(1)"}],
    "x" * 30000,
    "²",
    float("nan"),
    float("inf"),
]
BODY_FIELDS = [
    "title", "description", "date", "end_date", "date_precision", "country", "admin1", "city",
    "location_detail", "longitude", "latitude", "geo_precision", "grievances",
    "police_responses", "arrests", "injuries", "deaths", "participants_low",
    "participants_high", "organizers", "sources", "external_ids",
]  # fmt: skip


def test_fuzz_submission_fields(author):
    tried, errors = 0, []
    started = time.monotonic()
    for field in BODY_FIELDS:
        for value in HOSTILE_BODY_VALUES:
            body = _submission(**{field: value})
            if field in ("longitude", "latitude"):
                body.update(longitude=value, latitude=value)
            # json.dumps, not the test client's renderer: that one refuses NaN and Infinity,
            # which a hostile client may well send.
            response = _post(author, "/api/v1/events/", json.dumps(body), raw=True)
            tried += 1
            if response.status_code >= 500:
                errors.append((field, repr(value)[:30], response.status_code))
            else:
                assert response.status_code in (201, 400), (field, value, response.content)
    for value in HOSTILE_BODY_VALUES:
        body = _submission(sources=[{"url": "https://example.org/b", "title": value}])
        response = _post(author, "/api/v1/events/", json.dumps(body), raw=True)
        tried += 1
        if response.status_code >= 500:
            errors.append(("sources.title", repr(value)[:30], response.status_code))
    print(f"\nbody fuzz: {tried} requests, {len(errors)} 5xx, {time.monotonic() - started:.0f} s")
    assert not errors, errors


def test_fuzz_patch_and_other_json_endpoints(mod_client, author):
    """The same values in a moderator's PATCH, a review, an export request and a login."""
    event = Event.objects.published().first()
    tried, errors = 0, []
    values = ["\x00", 10**30, -1, True, [], {}, "²", float("nan")]
    cases = [(mod_client, f"/api/v1/events/{event.pk}/", "patch", field) for field in BODY_FIELDS]
    cases += [
        (mod_client, f"/api/v1/events/{event.pk}/review/", "post", "decision"),
        (mod_client, f"/api/v1/events/{event.pk}/review/", "post", "note"),
        (author, "/api/v1/exports/jobs/", "post", "layout"),
        (author, "/api/v1/exports/jobs/", "post", "query"),
    ]
    for client, url, method, field in cases:
        for value in values:
            body = {field: value}
            if "review" in url and field == "note":
                body["decision"] = "reject"
            if "exports" in url and field == "query":
                body["layout"] = "acled"
            response = _post(client, url, json.dumps(body), method=method, raw=True)
            tried += 1
            if response.status_code >= 500:
                errors.append((url, field, repr(value)[:30], response.status_code))
    for value in ("city=²", "updated_since=9999-12-31T23:59:59-23:59", "arrests_min=" + "9" * 30):
        response = _post(author, "/api/v1/exports/jobs/", {"layout": "acled", "query": value})
        tried += 1
        assert response.status_code == 400, (value, response.content)
    token = APIClient()
    for username in ("\x00", "²", "x" * 200):
        response = _post(token, "/api/v1/auth/token/", {"username": username, "password": "x"})
        tried += 1
        assert response.status_code in (400, 429), (username, response.status_code)
    print(f"\npatch/other fuzz: {tried} requests, {len(errors)} 5xx")
    assert not errors, errors


def test_admin_year_filter_with_unicode_digits(admin_client):
    for value in ("²", "٣", "2019"):
        response = admin_client.get("/admin/tracker/event/", {"year": value})
        assert response.status_code in (200, 302), (value, response.status_code)
