"""GET /api/v1/events/removed/: the events that left the public record, and the README's
incremental sync script run for real against gunicorn.

The removals are written by PostgreSQL triggers (migration 0020), so every way of writing
counts: the moderation service, a model save (as the admin does), a queryset .update(),
raw SQL, a delete. Inside one test's transaction now() does not move, so every removal a
test makes has the same `removed_at`; the tests of `since` and of the pages write rows
with times of their own.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.fields import DateTimeField

from tests.api.conftest import ROOT, database_url, serve_app
from tracker.models import Event, EventRemoval
from tracker.services.events import event_create, event_review

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/removed/"
FIELDS = {"id", "kind", "removed_at", "merged_into"}


@pytest.fixture(autouse=True)
def _no_removals_before(db):
    """Each test starts from an empty feed (rolled back with the test's transaction), whatever
    a run before committed."""
    EventRemoval.objects.all().delete()


def _event(status=Event.Status.PUBLISHED, title="Rally for the removal feed") -> Event:
    return event_create(
        fields={"title": title, "date": "2020-05-01", "country": "KZ", "grievances": ["welfare"]},
        sources=[{"url": "https://example.org/removed-feed"}],
        status=status,
    )


def _feed(api, query: str = "") -> list[dict]:
    """Every row of the feed, through every page."""
    rows: list[dict] = []
    url = f"{URL}?{query}"
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        rows += body["results"]
        url = body["next"]
    return rows


def _rows_of(api, event: Event) -> list[dict]:
    return [row for row in _feed(api) if row["id"] == event.pk]


def test_rejected_after_publication_by_the_moderation_service(api, pending_event, moderator):
    event_review(event=pending_event, moderator=moderator, decision="publish")
    assert _rows_of(api, pending_event) == []  # publishing removes nothing
    event = Event.objects.get(pk=pending_event.pk)
    event.status = Event.Status.REJECTED  # a moderator rejects it later, as the admin saves
    event.review_note = "Duplicate."
    event.save()
    (row,) = _rows_of(api, pending_event)
    assert row["kind"] == "rejected"
    assert row["merged_into"] is None
    assert set(row) == FIELDS


def test_published_through_the_api_then_withdrawn_to_pending(as_user, moderator, pending_event):
    client = as_user(moderator)
    response = client.post(
        f"/api/v1/events/{pending_event.pk}/review/", {"decision": "publish"}, format="json"
    )
    assert response.status_code == 200, response.content
    Event.objects.filter(pk=pending_event.pk).update(status=Event.Status.PENDING)
    (row,) = _rows_of(as_user(None), pending_event)
    assert row["kind"] == "withdrawn"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (Event.Status.REJECTED, "rejected"),
        (Event.Status.ARCHIVED, "archived"),
        (Event.Status.PENDING, "withdrawn"),
        (Event.Status.DRAFT, "withdrawn"),
    ],
)
def test_admin_style_save_records_the_kind(api, status, kind):
    event = _event()
    event.title = "Renamed and unpublished in one save"
    event.status = status
    event.save()
    (row,) = _rows_of(api, event)
    assert row["kind"] == kind


def test_queryset_update_bulk_update_and_raw_sql_count(api):
    first, second, third = _event(), _event(), _event()
    Event.objects.filter(pk=first.pk).update(status=Event.Status.ARCHIVED)
    second.status = Event.Status.REJECTED
    Event.objects.bulk_update([second], ["status"])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tracker_event SET status = 'pending' WHERE id = %s", [third.pk])
    kinds = {row["id"]: row["kind"] for row in _feed(api)}
    assert kinds[first.pk] == "archived"
    assert kinds[second.pk] == "rejected"
    assert kinds[third.pk] == "withdrawn"


def test_deleting_a_published_event(api):
    by_model, by_queryset, by_sql = _event(), _event(), _event()
    ids = {by_model.pk, by_queryset.pk, by_sql.pk}
    by_model.delete()
    Event.objects.filter(pk=by_queryset.pk).delete()
    with connection.cursor() as cursor:
        # Its rows in the tables that point at events first (Django's FKs do not cascade in SQL).
        cursor.execute("DELETE FROM tracker_source WHERE event_id = %s", [by_sql.pk])
        cursor.execute("DELETE FROM tracker_externalid WHERE event_id = %s", [by_sql.pk])
        cursor.execute("DELETE FROM tracker_event WHERE id = %s", [by_sql.pk])
    rows = [row for row in _feed(api) if row["id"] in ids]
    assert sorted(row["id"] for row in rows) == sorted(ids)  # each once
    assert {row["kind"] for row in rows} == {"deleted"}


def test_each_removal_appears_once_and_changes_that_stay_published_do_not(api):
    event = _event()
    event.title = "Edited while published"
    event.save()
    Event.objects.filter(pk=event.pk).update(status=Event.Status.PUBLISHED)  # no change
    assert _rows_of(api, event) == []
    Event.objects.filter(pk=event.pk).update(status=Event.Status.REJECTED)
    Event.objects.filter(pk=event.pk).update(status=Event.Status.ARCHIVED)  # not published
    event_id = event.pk
    Event.objects.get(pk=event_id).delete()  # not published either: no second row
    assert [row["kind"] for row in _feed(api) if row["id"] == event_id] == ["rejected"]


def test_removed_again_after_republication_appears_twice(api):
    event = _event()
    for status in ("rejected", "published", "pending"):
        Event.objects.filter(pk=event.pk).update(status=status)
    assert [row["kind"] for row in _rows_of(api, event)] == ["rejected", "withdrawn"]


def test_events_never_published_do_not_appear(api, pending_event, moderator):
    event_review(event=pending_event, moderator=moderator, decision="reject", note="No source.")
    draft = _event(status=Event.Status.DRAFT)
    draft.status = Event.Status.ARCHIVED
    draft.save()
    pending = _event(status=Event.Status.PENDING)
    pending.delete()
    Event.objects.filter(pk=draft.pk).delete()
    assert _feed(api) == []
    assert EventRemoval.objects.count() == 0


def test_removed_at_is_the_transactions_time_in_the_events_format(api):
    event = _event()
    event.status = Event.Status.REJECTED
    event.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        (now,) = cursor.fetchone()
    (row,) = _rows_of(api, event)
    assert row["removed_at"] == DateTimeField().to_representation(now)
    # The same zone and format as updated_at in the events list.
    listed = api.get("/api/v1/events/?page_size=1").json()["results"][0]["updated_at"]
    zone = re.compile(r"(Z|[+-]\d\d:\d\d)$")
    assert zone.search(row["removed_at"]).group(1) == zone.search(listed).group(1)
    assert dt.datetime.fromisoformat(row["removed_at"]) == now


def _removal(event_id: int, at: dt.datetime, kind="deleted") -> EventRemoval:
    removal = EventRemoval.objects.create(event_id=event_id, kind=kind)
    EventRemoval.objects.filter(pk=removal.pk).update(removed_at=at)
    return removal


BASE = dt.datetime(2021, 1, 10, 9, 0, tzinfo=dt.UTC)


def test_since_is_inclusive_and_takes_any_offset(api):
    for number in range(5):
        _removal(1000 + number, BASE + dt.timedelta(hours=number))
    assert [row["id"] for row in _feed(api)] == [1000, 1001, 1002, 1003, 1004]
    # Boundary inclusive: removed_at >= since.
    at_third = _feed(api, "since=2021-01-10T11:00:00Z")
    assert [row["id"] for row in at_third] == [1002, 1003, 1004]
    just_after = _feed(api, "since=2021-01-10T11:00:00.000001Z")
    assert [row["id"] for row in just_after] == [1003, 1004]
    almaty = _feed(api, "since=2021-01-10T17:00:00%2B06:00")  # the same moment as 11:00Z
    assert [row["id"] for row in almaty] == [1002, 1003, 1004]
    assert _feed(api, "since=2021-01-10") == _feed(api, "since=2021-01-10T00:00:00")
    assert _feed(api, "since=2030-01-01T00:00:00Z") == []


def test_cursor_pages_in_time_then_id_order(api):
    # 7 removals at 3 times, out of order of their ids; a page of 2 splits equal times.
    times = [2, 0, 1, 0, 2, 1, 0]
    removals = [_removal(500 + i, BASE + dt.timedelta(minutes=t)) for i, t in enumerate(times)]
    expected = [r.event_id for r in sorted(removals, key=lambda r: (times[r.event_id - 500], r.pk))]
    pages, url = [], f"{URL}?page_size=2"
    while url:
        body = api.get(url).json()
        pages.append([row["id"] for row in body["results"]])
        url = body["next"]
    assert [len(page) for page in pages] == [2, 2, 2, 1]
    assert [event_id for page in pages for event_id in page] == expected
    # And back: the previous link of the last page gives the page before it.
    last = api.get(f"{URL}?page_size=2")
    for _ in range(3):
        last = api.get(last.json()["next"])
    previous = api.get(last.json()["previous"]).json()
    assert [row["id"] for row in previous["results"]] == pages[2]
    # since combines with the pages and survives in the links.
    first = api.get(f"{URL}?page_size=1&since=2021-01-10T09:01:00Z").json()
    assert "since=" in first["next"]
    assert [row["id"] for row in _feed(api, "since=2021-01-10T09:01:00Z&page_size=1")] == (
        expected[3:]
    )


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("since=yesterday", "since", "ISO 8601"),
        ("since=2021-13-01T00:00:00Z", "since", "ISO 8601"),
        ("since=0001-01-01T00:00:00%2B06:00", "since", "outside the range"),
        ("since=2021-01-01&since=2021-02-01", "since", "more than once"),
        ("updated_since=2021-01-01", "non_field_errors", "Known parameters: cursor, format"),
        ("page_size=0", "page_size", "from 1 to 1000"),
        ("page_size=1001", "page_size", "from 1 to 1000"),
        ("cursor=nonsense", "cursor", "Malformed cursor"),
        # t=0001-01-01T00:00:00+05:00&i=1: a moment before year 1 in UTC
        ("cursor=dD0wMDAxLTAxLTAxVDAwOjAwOjAwKzA1OjAwJmk9MQ==", "cursor", "Malformed cursor"),
    ],
)
def test_bad_queries_are_400s_that_say_why(api, query, field, words):
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert words in " ".join(body["errors"][field]), body


def test_unknown_parameter_names_the_known_ones(api):
    body = api.get(f"{URL}?sinse=2021-01-01").json()
    (message,) = body["errors"]["non_field_errors"]
    assert message == (
        "Unknown parameter 'sinse'. Known parameters: cursor, format, page_size, since."
    )


def test_anonymous_reads_it_and_no_person_appears(api, make_user, pending_event, moderator):
    event_review(event=pending_event, moderator=moderator, decision="publish")
    Event.objects.filter(pk=pending_event.pk).update(status=Event.Status.REJECTED)
    response = api.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    (row,) = response.json()["results"]
    assert set(row) == FIELDS
    text = response.content.decode()
    submitter = pending_event.submitted_by
    for person in (submitter.username, moderator.username, submitter.email or "@"):
        assert person not in text
    assert api.get("/api/v1/events/removed").status_code in (200, 301, 404)  # no 500
    assert api.post(URL, {}, format="json").status_code == 405


def test_removed_is_not_taken_for_an_event_id(api):
    assert api.get(URL).status_code == 200
    assert api.get("/api/v1/events/removed-x/").status_code == 404


def test_in_the_openapi_schema(api):
    schema = api.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/events/removed/"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["since"]["schema"] == {"type": "string", "format": "date-time"}
    assert {"cursor", "page_size"} <= set(parameters)
    assert {} in operation["security"]  # anonymous access
    assert "400" in operation["responses"]
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    row = schema["components"]["schemas"][page.rsplit("/", 1)[1]]["properties"]["results"]
    removal = schema["components"]["schemas"][row["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(removal["properties"]) == FIELDS
    assert removal["properties"]["removed_at"]["format"] == "date-time"
    assert removal["properties"]["merged_into"]["nullable"] is True


def test_bulk_title_update_of_ten_thousand_published_events_adds_no_removals():
    events = Event.objects.bulk_create(
        Event(
            title=f"Bulk {number}",
            date=dt.date(2020, 1, 1 + number % 28),
            country="KZ",
            grievances=["labor"],
            status=Event.Status.PUBLISHED,
        )
        for number in range(10_000)
    )
    ids = [event.pk for event in events]
    with connection.cursor() as cursor:
        # Count the trigger functions' calls in this transaction (pg_stat_xact_*).
        cursor.execute("SET LOCAL track_functions = 'pl'")
    before = EventRemoval.objects.count()
    Event.objects.filter(pk__in=ids).update(title="Bulk retitled")
    for event in events[:1000]:
        event.title = "Bulk updated one by one"
    Event.objects.bulk_update(events[:1000], ["title", "status"])  # status set, unchanged
    assert EventRemoval.objects.count() == before
    assert _function_calls("tracker_event_removal_on_update") == 0
    # A statement that does change the status records each event once.
    Event.objects.filter(pk__in=ids[:100]).update(status=Event.Status.ARCHIVED)
    assert EventRemoval.objects.count() == before + 100
    assert _function_calls("tracker_event_removal_on_update") == 100
    assert set(EventRemoval.objects.values_list("kind", flat=True)) == {"archived"}


def _function_calls(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions WHERE funcname = %s",
            [name],
        )
        return int(cursor.fetchone()[0])


# The README's incremental sync script, run for real.


def _readme_script() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Removed events and incremental sync", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's sync script"
    assert "def sync(" in match.group(1)
    return match.group(1)


def _psycopg(url: str) -> str:
    return "postgresql" + url[len("postgis") :]


def _drop(name: str) -> None:
    with psycopg.connect(_psycopg(database_url("postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sync_db(db, tmp_path):
    """A copy of the test database (demo data) for the server, written with plain SQL."""
    source = settings.DATABASES["default"]["NAME"]
    name = f"{source}_sync"
    _drop(name)
    archive = tmp_path / "copy.tar"
    env = {**os.environ, "MEDIA_ROOT": str(tmp_path / "no-media")}
    for script, url in (("backup.sh", database_url(source)), ("restore.sh", database_url(name))):
        result = subprocess.run(
            [f"scripts/{script}", str(archive)],
            cwd=ROOT,
            env={**env, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    try:
        yield database_url(name)
    finally:
        _drop(name)


def _published(conn) -> dict[str, str]:
    rows = conn.execute("SELECT id, title FROM tracker_event WHERE status = 'published'")
    return {str(event_id): title for event_id, title in rows}


def _delete_event(conn, event_id: int) -> None:
    """Delete an event and the rows that point at it, as psql would."""
    references = conn.execute(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = 'tracker_event'::regclass"
    ).fetchall()
    for table, column in references:
        conn.execute(f'DELETE FROM {table} WHERE "{column}" = %s', [event_id])
    conn.execute("DELETE FROM tracker_event WHERE id = %s", [event_id])


def test_readme_sync_script_against_a_live_server(sync_db, tmp_path):
    script = tmp_path / "sync_events.py"
    script.write_text(_readme_script(), encoding="utf-8")
    store = tmp_path / "events.json"
    prefix = os.environ.get("CACHE_KEY_PREFIX", "tracker-test") + "-sync"

    def run(base: str) -> str:
        # Pages of 3: the demo's events and the 4 removals take several.
        command = [sys.executable, str(script), "--api", f"{base}/api/v1", "--store", str(store)]
        result = subprocess.run(
            [*command, "--page-size", "3"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def stored() -> dict[str, str]:
        return {
            key: event["title"] for key, event in json.loads(store.read_text())["events"].items()
        }

    with (
        psycopg.connect(_psycopg(sync_db), autocommit=True) as conn,
        # A few hundred pages a run: more than the anonymous rate allows.
        serve_app(sync_db, CACHE_KEY_PREFIX=prefix, API_THROTTLE_ANON="100000/minute") as base,
    ):
        published = _published(conn)
        assert len(published) > 300  # the demo
        report = run(base)
        assert report == f"full download: {len(published)} events"
        assert stored() == published

        rejected, deleted, republished, edited, archived = (
            int(key) for key in sorted(published, key=int)[:5]
        )
        update = "UPDATE tracker_event SET {} WHERE id = %s"
        changes = [
            ("status = 'rejected', updated_at = now()", rejected),
            ("status = 'pending', updated_at = now()", republished),
            ("status = 'published', updated_at = now()", republished),
            ("title = 'Edited for the sync', updated_at = now()", edited),
            ("status = 'archived'", archived),  # a removal needs no updated_at
        ]
        for assignments, event_id in changes:
            conn.execute(update.format(assignments), [event_id])
        _delete_event(conn, deleted)
        kinds = dict(conn.execute("SELECT event_id, kind FROM tracker_eventremoval").fetchall())
        assert kinds == {
            rejected: "rejected",
            republished: "withdrawn",
            archived: "archived",
            deleted: "deleted",
        }

        report = run(base)
        # The overlap asks for the minutes before the first run again: idempotent. Events
        # the demo wrote in those minutes come again too.
        match = re.fullmatch(r"since (\S+): 4 removed, (\d+) updated, \d+ events", report)
        assert match, report
        (again,) = conn.execute(
            "SELECT count(*) FROM tracker_event WHERE status = 'published' AND updated_at >= %s "
            "AND id NOT IN (%s, %s)",
            [dt.datetime.fromisoformat(match.group(1)), republished, edited],
        ).fetchone()
        assert int(match.group(2)) == 2 + again
        now_published = _published(conn)
        assert stored() == now_published
        assert str(republished) in now_published
        assert now_published[str(edited)] == "Edited for the sync"
        assert not {str(rejected), str(deleted), str(archived)} & set(stored())

        report = run(base)  # nothing new: the same copy
        assert stored() == now_published
        assert json.loads(store.read_text())["synced_at"]
        assert report.endswith(f"{len(now_published)} events")
