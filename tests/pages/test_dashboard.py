"""The dashboard for publishing (issue 9): shares, periods, comparisons, honest axes, CSVs,
bad input; against the demo data in real PostGIS, each number beside a plain SQL query."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from tracker.models import City, Event
from tracker.services.events import event_create

pytestmark = pytest.mark.django_db


def sql_rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def sql_per(interval: str, where: str = "TRUE", params=()) -> dict[dt.date, int]:
    rows = sql_rows(
        "SELECT date_trunc(%s, date::timestamp)::date, count(*) FROM tracker_event "
        f"WHERE status = 'published' AND {where} GROUP BY 1",
        (interval, *params),
    )
    return dict(rows)


def chart(response, key):
    return next(c for c in response.context["charts"] if c.key == key)


def column(response, key, series):
    c = chart(response, key)
    values = next(s.values for s in c.series if s.key == series)
    return dict(zip(c.rows, values, strict=True))


def get(client, **params):
    return client.get(reverse("dashboard"), params)


# --- the published shares ---


def test_the_published_shares_can_be_read_off_the_dashboard(client):
    response = get(client)
    assert response.status_code == 200
    human_rights = column(response, "grievance-shares", "human_rights")
    welfare = column(response, "grievance-shares", "welfare")
    assert (human_rights["2019"], human_rights["2020"]) == (48.9, 29.9)
    assert (welfare["2019"], welfare["2020"]) == (20.9, 38.2)
    # The same as plain SQL: events with the grievance over the year's events.
    for year in (2019, 2020):
        total, part = sql_rows(
            "SELECT count(*), count(*) FILTER (WHERE 'human_rights' = ANY(grievances)) "
            "FROM tracker_event WHERE status = 'published' AND date BETWEEN %s AND %s",
            (dt.date(year, 1, 1), dt.date(year, 12, 31)),
        )[0]
        assert human_rights[str(year)] == round(100 * part / total, 1)
    html = response.content.decode()
    table = html[html.index('id="grievance-shares-table"') :]
    table = table[: table.index("</table>")]
    row_2019 = table[table.index('data-period="2019"') :]
    row_2019 = row_2019[: row_2019.index("</tr>")]
    assert '<td data-key="human_rights">48.9</td>' in row_2019
    assert '<td data-key="welfare">20.9</td>' in row_2019
    assert "add up to more than 100 %" in html
    # Police responses too, as a per cent of the period's events.
    police = column(response, "police-shares", "detained")
    detained_2019 = sql_rows(
        "SELECT count(*) FROM tracker_event WHERE status = 'published' "
        "AND 'detained' = ANY(police_responses) AND date BETWEEN '2019-01-01' AND '2019-12-31'"
    )[0][0]
    assert police["2019"] == round(100 * detained_2019 / 235, 1)


def test_the_stacked_grievance_chart_says_it_is_not_a_count_of_events(client):
    response = get(client)
    grievances = chart(response, "grievances")
    assert grievances.stacked
    assert "not a count of events" in grievances.title
    assert "Mentions" in grievances.y_title
    spec = next(s for s in response.context["chart_data"]["charts"] if s["key"] == "grievances")
    assert spec["xTitle"] == "Year" and spec["yTitle"] == grievances.y_title


# --- periods ---


def test_quarters_show_every_period_with_zeros(client):
    response = get(client, interval="quarter", grievance="covid")
    assert response.status_code == 200
    got = column(response, "totals", "events")
    expected = sql_per("quarter", "'covid' = ANY(grievances)")
    first, last = sql_rows(
        "SELECT min(date), max(date) FROM tracker_event WHERE status = 'published'"
    )[0]
    labels = [f"{y}-Q{q}" for y in range(first.year, last.year + 1) for q in range(1, 5)]
    labels = [
        label
        for label in labels
        if (int(label[:4]), int(label[-1])) >= (first.year, (first.month - 1) // 3 + 1)
        and (int(label[:4]), int(label[-1])) <= (last.year, (last.month - 1) // 3 + 1)
    ]
    assert list(got) == labels
    for label, n in got.items():
        start = dt.date(int(label[:4]), 3 * (int(label[-1]) - 1) + 1, 1)
        assert n == expected.get(start, 0)
    assert 0 in got.values() and sum(got.values()) == sum(expected.values())
    assert response.context["heading"] == "Quarterly trends"


def test_months_of_a_year_with_zeros_and_thin_shares_marked(client):
    response = get(client, interval="month", year="2016", grievance="welfare")
    assert response.status_code == 200
    got = column(response, "totals", "events")
    assert list(got) == [f"2016-{m:02d}" for m in range(1, 13)]
    expected = sql_per(
        "month",
        "'welfare' = ANY(grievances) AND date BETWEEN %s AND %s",
        (dt.date(2016, 1, 1), dt.date(2016, 12, 31)),
    )
    assert got == {f"2016-{m:02d}": expected.get(dt.date(2016, m, 1), 0) for m in range(1, 13)}
    assert 0 in got.values()
    shares = chart(response, "grievance-shares")
    # Fewer than 10 events: marked, in the table (class) and the chart (hollow points).
    assert shares.thin == [0 < n < 10 for n in got.values()]
    assert any(shares.thin)
    html = response.content.decode()
    assert 'class="thin"' in html and "Fewer than 10 events" in html
    spec = next(s for s in response.context["chart_data"]["charts"] if s["key"] == "share")
    assert spec["thin"] == shares.thin
    assert any(label.endswith("†") for label in spec["labels"])


def test_weeks_for_a_year_and_a_clear_message_otherwise(client):
    response = get(client, interval="week", year="2019")
    assert response.status_code == 200
    got = column(response, "totals", "events")
    labels = list(got)
    assert labels[0] == "2019-W01" and len(labels) in (52, 53)
    assert sum(got.values()) == 235
    assert 0 in got.values() or min(got.values()) >= 0
    expected = sql_per("week", "date BETWEEN '2019-01-01' AND '2019-12-31'")
    for start, n in expected.items():
        year, week, _ = start.isocalendar()
        assert got[f"{year}-W{week:02d}"] == n
    too_long = get(client, interval="week")
    assert too_long.status_code == 400
    assert "Weeks need a date range of at most a year" in too_long.content.decode()
    assert too_long.context["charts"] == []
    wide = get(client, interval="week", date_after="2019-01-01", date_before="2020-06-30")
    assert wide.status_code == 400


def test_the_current_period_is_marked_partial(client):
    city = City.objects.get(name="Aktau", country="KZ")
    event_create(
        fields={
            "title": "Today",
            "date": timezone.localdate(),
            "city": city,
            "grievances": ["labor"],
        },
        sources=[{"url": "https://example.org/today", "title": "Today"}],
        status=Event.Status.PUBLISHED,
    )
    response = get(client)
    totals = chart(response, "totals")
    this_year = str(timezone.localdate().year)
    assert totals.rows[-1] == this_year and totals.partial[-1]
    assert not any(totals.partial[:-1])
    # The years between the demo data and today are on the axis as zeros.
    last_demo_year = sql_rows(
        "SELECT max(date) FROM tracker_event WHERE status = 'published' AND title <> 'Today'"
    )[0][0].year
    between = column(response, "totals", "events")
    assert [between[str(y)] for y in range(last_demo_year + 1, int(this_year))] == [0] * (
        int(this_year) - last_demo_year - 1
    )
    spec = response.context["chart_data"]["charts"][0]
    assert spec["labels"][-1] == this_year + "*"
    assert "The current period: not over yet" in response.content.decode()


# --- comparisons ---


def test_compare_the_top_cities_with_counts_and_rates_per_100k(client):
    response = get(client, compare="city", interval="year")
    assert response.status_code == 200
    compare = chart(response, "compare")
    top = sql_rows(
        "SELECT c.id, c.name, c.population, count(*) FROM tracker_event e "
        "JOIN tracker_city c ON c.id = e.city_id WHERE e.status = 'published' "
        "GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1 LIMIT 6"
    )
    assert [s.label for s in compare.series] == [name for _, name, _, _ in top]
    rate = chart(response, "compare-rate")
    for (pk, name, population, _n), counts in zip(top, compare.series, strict=True):
        per_year = sql_per("year", "city_id = %s", (pk,))
        expected = [per_year.get(dt.date(int(y), 1, 1), 0) for y in compare.rows]
        assert counts.values == expected
        assert counts.key == f"{name} ({pk})"
        if population:
            series = next(s for s in rate.series if s.label == name)
            assert series.values == [round(100_000 * n / population, 2) for n in expected]
    assert "per 100,000 people" in rate.title


def test_compare_the_selected_cities_and_say_when_population_is_unknown(client):
    aktau = City.objects.get(name="Aktau", country="KZ")
    City.objects.filter(pk=aktau.pk).update(population=0)
    response = get(
        client, compare="city", city=["Almaty", str(aktau.pk)], interval="month", year="2019"
    )
    assert response.status_code == 200
    compare = chart(response, "compare")
    almaty = City.objects.filter(name="Almaty").order_by("-population").first()
    assert [s.label for s in compare.series] == ["Almaty", "Aktau"]
    assert list(compare.rows) == [f"2019-{m:02d}" for m in range(1, 13)]
    per_month = sql_per(
        "month", "city_id = %s AND date BETWEEN '2019-01-01' AND '2019-12-31'", (almaty.pk,)
    )
    assert compare.series[0].values == [per_month.get(dt.date(2019, m, 1), 0) for m in range(1, 13)]
    rate = chart(response, "compare-rate")
    assert [s.label for s in rate.series] == ["Almaty"]
    assert rate.series[0].values == [
        round(100_000 * n / almaty.population, 2) for n in compare.series[0].values
    ]
    assert "Population unknown (no rate): Aktau." in response.content.decode()


def test_compare_regions_and_countries_counts_only(client):
    response = get(client, compare="admin1")
    assert response.status_code == 200
    compare = chart(response, "compare")
    top = sql_rows(
        "SELECT admin1, count(*) FROM tracker_event WHERE status = 'published' "
        "AND admin1 <> '' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 6"
    )
    assert sorted(s.label for s in compare.series) == sorted(name for name, _ in top)
    assert "compare-rate" not in [c.key for c in response.context["charts"]]
    assert "no population for regions and countries" in response.content.decode()
    # Selected regions, spelled in any case, are compared as the data spells them.
    region = top[0][0]
    one = get(client, compare="admin1", admin1=region.upper())
    assert [s.label for s in chart(one, "compare").series] == [region]
    countries = get(client, compare="country")
    assert countries.status_code == 200
    assert chart(countries, "compare").series[0].label == "KZ"
    # The region breakdown.
    regions = chart(response, "regions")
    assert regions.rows[0] == top[0][0] and regions.series[0].values[0] == top[0][1]


def test_compare_more_than_six_is_a_400_with_a_message(client):
    cities = sql_rows(
        "SELECT DISTINCT city_id FROM tracker_event WHERE status = 'published' "
        "AND city_id IS NOT NULL ORDER BY 1 LIMIT 7"
    )
    response = get(client, compare="city", city=[str(pk) for (pk,) in cities])
    assert response.status_code == 400
    html = response.content.decode()
    assert "Compare at most 6 at a time: 7 are selected in the City filter." in html
    assert response.context["charts"] == []
    csv_response = client.get(
        reverse("dashboard-csv", args=["compare"]),
        {"compare": "city", "city": [str(pk) for (pk,) in cities]},
    )
    assert csv_response.status_code == 400
    assert "Compare at most 6" in csv_response.content.decode()


# --- CSVs ---


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"interval": "month", "year": "2019", "compare": "city"},
        {"interval": "quarter", "grievance": "welfare", "compare": "admin1"},
    ],
)
def test_every_csv_has_the_page_numbers(client, params):
    response = get(client, **params)
    assert response.status_code == 200
    interval = params.get("interval", "year")
    keys = [c.key for c in response.context["charts"]]
    assert {
        "totals",
        "grievance-shares",
        "grievances",
        "police-shares",
        "police",
        "arrests",
        "share",
        "crowd",
        "crowd-median",
        "harm",
        "cities",
        "regions",
    } <= set(keys)
    html = response.content.decode()
    for c in response.context["charts"]:
        assert f'href="/dashboard/{c.key}.csv?' in html
        got = client.get(reverse("dashboard-csv", args=[c.key]), params)
        assert got.status_code == 200, (c.key, got.content)
        rows = list(csv.reader(io.StringIO(got.content.decode())))
        assert rows[0] == c.csv_header()
        if c.row_key not in ("city", "admin1"):
            assert rows[0][0] == interval  # the period column is named by the interval
        expected = [["" if v is None else str(v) for v in row] for row in c.csv_rows()]
        assert rows[1:] == expected, c.key


def test_csv_of_a_comparison_needs_compare(client):
    response = client.get(reverse("dashboard-csv", args=["compare"]))
    assert response.status_code == 400
    assert "compare=" in response.content.decode()
    rate = client.get(reverse("dashboard-csv", args=["compare-rate"]), {"compare": "country"})
    assert rate.status_code == 400


# --- bad input ---


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"interval": "decade"}, "Unknown period &#x27;decade&#x27;"),
        ({"compare": "planet"}, "Unknown comparison &#x27;planet&#x27;"),
        ({"interval": ["year", "month"]}, "interval was given more than once"),
        ({"arrests_min": "99999999999999999999999"}, "less than or equal to"),
        ({"year": "nineteen"}, "Enter a whole number"),
        ({"organizr": "Oyan"}, "Unknown parameter &#x27;organizr&#x27;"),
    ],
)
def test_bad_input_is_a_400_with_the_message_in_the_panel(client, params, message):
    response = get(client, **params)
    assert response.status_code == 400
    html = response.content.decode()
    start = html.index('id="filters"')
    panel = html[start : html.index("</form>", start)]
    assert message in panel
    assert response.context["charts"] == []
    assert client.get(reverse("dashboard-csv", args=["totals"]), params).status_code == 400


def test_an_unknown_parameter_names_the_known_ones(client):
    response = get(client, organizr="Oyan")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Known parameters:" in html and "compare" in html and "interval" in html


# --- the server's work stays small ---


def test_the_page_runs_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    # Not one query per group or per period: the same few at year and at week.
    for params in ({}, {"interval": "week", "year": "2020", "compare": "city"}):
        with django_assert_max_num_queries(16):
            assert get(client, **params).status_code == 200
