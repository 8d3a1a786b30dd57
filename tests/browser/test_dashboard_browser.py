"""The dashboard in real Chromium against a real server: monthly and comparison views in
English, Russian and Kazakh, PNG and SVG downloads, and a language switch that keeps the
URL's state. Screenshots go to /tmp/dash-*.png (and test-artifacts/)."""

from __future__ import annotations

import json
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.support import screenshot

pytestmark = pytest.mark.browser

READY = "body[data-charts=ready]"
SHOTS = Path(tempfile.gettempdir())  # /tmp/dash-*.png, to look at
LANGUAGES = {
    # language: (monthly heading, month column, a grievance, compare title, Almaty, Aktau)
    "en": ("Monthly trends", "Month", "Human rights", "Cities compared: events", "Almaty", "Aktau"),
    "ru": (
        "Тенденции по месяцам",
        "Месяц",
        "Права человека",
        "Города в сравнении: события",
        "Алматы",
        "Актау",
    ),
    "kk": (
        "Айлық үрдістер",
        "Ай",
        "Адам құқықтары",
        "Қалалар салыстырмалы түрде: оқиғалар",
        "Алматы",
        "Ақтау",
    ),
}


def chart_specs(page) -> dict:
    specs = json.loads(page.locator("#chart-data").text_content())["charts"]
    return {spec["key"]: spec for spec in specs}


def switch_language(page, code: str) -> None:
    with page.expect_navigation():
        page.locator("#language-select").select_option(code)
    page.wait_for_selector(READY)
    assert page.locator("html").get_attribute("lang") == code


def state(url: str) -> dict:
    return parse_qs(urlsplit(url).query)


def test_monthly_view_in_three_languages_keeps_the_url_state(page, db_query):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto("/dashboard/")
    page.wait_for_selector(READY)
    # The period is chosen on the page; the URL then holds it with the filters.
    page.locator("#id_interval").select_option("month")
    page.locator("#id_year").fill("2019")
    page.get_by_role("button", name="Show").click()
    page.wait_for_selector(READY)
    assert state(page.url)["interval"] == ["month"] and state(page.url)["year"] == ["2019"]
    expected = dict(
        db_query(
            "SELECT to_char(date, 'YYYY-MM'), count(*) FROM tracker_event "
            "WHERE status = 'published' AND date BETWEEN '2019-01-01' AND '2019-12-31' "
            "GROUP BY 1"
        )
    )
    first_url = page.url
    for code, (heading, month, grievance, _c, _a, _k) in LANGUAGES.items():
        if code != "en":
            switch_language(page, code)
            assert state(page.url) == state(first_url)  # the whole state survives
        assert page.get_by_role("heading", level=1).inner_text() == heading
        rows = page.locator("#totals-table tbody tr")
        assert rows.count() == 12  # every month, zeros included
        for m in range(1, 13):
            label = f"2019-{m:02d}"
            cell = page.locator(f'#totals-table tr[data-period="{label}"] td[data-key="events"]')
            assert cell.text_content() == str(expected.get(label, 0))
        assert page.locator("#totals-table thead th").first.text_content() == month
        specs = chart_specs(page)
        assert specs["grievances"]["xTitle"] == month
        assert grievance in [s["label"] for s in specs["grievance-shares"]["series"]]
        for key in ("totals", "grievance-shares", "grievances", "police", "share", "crowd"):
            assert page.locator(f"#chart-{key}").evaluate("c => c.width > 300 && c.height > 200")
        page.screenshot(path=SHOTS / f"dash-month-{code}.png", full_page=False)
        page.locator("#card-grievance-shares").screenshot(
            path=SHOTS / f"dash-month-shares-{code}.png"
        )
        screenshot(page, f"dashboard-month-{code}")
    switch_language(page, "en")


def test_comparison_of_cities_in_three_languages(page, db_query):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto("/dashboard/?compare=city&city=Almaty&city=Aktau&interval=year")
    page.wait_for_selector(READY)
    counts = dict(
        db_query(
            "SELECT EXTRACT(YEAR FROM e.date)::int, count(*) FROM tracker_event e "
            "JOIN tracker_city c ON c.id = e.city_id WHERE e.status = 'published' "
            "AND c.name = 'Almaty' GROUP BY 1"
        )
    )
    for code, (_h, _m, _g, title, almaty, aktau) in LANGUAGES.items():
        if code != "en":
            switch_language(page, code)
            query = state(page.url)
            assert query["compare"] == ["city"] and query["city"] == ["Almaty", "Aktau"]
        assert page.get_by_role("heading", name=title, exact=True).is_visible()
        headers = page.locator("#compare-table thead th").all_text_contents()
        assert headers[1:] == [almaty, aktau]
        page.locator("#card-compare summary").click()
        for year in (2019, 2020):
            row = page.locator(f'#compare-table tr[data-period="{year}"] td').first
            assert row.text_content() == str(counts[year])
        rate = chart_specs(page)["compare-rate"]
        assert rate["series"][0]["label"] == almaty
        assert page.locator("#chart-compare-rate").evaluate("c => c.width > 300")
        page.locator("#card-compare").scroll_into_view_if_needed()
        page.locator("#card-compare").screenshot(path=SHOTS / f"dash-compare-{code}.png")
        page.locator("#card-compare-rate").screenshot(path=SHOTS / f"dash-compare-rate-{code}.png")
    switch_language(page, "en")


def test_png_and_svg_downloads(page, tmp_path):
    page.goto("/dashboard/?interval=quarter&compare=city")
    page.wait_for_selector(READY)
    card = page.locator("#card-grievances")
    with page.expect_download() as info:
        card.get_by_role("button", name="Download PNG").click()
    png = tmp_path / info.value.suggested_filename
    info.value.save_as(png)
    data = png.read_bytes()
    assert info.value.suggested_filename == "protest-events-quarter-grievances.png"
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    for key in ("grievances", "grievance-shares", "cities", "compare"):
        with page.expect_download() as info:
            page.locator(f"#card-{key}").get_by_role("button", name="Download SVG").click()
        svg = tmp_path / info.value.suggested_filename
        info.value.save_as(svg)
        text = svg.read_text(encoding="utf-8")
        tree = ET.fromstring(text)  # noqa: S314 (the page's own file): well-formed XML
        assert tree.tag == "{http://www.w3.org/2000/svg}svg"
        spec = chart_specs(page)[key]
        words = [t.text for t in tree.iter("{http://www.w3.org/2000/svg}text")]
        assert spec["title"] in words and spec["xTitle"] in words and spec["yTitle"] in words
        shapes = list(tree.iter("{http://www.w3.org/2000/svg}rect")) + list(
            tree.iter("{http://www.w3.org/2000/svg}circle")
        )
        assert len(shapes) > len(spec["labels"])
        (tmp_path / "copy.svg").write_text(text)
        if key in ("grievances", "compare"):
            # Look at it as a reader would: Chromium renders the file.
            page.goto(svg.as_uri())
            page.screenshot(path=SHOTS / f"dash-svg-{key}.png")
            page.goto("/dashboard/?interval=quarter&compare=city")
            page.wait_for_selector(READY)


def test_bad_input_shows_the_message_without_a_script_error(page, problems):
    response = page.goto("/dashboard/?interval=week")
    assert response.status == 400
    problems.allow("400")
    assert "Weeks need a date range of at most a year" in page.locator("#filters").inner_text()
    page.wait_for_selector(READY)
