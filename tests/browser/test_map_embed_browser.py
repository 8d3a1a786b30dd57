"""The map (and the list and the trends) on a phone, in real headless Chromium against a
real gunicorn (see support.py).

Every page fails its test on a console error, an uncaught exception or a CSP violation.
"""

from __future__ import annotations

import pytest

from tests.browser.support import ARTIFACTS, assert_accessible, screenshot

pytestmark = pytest.mark.browser

READY = "#map[data-state=ready]"
PHONE = {"width": 390, "height": 844}


def mapped_count(db_query, where: str = "TRUE", params: tuple = ()) -> int:
    sql = (
        "SELECT COUNT(*) FROM tracker_event WHERE status = 'published' "
        f"AND location IS NOT NULL AND {where}"
    )
    return db_query(sql, params)[0][0]


def shown(page) -> int:
    page.wait_for_selector(READY, timeout=60_000)
    return int(page.locator("#map").get_attribute("data-count"))


def no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways: {width}px wide"


# --- phones ---


def test_on_a_phone_the_map_comes_first_and_the_filters_fold_away(page, db_query):
    page.set_viewport_size(PHONE)
    page.goto("/")
    total = shown(page)
    assert total == mapped_count(db_query)
    toggle = page.get_by_role("button", name="Filters", exact=True)
    panel = page.locator("#filters")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert toggle.get_attribute("aria-controls") == "filters"
    assert not panel.is_visible()
    # The map is there without scrolling: a good part of it above the fold.
    box = page.locator("#map").bounding_box()
    assert box["y"] < PHONE["height"] / 2 and box["width"] >= PHONE["width"] - 2
    assert page.locator(".marker-cluster").first.is_visible()
    no_horizontal_scroll(page)
    assert_accessible(page)
    screenshot(page, "phone-map")

    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    panel.wait_for(state="visible")
    no_horizontal_scroll(page)
    assert_accessible(page)
    screenshot(page, "phone-map-filters")

    # A filter applied from the opened panel: the map shows it, the panel folds again.
    page.get_by_label("Year", exact=True).fill("2019")
    page.evaluate("document.getElementById('map').dataset.state = 'stale'")
    page.get_by_role("button", name="Apply filters").click()
    count = shown(page)
    assert count == mapped_count(db_query, "EXTRACT(YEAR FROM date) = 2019") > 0
    assert count < total
    assert "year=2019" in page.url
    assert toggle.get_attribute("aria-expanded") == "false"
    panel.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.classList.contains('filters-toggle')")
    assert page.locator("#map").bounding_box()["y"] < PHONE["height"] / 2
    no_horizontal_scroll(page)

    # Closed again by its button (the disclosure works both ways).
    toggle.click()
    panel.wait_for(state="visible")
    toggle.click()
    panel.wait_for(state="hidden")


@pytest.mark.parametrize(
    ("path", "ready"), [("/events/", "#events-table"), ("/dashboard/", "body[data-charts=ready]")]
)
def test_on_a_phone_the_list_and_the_trends_fold_their_filters_too(page, path, ready):
    page.set_viewport_size(PHONE)
    page.goto(path)
    page.wait_for_selector(ready)
    toggle = page.get_by_role("button", name="Filters", exact=True)
    panel = page.locator("#filters")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert not panel.is_visible()
    no_horizontal_scroll(page)
    toggle.click()
    panel.wait_for(state="visible")
    no_horizontal_scroll(page)
    page.get_by_label("Year", exact=True).fill("2019")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**year=2019**")
    page.wait_for_selector(ready)
    # A new page: the panel starts folded again, the filter kept.
    assert toggle.get_attribute("aria-expanded") == "false"
    assert page.locator("#id_year").input_value() == "2019"
    no_horizontal_scroll(page)
    # What the phone shows first (a full-page picture of the list would be metres long).
    page.screenshot(path=str(ARTIFACTS / f"phone-{path.strip('/')}.png"))


def test_on_a_wide_screen_the_filters_stay_open(page):
    page.goto("/")
    page.wait_for_selector(READY, timeout=60_000)
    assert page.locator("#filters").is_visible()
    assert not page.locator(".filters-toggle").is_visible()
