"""Bad input gets a JSON body with a clear message and the right 4xx, never a 500."""

import base64

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"] and body["code"]
    return body


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("date_after=2020-13-01", "date_after", "valid date"),
        ("date_before=yesterday", "date_before", "valid date"),
        ("year=twenty", "year", "number"),
        ("year=1066", "year", "1900"),
        ("grievance=welfare,pizza", "grievance", "pizza"),
        ("police_response=tickled", "police_response", "Choose from"),
        ("in_bbox=1,2,3", "in_bbox", "4 comma-separated"),
        ("in_bbox=a,b,c,d", "in_bbox", "numbers"),
        ("in_bbox=80,50,70,40", "in_bbox", "minimum"),
        ("in_bbox=-200,40,70,50", "in_bbox", "Longitude"),
        ("in_bbox=10,-95,20,10", "in_bbox", "latitude"),
        ("near=76.9,95&radius_km=10", "near", "latitude"),
        ("near=76.9,nan&radius_km=10", "near", "finite"),
        ("near=76.9,43.2", "radius_km", "radius_km"),
        ("radius_km=10", "near", "near"),
        ("near=76.9,43.2&radius_km=-1", "radius_km", "greater than or equal"),
        ("city=Atlantis", "city", "Unknown city"),
        ("city=999999999", "city", "Unknown city"),
        ("country=Kazakhstan", "country", "ISO 3166-1"),
        ("arrests_min=-3", "arrests_min", "greater than or equal"),
        ("updated_since=last-week", "updated_since", "valid date"),
        ("page_size=1001", "page_size", "1 to 1000"),
        ("page_size=0", "page_size", "1 to 1000"),
        ("page_size=many", "page_size", "1 to 1000"),
        ("ordering=title", "ordering", "Cannot order by"),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "geojson", "csv"])
def test_bad_query_parameters(api, query, field, words, fmt):
    body = _error(api.get(f"/api/v1/events/?{query}&format={fmt}"), 400)
    assert field in body["errors"]
    assert words in body["detail"], body["detail"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        base64.b64encode(b"p=not-a-date").decode(),
        base64.b64encode(b"o=-5").decode(),
        base64.b64encode(b"r=x").decode(),
    ],
)
def test_malformed_cursor(api, cursor):
    body = _error(api.get("/api/v1/events/", {"cursor": cursor}), 400)
    assert "cursor" in body["errors"]
    assert "Malformed cursor" in body["detail"]


def test_malformed_cursor_on_numeric_ordering(api):
    cursor = base64.b64encode(b"p=lots").decode()
    _error(api.get("/api/v1/events/", {"cursor": cursor, "ordering": "-arrests"}), 400)


def test_unknown_trend_options(api):
    body = _error(api.get("/api/v1/stats/trends/?interval=week"), 400)
    assert "interval" in body["errors"]
    body = _error(api.get("/api/v1/stats/trends/?by=mood"), 400)
    assert "mood" in body["detail"]
    body = _error(api.get("/api/v1/stats/trends/?grievance=pizza"), 400)
    assert "grievance" in body["errors"]


def test_unknown_event_and_unknown_path_are_json_404(api):
    assert _error(api.get("/api/v1/events/99999999/"), 404)["code"] == "not_found"
    assert _error(api.get("/api/v1/no-such-thing/"), 404)["code"] == "not_found"


def test_method_not_allowed_is_json(api, as_user, moderator):
    _error(as_user(moderator).delete("/api/v1/events/1/"), 405)
    _error(as_user(moderator).put("/api/v1/events/1/", {}, format="json"), 405)


def test_unknown_format_is_json_406(api):
    body = _error(api.get("/api/v1/events/?format=xml"), 406)
    assert "json, geojson, csv" in body["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date": "2020-02-30"}, "date"),
        ({"date": "2999-01-01"}, "date"),
        ({"grievances": ["pizza"]}, "grievances"),
        ({"grievances": []}, "grievances"),
        ({"police_responses": ["tickled"]}, "police_responses"),
        ({"city": "Atlantis"}, "city"),
        ({"country": "Kazakhstan", "city": None}, "country"),
        ({"country": "KG"}, "city"),  # Almaty is not in Kyrgyzstan
        ({"longitude": 190, "latitude": 40}, "longitude"),
        ({"longitude": 70, "latitude": -91}, "latitude"),
        ({"longitude": 70}, "longitude"),
        ({"arrests": -1}, "arrests"),
        ({"participants_low": 50, "participants_high": 10}, "participants_low"),
        ({"end_date": "2020-03-01"}, "end_date"),
        ({"sources": [{"publisher": "nobody"}]}, "sources"),
        ({"sources": [{"url": "not a url"}]}, "sources"),
        ({"external_ids": ["no-colon"]}, "external_ids"),
        ({"title": ""}, "title"),
    ],
)
def test_bad_submission(as_user, contributor, submission_data, change, field):
    from tracker.models import Event

    before = Event.objects.count()
    response = as_user(contributor).post(
        "/api/v1/events/", {**submission_data, **change}, format="json"
    )
    body = _error(response, 400)
    assert field in body["errors"] or field in body["detail"], body
    assert Event.objects.count() == before  # nothing half-written


def test_external_id_already_taken(as_user, contributor, submission_data, pending_event):
    response = as_user(contributor).post("/api/v1/events/", submission_data, format="json")
    body = _error(response, 400)
    assert "already belongs" in body["detail"]


