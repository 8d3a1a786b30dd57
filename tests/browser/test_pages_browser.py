"""The pages in real headless Chromium against a real gunicorn, PostGIS and Redis.

Each `page` fails its test on any console error, uncaught exception or CSP violation (see
conftest). Screenshots of every page go to test-artifacts/.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest

from tests.browser.support import (
    PageProblems,
    assert_accessible,
    log_in,
    open_context,
    screenshot,
)

pytestmark = pytest.mark.browser

DEMO_YEARS = {2015: 71, 2016: 52, 2017: 36, 2018: 32, 2019: 235, 2020: 254}
READY = "#map[data-state=ready]"


def mapped_count(db_query, where: str = "TRUE", params: tuple = ()) -> int:
    """Published events with a point: what the map can draw."""
    sql = (
        "SELECT COUNT(*) FROM tracker_event WHERE status = 'published' "
        f"AND location IS NOT NULL AND {where}"
    )
    return db_query(sql, params)[0][0]


def unmapped_count(db_query, where: str = "TRUE", params: tuple = ()) -> int:
    """Published events without a point (placed at region or country level)."""
    sql = (
        "SELECT COUNT(*) FROM tracker_event WHERE status = 'published' "
        f"AND location IS NULL AND {where}"
    )
    return db_query(sql, params)[0][0]


def shown(page) -> int:
    page.wait_for_selector(READY, timeout=60_000)
    return int(page.locator("#map").get_attribute("data-count"))


def wait_reload(page, action) -> int:
    """Do `action`, then wait until the map has loaded again and return its count."""
    page.evaluate("document.getElementById('map').dataset.state = 'stale'")
    action()
    return shown(page)


def test_map_shows_the_demo_events_and_filters_change_them(page, db_query):
    page.goto("/")
    total = shown(page)
    assert total == mapped_count(db_query) > 600
    missing = unmapped_count(db_query)
    assert page.locator("#map-status").inner_text() == (
        f"Events: {total + missing} (on the map: {total}, without an exact place: {missing})"
    )
    assert page.locator(".marker-cluster").count() > 3
    screenshot(page, "map")

    # A grievance checkbox, with the keyboard only.
    welfare = page.get_by_role("checkbox", name="Welfare")
    welfare.focus()
    count = wait_reload(page, lambda: page.keyboard.press("Space"))
    assert count == mapped_count(db_query, "'welfare' = ANY(grievances)")
    assert 0 < count < total
    assert "grievance=welfare" in page.url

    # The time slider: from 2019 on (arrow keys move a range input).
    slider = page.locator("#year-from")
    slider.focus()

    def four_years_on():
        for _ in range(4):
            page.keyboard.press("ArrowRight")

    count = wait_reload(page, four_years_on)
    assert page.locator("#id_date_after").input_value() == "2019-01-01"
    assert count == mapped_count(
        db_query, "'welfare' = ANY(grievances) AND date >= %s", (dt.date(2019, 1, 1),)
    )
    assert "date_after=2019-01-01" in page.url

    # The URL holds the state: opening it again shows the same selection.
    url = page.url
    page.goto(url)
    assert shown(page) == count
    assert page.get_by_role("checkbox", name="Welfare").is_checked()

    # Colour by police response: the legend follows.
    page.get_by_label("Colour by").select_option("police")
    assert "Lethal force" in page.locator("#legend").inner_text()
    assert "colour=police" in page.url
    screenshot(page, "map-filtered")


LIST_ROW_LINKS = "#events-table tbody tr td:nth-child(2) a"


def _almaty(db_query) -> int:
    return db_query(
        "SELECT city_id FROM tracker_event WHERE status = 'published' AND city_id IS NOT NULL "
        "GROUP BY city_id ORDER BY COUNT(*) DESC, city_id LIMIT 1"
    )[0][0]


def test_events_without_a_point_are_counted_and_listed(page, db_query):
    city = _almaty(db_query)
    cases = [
        ("", "TRUE", ()),
        ("year=2019", "date BETWEEN %s AND %s", (dt.date(2019, 1, 1), dt.date(2019, 12, 31))),
        ("grievance=political", "'political' = ANY(grievances)", ()),
        (f"city={city}", "city_id = %s", (city,)),
    ]
    for query, where, params in cases:
        page.goto(f"/?{query}")
        drawn = shown(page)
        missing = int(page.locator("#map").get_attribute("data-missing"))
        total = db_query(
            f"SELECT COUNT(*) FROM tracker_event WHERE status = 'published' AND {where}", params
        )[0][0]
        assert drawn + missing == total, query
        assert drawn == mapped_count(db_query, where, params), query
        assert missing == unmapped_count(db_query, where, params), query
        link = page.locator("#no-place-link")
        if not missing:
            assert link.is_hidden(), query
            assert page.locator("#map-status").inner_text() == f"Events shown: {drawn}"
            continue
        assert page.locator("#map-status").inner_text() == (
            f"Events: {total} (on the map: {drawn}, without an exact place: {missing})"
        )
        assert link.is_visible(), query
        assert link.inner_text() == f"List the events without an exact place ({missing})"
        expected = {
            row[0]
            for row in db_query(
                "SELECT id FROM tracker_event WHERE status = 'published' AND location IS NULL "
                f"AND {where}",
                params,
            )
        }
        link.click()
        page.wait_for_url(re.compile(r"/events/\?.*has_location=false"))
        if query:
            assert query in page.url
        page.locator(LIST_ROW_LINKS).first.wait_for()
        hrefs = page.locator(LIST_ROW_LINKS).evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
        assert {int(href.strip("/").split("/")[-1]) for href in hrefs} == expected, query
        assert len(hrefs) == len(expected)
        assert page.locator("#result-count").inner_text().startswith(f"{missing} event")
        assert page.get_by_label("Exact place").input_value() == "false"
    screenshot(page, "event-list-no-place")

    # A filter changed on the map updates the entry with the reload.
    page.goto(f"/?city={city}&grievance=political")
    assert shown(page) and page.locator("#no-place-link").is_hidden()
    drawn = wait_reload(page, lambda: page.get_by_label("City").select_option([]))
    missing = unmapped_count(db_query, "'political' = ANY(grievances)")
    assert drawn == mapped_count(db_query, "'political' = ANY(grievances)")
    assert page.locator("#map").get_attribute("data-missing") == str(missing)
    link = page.locator("#no-place-link")
    assert link.is_visible()
    assert "grievance=political" in link.get_attribute("href")
    assert "city=" not in link.get_attribute("href")


def map_view(page) -> str:
    """The map's zoom and centre as its fragment gives them: `map=ZOOM/LAT/LNG`."""
    return page.locator("#map").get_attribute("data-view")


