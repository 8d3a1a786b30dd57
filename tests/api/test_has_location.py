"""has_location: events with a point (what the map draws) or without one (placed at region
or country level), in the one query layer, so the API, the trends, the list and the map
agree on the events the map cannot draw."""

import pytest
from django.db import connection

from tests.api.test_query_layer import GET_ENDPOINTS, _join, _message, api_ids, sql_ids

pytestmark = pytest.mark.django_db


def _sql_years(where: str, params=()) -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXTRACT(YEAR FROM e.date)::int, COUNT(*) FROM tracker_event e "
            f"WHERE e.status = 'published' AND ({where}) GROUP BY 1",
            list(params),
        )
        return {str(year): count for year, count in cursor.fetchall()}


def _trends_years(client, query: str) -> dict[str, int]:
    response = client.get(f"/api/v1/stats/trends/?interval=year&{query}")
    assert response.status_code == 200, response.content[:500]
    return {row["period"]: row["events"] for row in response.json()["results"] if row["events"]}


def test_the_demo_has_events_without_a_point():
    assert len(sql_ids("e.location IS NULL")) >= 4
    assert len(sql_ids("e.location IS NOT NULL")) > 600


@pytest.mark.parametrize(
    ("query", "where", "params"),
    [
        ("", "TRUE", ()),
        ("year=2019", "e.date BETWEEN '2019-01-01' AND '2019-12-31'", ()),
        ("grievance=political", "'political' = ANY(e.grievances)", ()),
        ("country=KZ&date_after=2019-06-01", "e.country = 'KZ' AND e.date >= '2019-06-01'", ()),
    ],
)
@pytest.mark.parametrize(("value", "located"), [("false", "IS NULL"), ("true", "IS NOT NULL")])
def test_has_location_selects_what_sql_selects(client, query, where, params, value, located):
    condition = f"({where}) AND e.location {located}"
    full = f"{query}&has_location={value}" if query else f"has_location={value}"
    assert api_ids(client, full) == sql_ids(condition, params)
    # The rollups do not know has_location: the trends fall back to the events, and give
    # the numbers of a plain GROUP BY.
    assert _trends_years(client, full) == _sql_years(condition, params)


def test_with_and_without_a_point_add_up_to_all(client):
    for query in ("", "year=2019&", "grievance=welfare&"):
        total = sum(_trends_years(client, query).values())
        without = sum(_trends_years(client, query + "has_location=false").values())
        with_point = sum(_trends_years(client, query + "has_location=true").values())
        assert without + with_point == total, query
        assert without > 0 or query == "grievance=welfare&"


def test_upper_case_is_accepted(client):
    assert api_ids(client, "has_location=FALSE") == sql_ids("e.location IS NULL")


@pytest.mark.parametrize(("path", "own", "kind"), GET_ENDPOINTS)
@pytest.mark.parametrize("bad", ["maybe", "yes", "2", "nul"])
def test_a_bad_value_is_a_400(client, path, own, kind, bad):
    response = client.get(_join(path, f"has_location={bad}"))
    assert response.status_code == 400, (path, response.status_code, response.content[:300])
    message = _message(response, kind)
    assert "true or false" in message, message[:2000]


def test_the_event_list_page_refuses_a_bad_value(client):
    response = client.get("/events/?has_location=maybe")
    assert response.status_code == 400
    assert "true or false" in response.content.decode()


def test_repeated_with_different_values_is_a_400(client):
    response = client.get("/api/v1/events/?has_location=true&has_location=false")
    assert response.status_code == 400
    assert "more than once" in response.json()["errors"]["has_location"][0]


def test_unknown_parameters_are_still_refused_and_has_location_is_known(client):
    response = client.get("/api/v1/events/?has_location=false&bogus=1")
    assert response.status_code == 400
    message = response.json()["errors"]["non_field_errors"][0]
    assert "bogus" in message and "has_location" in message


def test_schema_documents_has_location_as_a_boolean(api):
    schema = api.get("/api/schema/?format=json").json()
    for path in ("/api/v1/events/", "/api/v1/stats/trends/"):
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        parameter = parameters["has_location"]
        assert parameter["in"] == "query"
        assert parameter["schema"]["type"] == "boolean", parameter
        assert "without a point" in parameter["description"], parameter


def test_event_list_page_lists_the_events_without_a_point(client):
    expected = sql_ids("e.location IS NULL")
    response = client.get("/events/?has_location=false")
    assert response.status_code == 200
    html = response.content.decode()
    for event_id in expected:
        assert f'href="/events/{event_id}/"' in html
    assert f"{len(expected)} events match" in html or f"{len(expected)} event matches" in html
    # The panel shows the choice (and applying the panel keeps it).
    assert '<option value="false" selected>' in html
    assert "has_location=false" in html  # the links to the map, the trends, the downloads
