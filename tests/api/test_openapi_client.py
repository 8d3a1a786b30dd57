"""The OpenAPI schema is good enough to generate a client from: openapi-python-client builds
one from the live /api/schema/ without a warning, and its trends call, with filters, gets
the numbers a plain SQL GROUP BY gives. Also what the schema says about the trends and the
public endpoints (filters, types, anonymous access, the 400 of an unknown parameter)."""

import datetime as dt
import importlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.analysis.reference import METRICS, sql_trends
from tracker.query import EventFilterSet

pytestmark = pytest.mark.django_db

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "protest_event_tracker_api_client"


@pytest.fixture(scope="module")
def live_schema(server) -> dict:
    with urllib.request.urlopen(f"{server}/api/schema/?format=json", timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


@pytest.fixture(scope="module")
def generated(live_schema, tmp_path_factory):
    """The client package generated from the live schema, imported."""
    work = tmp_path_factory.mktemp("openapi-client")
    schema_file = work / "schema.json"
    schema_file.write_text(json.dumps(live_schema))
    config = work / "config.json"
    # No formatter run afterwards: the test needs the code, not its style.
    config.write_text(json.dumps({"post_hooks": []}))
    result = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(schema_file), "--meta", "none",
         "--config", str(config), "--output-path", str(work / PACKAGE)],
        capture_output=True, text=True, timeout=300, cwd=work,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # Any remark about the schema (an unsupported construct, a skipped operation) is a defect.
    assert "Warning" not in output and "Skipping" not in output, output
    sys.path.insert(0, str(work))
    try:
        client_module = importlib.import_module(f"{PACKAGE}.client")
        trends = importlib.import_module(f"{PACKAGE}.api.stats.v1_stats_trends_retrieve")
        by_enum = importlib.import_module(f"{PACKAGE}.models.v1_stats_trends_retrieve_by")
        interval_enum = importlib.import_module(
            f"{PACKAGE}.models.v1_stats_trends_retrieve_interval"
        )
        yield {
            "Client": client_module.Client,
            "trends": trends,
            "By": by_enum.V1StatsTrendsRetrieveBy,
            "Interval": interval_enum.V1StatsTrendsRetrieveInterval,
        }
    finally:
        sys.path.remove(str(work))
        for name in [name for name in sys.modules if name.startswith(PACKAGE)]:
            del sys.modules[name]


def _rows(answer) -> list[dict]:
    rows = []
    for row in answer.results:
        item = {"period": row.period}
        group = getattr(row, "group", None)
        if answer.by is not None:
            item["group"] = group
        item.update((metric, getattr(row, metric)) for metric in METRICS)
        rows.append(item)
    return rows


@pytest.mark.parametrize(
    ("kwargs", "interval", "by", "where", "after", "before"),
    [
        ({}, "year", None, "TRUE", None, None),
        ({"year": 2020, "country": "KZ"}, "month", None,
         "e.date BETWEEN '2020-01-01' AND '2020-12-31' AND e.country = 'KZ'",
         dt.date(2020, 1, 1), dt.date(2020, 12, 31)),
        ({"grievance": "welfare,human_rights", "date_after": dt.date(2019, 3, 15),
          "date_before": dt.date(2020, 8, 20)}, "quarter", "grievance",
         "e.grievances && ARRAY['welfare', 'human_rights']::varchar[] "
         "AND e.date BETWEEN '2019-03-15' AND '2020-08-20'", None, None),
        ({"police_response": "detained", "admin1": "Almaty"}, "year", "city",
         "'detained' = ANY(e.police_responses) AND upper(e.admin1) = 'ALMATY'", None, None),
        ({"organizer": "Oyan", "arrests_min": 1}, "year", None,
         "e.arrests >= 1 AND EXISTS (SELECT 1 FROM tracker_event_organizers eo "
         "JOIN tracker_organization o ON o.id = eo.organization_id "
         "WHERE eo.event_id = e.id AND o.name ILIKE '%%oyan%%')", None, None),
        ({"near": "51.2,43.65", "radius_km": 150.0}, "year", "admin1",
         "ST_DistanceSphere(e.location, ST_SetSRID(ST_MakePoint(51.2, 43.65), 4326)) "
         "<= 150000", None, None),
    ],
)  # fmt: skip
def test_generated_client_calls_trends_with_filters(
    generated, server, kwargs, interval, by, where, after, before
):
    client = generated["Client"](base_url=server, raise_on_unexpected_status=True)
    with client:
        response = generated["trends"].sync_detailed(
            client=client,
            interval=generated["Interval"](interval),
            **({"by": generated["By"](by)} if by else {}),
            **kwargs,
        )
    assert response.status_code == 200, response.content
    answer = response.parsed
    assert answer.interval == interval and answer.by == by
    expected = sql_trends(where, interval=interval, by=by, after=after, before=before)
    assert any(row["events"] for row in expected)
    assert _rows(answer) == expected


