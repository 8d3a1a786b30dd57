"""The map on a phone, the embeddable map in a partner's page, and the basemap's place
labels, in real headless Chromium against a real gunicorn (see support.py).

Every page fails its test on a console error, an uncaught exception or a CSP violation.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.browser.support import (
    ARTIFACTS,
    ROOT,
    _free_port,
    _stop,
    assert_accessible,
    open_context,
    screenshot,
)

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


# --- the embedded map in a partner's page ---

PARTNER_PAGES: dict[str, str] = {}


class _PartnerPage(BaseHTTPRequestHandler):
    """A partner's site: another origin (another port) that serves a page with our frame."""

    def do_GET(self):
        body = PARTNER_PAGES.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write((body or "not here").encode())

    def log_message(self, *args):
        pass


def partner_page(path: str, *frames: str) -> str:
    PARTNER_PAGES[path] = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Partner news</title>"
        "<link rel='icon' href='data:,'>"
        "</head><body><h1>Partner news</h1>"
        + "".join(
            f"<iframe title='Protest map {n}' src='{src}' width='640' height='460'></iframe>"
            for n, src in enumerate(frames)
        )
        + "</body></html>"
    )
    return path


@pytest.fixture(scope="module")
def partner():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PartnerPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def embed_url(server_env, browser_db, partner):
    """A second server on the same database, set as the other browser tests set theirs (its
    environment) with the partner's origin in DJANGO_EMBED_ALLOWED_ORIGINS."""
    port = _free_port()
    env = dict(server_env, DJANGO_EMBED_ALLOWED_ORIGINS=partner)
    log = open(ARTIFACTS / "server-embed.log", "w")  # noqa: SIM115
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
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/embed/", timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            log.close()
            raise RuntimeError(f"the embed test server did not start: see {log.name}")
        time.sleep(0.3)
    yield url
    _stop(process)
    log.close()


def test_a_partner_page_shows_the_live_map_when_its_origin_is_allowed(
    page, partner, embed_url, db_query
):
    mapped = mapped_count(db_query, "EXTRACT(YEAR FROM date) = 2019")
    unmapped = db_query(
        "SELECT COUNT(*) FROM tracker_event WHERE status = 'published' "
        "AND location IS NULL AND EXTRACT(YEAR FROM date) = 2019"
    )[0][0]
    page.goto(partner + partner_page("/news", f"{embed_url}/embed/?year=2019"))
    frame = page.frame_locator("iframe")
    frame.locator(READY).wait_for(timeout=60_000)
    status = frame.locator("#map-status").inner_text()
    if unmapped:
        assert status == (
            f"Events: {mapped + unmapped} (on the map: {mapped}, without an exact place: "
            f"{unmapped})"
        )
    else:
        assert status == f"Events shown: {mapped}"
    assert int(frame.locator("#map").get_attribute("data-count")) == mapped > 0
    assert frame.locator(".marker-cluster").first.is_visible()
    # The map alone: no site header, no filter panel.
    assert frame.locator(".site-header, nav, #filters").count() == 0
    link = frame.get_by_role("link", name="Open in the tracker")
    assert link.get_attribute("target") == "_blank"
    assert link.get_attribute("rel") == "noopener"
    assert link.get_attribute("href").startswith("/?year=2019")
    page.wait_for_function(
        "() => document.querySelector('iframe').getBoundingClientRect().height > 400"
    )
    screenshot(page, "embed-partner")

    # The link opens the full map of the same selection, in a new tab.
    with page.context.expect_page() as opened:
        link.click()
    tracker = opened.value
    tracker.wait_for_url(f"{embed_url}/?year=2019**")
    assert shown(tracker) == mapped
    assert tracker.locator("#id_year").input_value() == "2019"


def test_frames_are_refused_unless_the_setting_allows_them(
    page, problems, partner, base_url, embed_url
):
    """The server of the other tests lists no origin: its /embed/ is refused to the
    partner; the server that lists the partner still refuses it its other pages."""
    page.goto(partner + partner_page("/refused", f"{base_url}/embed/", f"{embed_url}/"))
    page.wait_for_load_state("load")
    children = [frame for frame in page.frames if frame != page.main_frame]
    assert len(children) == 2
    for child in children:
        # A refused frame shows the browser's error page, never the tracker's.
        assert child.evaluate("document.getElementById('map') === null")
    # Chromium says why, once per refused frame: those messages are the expected ones.
    refusals = [problem for problem in problems if "frame-ancestors" in problem]
    assert len(refusals) >= 2, problems
    problems.allow("frame-ancestors")