def wait_view_change(page, before: str, action) -> str:
    """Do `action` (a zoom or a pan) and wait until the fragment shows a view other than
    `before`, the moved map's; return it."""
    action()
    page.wait_for_function(
        "before => location.hash.startsWith('#map=') && location.hash !== '#' + before "
        "&& document.getElementById('map').dataset.view === location.hash.slice(1)",
        arg=before,
    )
    return map_view(page)


def test_zoom_and_position_last_across_reload_language_list_and_history(page, db_query):
    page.goto("/?year=2019")
    assert shown(page) == mapped_count(db_query, "date BETWEEN '2019-01-01' AND '2019-12-31'")
    default = map_view(page)
    assert default == "map=5/48.200/67.500"
    assert "#" not in page.url  # nothing in the address until the map is moved
    # Zoom in twice with the control, then pan with the keyboard.
    view = wait_view_change(page, default, lambda: page.locator(".leaflet-control-zoom-in").click())
    assert view.startswith("map=6/")
    view = wait_view_change(page, view, lambda: page.locator(".leaflet-control-zoom-in").click())
    assert view.startswith("map=7/")
    page.locator("#map").focus()
    view = wait_view_change(page, view, lambda: page.keyboard.press("ArrowRight"))
    assert view.startswith("map=7/") and view != "map=7/48.200/67.500"
    assert page.url.endswith("/?year=2019#" + view)
    # A filter changed after the page was served: the address and the language form follow.
    count = wait_reload(page, lambda: page.get_by_role("checkbox", name="Political").check())
    assert count == mapped_count(
        db_query, "date BETWEEN '2019-01-01' AND '2019-12-31' AND 'political' = ANY(grievances)"
    )
    assert page.url.endswith("#" + view) and "grievance=political" in page.url

    # Reload: the same filters, zoom and position.
    page.reload()
    assert shown(page) == count
    assert map_view(page) == view
    assert page.url.endswith("#" + view)

    # The language switch keeps the filters, zoom and position.
    with page.expect_navigation():
        page.get_by_label("Language").select_option("ru")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert shown(page) == count
    assert "year=2019" in page.url and "grievance=political" in page.url
    assert page.url.endswith("#" + view)
    assert map_view(page) == view
    assert page.locator("#id_year").input_value() == "2019"
    assert page.get_by_role("checkbox", name="Политика").is_checked()
    with page.expect_navigation():
        page.get_by_label("Язык").select_option("en")
    assert shown(page) == count
    assert map_view(page) == view

    # To the list: the filters, not the fragment; and back to the map by its link.
    page.get_by_role("link", name="Show as a list").click()
    page.wait_for_url(re.compile(r"/events/\?"))
    page.locator("#events-table").wait_for()
    assert "year=2019" in page.url and "grievance=political" in page.url
    assert "#" not in page.url
    page.get_by_role("link", name="Show on the map").click()
    page.wait_for_url(re.compile(r"/\?.*#map="))
    assert shown(page) == count
    assert map_view(page) == view
    assert "year=2019" in page.url and "grievance=political" in page.url

    # Back and forward through fragments (hashchange), as a shared link or the user sets.
    there = "map=9/43.2500/76.9500"
    page.evaluate("view => { location.hash = view; }", there)
    page.wait_for_function(
        "view => document.getElementById('map').dataset.view === view", arg=there
    )
    page.go_back()
    page.wait_for_function("view => document.getElementById('map').dataset.view === view", arg=view)
    assert page.url.endswith("#" + view)
    page.go_forward()
    page.wait_for_function(
        "view => document.getElementById('map').dataset.view === view", arg=there
    )
    # A malformed fragment is ignored (no error): the tab's last view instead.
    page.goto("/?year=2019#map=99/abc/1")
    shown(page)
    assert map_view(page) == there