def test_malformed_json_body(as_user, contributor):
    response = as_user(contributor).post(
        "/api/v1/events/", data='{"title": ', content_type="application/json"
    )
    assert "JSON" in _error(response, 400)["detail"]


def test_body_not_an_object(as_user, contributor):
    response = as_user(contributor).post(
        "/api/v1/events/", data="[1, 2]", content_type="application/json"
    )
    _error(response, 400)


def test_unsupported_media_type(as_user, contributor):
    response = as_user(contributor).post(
        "/api/v1/events/", data="title=x", content_type="application/x-www-form-urlencoded"
    )
    _error(response, 415)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_body_too_large_is_413(as_user, contributor, submission_data):
    from tracker.models import Event

    before = Event.objects.count()
    submission_data["description"] = "x" * 20_000
    response = as_user(contributor).post("/api/v1/events/", submission_data, format="json")
    assert "larger than 10,000 bytes" in _error(response, 413)["detail"]
    assert Event.objects.count() == before


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_multipart_body_too_large_is_413(as_user, contributor):
    response = as_user(contributor).post(
        "/api/v1/auth/token/", {"username": "x" * 20_000, "password": "y"}, format="multipart"
    )
    assert response.status_code in (413, 415), response.content
    assert response["Content-Type"].startswith("application/json")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_parser_stops_at_the_limit_whatever_the_declared_length():
    from io import BytesIO
    from types import SimpleNamespace

    from api.parsers import LimitedJSONParser, RequestTooLarge

    body = b'{"title": "' + b"x" * 20_000 + b'"}'
    request = SimpleNamespace(META={"CONTENT_LENGTH": "100"})
    with pytest.raises(RequestTooLarge):
        LimitedJSONParser().parse(BytesIO(body), "application/json", {"request": request})
    small = LimitedJSONParser().parse(
        BytesIO(b'{"a": 1}'), "application/json", {"request": request}
    )
    assert small == {"a": 1}


def test_review_with_bad_decision(as_user, moderator, pending_event):
    response = as_user(moderator).post(
        f"/api/v1/events/{pending_event.pk}/review/", {"decision": "maybe"}, format="json"
    )
    assert "publish or reject" in _error(response, 400)["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cities/?limit=0",
        "/api/v1/cities/?limit=abc",
        "/api/v1/cities/?country=KAZ",
        "/api/v1/cities/?lang=fr",
        "/api/v1/taxonomy/?lang=xx",
    ],
)
def test_bad_reference_queries(api, path):
    _error(api.get(path), 400)


def test_unknown_city_id_is_404(api):
    _error(api.get("/api/v1/cities/99999999/"), 404)


def test_unexpected_errors_are_json_500(api, monkeypatch):
    """A bug must still answer JSON (and be logged), not an HTML page."""
    from api.views import meta

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(meta, "city_list", broken)
    response = api.get("/api/v1/cities/?q=alm")
    body = _error(response, 500)
    assert body["code"] == "server_error"
    assert "simulated" not in body["detail"]


ODD_VALUES = ["", " ", "%00", "\x00", "'; DROP TABLE x; --", "9" * 40, "-1", "1e999",
              "NaN", "∞", "Алматы", ",,,", "a,b", "2020-02-30", "0,0", "1,2,3,4,5",
              "x" * 5000]  # fmt: skip
PARAMETERS = ["date_after", "date_before", "year", "country", "admin1", "city", "grievance",
              "police_response", "arrests_min", "arrests_max", "in_bbox", "near", "radius_km",
              "q", "updated_since", "ordering", "page_size", "cursor", "interval", "by",
              "format"]  # fmt: skip


@pytest.mark.parametrize("parameter", PARAMETERS)
def test_no_query_value_produces_a_server_error(api, parameter):
    for path in ("/api/v1/events/", "/api/v1/stats/trends/"):
        for value in ODD_VALUES:
            extra = {"radius_km": "10"} if parameter == "near" else {}
            if parameter == "radius_km":
                extra = {"near": "76.9,43.2"}
            response = api.get(path, {parameter: value, **extra})
            assert response.status_code < 500, (path, parameter, value, response.content)
            if response.status_code >= 400:
                assert response["Content-Type"].startswith("application/json")


BODY_FIELDS = ["title", "description", "date", "end_date", "date_precision", "country",
               "admin1", "city", "location_detail", "longitude", "latitude", "geo_precision",
               "grievances", "police_responses", "arrests", "injuries", "deaths",
               "participants_low", "participants_high", "organizers", "sources",
               "external_ids"]  # fmt: skip
ODD_JSON = [None, "", "\x00", "x" * 5000, 10**40, -(10**40), 1.5, "NaN", "Infinity", [], {},
            [None], ["\x00"], [{"url": "\x00"}], True]  # fmt: skip


@pytest.mark.parametrize("field", BODY_FIELDS)
def test_no_body_value_produces_a_server_error(as_user, moderator, submission_data, field):
    from tracker.models import Event

    client = as_user(moderator)
    target = Event.objects.published().order_by("id").first()
    for value in ODD_JSON:
        data = {**submission_data, field: value, "external_ids": []}
        response = client.post("/api/v1/events/", data, format="json")
        assert response.status_code < 500, (field, value, response.content)
        response = client.patch(f"/api/v1/events/{target.pk}/", {field: value}, format="json")
        assert response.status_code < 500, (field, value, response.content)