def test_the_embedded_map_is_accessible(page, embed_url):
    page.goto(f"{embed_url}/embed/?year=2020&colour=police")
    page.wait_for_selector(READY, timeout=60_000)
    assert "Lethal force" in page.locator("#legend").inner_text()
    assert_accessible(page)


# --- place labels on the basemap ---


def _almaty_city(db_query) -> tuple[int, float, float]:
    return db_query(
        "SELECT id, ST_Y(location), ST_X(location) FROM tracker_city "
        "WHERE name = 'Almaty' AND country = 'KZ'"
    )[0]


def place_label(page, text: str):
    # The label's text (its icon box is a point, the text beside it).
    label = page.locator(".leaflet-place-labels-pane .place-label > span", has_text=text)
    label.first.wait_for()
    assert label.count() == 1
    return label.first


@pytest.mark.parametrize(("locale", "name"), [("ru-RU", "Алматы"), ("en-GB", "Almaty")])
def test_the_basemap_names_the_cities_in_the_interface_language(
    browser, base_url, problems, db_query, locale, name
):
    context = open_context(browser, base_url, problems, locale=locale)
    page = context.new_page()
    try:
        page.goto("/")
        page.wait_for_selector(READY, timeout=60_000)
        assert page.locator("html").get_attribute("lang") == locale[:2]
        label = place_label(page, name)
        assert label.inner_text() == name
        # The other language's name is not there.
        other = "Almaty" if name == "Алматы" else "Алматы"
        assert page.locator(".place-label > span", has_text=other).count() == 0
        # At the first zoom only the larger cities are named; closer in, more of them.
        few = page.locator(".place-label").count()
        assert 3 <= few <= 40
        screenshot(page, f"map-labels-zoom5-{locale[:2]}")
        pane = page.locator(".leaflet-place-labels-pane")
        assert pane.get_attribute("aria-hidden") == "true"
        assert page.locator(".place-label[tabindex], .place-label [tabindex]").count() == 0
        lat, lng = _almaty_city(db_query)[1:]
        # Closer in (the fragment moves the map, no reload): more, smaller places named.
        page.evaluate(f"location.hash = 'map=9/{lat:.4f}/{lng:.4f}'")
        page.wait_for_function(
            "() => document.getElementById('map').dataset.view.startsWith('map=9/')"
        )
        place_label(page, name)
        smallest = db_query(
            "SELECT MIN(population) FROM tracker_city WHERE population < 200000 "
            "AND ST_DWithin(location::geography, ST_MakePoint(%s, %s)::geography, 60000)",
            (lng, lat),
        )[0][0]
        if smallest is not None:
            assert page.locator(".place-label").count() > 1
        screenshot(page, f"map-labels-{locale[:2]}")
    finally:
        context.close()


def test_labels_do_not_take_the_clicks_of_a_marker_at_their_place(page, db_query):
    city_id, lat, lng = _almaty_city(db_query)
    page.goto(f"/?city={city_id}&year=2019#map=9/{lat:.4f}/{lng:.4f}")
    assert shown(page) > 1
    label = place_label(page, "Almaty")
    marker = page.locator(".marker-stacked")
    assert marker.count() == 1
    # Never the target of the pointer: what is under the label's middle is not the label.
    box = label.bounding_box()
    hit = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('.place-label') === null",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert hit
    assert label.evaluate("el => getComputedStyle(el).pointerEvents") == "none"
    # The label sits at the marker's place, and a click on the marker opens its list.
    marker_box = marker.bounding_box()
    assert abs(box["y"] + box["height"] / 2 - (marker_box["y"] + marker_box["height"] / 2)) < 20
    assert 0 <= box["x"] - (marker_box["x"] + marker_box["width"]) < 30
    page.mouse.click(
        marker_box["x"] + marker_box["width"] / 2, marker_box["y"] + marker_box["height"] / 2
    )
    page.locator(".leaflet-popup-content .stacked").wait_for()
    # Keyboard: Tab from the map reaches the marker, never a label.
    page.keyboard.press("Escape")
    page.locator("#map").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('.place-label') === null")
