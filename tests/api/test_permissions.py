"""Who may do what: anonymous, the contributor, another contributor, a moderator, across
read, create, edit and review; pending events stay invisible to the public everywhere."""

import csv
import io

import pytest
from django.core.management import call_command
from django.test import override_settings

from tracker.models import Event

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "contributor", "other_contributor", "moderator"]


@pytest.fixture
def clients(as_user, contributor, other_contributor, moderator):
    return {
        "anonymous": as_user(None),
        "contributor": as_user(contributor),
        "other_contributor": as_user(other_contributor),
        "moderator": as_user(moderator),
    }


def _visible_everywhere(client, event: Event) -> dict[str, bool]:
    detail = client.get(f"/api/v1/events/{event.pk}/").status_code == 200
    listed = event.pk in {
        e["id"] for e in client.get("/api/v1/events/?page_size=1000&year=2020").json()["results"]
    }
    geojson = event.pk in {
        f["id"]
        for f in client.get("/api/v1/events/?format=geojson&page_size=1000&year=2020").json()[
            "features"
        ]
    }
    content = b"".join(client.get("/api/v1/events/?format=csv&year=2020").streaming_content)
    in_csv = event.pk in {int(r["id"]) for r in csv.DictReader(io.StringIO(content.decode()))}
    return {"detail": detail, "list": listed, "geojson": geojson, "csv": in_csv}


def _trend_events_2020(client) -> int:
    rows = client.get("/api/v1/stats/trends/?year=2020").json()["results"]
    return sum(row["events"] for row in rows)


def test_pending_submission_is_invisible_to_public_and_other_contributors(clients, pending_event):
    for role in ("anonymous", "other_contributor"):
        assert _visible_everywhere(clients[role], pending_event) == {
            "detail": False, "list": False, "geojson": False, "csv": False,
        }, role  # fmt: skip
    # Lists are public data only, even for the submitter and moderators...
    seen = _visible_everywhere(clients["contributor"], pending_event)
    assert seen == {"detail": True, "list": False, "geojson": False, "csv": False}
    assert _visible_everywhere(clients["moderator"], pending_event)["detail"] is True


def test_pending_submission_is_not_counted_in_trends(
    clients, pending_event, django_capture_on_commit_callbacks
):
    before = _trend_events_2020(clients["anonymous"])
    assert before == Event.objects.published().filter(date__year=2020).count()
    # The cache version is bumped when the transaction commits, as in production.
    with django_capture_on_commit_callbacks(execute=True):
        response = clients["moderator"].post(
            f"/api/v1/events/{pending_event.pk}/review/", {"decision": "publish"}, format="json"
        )
    assert response.status_code == 200
    # Published now: the cached trends must see it at once.
    assert _trend_events_2020(clients["anonymous"]) == before + 1
    assert _visible_everywhere(clients["anonymous"], pending_event) == {
        "detail": True, "list": True, "geojson": True, "csv": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("role", "expected"),
    [("anonymous", 401), ("contributor", 201), ("other_contributor", 201), ("moderator", 201)],
)
def test_create(clients, submission_data, role, expected):
    submission_data["external_ids"] = [f"test:{role}"]
    response = clients[role].post("/api/v1/events/", submission_data, format="json")
    assert response.status_code == expected, response.content
    if expected == 201:
        body = response.json()
        assert body["status"] == "pending"
        assert "submitted_by" not in body
        event = Event.objects.get(pk=body["id"])
        assert event.status == Event.Status.PENDING
        assert event.city.name == "Almaty"
        assert [s.url for s in event.sources.all()] == ["https://example.org/news/1"]
    else:
        assert "detail" in response.json()


def test_signed_in_user_without_role_cannot_submit(as_user, make_user, submission_data):
    response = as_user(make_user("nobody")).post("/api/v1/events/", submission_data, format="json")
    assert response.status_code == 403
    assert "contributor" in response.json()["detail"]


@pytest.mark.parametrize(
    ("role", "expected"),
    [("anonymous", 401), ("contributor", 200), ("other_contributor", 404), ("moderator", 200)],
)
def test_edit_pending(clients, pending_event, role, expected):
    response = clients[role].patch(
        f"/api/v1/events/{pending_event.pk}/", {"arrests": 3}, format="json"
    )
    assert response.status_code == expected, response.content
    pending_event.refresh_from_db()
    assert pending_event.arrests == (3 if expected == 200 else 0)
    assert pending_event.status == Event.Status.PENDING


