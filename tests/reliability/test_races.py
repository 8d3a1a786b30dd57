"""Concurrent writers of one event, raced with real threads against PostgreSQL.

Each race starts its requests behind a Barrier, so they overlap; each thread has its own
database connection (closed at its end), as two requests to a server would. Every race is
repeated TRIALS times and counts what was lost; the figures are printed (run with -s) and
named in every assertion's message.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from functools import partial

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tracker.models import Event
from tracker.services.events import event_create

pytestmark = pytest.mark.django_db(transaction=True)

TRIALS = 20


@pytest.fixture(autouse=True)
def _roles(django_db_setup):
    # Transactional tests flush every table, the role groups included.
    from tracker.roles import apply_roles

    apply_roles()


@pytest.fixture
def people(django_user_model):
    from django.contrib.auth.models import Group

    # No passwords: the clients sign in with a token or force_login, and hashing three
    # passwords per test would cost more than the races themselves.
    users = {}
    for key, role in (
        ("contributor", "Contributor"),
        ("moderator", "Moderator"),
        ("moderator2", "Moderator"),
    ):
        users[key] = django_user_model.objects.create(username=f"h1-{key}")
        users[key].groups.add(Group.objects.get(name=role))
    return users


def api_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def new_event(submitted_by, title: str = "Rally at the akimat") -> Event:
    return event_create(
        fields={
            "title": title,
            "date": dt.date(2020, 6, 6),
            "country": "KZ",
            "grievances": ["welfare"],
            "arrests": 1,
        },
        sources=[{"url": "https://example.org/report", "title": "A report"}],
        submitted_by=submitted_by,
        actor=submitted_by,
    )


def race(*calls):
    """Run the calls at the same moment, one thread (and connection) each; their results."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index, call):
        try:
            barrier.wait(timeout=20)
            results[index] = call()
        except BaseException as exc:  # re-raised in the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a racing request hung"
    if errors:
        raise errors[0]
    return results


def report(name: str, figures: dict) -> str:
    line = f"[races] {name}: " + ", ".join(f"{key}={value}" for key, value in figures.items())
    print(line)
    return line


def event_form_data(event: Event, **changes) -> dict:
    """What /review/<id>/edit/ posts for `event` as its page showed it, with `changes`."""
    data = {
        "version": event.version,
        "title": event.title,
        "description": event.description,
        "date": event.date.isoformat(),
        "date_precision": event.date_precision,
        "country": event.country,
        "grievances": list(event.grievances),
        "arrests": "" if event.arrests is None else event.arrests,
        "sources-TOTAL_FORMS": "1",
        "sources-INITIAL_FORMS": "0",
        "sources-MIN_NUM_FORMS": "0",
        "sources-MAX_NUM_FORMS": "1000",
        "sources-0-url": "https://example.org/report",
        "sources-0-title": "A report",
    }
    data.update(changes)
    return data


def test_two_api_patches_to_different_fields_both_survive(people):
    first, second = api_client(people["moderator"]), api_client(people["moderator2"])
    lost = 0
    statuses: Counter = Counter()
    for trial in range(TRIALS):
        event = new_event(people["contributor"])
        url = f"/api/v1/events/{event.pk}/"
        title = f"Retitled {trial}"
        responses = race(
            partial(first.patch, url, {"title": title}, format="json"),
            partial(second.patch, url, {"arrests": 40 + trial}, format="json"),
        )
        statuses.update(r.status_code for r in responses)
        event.refresh_from_db()
        # A write whose version bump was lost is a lost update too: If-Match would miss it.
        if (event.title, event.arrests, event.version) != (title, 40 + trial, 3):
            lost += 1
        assert event.history.count() == 3
    figures = report("PATCH title vs PATCH arrests", {"trials": TRIALS, "lost": lost, **statuses})
    assert lost == 0 and statuses == {200: 2 * TRIALS}, figures


