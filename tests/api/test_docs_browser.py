"""Swagger UI in real Chromium under the app's Content-Security-Policy."""

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.browser]


def test_swagger_ui_renders_every_operation_without_csp_errors(server, browser):
    page = browser.new_page()
    try:
        problems: list[str] = []
        page.on(
            "console",
            lambda message: (
                problems.append(message.text) if message.type in ("error", "warning") else None
            ),
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(f"{server}/api/docs/")
        page.wait_for_selector(".opblock", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        assert "/api/v1/events/" in [p.replace("\u200b", "") for p in paths]
        assert page.locator(".opblock").count() >= 15
        assert problems == []
    finally:
        page.close()
