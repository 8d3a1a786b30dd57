"""A real server (gunicorn) on a database of its own, and real headless Chromium.

pytest-django's live_server would flush the database after every test, so the server runs in
a subprocess against `<test database>_browser`, migrated and loaded with the demo data once
per session. Every page a test opens fails the test on a console error, an uncaught script
error or a Content-Security-Policy violation.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO_PASSWORD = "tracker-demo-browser"


def _database_url(name: str) -> str:
    db = settings.DATABASES["default"]
    auth = quote(db.get("USER") or "postgres", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgis://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{name}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def browser_db_name() -> str:
    return settings.DATABASES["default"]["TEST"]["NAME"] + "_browser"


@pytest.fixture(scope="session")
def server_env(browser_db_name) -> dict:
    prefix = os.environ.get("CACHE_KEY_PREFIX", "tracker-test") + "-browser"
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_database_url(browser_db_name),
        DJANGO_DEBUG="0",
        DJANGO_SETTINGS_MODULE="tests.browser.server_settings",
        STATICFILES_BACKEND="django.contrib.staticfiles.storage.StaticFilesStorage",
        CACHE_KEY_PREFIX=prefix,
        CELERY_TASK_DEFAULT_QUEUE=os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "tracker-test")
        + "-browser",
        DEMO_PASSWORD=DEMO_PASSWORD,
        MAP_TILE_URL="",
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture(scope="session")
def browser_db(server_env, browser_db_name):
    """Migrated, with the demo data and accounts; what earlier sessions submitted is removed
    so that every session starts from the demo set alone."""
    _manage(server_env, "preflight", "--create")
    _manage(server_env, "migrate", "--noinput", "-v0")
    _manage(
        server_env,
        "shell",
        "-c",
        "from tracker.models import Event; "
        "Event.objects.exclude(external_ids__scheme='demo').delete()",
    )
    _manage(server_env, "loaddemo", "--users")
    return server_env["DATABASE_URL"]


def _psycopg_dsn(url: str) -> str:
    return "postgresql" + url[len("postgis") :]


@pytest.fixture(scope="session")
def db_query(browser_db):
    """Run a read-only SQL query on the server's database (to compute expected values)."""

    def query(sql: str, params: tuple = ()):
        with psycopg.connect(_psycopg_dsn(browser_db), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    return query


@pytest.fixture(scope="session")
def base_url(server_env, browser_db):
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ROOT / "test-artifacts" / "server.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own process group, so that stopping it also stops gunicorn's workers.
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/dashboard/", timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            log.close()
            raise RuntimeError(f"the test server did not start: see {log.name}")
        time.sleep(0.3)
    yield url
    _stop(process)
    log.close()


def _stop(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="session", autouse=True)
def _artifacts_dir():
    ARTIFACTS.mkdir(exist_ok=True)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop marked as running in this thread for the
    # rest of the session, and Django then refuses ORM calls as if they came from async code.
    # Nothing here is async (the ORM is only used between browser calls), as Playwright's
    # Django guidance notes; the flag is set for this test process only.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageProblems(list):
    """Console errors, uncaught exceptions and CSP violations seen by one page."""

    def allow(self, *parts: str) -> None:
        """Forget problems, seen so far, whose text contains all of `parts`: for a test
        that causes that one on purpose (e.g. a form answering 400)."""
        self[:] = [problem for problem in self if not all(part in problem for part in parts)]

    def check(self) -> None:
        assert not self, "the browser reported problems:\n" + "\n".join(self)


def open_context(browser, base_url, problems: PageProblems, locale: str = "en-GB"):
    context = browser.new_context(
        base_url=base_url, locale=locale, viewport={"width": 1280, "height": 900}
    )

    def watch(page):
        page.on(
            "console",
            lambda message: (
                problems.append(f"console {message.type}: {message.text} ({page.url})")
                if message.type in ("error", "assert")
                else None
            ),
        )
        page.on("pageerror", lambda error: problems.append(f"page error: {error} ({page.url})"))

    context.on("page", watch)
    return context


@pytest.fixture
def problems():
    found = PageProblems()
    yield found
    found.check()


@pytest.fixture
def page(browser, base_url, problems):
    context = open_context(browser, base_url, problems)
    page = context.new_page()
    yield page
    context.close()


def log_in(page, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").last.click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def screenshot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def assert_accessible(page) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    serious = [
        violation
        for violation in results.response["violations"]
        if violation.get("impact") in ("serious", "critical")
    ]
    details = [
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(node["target"][0] if node["target"] else "?" for node in v["nodes"][:5])
        for v in serious
    ]
    assert not serious, f"axe found on {page.url}:\n" + "\n".join(details)