@pytest.mark.parametrize(
    ("role", "expected"),
    [("anonymous", 401), ("contributor", 403), ("other_contributor", 403), ("moderator", 200)],
)
def test_edit_published(clients, role, expected):
    event = Event.objects.published().order_by("id").first()
    response = clients[role].patch(
        f"/api/v1/events/{event.pk}/", {"title": "Edited title"}, format="json"
    )
    assert response.status_code == expected, response.content
    event.refresh_from_db()
    assert (event.title == "Edited title") == (expected == 200)


def test_contributor_cannot_edit_own_submission_after_publication(
    clients, pending_event, moderator
):
    clients["moderator"].post(
        f"/api/v1/events/{pending_event.pk}/review/", {"decision": "publish"}, format="json"
    )
    response = clients["contributor"].patch(
        f"/api/v1/events/{pending_event.pk}/", {"title": "Changed"}, format="json"
    )
    assert response.status_code == 403
    assert "pending" in response.json()["detail"]


@pytest.mark.parametrize(
    ("role", "expected"),
    [("anonymous", 401), ("contributor", 403), ("other_contributor", 404), ("moderator", 200)],
)
def test_review(clients, pending_event, role, expected):
    # The other contributor cannot even see the pending event, hence 404 before 403.
    response = clients[role].post(
        f"/api/v1/events/{pending_event.pk}/review/", {"decision": "publish"}, format="json"
    )
    if role == "other_contributor":
        expected = 403  # review is moderator-only: refused before the event is looked up
    assert response.status_code == expected, response.content
    pending_event.refresh_from_db()
    assert (pending_event.status == Event.Status.PUBLISHED) == (expected == 200)


