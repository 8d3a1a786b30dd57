"""The submitter is never recoverable: not through the admin (lookups and reverse lookups of
every spelling, ordering, search, history, delete pages and actions, by a moderator, an
admin or a superuser), the review page (a trust signal only), the access log or the logs.
The admin also refuses a stale save instead of reverting somebody else's change."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client

from tracker.models import Event, Source

ROOT = Path(__file__).resolve().parents[2]
REPORTER = "whistle-reporter-7q"
REPORTER_EMAIL = "whistle.secret.7q@example.org"
TARGET_TITLE = "Target submission zq41"
SECRETS = (REPORTER, REPORTER_EMAIL, "whistle.secret")


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    # Accounts are made for every test; PBKDF2's million rounds are not what is tested here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _event(title: str, *, by=None, status=Event.Status.PUBLISHED, **extra) -> Event:
    event = Event.objects.create(
        title=title,
        date=dt.date(2021, 1, 10),
        country="KZ",
        grievances=["political"],
        status=status,
        submitted_by=by,
        **extra,
    )
    Source.objects.create(event=event, url=f"https://example.org/{event.pk}", title="A report")
    return event


def _user(username: str, role: str | None = None, **extra):
    user = get_user_model().objects.create_user(
        username=username, password="pw-12345!", email=f"{username}@example.org", **extra
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def world(db):
    reporter = _user(REPORTER, "Contributor")
    reporter.email = REPORTER_EMAIL
    reporter.save()
    published = [_event(f"Reporter's published zq{i}", by=reporter) for i in range(3)]
    target = _event(TARGET_TITLE, by=reporter, status=Event.Status.PENDING)
    rejected = _event("Reporter's rejected zq", by=reporter, status=Event.Status.REJECTED)
    newcomer = _user("newcomer-zq", "Contributor")
    fresh = _event("Newcomer's first zq", by=newcomer, status=Event.Status.PENDING)
    imported = _event("Imported zq", status=Event.Status.PENDING)
    return {
        "reporter": reporter,
        "published": published,
        "target": target,
        "rejected": rejected,
        "fresh": fresh,
        "imported": imported,
        "reporter_titles": [e.title for e in [*published, target, rejected]],
    }


def _roles() -> dict[str, Client]:
    clients = {}
    moderator = _user("mod-zq", "Moderator", is_staff=True)
    admin = _user("adm-zq", "Admin", is_staff=True)
    superuser = get_user_model().objects.create_superuser(
        "root-zq", "root-zq@example.org", "pw-12345!"
    )
    for name, user in (("moderator", moderator), ("admin", admin), ("superuser", superuser)):
        client = Client()
        client.force_login(user)
        clients[name] = client
    return clients


@pytest.fixture
def roles(world):
    return _roles()


def _assert_no_secret(response, *extra: str) -> None:
    body = response.content.decode(errors="replace")
    for secret in (*SECRETS, *extra):
        assert secret not in body, f"{secret!r} in {response.request['PATH_INFO']}"


def _event_lookups(world) -> list[tuple[str, str]]:
    pk = str(world["reporter"].pk)
    return [
        ("submitted_by", pk),
        ("submitted_by__exact", pk),
        ("submitted_by__id", pk),
        ("submitted_by__id__exact", pk),
        ("submitted_by__pk", pk),
        ("submitted_by_id", pk),
        ("submitted_by_id__exact", pk),
        ("submitted_by__gte", pk),
        ("submitted_by__lte", pk),
        ("submitted_by__gt", str(int(pk) - 1)),
        ("submitted_by__lt", str(int(pk) + 1)),
        ("submitted_by__in", f"{pk},{pk}"),
        ("submitted_by__range", f"{pk},{pk}"),
        ("submitted_by__isnull", "False"),
        ("submitted_by__isnull", "True"),
        ("submitted_by__username", REPORTER),
        ("submitted_by__username__startswith", "whistle"),
        ("submitted_by__username__icontains", "reporter"),
        ("submitted_by__email", REPORTER_EMAIL),
        ("submitted_by__email__iendswith", "example.org"),
        ("submitted_by__groups__name", "Contributor"),
        ("submitted_by__is_staff", "False"),
        ("SUBMITTED_BY".lower(), pk),
        ("sources__event__submitted_by", pk),
        ("sources__event__submitted_by__username", REPORTER),
        ("external_ids__event__submitted_by", pk),
        ("city__event__submitted_by", pk),
        ("organizers__events__submitted_by", pk),
        ("reviewed_by__submitted_events", str(world["target"].pk)),
        ("submitted_by__submitted_events", str(world["target"].pk)),
    ]


def test_no_event_lookup_reaches_the_submitter_for_any_admin_role(world, roles):
    everything = Event.objects.count()
    lookups = _event_lookups(world)
    for role, client in roles.items():
        unfiltered = client.get("/admin/tracker/event/")
        assert unfiltered.status_code == 200
        assert unfiltered.context["cl"].result_count == everything
        for lookup, value in lookups:
            response = client.get("/admin/tracker/event/?" + urlencode({lookup: value}))
            # The admin's own answer to a lookup it does not allow: 400, never a list.
            assert response.status_code == 400, (role, lookup, response.status_code)
            _assert_no_secret(response, *world["reporter_titles"])
        # Combined with allowed filters, still refused.
        response = client.get(
            "/admin/tracker/event/?status=published&submitted_by=" + str(world["reporter"].pk)
        )
        assert response.status_code == 400
    assert len(lookups) * len(roles) >= 90


def test_no_user_lookup_goes_back_from_an_event(world, roles):
    target = str(world["target"].pk)
    lookups = [
        ("submitted_events", target),
        ("submitted_events__exact", target),
        ("submitted_events__id", target),
        ("submitted_events__pk", target),
        ("submitted_events__in", target),
        ("submitted_events__gte", target),
        ("submitted_events__isnull", "False"),
        ("submitted_events__title", TARGET_TITLE),
        ("submitted_events__title__icontains", "zq41"),
        ("submitted_events__sources__url__contains", "example.org"),
        ("submitted_events__status", "pending"),
        ("reviewed_events", target),
        ("reviewed_events__submitted_by", target),
        ("groups__user__submitted_events", target),
        ("user_permissions__user__submitted_events", target),
        ("logentry__object_id", target),
        ("auth_token__user__submitted_events", target),
    ]
    for role, client in roles.items():
        for lookup, value in lookups:
            response = client.get("/admin/auth/user/?" + urlencode({lookup: value}))
            # A moderator may not list users at all; the others get the lookup refused.
            expected = 403 if role == "moderator" else 400
            assert response.status_code == expected, (role, lookup, response.status_code)
            _assert_no_secret(response)
    superuser = roles["superuser"]
    for path in ("/admin/auth/group/", "/admin/authtoken/tokenproxy/"):
        for lookup in ("user__submitted_events", "user__submitted_events__title"):
            response = superuser.get(f"{path}?{lookup}={target}")
            assert response.status_code == 400, (path, lookup)
            _assert_no_secret(response)


def test_ordering_and_search_do_not_use_the_submitter(world, roles):
    everything = Event.objects.count()
    for role, client in roles.items():
        for order in ("submitted_by", "-submitted_by__username", "99.-1.2"):
            response = client.get("/admin/tracker/event/?" + urlencode({"o": order}))
            assert response.status_code == 200, (role, order)
            assert response.context["cl"].result_count == everything
            _assert_no_secret(response)
        for term in (REPORTER, REPORTER_EMAIL, "whistle"):
            response = client.get("/admin/tracker/event/?" + urlencode({"q": term}))
            assert response.status_code == 200
            assert response.context["cl"].result_count == 0, (role, term)
        if role != "moderator":
            response = client.get("/admin/auth/user/?" + urlencode({"q": TARGET_TITLE}))
            assert response.status_code == 200
            assert response.context["cl"].result_count == 0
            response = client.get("/admin/auth/user/?" + urlencode({"o": "submitted_events"}))
            assert response.status_code == 200
    # The list filters and the search fields name no path to the submitter.
    from django.contrib import admin

    for model_admin in admin.site._registry.values():
        names = [str(f) for f in model_admin.list_filter if isinstance(f, str)]
        names += list(model_admin.search_fields) + list(model_admin.ordering or ())
        assert not [n for n in names if "submitted" in n], type(model_admin).__name__


def test_event_pages_history_and_delete_pages_name_no_submitter(world, roles):
    target = world["target"]
    for role, client in roles.items():
        change = client.get(f"/admin/tracker/event/{target.pk}/change/")
        assert change.status_code == 200, role
        assert "submitted_by" not in change.content.decode()
        _assert_no_secret(change)
        history = client.get(f"/admin/tracker/event/{target.pk}/history/")
        assert history.status_code == 200
        _assert_no_secret(history)
        record = target.history.latest()
        old = client.get(f"/admin/tracker/event/{target.pk}/history/{record.history_id}/")
        assert old.status_code == 200
        _assert_no_secret(old)
        delete = client.get(f"/admin/tracker/event/{target.pk}/delete/")
        assert delete.status_code == 200
        _assert_no_secret(delete)
        # The bulk action's confirmation page (and its "summary" of related objects).
        bulk = client.post(
            "/admin/tracker/event/",
            {
                "action": "delete_selected",
                "_selected_action": [e.pk for e in world["published"]] + [target.pk],
            },
        )
        assert bulk.status_code == 200
        assert "Are you sure" in bulk.content.decode()
        _assert_no_secret(bulk)
        assert Event.objects.filter(pk=target.pk).exists()


def test_a_users_admin_pages_do_not_list_what_they_submitted(world, roles):
    reporter = world["reporter"]
    for role in ("admin", "superuser"):
        change = roles[role].get(f"/admin/auth/user/{reporter.pk}/change/")
        assert change.status_code == 200
        body = change.content.decode()
        for title in world["reporter_titles"]:
            assert title not in body
        assert "submitted" not in body.lower()
    delete = roles["superuser"].get(f"/admin/auth/user/{reporter.pk}/delete/")
    assert delete.status_code == 200
    body = delete.content.decode()
    # SET_NULL: deleting the account keeps the events and does not list them.
    for title in world["reporter_titles"]:
        assert title not in body
    assert "Event:" not in body and "Events:" not in body


def _review_page(client: Client, event: Event, language: str = "en") -> str:
    response = client.get(f"/review/{event.pk}/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    _assert_no_secret(response)
    return response.content.decode()


def test_the_review_page_shows_a_trust_signal_not_an_identity(world, roles):
    moderator = roles["moderator"]
    # Three published, this one pending, one rejected: three accepted reports.
    assert "Submitted by a contributor with 3 accepted reports." in _review_page(
        moderator, world["target"]
    )
    # A published one does not count itself.
    assert "Submitted by a contributor with 2 accepted reports." in _review_page(
        moderator, world["published"][0]
    )
    assert "Submitted by a new contributor" in _review_page(moderator, world["fresh"])
    assert "Imported, not submitted by a contributor." in _review_page(moderator, world["imported"])
    assert "3 принятых отчёта" in _review_page(moderator, world["target"], "ru")
    assert "Қабылданған 3 хабарламасы бар" in _review_page(moderator, world["target"], "kk")
    Event.objects.filter(pk=world["published"][0].pk).update(status=Event.Status.ARCHIVED)
    assert "with 1 accepted report." in _review_page(moderator, world["published"][1])
    assert "2 принятых отчёта" in _review_page(moderator, world["target"], "ru")


# --- stale writes in the admin -----------------------------------------------------------


def _change_form_data(response) -> dict:
    """What a browser would post back from the admin change page, unchanged."""
    data: dict = {}
    forms = [response.context["adminform"].form]
    try:
        inlines = response.context["inline_admin_formsets"]
    except KeyError:  # the history's revert form has no inlines
        inlines = []
    for inline in inlines:
        formset = inline.formset
        for bound in formset.management_form:
            data[bound.html_name] = bound.value()
        forms += formset.forms
    for form in forms:
        for bound in form:
            value = bound.value()
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                data[bound.html_name] = [str(v) for v in value]
            elif isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            else:
                data[bound.html_name] = str(value)
    return data


def test_admin_refuses_a_stale_save_and_shows_the_stored_values(world, roles):
    event = world["published"][0]
    first, second = roles["moderator"], roles["admin"]
    url = f"/admin/tracker/event/{event.pk}/change/"
    data_a = _change_form_data(first.get(url))
    data_b = _change_form_data(second.get(url))
    assert data_a["expected_version"] == data_b["expected_version"] == str(event.version)

    saved = second.post(url, {**data_b, "title": "Changed by the second moderator"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    event.refresh_from_db()
    assert event.title == "Changed by the second moderator"
    assert event.version == int(data_b["expected_version"]) + 1

    stale = first.post(url, {**data_a, "arrests": "7"})
    assert stale.status_code == 200
    body = stale.content.decode()
    assert "Someone else changed this event" in body
    assert "Changed by the second moderator" in body  # the stored value, shown
    event.refresh_from_db()
    assert event.title == "Changed by the second moderator" and event.arrests != 7
    # The form now carries the stored version: saving again, knowingly, works.
    again = _change_form_data(stale)
    assert again["expected_version"] == str(event.version)
    resaved = first.post(url, again)
    assert resaved.status_code == 302
    event.refresh_from_db()
    assert event.arrests == 7 and event.version == int(again["expected_version"]) + 1
    # A form without a version is refused, not saved blindly.
    missing = {
        k: v for k, v in _change_form_data(first.get(url)).items() if k != "expected_version"
    }
    assert first.post(url, {**missing, "title": "No version"}).status_code == 200
    event.refresh_from_db()
    assert event.title != "No version"


def test_admin_history_revert_is_version_checked_too(world, roles):
    event = world["published"][1]
    client = roles["superuser"]
    url = f"/admin/tracker/event/{event.pk}/change/"
    client.post(url, {**_change_form_data(client.get(url)), "title": "Second title"})
    oldest = event.history.earliest()
    revert_url = f"/admin/tracker/event/{event.pk}/history/{oldest.history_id}/"
    revert_form = client.get(revert_url)
    assert revert_form.status_code == 200
    data = _change_form_data(revert_form)
    event.refresh_from_db()
    assert data["expected_version"] == str(event.version)
    # Someone saves in between: the revert built on the older read is refused.
    Event.objects.filter(pk=event.pk).update(title="Third title", version=event.version + 1)
    refused = client.post(revert_url, data)
    assert refused.status_code == 200
    assert "Someone else changed this event" in refused.content.decode()
    event.refresh_from_db()
    assert event.title == "Third title"


@pytest.fixture
def role_groups(transactional_db):
    # An earlier transactional test may have flushed the groups; the demo data is not needed.
    from tracker.roles import apply_roles

    apply_roles()


@pytest.mark.django_db(transaction=True)
def test_two_admins_saving_at_once_never_lose_an_update(role_groups):
    """Two moderators post the same change form at the same moment, 20 times: each time
    exactly one save wins and the other is told, and the version rises by one."""
    event = _event("Raced in the admin zq")
    clients = []
    for name in ("race-a-zq", "race-b-zq"):
        client = Client()
        client.force_login(_user(name, "Moderator", is_staff=True))
        clients.append(client)
    url = f"/admin/tracker/event/{event.pk}/change/"
    rounds, lost = 20, 0
    for round_no in range(rounds):
        forms = [_change_form_data(c.get(url)) for c in clients]
        barrier = threading.Barrier(2)
        results: list = [None, None]

        def post(i, forms=forms, barrier=barrier, results=results, round_no=round_no):
            try:
                barrier.wait(timeout=10)
                response = clients[i].post(url, {**forms[i], "title": f"r{round_no} by {i}"})
                results[i] = response.status_code
            finally:
                connection.close()

        threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        before = int(forms[0]["expected_version"])
        event.refresh_from_db()
        assert sorted(results) == [200, 302], (round_no, results)
        winner = results.index(302)
        if event.title != f"r{round_no} by {winner}" or event.version != before + 1:
            lost += 1
    assert lost == 0


# --- access log ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db.get("USER") or "postgres", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgis://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _serve_and_log(tmp_path: Path, **env: str) -> list[str]:
    """Start gunicorn the way scripts/run.sh does (from the repository root, so it reads
    gunicorn.conf.py), make a read and a write, stop it, and return its access log."""
    port = _free_port()
    log_file = tmp_path / f"access-{port}.log"
    process_env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **env,
    }
    if "ACCESS_LOG_IP" not in env:
        process_env.pop("ACCESS_LOG_IP", None)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            str(log_file),
            "--error-logfile",
            str(tmp_path / "error.log"),
        ],
        cwd=ROOT,
        env=process_env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/api/v1/taxonomy/", timeout=5).close()  # noqa: S310
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "error.log").read_text()) from None
                time.sleep(0.3)
        headers = {"X-Forwarded-For": "203.0.113.77", "Content-Type": "application/json"}
        write = urllib.request.Request(  # noqa: S310
            base + "/api/v1/events/", data=b"{}", headers=headers, method="POST"
        )
        try:
            urllib.request.urlopen(write, timeout=10)  # noqa: S310
        except urllib.error.HTTPError as error:
            assert error.code == 401
        read = urllib.request.Request(base + "/api/v1/taxonomy/?x=1", headers=headers)  # noqa: S310
        urllib.request.urlopen(read, timeout=10).close()  # noqa: S310
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    return [line for line in log_file.read_text().splitlines() if line.strip()]


def _write_line(lines: list[str]) -> str:
    [line] = [line for line in lines if '"POST /api/v1/events/' in line]
    return line


@pytest.mark.django_db
def test_access_log_has_no_client_address_by_default(tmp_path):
    lines = _serve_and_log(tmp_path)
    line = _write_line(lines)
    assert " 401 " in line
    for text in lines:
        assert "127.0.0.1" not in text and "127.0.0." not in text
        assert "203.0.113" not in text
        assert "Python-urllib" not in text  # nor the user agent, a fingerprint
    assert len(lines) >= 3


@pytest.mark.django_db
def test_access_log_can_truncate_or_keep_the_address(tmp_path):
    truncated = _write_line(_serve_and_log(tmp_path, ACCESS_LOG_IP="truncated"))
    assert truncated.startswith("127.0.0.0/24 ")
    assert "127.0.0.1" not in truncated and "203.0.113" not in truncated
    # Behind one proxy the client is the address it appended, truncated likewise.
    proxied = _write_line(_serve_and_log(tmp_path, ACCESS_LOG_IP="truncated", API_NUM_PROXIES="1"))
    assert proxied.startswith("203.0.113.0/24 ") and "203.0.113.77" not in proxied
    full = _write_line(_serve_and_log(tmp_path, ACCESS_LOG_IP="full"))
    assert full.startswith("127.0.0.1 ")


def test_truncation_rules_and_a_bad_setting():
    import runpy

    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    truncate = config["truncate_address"]
    assert truncate("192.0.2.77") == "192.0.2.0/24"
    assert truncate("2001:db8:1:2:3:4:5:6") == "2001:db8:1::/48"
    assert truncate("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert truncate("not-an-address") == "-"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("gunicorn")), "--check-config", "config.wsgi"],
        cwd=ROOT,
        env={**os.environ, "ACCESS_LOG_IP": "sometimes"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ACCESS_LOG_IP='sometimes' is not understood" in result.stdout + result.stderr


# --- logs and messages ---------------------------------------------------------------------


def test_submitting_reviewing_and_failing_leave_no_identity_in_the_logs(world, caplog):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    caplog.set_level("DEBUG")
    reporter = world["reporter"]
    api = APIClient(REMOTE_ADDR="192.0.2.51")
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=reporter).key}")
    created = api.post(
        "/api/v1/events/",
        {
            "title": "Logged submission zq",
            "date": "2020-03-02",
            "country": "KZ",
            "grievances": ["welfare"],
            "sources": [{"url": "https://example.org/zq-log", "title": "News"}],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    bad = api.post("/api/v1/events/", {"title": "", "date": "tomorrow"}, format="json")
    assert bad.status_code == 400
    _assert_no_secret(bad)
    moderator = _user("log-mod-zq", "Moderator", is_staff=True)
    page = Client(REMOTE_ADDR="192.0.2.52")
    page.force_login(moderator)
    event_id = created.json()["id"]
    reviewed = page.post(f"/review/{event_id}/", {"decision": "publish", "note": ""})
    assert reviewed.status_code in (200, 302)
    Client(REMOTE_ADDR="192.0.2.51").post(
        "/accounts/login/", {"username": REPORTER, "password": "wrong"}
    )
    text = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {getattr(r, 'request', '')}" for r in caplog.records
    )
    for secret in (*SECRETS, "192.0.2.51"):
        assert secret not in text
    assert re.search(r"AXES", text)  # the lockout did log, masked
