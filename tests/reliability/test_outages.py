"""Outages degrade, they don't crash: a real app (gunicorn) loses Redis and PostgreSQL
mid-run, and every answer stays a 200 or a clear 503, never a 500.

Each fault is the test's own: a redis-server on a free port that is paused (SIGSTOP: a
Redis that hangs) and then SIGKILLed, and a TCP relay in front of PostgreSQL that is cut
(every open connection reset, new ones refused) and then opened again on the same port.
The shared PostgreSQL and Redis of the machine are never touched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
import redis
from django.db import connection
from rest_framework.authtoken.models import Token

from config.celery import app as celery_app
from tests.browser.support import _database_url
from tracker.models import Event
from tracker.services.geocoding import events_awaiting_geocoding

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "pw-12345!"  # make_user's
# A point in Astana with no city: the submission's geocoding has to fill it in.
ASTANA = {"longitude": 71.43, "latitude": 51.13}
NO_GRACE = dt.timedelta(0)

pytestmark = pytest.mark.django_db
TITLE = "Outage test: "

FIGURES = {"urls_tried": 0, "non_500": 0, "outages_survived": 0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _public_urls(event_id: int) -> list[str]:
    return [
        "/api/v1/events/",
        "/api/v1/events/?country=KZ&grievance=welfare",
        f"/api/v1/events/{event_id}/",
        "/api/v1/events/?format=geojson",
        "/api/v1/events/?format=csv",
        "/api/v1/stats/trends/",
        "/api/v1/stats/trends/?by=grievance&interval=month",
        "/api/v1/taxonomy/",
        "/api/v1/cities/?q=Alm",
        "/",
        "/dashboard/",
        "/dashboard/?grievance=welfare",
        f"/events/{event_id}/",
    ]


# -- a small HTTP client: cookies, no redirects followed, no exception on an error status --


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes
    seconds: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Http:
    def __init__(self, base: str):
        self.base = base
        self.cookies = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect
        )

    def request(self, method: str, path: str, *, body=None, headers=None) -> Reply:
        request = urllib.request.Request(  # noqa: S310 - self.base is http://127.0.0.1
            self.base + path, data=body, headers=headers or {}, method=method
        )
        started = time.monotonic()
        try:
            with self.opener.open(request, timeout=30) as response:
                status, head, data = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, head, data = error.code, dict(error.headers), error.read()
        FIGURES["urls_tried"] += 1
        FIGURES["non_500"] += status != 500
        return Reply(status, head, data, time.monotonic() - started)

    def get(self, path: str, **kwargs) -> Reply:
        return self.request("GET", path, **kwargs)

    def post_json(self, path: str, data: dict, token: str) -> Reply:
        headers = {"Content-Type": "application/json", "Authorization": f"Token {token}"}
        return self.request("POST", path, body=json.dumps(data).encode(), headers=headers)

    def login(self, username: str) -> None:
        page = self.get("/accounts/login/")
        assert page.status == 200, page.text[:500]
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        form = {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
        reply = self.request(
            "POST",
            "/accounts/login/",
            body=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert reply.status == 302, reply.text[:500]


# -- the faults ---------------------------------------------------------------------------


class RedisServer:
    """A redis-server of the test's own, without persistence: a restart starts empty."""

    def __init__(self, port: int, workdir: Path):
        self.port, self.workdir, self.process = port, workdir, None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.process.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class TcpRelay:
    """127.0.0.1:<port> -> PostgreSQL. stop() is the database going away mid-run: the
    listener closes and every open connection is reset; start() opens the same port again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = _free_port()
        self.listener = None
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(sock)
        # shutdown acts at once, even while the pump thread still waits on the socket
        for step in (lambda: sock.shutdown(socket.SHUT_RDWR), sock.close):
            with contextlib.suppress(OSError):
                step()

    def stop(self) -> None:
        if self.listener is not None:
            self._close(self.listener)
            self.listener = None
        with self.lock:
            open_sockets = list(self.sockets)
        for sock in open_sockets:
            self._close(sock)


# -- the app --------------------------------------------------------------------------------


def _app_env(*, database_url: str, redis_url: str, name: str) -> dict:
    suffix = f"-outages-{name}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "CACHE_KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "tracker-test") + suffix,
        "CELERY_TASK_DEFAULT_QUEUE": os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "tracker-test")
        + suffix,
        # production-like: DEBUG off (so Django's own 500 handling is what is tested), a
        # strong key, plain HTTP on 127.0.0.1, static files without collectstatic
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_INSECURE_LOCAL_HTTP": "1",
        "STATICFILES_BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
        "DATABASE_CONN_MAX_AGE": "60",
        "PYTHONPATH": str(ROOT),
    }
    return env


class App:
    def __init__(self, env: dict, log: Path):
        self.env, self.log_path = env, log
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = None

    def start(self) -> None:
        self.log = self.log_path.open("wb")
        command = [str(BIN / "gunicorn"), "config.wsgi", "-b", f"127.0.0.1:{self.port}"]
        command += ["-w", "1", "--threads", "4", "--timeout", "60"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 40
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=5):  # noqa: S310
                    return
            except urllib.error.HTTPError:
                return  # it answers (503: something is down, which the test may want)
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start:\n{self.log_text()}")
                time.sleep(0.2)

    def log_text(self, tail: int = 5000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)
        self.log.close()


def _assert_all_answer(http: Http, urls: list[str], *, status: int, app: App, max_seconds=3.0):
    slowest = 0.0
    for url in urls:
        reply = http.get(url)
        assert reply.status == status, (
            f"{url}: {reply.status}\n{reply.text[:300]}\n{app.log_text()}"
        )
        slowest = max(slowest, reply.seconds)
        assert reply.seconds < max_seconds, f"{url} took {reply.seconds:.2f} s"
    return slowest


def _submission(title: str) -> dict:
    return {
        "title": TITLE + title,
        "date": "2021-01-10",
        "country": "KZ",
        **ASTANA,
        "grievances": ["political"],
        "sources": [{"url": "https://example.org/outage", "title": "Report"}],
    }


def _wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def people(django_db_setup, django_db_blocker):
    """Accounts committed outside the tests' transactions, so that the app (another
    process) sees them, and removed afterwards with what the app created: no transactional
    test, whose flush would take the demo data with it."""
    from django.contrib.auth.models import Group, User

    with django_db_blocker.unblock():
        users = {}
        for name, role in (
            ("outage-moderator", "Moderator"),
            ("outage-contributor", "Contributor"),
        ):
            User.objects.filter(username=name).delete()
            users[role] = User.objects.create_user(username=name, password=PASSWORD)
            users[role].groups.add(Group.objects.get(name=role))
        token = Token.objects.create(user=users["Contributor"]).key
    yield {"token": token}
    with django_db_blocker.unblock():
        Event.objects.filter(title__startswith=TITLE).delete()
        User.objects.filter(pk__in=[user.pk for user in users.values()]).delete()


@pytest.mark.worker
def test_redis_hung_then_killed_mid_run(people, tmp_path):
    event = Event.objects.published().order_by("pk").first()
    urls = _public_urls(event.pk)
    redis_server = RedisServer(_free_port(), tmp_path)
    redis_server.start()
    env = _app_env(
        database_url=_database_url(connection.settings_dict["NAME"]),
        redis_url=redis_server.url,
        name="redis",
    )
    app = App(env, tmp_path / "gunicorn.log")
    worker = None
    app.start()
    try:
        anonymous, moderator, contributor = Http(app.base), Http(app.base), Http(app.base)
        _assert_all_answer(anonymous, urls, status=200, app=app)  # and fills the cache
        moderator.login("outage-moderator")
        contributor.login("outage-contributor")
        assert moderator.get("/review/").status == 200

        # 1. Redis hangs: every call would wait for its timeout; the breaker skips Redis
        # after the first, so no page waits more than about one timeout.
        redis_server.signal(signal.SIGSTOP)
        slowest_hung = _assert_all_answer(anonymous, urls, status=200, app=app, max_seconds=3)
        assert moderator.get("/review/").status == 200
        # a write: committed; its publish gives up after the broker's short timeouts
        reply = contributor.post_json(
            "/api/v1/events/", _submission("Picket while Redis hung"), people["token"]
        )
        assert reply.status == 201, reply.text
        assert reply.seconds < 10
        write_while_hung_seconds = reply.seconds
        written_while_hung = Event.objects.get(pk=reply.json()["id"])
        redis_server.signal(signal.SIGCONT)
        FIGURES["outages_survived"] += 1

        # 2. Redis killed: refused connections, dead pooled sockets.
        redis_server.kill()
        started = time.monotonic()
        for _ in range(2):
            _assert_all_answer(anonymous, urls, status=200, app=app, max_seconds=2)
        round_seconds = (time.monotonic() - started) / 2
        # sessions are in PostgreSQL too: nobody is logged out
        review = moderator.get("/review/")
        assert review.status == 200 and "/accounts/login/" not in review.headers.get("Location", "")
        assert contributor.get("/submit/").status == 200
        health = anonymous.get("/healthz")
        assert health.status == 503
        assert health.json()["failing"] == ["redis"]

        # A write: committed, its geocoding not queued (the broker is down), no 500.
        reply = contributor.post_json(
            "/api/v1/events/", _submission("Picket while Redis was down"), people["token"]
        )
        assert reply.status == 201, reply.text
        assert reply.seconds < 5
        missed = Event.objects.get(pk=reply.json()["id"])
        assert missed.city_id is None and missed.location is not None
        assert "not queued" in app.log_text()
        FIGURES["outages_survived"] += 1

        # 3. Redis back, empty, on the same port: the app recovers by itself ...
        redis_server.start()
        _wait_for(lambda: anonymous.get("/healthz").status == 200, 15, "healthz back to 200")
        _assert_all_answer(anonymous, urls, status=200, app=app)
        assert moderator.get("/review/").status == 200

        # ... and the sweep, sent to the broker as beat sends it and run by a real worker,
        # queues the missed geocoding again.
        assert missed.pk in events_awaiting_geocoding(grace=NO_GRACE)
        worker = subprocess.Popen(
            [
                *(str(BIN / "celery"), "-A", "config", "worker", "--pool", "solo"),
                *("-Q", env["CELERY_TASK_DEFAULT_QUEUE"], "-l", "WARNING"),
                *("--without-gossip", "--without-mingle"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with celery_app.connection_for_write(redis_server.url) as broker:
            celery_app.send_task(
                "tracker.tasks.geocode_sweep",
                kwargs={"grace_seconds": 0},
                queue=env["CELERY_TASK_DEFAULT_QUEUE"],
                connection=broker,
                ignore_result=True,
            )

        def geocoded():
            return all(
                Event.objects.get(pk=e.pk).city_id is not None for e in (missed, written_while_hung)
            )

        _wait_for(geocoded, 40, "the swept geocoding")
        missed.refresh_from_db()
        assert missed.city.name == "Astana"
        waiting = events_awaiting_geocoding(grace=NO_GRACE)  # idempotent: nothing left
        assert missed.pk not in waiting and written_while_hung.pk not in waiting
        # Hundreds of failed cache calls, one log line (a minute) about them, no traceback.
        log = app.log_text(tail=10**7)
        assert 1 <= log.count("Redis unavailable, cache skipped") <= 2, log[-3000:]
        assert "Traceback" not in log
        print(  # the figures for the report (pytest -s)
            f"\nredis outages: slowest answer while hung {slowest_hung:.2f} s, "
            f"a round of {len(urls)} URLs while down {round_seconds:.2f} s, "
            f"a write while hung {write_while_hung_seconds:.2f} s"
        )
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=15)
        app.stop()
        redis_server.kill()


def test_postgresql_gone_mid_run(people, tmp_path):
    event = Event.objects.published().order_by("pk").first()
    urls = _public_urls(event.pk)
    db = connection.settings_dict
    relay = TcpRelay((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    relay.start()
    database_url = _database_url(db["NAME"]).replace(f":{db['PORT'] or 5432}/", f":{relay.port}/")
    assert f":{relay.port}/" in database_url
    redis_server = RedisServer(_free_port(), tmp_path)
    redis_server.start()
    env = _app_env(database_url=database_url, redis_url=redis_server.url, name="postgres")
    app = App(env, tmp_path / "gunicorn.log")
    app.start()
    try:
        anonymous, moderator = Http(app.base), Http(app.base)
        _assert_all_answer(anonymous, urls, status=200, app=app)
        moderator.login("outage-moderator")
        assert moderator.get("/review/").status == 200

        relay.stop()  # PostgreSQL is gone: open connections reset, new ones refused
        # Uncached answers need the database; a page may still come whole from the cache.
        cold = [*urls, f"/events/{event.pk}/?cold={secrets.token_hex(4)}"]
        unavailable = 0
        for url in cold:
            reply = anonymous.get(url)
            assert reply.status in (200, 503), f"{url}: {reply.status}\n{app.log_text()}"
            if reply.status == 503:
                unavailable += 1
                _assert_is_503(url, reply)
        assert unavailable >= len(urls) - 3, "only cached answers may still be 200"
        for url in ("/api/v1/events/", "/"):
            _assert_is_503(url, anonymous.get(url + "?country=KZ&date_after=2001-01-01"))
        _assert_is_503("/review/", moderator.get("/review/"))
        reply = anonymous.post_json("/api/v1/events/", _submission("No database"), people["token"])
        _assert_is_503("/api/v1/events/", reply)
        health = anonymous.get("/healthz")
        assert health.status == 503
        assert health.json()["failing"] == ["database"]
        assert health.json()["checks"]["redis"]["ok"] is True
        FIGURES["outages_survived"] += 1

        relay.start()  # back on the same port: the app reconnects by itself
        _wait_for(lambda: anonymous.get("/healthz").status == 200, 15, "healthz back to 200")
        _assert_all_answer(anonymous, urls, status=200, app=app)
        assert moderator.get("/review/").status == 200  # the session survived
        assert "Traceback" not in app.log_text()
        print(
            f"\npostgres outage: {unavailable} of {len(cold)} URLs 503, the rest from cache; "
            f"figures so far {FIGURES}"
        )
    finally:
        app.stop()
        relay.stop()
        redis_server.kill()


def _assert_is_503(url: str, reply: Reply) -> None:
    assert reply.status == 503, f"{url}: {reply.status}\n{reply.text[:500]}"
    assert int(reply.headers["Retry-After"]) > 0
    if url.startswith("/api/"):
        body = reply.json()
        assert body["code"] == "service_unavailable"
        assert "database is unavailable" in body["detail"]
    else:
        assert reply.headers["Content-Type"].startswith("text/html")
        assert "Temporarily unavailable" in reply.text


# -- the parts, in process ------------------------------------------------------------------


def _placed_event(title: str, lon: float, lat: float) -> Event:
    from django.contrib.gis.geos import Point

    from tracker.services.events import event_create

    return event_create(
        fields={
            "title": TITLE + title,
            "date": dt.date(2021, 1, 10),
            "country": "KZ",
            "location": Point(lon, lat, srid=4326),
            "grievances": ["political"],
        }
    )


def test_the_geocode_sweep_takes_only_events_it_can_place_and_is_bounded():
    from tracker.services.geocoding import event_geocode

    near = [_placed_event(f"near {i}", 71.43 + i / 100, 51.13) for i in range(3)]
    nowhere = _placed_event("steppe far from any city", 66.0, 47.0)
    waiting = events_awaiting_geocoding(grace=NO_GRACE, limit=1000)
    assert {e.pk for e in near} <= set(waiting)
    assert nowhere.pk not in waiting  # geocoding could not place it: never swept again
    assert len(events_awaiting_geocoding(grace=NO_GRACE, limit=2)) == 2
    # events younger than the grace are left to their own dispatch
    assert near[0].pk not in events_awaiting_geocoding()
    event_geocode(event_id=near[0].pk)
    assert near[0].pk not in events_awaiting_geocoding(grace=NO_GRACE, limit=1000)


def test_an_invalidation_lost_in_a_redis_outage_is_made_once_redis_is_back(settings):
    from django.core.cache import cache

    from tracker import cache as tracker_cache

    before = tracker_cache.events_version()
    working = settings.CACHES
    settings.CACHES = {
        "default": {**working["default"], "LOCATION": f"redis://127.0.0.1:{_free_port()}/0"}
    }
    tracker_cache.events_changed()  # Redis down: the increment is lost, not raised
    assert cache.get(tracker_cache.EVENTS_VERSION_KEY) is None
    settings.CACHES = working
    tracker_cache.breaker.reset()  # the refused connection above opened it
    assert tracker_cache.events_version() == before + 1  # older cached answers unreachable
    assert tracker_cache.events_version() == before + 1  # and only once


def test_ignored_cache_errors_are_logged_once_a_minute_without_traceback():
    import logging

    from tracker.cache import ThrottledLogFilter

    log_filter = ThrottledLogFilter(interval=60)
    try:
        raise redis.ConnectionError("Error 111 connecting")
    except redis.ConnectionError:
        exc_info = sys.exc_info()
    records = [
        logging.LogRecord(
            "tracker.cache.redis", logging.ERROR, "", 0, "Exception ignored", (), exc_info
        )
        for _ in range(500)
    ]
    passed = [record for record in records if log_filter.filter(record)]
    assert len(passed) == 1
    assert passed[0].exc_info is None
    assert passed[0].getMessage() == (
        "Redis unavailable, cache skipped: ConnectionError: Error 111 connecting"
    )