def test_map_popup_has_the_details_and_sources(page, db_query):
    row = db_query(
        "SELECT e.id, e.title, e.date, e.city_id FROM tracker_event e "
        "WHERE e.status = 'published' AND e.location IS NOT NULL AND e.city_id IS NOT NULL "
        "AND e.arrests IS NOT NULL AND EXISTS (SELECT 1 FROM tracker_source s "
        "WHERE s.event_id = e.id AND s.url <> '') "
        "AND (SELECT COUNT(*) FROM tracker_event o WHERE o.status = 'published' "
        "AND o.date = e.date AND o.city_id = e.city_id) = 1 ORDER BY e.date DESC LIMIT 1"
    )[0]
    event_id, title, date, city_id = row
    page.goto(f"/?date_after={date}&date_before={date}&city={city_id}")
    assert shown(page) == 1
    # By keyboard: the point is a focusable button named by its event; Enter opens it.
    marker = page.locator(".event-marker")
    assert marker.get_attribute("title") == f"{title}, {date}"
    assert marker.get_attribute("tabindex") == "0"
    marker.focus()
    page.keyboard.press("Enter")
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert title in popup.inner_text()
    page.locator(".leaflet-popup-close-button").click()
    popup.wait_for(state="detached")
    # By mouse.
    marker.click()
    popup.wait_for()
    text = popup.inner_text()
    assert title in text
    for label in ("Date", "Place", "Grievances", "Police response", "Arrests", "Participants"):
        assert label in text
    assert popup.locator(".sources a[href^='http']").count() >= 1
    # Leaflet fades the popup in; the screenshot waits until it is opaque.
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'"
    )
    screenshot(page, "map-popup")
    popup.get_by_role("link", name="Full record").click()
    page.wait_for_url(f"**/events/{event_id}/")
    assert page.get_by_role("heading", level=1).inner_text() == title