def test_contributor_patch_never_unpublishes(people):
    contributor = api_client(people["contributor"])
    moderator = api_client(people["moderator"])
    unpublished = 0
    outcomes: Counter = Counter()
    for trial in range(TRIALS):
        event = new_event(people["contributor"])
        url = f"/api/v1/events/{event.pk}/"
        edit, review = race(
            partial(contributor.patch, url, {"arrests": 100 + trial}, format="json"),
            partial(moderator.post, f"{url}review/", {"decision": "publish"}, format="json"),
        )
        event.refresh_from_db()
        assert review.status_code == 200, review.content
        if event.status != Event.Status.PUBLISHED:
            unpublished += 1
        # Either the edit came first (and was kept), or it found the event published.
        if edit.status_code == 200:
            outcomes["edit first"] += 1
            assert event.arrests == 100 + trial
            assert event.version == 3
        else:
            outcomes["publish first, edit refused"] += 1
            assert edit.status_code == 403, edit.content
            assert "pending" in edit.json()["detail"]
            assert event.arrests == 1
            assert event.version == 2
    figures = report(
        "contributor PATCH vs moderator publish",
        {"trials": TRIALS, "unpublished": unpublished, **outcomes},
    )
    assert unpublished == 0, figures


def test_publish_vs_reject_through_the_api(people):
    first, second = api_client(people["moderator"]), api_client(people["moderator2"])
    wrong = 0
    winners: Counter = Counter()
    for _ in range(TRIALS):
        event = new_event(people["contributor"])
        url = f"/api/v1/events/{event.pk}/review/"
        publish, reject = race(
            partial(first.post, url, {"decision": "publish"}, format="json"),
            partial(second.post, url, {"decision": "reject", "note": "Dup."}, format="json"),
        )
        event.refresh_from_db()
        codes = sorted([publish.status_code, reject.status_code])
        if codes != [200, 409]:
            wrong += 1
            continue
        winner, loser = (publish, reject) if publish.status_code == 200 else (reject, publish)
        winners[winner.json()["status"]] += 1
        assert event.status == winner.json()["status"]
        assert event.version == 2
        body = loser.json()
        assert body["code"] == "already_reviewed"
        assert f"already {event.status} by a moderator at" in body["detail"]
        assert people["contributor"].username not in body["detail"]
    figures = report(
        "API publish vs reject", {"trials": TRIALS, "not one 200 + one 409": wrong, **winners}
    )
    assert wrong == 0, figures


def test_publish_vs_reject_on_the_review_page(people):
    first, second = page_client(people["moderator"]), page_client(people["moderator2"])
    wrong = 0
    winners: Counter = Counter()
    for _ in range(TRIALS):
        event = new_event(people["contributor"])
        url = reverse("review-event", args=[event.pk])
        publish, reject = race(
            partial(first.post, url, {"decision": "publish", "version": event.version}),
            partial(
                second.post,
                url,
                {"decision": "reject", "note": "Duplicate.", "version": event.version},
            ),
        )
        event.refresh_from_db()
        codes = sorted([publish.status_code, reject.status_code])
        if codes != [302, 409]:
            wrong += 1
            continue
        loser = reject if publish.status_code == 302 else publish
        winners[event.status] += 1
        assert event.version == 2
        html = loser.content.decode()
        assert f"This submission was already {event.status} by a moderator at" in html
        assert "Your decision was not recorded." in html
        assert people["contributor"].username not in html
    figures = report(
        "page publish vs reject", {"trials": TRIALS, "not one 302 + one 409": wrong, **winners}
    )
    assert wrong == 0, figures


def test_two_page_edits_of_one_version(people):
    first, second = page_client(people["moderator"]), page_client(people["moderator2"])
    reverted = 0
    wrong = 0
    for trial in range(TRIALS):
        event = new_event(people["contributor"])
        url = reverse("review-edit", args=[event.pk])
        title = f"Title fixed {trial}"
        renamed, counted = race(
            partial(first.post, url, event_form_data(event, title=title)),
            partial(second.post, url, event_form_data(event, arrests=50 + trial)),
        )
        event.refresh_from_db()
        codes = sorted([renamed.status_code, counted.status_code])
        if codes != [302, 409]:
            wrong += 1
            continue
        assert event.version == 2
        original = "Rally at the akimat"
        if renamed.status_code == 302:
            kept = (event.title, event.arrests) == (title, 1)
            refused, expected = (
                counted,
                {"Title": (original, title), "Arrests": (f"{50 + trial}", "1")},
            )
        else:
            kept = (event.title, event.arrests) == (original, 50 + trial)
            refused, expected = (
                renamed,
                {"Title": (title, original), "Arrests": ("1", f"{50 + trial}")},
            )
        if not kept:
            reverted += 1
        rows = {r["label"]: (r["yours"], r["stored"]) for r in refused.context["differences"]}
        assert rows == expected, rows
        assert "Someone else saved this event" in refused.content.decode()
    figures = report(
        "two page edits of one version",
        {"trials": TRIALS, "not one 302 + one 409": wrong, "reverted": reverted},
    )
    assert wrong == 0 and reverted == 0, figures


