"""The event list (/events/) in real Chromium against a real server with the demo data.

A search typed into the filter panel shows the count the API gives for the same `q`, and the
pages, walked with Next, show every one of those events once; the title links lead to the
events; the sort select orders the rows; the map, trends and download links keep the
filters. Screenshots go to test-artifacts/event-list-*.png.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.browser.support import screenshot

pytestmark = pytest.mark.browser

COUNT = re.compile(r"^(\d+) events? match(?:es)? these filters\.$")
EVENT_HREF = re.compile(r"^/events/(\d+)/$")
ROW_LINKS = "#events-table tbody tr td:nth-child(2) a"


def api_ids(page, params: str) -> list[int]:
    """The ids of the API's events for `params`, over all its cursor pages."""
    url = f"/api/v1/events/?{params}&page_size=1000"
    ids: list[int] = []
    while url:
        response = page.request.get(url)
        assert response.ok, f"{url}: {response.status} {response.text()[:500]}"
        body = response.json()
        ids += [item["id"] for item in body["results"]]
        url = body.get("next")
    return ids


def shown_count(page) -> int:
    text = page.locator("#result-count").inner_text().strip()
    match = COUNT.match(text)
    assert match, f"unexpected status line {text!r}"
    return int(match.group(1))


def row_ids(page) -> list[int]:
    ids = []
    for href in page.locator(ROW_LINKS).evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    ):
        match = EVENT_HREF.match(href)
        assert match, f"a row links to {href!r}"
        ids.append(int(match.group(1)))
    return ids


def walk_pages(page) -> list[list[int]]:
    """The row ids of the current page and of every page after it (Next until none)."""
    pages = [row_ids(page)]
    count = shown_count(page)
    while page.locator("a[rel=next]").count():
        with page.expect_navigation():
            page.locator("a[rel=next]").click()
        assert shown_count(page) == count, "the count changed between pages"
        pages.append(row_ids(page))
        assert len(pages) < 50, "too many pages"
    return pages


def search(page, text: str, *, enter: bool) -> None:
    field = page.locator("#filters input[name=q]")
    field.fill(text)
    with page.expect_navigation():
        if enter:
            field.press("Enter")
        else:
            page.get_by_role("button", name="Apply filters").click()
    assert parse_qs(urlsplit(page.url).query)["q"] == [text]
    assert page.locator("#filters input[name=q]").input_value() == text


@pytest.mark.parametrize(
    ("text", "enter", "shot"),
    [
        ("Almaty", True, "event-list-almaty"),
        ("Алматы", False, "event-list-almaty-cyrillic"),
        ("kettl", True, "event-list-kettl"),
    ],
)
def test_event_list_search_matches_the_api_over_all_pages(page, text, enter, shot):
    page.goto("/events/")
    page.wait_for_selector("#events-table")
    search(page, text, enter=enter)
    expected = api_ids(page, f"q={quote(text)}")
    assert len(expected) == len(set(expected)), "the API repeats events"
    count = shown_count(page)
    assert count == len(expected) > 0
    screenshot(page, shot)

    pages = walk_pages(page)
    seen = [pk for rows in pages for pk in rows]
    assert len(seen) == count, f"{len(seen)} rows over {len(pages)} pages for {count} events"
    assert len(set(seen)) == len(seen), "an event is shown twice"
    assert set(seen) == set(expected)
    if len(pages) > 1:
        # Previous goes back to the page before.
        with page.expect_navigation():
            page.locator("a[rel=prev]").click()
        assert row_ids(page) == pages[-2]

    # Best match (offered once there are words) pages through the same events.
    page.goto(f"/events/?q={quote(text)}")
    assert page.locator("#id_sort").input_value() == "-search_rank"
    by_rank = [pk for rows in walk_pages(page) for pk in rows]
    assert len(by_rank) == len(set(by_rank)) == count
    assert set(by_rank) == set(expected)


def test_event_list_kettled_finds_the_three_demo_events(page, db_query):
    page.goto("/events/")
    search(page, "kettl", enter=True)
    kettled = db_query(
        "SELECT id FROM tracker_event WHERE status = 'published' "
        "AND 'kettled' = ANY(police_responses)"
    )
    assert shown_count(page) == len(kettled) == 3
    assert set(row_ids(page)) == {pk for (pk,) in kettled}


