"""Production settings are safe by default: each case imports the settings in a fresh process
with the environment an operator would give it (settings are read once, at import)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = secrets.token_urlsafe(50)
# The documented production environment (README, "Production settings"): no DEBUG, a strong
# key, the host names. Every switch is given explicitly, so that a developer's .env (which
# `make run` fills with the local-HTTP switch) cannot leak into these cases.
PRODUCTION = {
    "DJANGO_DEBUG": "",
    "DJANGO_SECRET_KEY": STRONG_KEY,
    "DJANGO_ALLOWED_HOSTS": "tracker.example.org",
    "DJANGO_INSECURE_LOCAL_HTTP": "0",
    "DJANGO_BEHIND_TLS_PROXY": "0",
    "DJANGO_SECURE_COOKIES": "0",
    "DJANGO_HSTS_PRELOAD": "0",
}
SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "redirect": s.SECURE_SSL_REDIRECT,
    "exempt": s.SECURE_REDIRECT_EXEMPT,
    "hsts": s.SECURE_HSTS_SECONDS,
    "subdomains": s.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "preload": s.SECURE_HSTS_PRELOAD,
    "session_secure": s.SESSION_COOKIE_SECURE,
    "csrf_secure": s.CSRF_COOKIE_SECURE,
    "proxy_header": s.SECURE_PROXY_SSL_HEADER,
    "frame": s.X_FRAME_OPTIONS,
    "frame_ancestors": s.CONTENT_SECURITY_POLICY["DIRECTIVES"]["frame-ancestors"],
}))
"""


def _run(args: list[str], **overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **PRODUCTION, "DJANGO_SETTINGS_MODULE": "config.settings"}
    # Playwright's sync API sets this in the test process once a browser test has run; it
    # belongs to the test run, not to the production environment checked here.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(overrides)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _settings(**overrides: str) -> dict:
    result = _run(["-c", SHOW_SETTINGS], **overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_check_deploy_is_clean_in_the_documented_production_environment():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "key",
    [
        "",  # none at all
        "insecure-dev-key-set-DJANGO_SECRET_KEY-in-production",  # the old default
        "change-me",  # the compose file's old default
        "build",  # the image build's old key
        "x" * 40 + "abcd",  # shorter than 50
        "ab" * 40,  # fewer than 5 different characters
        "django-insecure-" + secrets.token_urlsafe(50),  # startproject's marker
    ],
    ids=["missing", "old-default", "change-me", "build", "short", "repetitive", "insecure-prefix"],
)
def test_refuses_to_start_without_debug_and_a_strong_key(key):
    result = _run(["manage.py", "check"], DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is missing, a known default or weak" in (
        result.stderr
    )
    assert "secrets.token_urlsafe(50)" in result.stderr  # says how to make one


def test_a_weak_key_is_accepted_with_debug_on():
    result = _run(["manage.py", "check"], DJANGO_DEBUG="1", DJANGO_SECRET_KEY="")
    assert result.returncode == 0, result.stderr


def test_https_only_and_no_framing_when_debug_is_off():
    found = _settings()
    assert found["redirect"] is True
    assert found["hsts"] >= 31_536_000
    assert found["subdomains"] is True
    assert found["preload"] is False  # opt-in: hard to take back
    assert found["session_secure"] is True and found["csrf_secure"] is True
    assert found["proxy_header"] is None  # X-Forwarded-Proto is not trusted by default
    assert found["exempt"] == [r"^healthz$"]
    assert found["frame"] == "DENY"
    assert found["frame_ancestors"] == ["'none'"]


def test_tls_proxy_switch_trusts_x_forwarded_proto():
    found = _settings(DJANGO_BEHIND_TLS_PROXY="1")
    assert found["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert found["redirect"] is True and found["session_secure"] is True


def test_local_http_switch_turns_redirect_hsts_and_secure_cookies_off():
    found = _settings(DJANGO_INSECURE_LOCAL_HTTP="1")
    assert found["redirect"] is False
    assert found["hsts"] == 0
    assert found["session_secure"] is False and found["csrf_secure"] is False
    assert found["frame"] == "DENY"  # framing stays denied


HTTP_PROBE = """
import json, django
django.setup()
from django.test import Client
c = Client(HTTP_HOST="tracker.example.org")
plain = c.get("/api/v1/taxonomy/")
health = c.get("/healthz")
proxied = Client(HTTP_HOST="tracker.example.org", HTTP_X_FORWARDED_PROTO="https").get("/healthz")
print(json.dumps({
    "plain": [plain.status_code, plain.headers.get("Location")],
    "health": health.status_code,
    "hsts": proxied.headers.get("Strict-Transport-Security"),
    "frame": proxied.headers.get("X-Frame-Options"),
    "csp": proxied.headers.get("Content-Security-Policy"),
}))
"""


def test_plain_http_is_redirected_but_healthz_answers():
    """Real requests through the middleware, behind a TLS proxy as documented."""
    result = _run(["-c", HTTP_PROBE], DJANGO_BEHIND_TLS_PROXY="1")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["plain"] == [301, "https://tracker.example.org/api/v1/taxonomy/"]
    assert found["health"] in (200, 503)  # answered (503 names a failing part), not redirected
    assert found["hsts"] == "max-age=31536000; includeSubDomains"
    assert found["frame"] == "DENY"
    assert "frame-ancestors 'none'" in found["csp"]