def test_the_conflict_page_reapplies_over_the_current_version(people):
    first, second = page_client(people["moderator"]), page_client(people["moderator2"])
    event = new_event(people["contributor"])
    url = reverse("review-edit", args=[event.pk])
    assert first.post(url, event_form_data(event, title="First fix")).status_code == 302
    conflict = second.post(url, event_form_data(event, arrests=7))
    assert conflict.status_code == 409
    html = conflict.content.decode()
    assert "First fix" in html and "Rally at the akimat" in html
    assert 'name="version" value="2"' in html
    # The form on the conflict page posts the second moderator's values again, at version 2.
    data = dict(conflict.context["resubmit"])
    data["version"] = conflict.context["event"].version
    assert second.post(url, data).status_code == 302
    event.refresh_from_db()
    assert (event.title, event.arrests, event.version) == ("Rally at the akimat", 7, 3)


def test_if_match(people):
    moderator = api_client(people["moderator"])
    event = new_event(people["contributor"])
    url = f"/api/v1/events/{event.pk}/"

    read = moderator.get(url)
    assert read["ETag"] == f'"{event.pk}-1"'
    assert moderator.get(f"{url}?format=geojson")["ETag"] == f'"{event.pk}-1-geojson"'
    fresh = moderator.patch(url, {"arrests": 2}, format="json", HTTP_IF_MATCH=read["ETag"])
    assert fresh.status_code == 200, fresh.content
    assert fresh["ETag"] == f'"{event.pk}-2"'

    stale = moderator.patch(url, {"arrests": 3}, format="json", HTTP_IF_MATCH=read["ETag"])
    assert stale.status_code == 412
    body = stale.json()
    assert body["code"] == "precondition_failed"
    assert "changed since you read it" in body["detail"] and "GET it again" in body["detail"]
    for tag in (f'W/"{event.pk}-2"', f'"{event.pk + 1}-2"', '"something-else"'):
        response = moderator.patch(url, {"arrests": 3}, format="json", HTTP_IF_MATCH=tag)
        assert response.status_code == 412, tag
    for bad in ("2", f"{event.pk}-2", '"unterminated', ""):
        response = moderator.patch(url, {"arrests": 3}, format="json", HTTP_IF_MATCH=bad)
        assert response.status_code == 400, bad
        assert "If-Match" in response.json()["detail"]
    event.refresh_from_db()
    assert (event.arrests, event.version) == (2, 2)

    listed = f'"{event.pk}-1", "{event.pk}-2-geojson"'
    assert (
        moderator.patch(url, {"arrests": 4}, format="json", HTTP_IF_MATCH=listed).status_code == 200
    )
    assert moderator.patch(url, {"arrests": 5}, format="json", HTTP_IF_MATCH="*").status_code == 200
    review = moderator.post(
        f"{url}review/", {"decision": "publish"}, format="json", HTTP_IF_MATCH=f'"{event.pk}-1"'
    )
    assert review.status_code == 412
    review = moderator.post(
        f"{url}review/", {"decision": "publish"}, format="json", HTTP_IF_MATCH=f'"{event.pk}-4"'
    )
    assert review.status_code == 200 and review["ETag"] == f'"{event.pk}-5"'


def test_if_match_race_lets_one_writer_through(people):
    first, second = api_client(people["moderator"]), api_client(people["moderator2"])
    wrong = 0
    for trial in range(TRIALS):
        event = new_event(people["contributor"])
        url = f"/api/v1/events/{event.pk}/"
        tag = first.get(url)["ETag"]
        one, other = race(
            partial(first.patch, url, {"title": f"A {trial}"}, format="json", HTTP_IF_MATCH=tag),
            partial(second.patch, url, {"arrests": 9}, format="json", HTTP_IF_MATCH=tag),
        )
        event.refresh_from_db()
        if sorted([one.status_code, other.status_code]) != [200, 412]:
            wrong += 1
            continue
        assert event.version == 2
        assert (event.title == f"A {trial}") == (one.status_code == 200)
        assert (event.arrests == 9) == (other.status_code == 200)
    figures = report(
        "two PATCHes with one If-Match", {"trials": TRIALS, "not one 200 + one 412": wrong}
    )
    assert wrong == 0, figures