def test_events_at_one_spot_open_as_a_list_by_keyboard(page, db_query):
    """The demo's events of a city share one point: at any zoom they are one marker, which
    names how many it holds and opens their list, a page of ten at a time, newest first,
    every one of them reachable and openable, by the keyboard alone."""
    city_id, count = db_query(
        "SELECT city_id, COUNT(*) FROM tracker_event WHERE status = 'published' "
        "AND location IS NOT NULL AND city_id IS NOT NULL "
        "AND date BETWEEN '2019-01-01' AND '2019-12-31' GROUP BY 1 "
        "HAVING COUNT(DISTINCT location::text) = 1 ORDER BY 2 DESC LIMIT 1"
    )[0]
    expected = {
        row[0]
        for row in db_query(
            "SELECT id FROM tracker_event WHERE status = 'published' AND city_id = %s "
            "AND location IS NOT NULL AND date BETWEEN '2019-01-01' AND '2019-12-31'",
            (city_id,),
        )
    }
    page.goto(f"/?city={city_id}&year=2019")
    assert shown(page) == count == len(expected) > 10
    stacked = page.locator(".marker-stacked")
    assert stacked.count() == 1
    assert stacked.get_attribute("title") == f"{count} events at one place: list them"
    assert stacked.get_attribute("role") == "button"
    stacked.focus()
    page.keyboard.press("Enter")
    listing = page.locator(".leaflet-popup-content .stacked")
    listing.wait_for()
    assert f"{count} events at this place" in listing.locator("h3").inner_text()
    seen, dates = [], []
    while True:
        hrefs = listing.locator("ol a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
        assert 0 < len(hrefs) <= 10
        seen += [int(re.search(r"/events/(\d+)/", href).group(1)) for href in hrefs]
        dates += listing.locator(".stacked-date").all_inner_texts()
        following = listing.get_by_role("button", name="Next page")
        if following.is_disabled():
            break
        following.focus()
        page.keyboard.press("Enter")
        listing.locator(f"ol[start='{len(seen) + 1}']").wait_for()
    assert len(seen) == count and set(seen) == expected
    assert dates == sorted(dates, reverse=True)
    screenshot(page, "map-stacked")
    # Back one page and open an event, still by the keyboard.
    # The page is replaced after a tick: wait for the previous page's list itself, not for
    # any link (the last page's links are still there for a moment).
    last_start = (count - 1) // 10 * 10 + 1
    listing.get_by_role("button", name="Previous page").focus()
    page.keyboard.press("Enter")
    previous = listing.locator(f"ol[start='{last_start - 10}']")
    previous.wait_for()
    first = previous.locator("a").first
    target = first.get_attribute("href")
    first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{target}")


def test_dashboard_shows_the_numbers_per_year(page, db_query):
    page.goto("/dashboard/")
    page.wait_for_selector("body[data-charts=ready]")
    for year, count in DEMO_YEARS.items():
        cell = page.locator(f'#totals-table tr[data-year="{year}"] td[data-key="events"]')
        assert cell.inner_text() == str(count)
    arrests_2019 = db_query(
        "SELECT COALESCE(SUM(arrests), 0) FROM tracker_event WHERE status = 'published' "
        "AND date >= '2019-01-01' AND date <= '2019-12-31'"
    )[0][0]
    cell = page.locator('#totals-table tr[data-year="2019"] td[data-key="arrests"]')
    assert cell.inner_text() == str(arrests_2019)
    # Every chart was drawn (a canvas that Chart.js sized).
    for chart in ("grievances", "police", "arrests", "share", "cities"):
        assert page.locator(f"#chart-{chart}").evaluate("c => c.width > 100 && c.height > 100")
    # A chart's table view opens, and its CSV has the same numbers.
    page.get_by_text("Show as a table").first.click()
    csv_href = page.locator("a[href*='/dashboard/totals.csv']").first.get_attribute("href")
    body = page.request.get(csv_href).text()
    assert "2019,235," in body and "2020,254," in body
    screenshot(page, "dashboard")

    # The same filters as the map; the URL holds them.
    page.get_by_role("checkbox", name="Welfare").check()
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_selector("body[data-charts=ready]")
    assert "grievance=welfare" in page.url
    welfare = dict(
        db_query(
            "SELECT EXTRACT(YEAR FROM date)::int, COUNT(*) FROM tracker_event "
            "WHERE status = 'published' AND 'welfare' = ANY(grievances) GROUP BY 1"
        )
    )
    for year in (2019, 2020):
        cell = page.locator(f'#totals-table tr[data-year="{year}"] td[data-key="events"]')
        assert cell.inner_text() == str(welfare[year])


def test_contributor_submits_moderator_publishes_it_appears_on_the_map(browser, base_url, db_query):
    title = f"Browser test rally {uuid.uuid4().hex[:8]}"
    date = "2021-03-17"
    problems = PageProblems()

    contributor = open_context(browser, base_url, problems)
    page = contributor.new_page()
    log_in(page, "contributor")
    page.goto("/submit/")
    page.get_by_label("Title").fill(title)
    page.locator("#id_date").fill(date)
    city = page.get_by_label("City")
    city.fill("Алматы")
    page.locator("#city-suggestions option").first.wait_for(state="attached")
    # A click on the map places the point and fills the coordinates.
    page.locator("#pick-map").click(position={"x": 420, "y": 200})
    assert page.get_by_label("Latitude").input_value() != ""
    page.get_by_label("Latitude").fill("43.2383")
    page.get_by_label("Longitude").fill("76.9453")
    page.get_by_role("checkbox", name="Welfare").check()
    page.get_by_role("checkbox", name="Detained").check()
    page.locator("#id_arrests").fill("12")
    page.locator("#id_sources-0-url").fill("https://example.org/almaty-rally")
    page.locator("#id_sources-0-title").fill("Rally in Almaty")
    screenshot(page, "submit")

    # A mistake first: the error is shown next to its field, nothing is saved.
    page.get_by_label("Participants (low estimate)").fill("90")
    page.get_by_label("Participants (high estimate)").fill("40")
    page.get_by_role("button", name="Submit for review").click()
    error = page.locator(".has-error .errorlist").first
    assert "cannot exceed" in error.inner_text()
    screenshot(page, "submit-error")
    # The form answered 400 on purpose (bad input); Chromium logs every 4xx document.
    problems.allow("status of 400", "/submit/")
    page.get_by_label("Participants (low estimate)").fill("40")
    page.get_by_label("Participants (high estimate)").fill("90")
    page.locator("#id_sources-0-url").fill("https://example.org/almaty-rally")
    page.locator("#id_sources-0-title").fill("Rally in Almaty")
    page.get_by_role("button", name="Submit for review").click()
    page.wait_for_url("**/submit/mine/")
    row = page.locator("#my-submissions tr", has_text=title)
    assert "pending review" in row.inner_text()
    screenshot(page, "my-submissions")
    contributor.close()

    moderator = open_context(browser, base_url, problems)
    page = moderator.new_page()
    log_in(page, "moderator")
    page.goto("/review/")
    screenshot(page, "review-queue")
    page.get_by_role("link", name=title).click()
    page.wait_for_selector("#review-form")
    screenshot(page, "review-event")
    page.get_by_role("radio", name="Publish").check()
    page.get_by_role("button", name="Record decision").click()
    page.wait_for_url("**/review/")
    assert f"Published: {title}" in page.locator(".messages").inner_text()
    moderator.close()

    visitor = open_context(browser, base_url, problems)
    page = visitor.new_page()
    expected = mapped_count(db_query, "date = %s", (dt.date(2021, 3, 17),))
    page.goto(f"/?date_after={date}&date_before={date}")
    assert shown(page) == expected >= 1
    page.locator(".event-marker, .marker-stacked").first.wait_for()
    found = False
    for index in range(page.locator(".event-marker").count()):
        page.locator(".event-marker").nth(index).click()
        if title in page.locator(".leaflet-popup-content").inner_text():
            found = True
            break
    assert found, "the published event is not on the map"
    visitor.close()
    problems.check()


def test_language_switch(page):
    page.goto("/")
    page.wait_for_selector(READY)
    with page.expect_navigation():
        page.get_by_label("Language").select_option("ru")
    assert page.locator("html").get_attribute("lang") == "ru"
    page.wait_for_selector(READY)
    assert page.get_by_role("link", name="Тенденции").is_visible()
    assert page.get_by_role("checkbox", name="Социальное обеспечение").is_visible()
    assert re.match(
        r"Событий: \d+ \(на карте: \d+, без точного места: \d+\)",
        page.locator("#map-status").inner_text(),
    )
    assert re.match(
        r"Список событий без точного места \(\d+\)", page.locator("#no-place-link").inner_text()
    )
    screenshot(page, "map-ru")
    page.goto("/dashboard/")
    assert page.get_by_role("heading", name="Тенденции по годам").is_visible()
    with page.expect_navigation():
        page.get_by_label("Тіл").or_(page.get_by_label("Язык")).select_option("kk")
    assert page.locator("html").get_attribute("lang") == "kk"
    assert page.get_by_role("heading", name="Жылдық үрдістер").is_visible()
    assert page.locator("#totals-table").inner_text().count("235") == 1
    screenshot(page, "dashboard-kk")
    with page.expect_navigation():
        page.get_by_label("Тіл").select_option("en")
    assert page.get_by_role("heading", name="Yearly trends").is_visible()


def test_event_page(page, db_query):
    event_id, title = db_query(
        "SELECT id, title FROM tracker_event WHERE status = 'published' "
        "AND location IS NOT NULL AND description <> '' ORDER BY date LIMIT 1"
    )[0]
    page.goto(f"/events/{event_id}/")
    assert page.get_by_role("heading", level=1).inner_text() == title
    page.locator("#mini-map path.leaflet-interactive").wait_for()
    assert page.get_by_role("heading", name="History").is_visible()
    screenshot(page, "event")


PAGES = [
    ("/", None, READY),
    ("/dashboard/", None, "body[data-charts=ready]"),
    ("/accounts/login/", None, "form"),
    ("/submit/", "moderator", "#pick-map.leaflet-container"),
    ("/submit/mine/", "contributor", "table"),
    ("/review/", "moderator", "table"),
    ("/events/", None, "#events-table"),
    ("/events/?q=%D0%90%D0%BB%D0%BC%D0%B0%D1%82%D1%8B", None, "#events-table"),
]


@pytest.mark.parametrize(("path", "user", "ready"), PAGES)
def test_no_serious_accessibility_violations(page, path, user, ready):
    if user:
        log_in(page, user)
    page.goto(path)
    page.wait_for_selector(ready)
    assert_accessible(page)


def test_event_and_review_pages_are_accessible(page, db_query):
    event_id = db_query(
        "SELECT id FROM tracker_event WHERE status = 'published' AND location IS NOT NULL "
        "ORDER BY id LIMIT 1"
    )[0][0]
    page.goto(f"/events/{event_id}/")
    page.locator("#mini-map path.leaflet-interactive").wait_for()
    assert_accessible(page)
    log_in(page, "moderator")
    page.goto(f"/review/{event_id}/")
    assert_accessible(page)
    page.goto(f"/review/{event_id}/edit/")
    page.wait_for_selector("#pick-map.leaflet-container")
    assert_accessible(page)
    screenshot(page, "review-edit")
