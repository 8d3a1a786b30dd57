"""Login is throttled: the page login, the admin login and the API token endpoint share one
lockout policy (django-axes, attempts kept in PostgreSQL) by account and by address; the
password reset and change pages are in the site's style and in en/ru/kk."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "pw-12345!"
LIMIT = settings.AXES_FAILURE_LIMIT
LOCKOUT_RU = "Слишком много неудачных попыток входа"
LOCKOUT_KK = "кіру әрекеттері тым көп рет сәтсіз болды"
LOCKOUT_EN = "Too many failed login attempts"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    # Hundreds of password checks: PBKDF2's million rounds would take minutes on two busy
    # cores, and the lockout does not depend on the hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_attempts():
    AccessAttempt.objects.all().delete()
    yield
    AccessAttempt.objects.all().delete()


@pytest.fixture
def alice(make_user):
    return make_user("alice", "Contributor", email="alice@example.org")


@pytest.fixture
def staff(make_user):
    return make_user("staffer", "Moderator", is_staff=True)


def _client(address: str = "127.0.0.1", language: str = "en") -> Client:
    return Client(REMOTE_ADDR=address, HTTP_ACCEPT_LANGUAGE=language)


def page_login(client: Client, username: str, password: str):
    return client.post("/accounts/login/", {"username": username, "password": password})


def admin_login(client: Client, username: str, password: str):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
    )


def token_login(client: Client, username: str, password: str):
    return client.post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
    )


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_settings_are_the_documented_policy():
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]
    assert settings.AXES_HANDLER == "axes.handlers.database.AxesDatabaseHandler"
    assert 3 <= LIMIT <= 10
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 15 * 60


def test_fifty_wrong_passwords_on_the_page_login_then_the_right_one_is_refused(alice):
    client = _client()
    codes = [page_login(client, "alice", f"wrong-{i}").status_code for i in range(50)]
    # The form answers the first failures; the LIMIT-th failure locks the account.
    assert codes[: LIMIT - 1] == [200] * (LIMIT - 1)
    assert codes[LIMIT - 1 :] == [429] * (50 - LIMIT + 1)
    response = page_login(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert not _logged_in(client)
    body = response.content.decode()
    assert LOCKOUT_EN in body and "15 minutes" in body
    assert 'class="site-header"' in body  # the site's own page, not a bare text
    assert response["Retry-After"] == "900"
    # Not even a fresh client at another address gets into the locked account.
    other = _client("192.0.2.10")
    assert page_login(other, "alice", PASSWORD).status_code == 429
    assert not _logged_in(other)


def test_fifty_wrong_passwords_on_the_admin_login(staff):
    client = _client()
    codes = [admin_login(client, "staffer", f"wrong-{i}").status_code for i in range(50)]
    assert codes[: LIMIT - 1] == [200] * (LIMIT - 1)
    assert set(codes[LIMIT - 1 :]) == {429}
    response = admin_login(client, "staffer", PASSWORD)
    assert response.status_code == 429
    assert not _logged_in(client)
    assert client.get("/admin/").status_code == 302  # still sent to the login page


def test_fifty_wrong_passwords_on_the_token_endpoint(alice):
    client = _client()
    responses = [token_login(client, "alice", f"wrong-{i}") for i in range(LIMIT)]
    assert [r.status_code for r in responses[:-1]] == [400] * (LIMIT - 1)
    assert responses[-1].status_code == 429
    # The right password, before the API's own rate limit (10/minute) would answer.
    response = token_login(client, "alice", PASSWORD)
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "locked_out"
    assert LOCKOUT_EN in body["detail"]
    assert body["retry_after_seconds"] == 900
    assert int(response["Retry-After"]) == 900
    assert "token" not in body
    codes = [token_login(client, "alice", f"again-{i}").status_code for i in range(50 - LIMIT)]
    assert set(codes) == {429}
    assert token_login(client, "alice", PASSWORD).status_code == 429


def test_the_three_logins_share_one_count(alice):
    client = _client()
    failures = [page_login, token_login, admin_login]
    for i in range(LIMIT - 1):
        failures[i % 3](client, "alice", "wrong")
    # One more failure anywhere locks all three doors.
    assert token_login(client, "alice", "wrong").status_code == 429
    assert page_login(client, "alice", PASSWORD).status_code == 429
    assert admin_login(client, "alice", PASSWORD).status_code == 429
    assert token_login(client, "alice", PASSWORD).status_code == 429


def test_an_address_is_locked_across_usernames(alice, make_user):
    make_user("carol", "Contributor")
    attacker = _client("198.51.100.7")
    for i in range(LIMIT):
        page_login(attacker, f"guess-{i}", "wrong")
    # Carol's own password, from that address: refused.
    assert page_login(attacker, "carol", PASSWORD).status_code == 429
    assert token_login(attacker, "alice", PASSWORD).status_code == 429
    # From another address the accounts are not locked (each got at most one failure).
    carol = _client("198.51.100.8")
    assert page_login(carol, "carol", PASSWORD).status_code == 302
    assert _logged_in(carol)


def test_an_account_is_locked_across_addresses(alice, make_user):
    make_user("dave", "Contributor")
    for i in range(LIMIT):
        page_login(_client(f"203.0.113.{i + 1}"), "alice", "wrong")
    fresh = _client("203.0.113.200")
    assert page_login(fresh, "alice", PASSWORD).status_code == 429
    assert page_login(fresh, "dave", PASSWORD).status_code == 302


def test_forged_forwarded_for_does_not_dodge_the_address_lockout(make_user):
    make_user("erin", "Contributor")
    # No proxy is configured (API_NUM_PROXIES=0), so the header is the client's own words.
    for i in range(LIMIT):
        Client(REMOTE_ADDR="198.51.100.20", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}").post(
            "/accounts/login/", {"username": f"x{i}", "password": "wrong"}
        )
    client = Client(REMOTE_ADDR="198.51.100.20", HTTP_X_FORWARDED_FOR="10.9.9.99")
    assert page_login(client, "erin", PASSWORD).status_code == 429


def test_a_successful_login_resets_the_count(alice):
    client = _client()
    for _ in range(LIMIT - 1):
        page_login(client, "alice", "wrong")
    assert page_login(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(LIMIT - 1):
        assert page_login(client, "alice", "wrong").status_code == 200
    assert page_login(client, "alice", PASSWORD).status_code == 302


def test_login_works_again_after_the_cool_off(alice):
    client = _client()
    for _ in range(LIMIT):
        page_login(client, "alice", "wrong")
    assert page_login(client, "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timezone.timedelta(seconds=1)
    )
    assert page_login(client, "alice", PASSWORD).status_code == 302


def test_successful_logins_are_not_recorded_with_the_address(alice):
    client = _client("192.0.2.44")
    assert page_login(client, "alice", PASSWORD).status_code == 302
    assert token_login(client, "alice", PASSWORD).status_code == 200
    assert not AccessLog.objects.exists()
    assert not AccessAttempt.objects.filter(ip_address="192.0.2.44").exists()


@pytest.mark.parametrize(
    ("language", "expected", "minutes"),
    [("ru", LOCKOUT_RU, "15 минут"), ("kk", LOCKOUT_KK, "15 минутқа"), ("en", LOCKOUT_EN, "15")],
)
def test_the_lockout_message_is_in_the_requested_language(alice, language, expected, minutes):
    client = _client(language=language)
    for _ in range(LIMIT):
        page_login(client, "alice", "wrong")
    response = page_login(client, "alice", PASSWORD)
    assert response.status_code == 429
    body = response.content.decode()
    assert expected in body and minutes in body
    assert f'<html lang="{language}">' in body
    api_body = token_login(client, "alice", PASSWORD).json()
    assert expected in api_body["detail"] and minutes in api_body["detail"]


def test_failed_logins_leave_no_username_or_address_in_the_logs(alice, caplog):
    caplog.set_level("DEBUG")
    client = _client("192.0.2.99")
    for _ in range(LIMIT + 1):
        page_login(client, "alice", "wrong")
    token_login(client, "alice", PASSWORD)
    assert caplog.records, "axes logs the failures (masked)"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "alice" not in text
    assert "192.0.2.99" not in text


# --- password reset and change ----------------------------------------------------------

RESET_PAGES = {
    "ru": {
        "/accounts/password_reset/": "Сброс пароля",
        "/accounts/password_reset/done/": "Проверьте почту",
        "/accounts/reset/done/": "Пароль изменён",
    },
    "kk": {
        "/accounts/password_reset/": "Құпия сөзді қалпына келтіру",
        "/accounts/password_reset/done/": "Поштаңызды тексеріңіз",
        "/accounts/reset/done/": "Құпия сөз өзгертілді",
    },
    "en": {
        "/accounts/password_reset/": "Reset your password",
        "/accounts/password_reset/done/": "Check your e-mail",
        "/accounts/reset/done/": "Password changed",
    },
}


@pytest.mark.parametrize("language", ["ru", "kk", "en"])
def test_password_reset_pages_are_in_the_site_style_and_language(language):
    client = _client(language=language)
    for path, text in RESET_PAGES[language].items():
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.content.decode()
        assert text in body, (path, language)
        assert 'class="site-header"' in body, path  # extends base.html
        assert f'<html lang="{language}">' in body
        assert "Django administration" not in body


@pytest.mark.parametrize(
    ("language", "texts"),
    [
        ("ru", ["Смена пароля", "Ваш пароль изменён.", "Старый пароль"]),
        ("kk", ["Құпия сөзді өзгерту", "Құпия сөзіңіз өзгертілді.", "Ескі құпия сөз"]),
    ],
)
def test_password_change_pages_are_translated(alice, language, texts):
    client = _client(language=language)
    client.force_login(alice)
    form = client.get("/accounts/password_change/")
    assert form.status_code == 200
    body = form.content.decode()
    assert texts[0] in body and 'class="site-header"' in body
    assert texts[2] in body
    if language == "kk":
        # Django's own Kazakh catalog lacks the password rules; ours has them.
        assert "Құпия сөз тек сандардан тұрмауы керек." in body
        assert "Your password can" not in body
    done = client.get("/accounts/password_change/done/")
    assert done.status_code == 200 and texts[1] in done.content.decode()
    changed = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "N3w-pass-9182",
            "new_password2": "N3w-pass-9182",
        },
    )
    assert changed.status_code == 302 and changed["Location"].endswith("/password_change/done/")


@pytest.mark.parametrize(
    ("language", "subject", "confirm_text"),
    [
        ("ru", "Сброс пароля на", "Выберите новый пароль"),
        ("kk", "құпия сөзді қалпына келтіру", "Жаңа құпия сөз таңдаңыз"),
        ("en", "Password reset on", "Choose a new password"),
    ],
)
def test_reset_mail_is_sent_and_its_link_sets_a_new_password(
    alice, language, subject, confirm_text
):
    client = _client(language=language)
    response = client.post("/accounts/password_reset/", {"email": "alice@example.org"})
    assert response.status_code == 302 and response["Location"].endswith("/password_reset/done/")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.org"]
    assert subject in message.subject
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", message.body).group(1)
    # Django swaps the token for a session marker at once, so it does not leak by Referer.
    step = client.get(link)
    assert step.status_code == 302
    form = client.get(step["Location"])
    assert form.status_code == 200
    assert confirm_text in form.content.decode()
    done = client.post(
        step["Location"], {"new_password1": "Fresh-pw-5521", "new_password2": "Fresh-pw-5521"}
    )
    assert done.status_code == 302 and done["Location"].endswith("/reset/done/")
    assert page_login(_client(), "alice", "Fresh-pw-5521").status_code == 302
    # The link works once.
    again = client.get(link, follow=True)
    assert again.status_code == 200
    assert "form" not in again.content.decode().split("<main", 1)[1].split("</main>")[0]


def test_reset_for_an_unknown_address_looks_the_same_and_sends_nothing():
    client = _client()
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.org"})
    assert response.status_code == 302 and response["Location"].endswith("/password_reset/done/")
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("language", "text"),
    [("ru", "Эта ссылка не работает"), ("kk", "Бұл сілтеме жұмыс істемейді")],
)
def test_a_broken_reset_link_says_so_in_the_language(language, text):
    response = _client(language=language).get("/accounts/reset/MQ/bad-token/", follow=True)
    assert response.status_code == 200
    assert text in response.content.decode()