def test_generated_client_gets_the_400_of_a_bad_filter(generated, server):
    client = generated["Client"](base_url=server)
    with client:
        response = generated["trends"].sync_detailed(client=client, grievance="pizza")
    assert response.status_code == 400
    assert "pizza" in response.parsed.detail


# ---- what the schema says ------------------------------------------------------------------

PUBLIC_READS = [
    ("/api/v1/events/", "get"),
    ("/api/v1/events/{id}/", "get"),
    ("/api/v1/stats/trends/", "get"),
    ("/api/v1/taxonomy/", "get"),
    ("/api/v1/cities/", "get"),
    ("/api/v1/cities/{id}/", "get"),
    ("/api/v1/exports/{layout}.csv", "get"),
    ("/api/v1/exports/events.geojson", "get"),
]
FILTERED = [
    "/api/v1/events/",
    "/api/v1/stats/trends/",
    "/api/v1/exports/{layout}.csv",
    "/api/v1/exports/events.geojson",
]


def _query_parameters(operation) -> dict[str, dict]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}


def test_trends_documents_every_filter_and_its_own_parameters(live_schema):
    operation = live_schema["paths"]["/api/v1/stats/trends/"]["get"]
    parameters = _query_parameters(operation)
    assert set(EventFilterSet.base_filters) | {"interval", "by"} <= set(parameters)
    assert parameters["year"]["schema"]["type"] == "integer"
    assert parameters["arrests_min"]["schema"]["type"] == "integer"
    assert parameters["date_after"]["schema"].get("format") == "date"
    assert set(parameters["interval"]["schema"]["enum"]) == {"year", "quarter", "month", "week"}
    by = parameters["by"]["schema"]
    assert set(by["enum"]) == {"grievance", "police_response", "city", "admin1", "country"}
    row = live_schema["components"]["schemas"]["TrendRow"]["properties"]
    assert set(METRICS) <= set(row)


@pytest.mark.parametrize("path", FILTERED)
def test_filtered_endpoints_document_the_filters_and_the_400(live_schema, path):
    operation = live_schema["paths"][path]["get"]
    parameters = _query_parameters(operation)
    assert set(EventFilterSet.base_filters) <= set(parameters), path
    assert parameters["year"]["schema"]["type"] == "integer"
    description = operation["responses"]["400"]["description"]
    assert "unknown query parameter" in description and "known ones" in description


@pytest.mark.parametrize(("path", "method"), PUBLIC_READS)
def test_public_reads_show_that_anonymous_access_works(live_schema, path, method):
    security = live_schema["paths"][path][method]["security"]
    assert {} in security, (path, security)
    assert {"tokenAuth": []} in security and {"cookieAuth": []} in security


def test_anonymous_access_is_not_claimed_where_it_is_refused(live_schema):
    paths = live_schema["paths"]
    for path, method in [
        ("/api/v1/events/", "post"),
        ("/api/v1/events/{id}/", "patch"),
        ("/api/v1/events/{id}/history/", "get"),
        ("/api/v1/submissions/", "get"),
        ("/api/v1/imports/", "get"),
        ("/api/v1/exports/jobs/", "post"),
    ]:
        assert {} not in paths[path][method]["security"], (path, method)