def test_reject_needs_a_reason_and_the_contributor_reads_it(clients, pending_event):
    moderator = clients["moderator"]
    url = f"/api/v1/events/{pending_event.pk}/review/"
    response = moderator.post(url, {"decision": "reject"}, format="json")
    assert response.status_code == 400
    assert "reason" in response.json()["detail"]
    response = moderator.post(
        url, {"decision": "reject", "note": "Duplicate of event 12."}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    mine = clients["contributor"].get("/api/v1/submissions/").json()["results"]
    (entry,) = [e for e in mine if e["id"] == pending_event.pk]
    assert entry["status"] == "rejected"
    assert entry["review_note"] == "Duplicate of event 12."
    # Rejected stays out of public view, and the submitter can no longer edit it.
    assert clients["anonymous"].get(f"/api/v1/events/{pending_event.pk}/").status_code == 404
    assert (
        clients["contributor"]
        .patch(f"/api/v1/events/{pending_event.pk}/", {"arrests": 1}, format="json")
        .status_code
        == 403
    )


def test_publishing_needs_a_source(clients, pending_event):
    pending_event.sources.all().delete()
    response = clients["moderator"].post(
        f"/api/v1/events/{pending_event.pk}/review/", {"decision": "publish"}, format="json"
    )
    assert response.status_code == 400
    assert "source" in response.json()["detail"]
    pending_event.refresh_from_db()
    assert pending_event.status == Event.Status.PENDING


def test_submission_needs_a_source(clients, submission_data):
    submission_data.pop("sources")
    response = clients["contributor"].post("/api/v1/events/", submission_data, format="json")
    assert response.status_code == 400
    assert "sources" in response.json()["errors"]


def test_submissions_list_shows_only_own(clients, pending_event):
    assert clients["anonymous"].get("/api/v1/submissions/").status_code == 401
    mine = clients["contributor"].get("/api/v1/submissions/").json()["results"]
    assert [e["id"] for e in mine] == [pending_event.pk]
    assert mine[0]["status"] == "pending"
    assert clients["other_contributor"].get("/api/v1/submissions/").json()["results"] == []


@pytest.mark.parametrize(
    ("role", "expected"),
    [("anonymous", 401), ("contributor", 403), ("other_contributor", 403), ("moderator", 200)],
)
def test_history_is_for_moderators(clients, pending_event, role, expected):
    response = clients[role].get(f"/api/v1/events/{pending_event.pk}/history/")
    assert response.status_code == expected


def test_history_records_who_and_when_but_never_the_submitter(
    clients, pending_event, contributor, moderator
):
    clients["contributor"].patch(
        f"/api/v1/events/{pending_event.pk}/", {"arrests": 4}, format="json"
    )
    clients["moderator"].patch(
        f"/api/v1/events/{pending_event.pk}/", {"title": "Pensioners at the city hall"},
        format="json",
    )  # fmt: skip
    clients["moderator"].post(
        f"/api/v1/events/{pending_event.pk}/review/", {"decision": "publish"}, format="json"
    )
    response = clients["moderator"].get(f"/api/v1/events/{pending_event.pk}/history/")
    entries = response.json()
    assert [e["type"] for e in entries][-1] == "created"
    assert entries[0]["reason"] == "review: publish" and entries[0]["user"] == "mod"
    title_change = next(e for e in entries if any(c["field"] == "title" for c in e["changes"]))
    assert title_change["user"] == "mod"
    change = next(c for c in title_change["changes"] if c["field"] == "title")
    assert change == {
        "field": "title", "old": "Pensioners at the akimat", "new": "Pensioners at the city hall",
    }  # fmt: skip
    arrests_change = next(e for e in entries if any(c["field"] == "arrests" for c in e["changes"]))
    assert arrests_change["user"] is None  # the contributor's own edit is anonymous
    text = response.content.decode()
    assert contributor.username not in text
    assert "submitted_by" not in text


def test_session_authentication_works_for_pages(client, contributor, submission_data):
    client.force_login(contributor)
    response = client.get("/api/v1/submissions/")
    assert response.status_code == 200
    # Session writes are CSRF-protected like any form of the site.
    from rest_framework.test import APIClient

    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(contributor)
    response = strict.post("/api/v1/events/", submission_data, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_issue_token_command_and_token_endpoint(contributor, api, capsys):
    call_command("issue_token", "alice")
    token = capsys.readouterr().out.strip()
    assert len(token) == 40
    response = api.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "pw-12345!"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"token": token}
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/submissions/").status_code == 200


def test_issue_token_for_unknown_user_fails_clearly(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No user"):
        call_command("issue_token", "ghost")


def test_wrong_password_gets_400(api, contributor):
    response = api.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "wrong"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid input: Wrong username or password."


# The rate limit alone, with the login lockout (which answers after fewer failures) off:
# both guard the endpoint, tests/reliability/test_login_throttle.py covers the lockout.
@override_settings(AXES_ENABLED=False)
def test_token_endpoint_is_throttled_in_redis(api, contributor):
    codes = [
        api.post(
            "/api/v1/auth/token/", {"username": "alice", "password": "wrong"}, format="json"
        ).status_code
        for _ in range(11)
    ]
    assert codes[:10] == [400] * 10
    assert codes[10] == 429
    response = api.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "pw-12345!"}, format="json"
    )
    assert response.status_code == 429
    assert response.json()["retry_after_seconds"] > 0
    assert "Retry-After" in response


def test_anonymous_and_signed_in_clients_are_throttled_separately(
    api, as_user, contributor, monkeypatch
):
    from rest_framework.throttling import SimpleRateThrottle

    # Small rates so the test stays short; the counting is the real thing, in Redis.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/minute", "user": "5/minute"}
    )
    anonymous = [api.get("/api/v1/taxonomy/").status_code for _ in range(4)]
    assert anonymous == [200, 200, 200, 429]
    client = as_user(contributor)
    signed_in = [client.get("/api/v1/taxonomy/").status_code for _ in range(6)]
    assert signed_in == [200] * 5 + [429]
    from django.core.cache import cache

    assert cache.keys("throttle_*")


def test_history_shows_location_and_organizer_changes(clients, pending_event):
    moderator = clients["moderator"]
    response = moderator.patch(
        f"/api/v1/events/{pending_event.pk}/",
        {"organizers": ["New group"], "longitude": 76.95, "latitude": 43.24},
        format="json",
    )
    assert response.status_code == 200, response.content
    entries = moderator.get(f"/api/v1/events/{pending_event.pk}/history/").json()
    changes = {c["field"]: c for e in entries for c in e["changes"]}
    assert changes["location"]["new"] == [76.95, 43.24]
    assert "organizers" in changes