def test_event_list_title_link_opens_the_event(page, db_query):
    page.goto("/events/?q=Almaty")
    link = page.locator(ROW_LINKS).nth(2)
    title = link.inner_text()
    event_id = int(EVENT_HREF.match(link.get_attribute("href")).group(1))
    assert db_query("SELECT title FROM tracker_event WHERE id = %s", (event_id,))[0][0] == title
    link.click()
    page.wait_for_url(f"**/events/{event_id}/")
    assert page.get_by_role("heading", level=1).inner_text() == title


def test_event_list_links_keep_the_filters(page):
    page.goto("/events/")
    page.locator("#filters input[name=q]").fill("Алматы")
    page.get_by_role("checkbox", name="Welfare").check()
    page.locator("#id_sort").select_option(label="Most arrests")
    with page.expect_navigation():
        page.get_by_role("button", name="Apply filters").click()
    assert page.locator("#id_sort").input_value() == "-arrests"
    wanted = {"q": ["Алматы"], "grievance": ["welfare"]}
    links = {
        "Show on the map": "/",
        "Show the trends": "/dashboard/",
        "Download CSV": "/api/v1/events/",
        "Download GeoJSON": "/api/v1/exports/events.geojson",
    }
    for name, path in links.items():
        href = page.get_by_role("link", name=name).get_attribute("href")
        parts = urlsplit(href)
        params = parse_qs(parts.query)
        assert parts.path == path, href
        for key, value in wanted.items():
            assert params.get(key) == value, f"{name}: {href}"
        assert "sort" not in params and "cursor" not in params, f"{name}: {href}"
    assert parse_qs(
        urlsplit(page.get_by_role("link", name="Download CSV").get_attribute("href")).query
    )["format"] == ["csv"]
    count = shown_count(page)

    # The map opens with the same selection in its panel.
    page.get_by_role("link", name="Show on the map").click()
    page.wait_for_selector("#map[data-state=ready]", timeout=60_000)
    assert page.locator("#filters input[name=q]").input_value() == "Алматы"
    assert page.get_by_role("checkbox", name="Welfare").is_checked()
    assert int(page.locator("#map").get_attribute("data-count")) <= count


def test_event_list_sort_orders_the_rows(page, db_query):
    page.goto("/events/")
    assert page.locator("#id_sort").input_value() == "-date"
    newest = db_query(
        "SELECT id FROM tracker_event WHERE status = 'published' "
        "ORDER BY date DESC, id DESC LIMIT 1"
    )[0][0]
    assert row_ids(page)[0] == newest
    screenshot(page, "event-list")

    page.locator("#id_sort").select_option(label="Most arrests")
    with page.expect_navigation():
        page.get_by_role("button", name="Show", exact=True).click()
    assert parse_qs(urlsplit(page.url).query)["sort"] == ["-arrests"]
    most, arrests = db_query(
        "SELECT id, arrests FROM tracker_event WHERE status = 'published' "
        "ORDER BY coalesce(arrests, -1) DESC, id DESC LIMIT 1"
    )[0]
    assert row_ids(page)[0] == most
    cells = page.locator("#events-table tbody tr td.num:nth-child(6)").all_inner_texts()
    assert cells[0] == str(arrests)
    numbers = [int(cell) if cell.strip().isdigit() else -1 for cell in cells]
    assert numbers == sorted(numbers, reverse=True)
    screenshot(page, "event-list-most-arrests")

    page.locator("#id_sort").select_option(label="Oldest first")
    with page.expect_navigation():
        page.get_by_role("button", name="Show", exact=True).click()
    oldest = db_query(
        "SELECT id FROM tracker_event WHERE status = 'published' ORDER BY date, id LIMIT 1"
    )[0][0]
    assert row_ids(page)[0] == oldest
    dates = page.locator("#events-table tbody time").evaluate_all(
        "times => times.map(t => t.getAttribute('datetime'))"
    )
    assert dates == sorted(dates)

    # The sort survives paging.
    with page.expect_navigation():
        page.locator("a[rel=next]").click()
    assert page.locator("#id_sort").input_value() == "date"
    later = page.locator("#events-table tbody time").first.get_attribute("datetime")
    assert later >= dates[-1]


def test_event_list_on_a_narrow_screen(page):
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/events/?q=Almaty")
    page.wait_for_selector("#events-table")
    screenshot(page, "event-list-narrow")
    # The table scrolls in its own box; the page itself does not scroll sideways.
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"the page is {overflow}px wider than the screen"
