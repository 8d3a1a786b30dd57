"""The crowd histograms (migration 0009) and the medians read from them (tracker.crowd),
against real PostGIS.

Every check compares the answer with percentile_cont(0.5) over the published events of
tracker_event itself, for a grid of filters x intervals, after each kind of write the
triggers must follow: bulk and single inserts, edits of the estimates, of the date and
the country, status changes, deletes, a rolled-back transaction and a TRUNCATE; and the
cells themselves with a GROUP BY of the events (no drift).
"""

import datetime as dt

import pytest
from django.db import connection, transaction

from tracker.crowd import (
    crowd_medians_from_events,
    crowd_medians_from_histograms,
    split_months,
)
from tracker.models import City, Event
from tracker.query import published_events
from tracker.selectors import crowd_medians

pytestmark = pytest.mark.django_db

INTERVALS = ("year", "quarter", "month")
# table -> (column of tracker_event, by country?, per value (else per bucket)?)
TABLES = {
    f"tracker_crowd_{side}{bucket}{place}": (column, place == "", bucket == "")
    for side, column in (("low", "participants_low"), ("high", "participants_high"))
    for bucket in ("", "_bucket")
    for place in ("", "_all")
}
GRID = [
    {},
    {"year": 2020},
    {"year": 2019, "country": ["KZ"]},
    {"country": ["KZ"]},
    {"country": ["KZ", "KG"]},
    {"country": ["KG", "KZ"], "year": 2020},
    {"date_after": dt.date(2020, 1, 1), "date_before": dt.date(2020, 6, 30)},  # whole months
    {"date_after": dt.date(2019, 3, 15), "date_before": dt.date(2021, 2, 10)},  # partial ends
    {"date_after": dt.date(2020, 5, 3), "date_before": dt.date(2020, 5, 20)},  # in one month
    {"date_after": dt.date(2020, 4, 20), "date_before": dt.date(2020, 5, 10)},  # two partial
    {"date_after": dt.date(2020, 5, 2)},
    {"date_before": dt.date(2020, 5, 30), "year": 2020},
    {"date_after": dt.date(2020, 5, 10), "date_before": dt.date(2020, 5, 31), "country": ["KZ"]},
    {"date_after": dt.date(2021, 1, 1), "date_before": dt.date(2020, 1, 1)},  # empty range
    {"grievance": [], "q": "", "in_bbox": None, "admin1": []},  # empty values are no filter
]


def reference(filters: dict, interval: str) -> dict:
    """percentile_cont(0.5) per period over the published events, in plain SQL."""
    where, params = ["status = 'published'"], []
    if filters.get("year"):
        where.append("date >= %s AND date <= %s")
        params += [dt.date(filters["year"], 1, 1), dt.date(filters["year"], 12, 31)]
    if filters.get("date_after"):
        where.append("date >= %s")
        params.append(filters["date_after"])
    if filters.get("date_before"):
        where.append("date <= %s")
        params.append(filters["date_before"])
    if filters.get("country"):
        where.append("country = ANY(%s)")
        params.append(filters["country"])
    if filters.get("admin1"):
        where.append("upper(admin1) = ANY(%s)")
        params.append([region.upper() for region in filters["admin1"]])
    if filters.get("city"):
        where.append("city_id = ANY(%s)")
        params.append(list(filters["city"]))
    if filters.get("grievance"):
        where.append("grievances && %s::varchar[]")
        params.append(list(filters["grievance"]))
    if filters.get("police_response"):
        where.append("police_responses && %s::varchar[]")
        params.append(list(filters["police_response"]))
    sql = (
        "SELECT date_trunc(%s, date::timestamp)::date, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY participants_low), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY participants_high) "
        f"FROM tracker_event WHERE {' AND '.join(where)} "
        "AND (participants_low IS NOT NULL OR participants_high IS NOT NULL) GROUP BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [interval, *params])
        return {
            period: {"median_low": low, "median_high": high}
            for period, low, high in cursor.fetchall()
        }


def cells(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3")
        return cursor.fetchall()


def recomputed(table: str) -> list[tuple]:
    """The cells of `table` by a GROUP BY of the published events."""
    column, by_country, by_value = TABLES[table]
    keys = ["date_trunc('month', date::timestamp)::date"]
    if by_country:
        keys.append("country")
    if by_value:
        keys.append(column)
    keys.append(f"tracker_crowd_bucket({column})")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(keys)}, count(*)::int FROM tracker_event "
            f"WHERE status = 'published' AND {column} IS NOT NULL "
            f"GROUP BY {', '.join(keys)} ORDER BY 1, 2, 3"
        )
        return cursor.fetchall()


def test_buckets_keep_the_order_of_values():
    """The reader skips whole buckets, so a bucket must never hold a value below one of
    an earlier bucket."""
    values = [*range(0, 70000), 2**20 - 1, 2**20, 2**20 + 1, 2**31 - 2, 2**31 - 1]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT v, tracker_crowd_bucket(v) FROM unnest(%s::int[]) v ORDER BY v", [values]
        )
        buckets = [bucket for _, bucket in cursor.fetchall()]
    assert buckets == sorted(buckets)
    assert buckets[:16] == list(range(16))  # small values are exact
    assert len(set(buckets)) < 200


def check_all() -> int:
    """The histograms equal the events, and every grid case is answered from them with
    percentile_cont's numbers; returns how many cases were checked."""
    for table in TABLES:
        assert cells(table) == recomputed(table), table
    checked = 0
    for filters in GRID:
        for interval in INTERVALS:
            expected = reference(filters, interval)
            got = crowd_medians_from_histograms(filters=filters, interval=interval)
            assert got is not None, (filters, interval)
            assert got == expected, (filters, interval)
            checked += 1
    return checked


def _make(**values) -> Event:
    defaults = {
        "title": "Crowd test",
        "date": dt.date(2020, 5, 10),
        "country": "KZ",
        "admin1": "Almaty",
        "grievances": ["labor"],
        "participants_low": 10,
        "participants_high": 40,
        "status": Event.Status.PUBLISHED,
    }
    defaults.update(values)
    return Event(**defaults)


def test_split_months():
    d = dt.date
    assert split_months(None, None) == (True, None, None, [])
    assert split_months(d(2020, 1, 1), d(2020, 12, 31)) == (True, d(2020, 1, 1), d(2020, 12, 1), [])
    assert split_months(d(2020, 5, 3), d(2020, 5, 20)) == (
        False,
        None,
        None,
        [(d(2020, 5, 3), d(2020, 5, 20))],
    )
    assert split_months(d(2020, 4, 20), d(2020, 5, 10)) == (
        False,
        d(2020, 5, 1),
        d(2020, 4, 1),
        [(d(2020, 4, 20), d(2020, 4, 30)), (d(2020, 5, 1), d(2020, 5, 10))],
    )
    assert split_months(d(2019, 3, 15), None) == (
        True,
        d(2019, 4, 1),
        None,
        [(d(2019, 3, 15), d(2019, 3, 31))],
    )
    assert split_months(None, d(2020, 2, 28)) == (
        True,
        None,
        d(2020, 1, 1),
        [(d(2020, 2, 1), d(2020, 2, 28))],
    )
    assert split_months(None, d(2020, 2, 29)) == (True, None, d(2020, 2, 1), [])


def test_known_medians_even_and_odd():
    """Numbers worked out by hand, so that a wrong reference could not hide a wrong answer."""
    Event.objects.bulk_create(
        [
            _make(date=dt.date(2031, 3, day), participants_low=low, participants_high=high)
            for day, low, high in [(1, 35, 100), (9, 10, None), (20, 41, 101), (31, 20, None)]
        ]
        + [_make(date=dt.date(2031, 4, 2), participants_low=None, participants_high=7)]
    )
    filters = {"date_after": dt.date(2031, 3, 1), "date_before": dt.date(2031, 4, 30)}
    expected = {
        dt.date(2031, 3, 1): {"median_low": 27.5, "median_high": 100.5},
        dt.date(2031, 4, 1): {"median_low": None, "median_high": 7.0},
    }
    assert crowd_medians_from_histograms(filters=filters, interval="month") == expected
    assert crowd_medians_from_histograms(filters={"year": 2031}, interval="year") == {
        dt.date(2031, 1, 1): {"median_low": 27.5, "median_high": 100.0}
    }
    partial = {"date_after": dt.date(2031, 3, 5), "date_before": dt.date(2031, 3, 25)}
    assert crowd_medians_from_histograms(filters=partial, interval="month") == {
        dt.date(2031, 3, 1): {"median_low": 25.5, "median_high": 101.0}
    }


def test_which_cases_are_answered():
    assert crowd_medians_from_histograms(filters={}, interval="week") is None
    assert crowd_medians_from_histograms(filters={"admin1": ["Almaty"]}, interval="year") is None
    assert crowd_medians_from_histograms(filters={"q": "pensions"}, interval="month") is None
    assert crowd_medians_from_histograms(filters={"city": [1]}, interval="year") is None
    assert crowd_medians_from_histograms(filters={"grievance": ["labor"]}, interval="year") is None
    # Month arithmetic past the calendar's ends is left to the events, not a 500.
    assert (
        crowd_medians_from_histograms(
            filters={"date_after": dt.date(9999, 12, 15)}, interval="year"
        )
        is None
    )
    assert (
        crowd_medians_from_histograms(filters={"date_before": dt.date(1, 1, 15)}, interval="year")
        is None
    )
    assert (
        crowd_medians_from_histograms(
            filters={"date_before": dt.date(9999, 12, 31)}, interval="year"
        )
        is not None
    )
    empty = {"date_after": dt.date(2021, 1, 1), "date_before": dt.date(2020, 1, 1)}
    assert crowd_medians_from_histograms(filters=empty, interval="year") == {}


def test_selector_uses_the_histograms_and_falls_back(django_assert_num_queries):
    Event.objects.bulk_create([_make(), _make(participants_low=30, admin1="Astana")])
    for data, answered in [
        ({"year": "2020", "country": "kz"}, True),
        ({"date_after": "2020-05-02", "date_before": "2020-07-19"}, True),
        ({"admin1": "almaty"}, False),
    ]:
        filterset = published_events(data)
        assert filterset.is_valid(), filterset.errors
        filters = filterset.form.cleaned_data
        for interval in INTERVALS:
            assert (
                crowd_medians_from_histograms(filters=filters, interval=interval) is not None
            ) is answered
            assert crowd_medians(filterset=filterset, interval=interval) == reference(
                filters, interval
            )
    # Weeks go to the events (a year at most).
    filterset = published_events({"year": "2020"})
    assert filterset.is_valid()
    week = crowd_medians(filterset=filterset, interval="week")
    assert week and all(period.weekday() == 0 for period in week)
    # The histograms answer the unfiltered dashboard in one query.
    filterset = published_events({})
    assert filterset.is_valid()
    with django_assert_num_queries(1):
        crowd_medians(filterset=filterset, interval="month")


def test_histograms_follow_every_kind_of_write():
    # Start: whatever the test database holds (demo data), then bulk and single inserts.
    Event.objects.bulk_create(
        [
            _make(),
            _make(date=dt.date(2020, 5, 31), participants_low=25, participants_high=None),
            _make(date=dt.date(2019, 3, 14), participants_low=None, participants_high=90),
            _make(date=dt.date(2019, 3, 15), country="KG", participants_low=7),
            _make(date=dt.date(2021, 2, 10), participants_low=0, participants_high=0),
            _make(
                date=dt.date(2021, 2, 11),
                status=Event.Status.PENDING,
                participants_low=999,
                participants_high=1200,
            ),
            _make(
                date=dt.date(2020, 4, 25), country="KG", participants_low=13, participants_high=13
            ),
            _make(date=dt.date(2020, 5, 4), participants_low=None, participants_high=None),
        ]
    )
    single = _make(date=dt.date(2020, 2, 14), participants_low=500, participants_high=800)
    single.save()
    assert check_all() == len(GRID) * len(INTERVALS)

    # Edits of the estimates (ORM save and UPDATE), to and from NULL, and moves to another
    # month and country.
    single.participants_low, single.participants_high = 50, None
    single.save()
    Event.objects.filter(date=dt.date(2019, 3, 14), participants_high=90).update(
        participants_low=60
    )
    Event.objects.filter(date=dt.date(2020, 5, 10), title="Crowd test").update(
        date=dt.date(2019, 3, 20)
    )
    Event.objects.filter(pk=single.pk).update(country="KG", date=dt.date(2020, 6, 1))
    check_all()

    # Status changes: publish, reject, unpublish; a save that changes no estimate writes
    # no cell.
    pending = Event.objects.filter(status=Event.Status.PENDING, participants_low=999)
    pending.update(status="published")
    rejected = Event.objects.get(date=dt.date(2019, 3, 15), country="KG", participants_low=7)
    rejected.status = Event.Status.REJECTED
    rejected.save()
    Event.objects.filter(pk=single.pk).update(status=Event.Status.PENDING)
    before = {table: cells(table) for table in TABLES}
    Event.objects.filter(title="Crowd test").update(title="Retitled")
    assert {table: cells(table) for table in TABLES} == before
    check_all()

    # Deletes (one, and several in one statement).
    Event.objects.filter(pk=rejected.pk).delete()
    Event.objects.filter(title="Retitled", date__year=2021).delete()
    check_all()

    # A rolled-back transaction leaves the histograms as they were.
    before = {table: cells(table) for table in TABLES}
    with pytest.raises(RuntimeError), transaction.atomic():
        Event.objects.bulk_create(
            [_make(date=dt.date(2020, 8, 1), participants_low=3) for _ in range(5)]
        )
        Event.objects.filter(title="Retitled").update(participants_high=12345)
        Event.objects.filter(country="KG").delete()
        assert {table: cells(table) for table in TABLES} != before
        raise RuntimeError("roll back")
    assert {table: cells(table) for table in TABLES} == before
    check_all()


def test_truncate_empties_the_histograms():
    Event.objects.bulk_create([_make()])
    assert all(cells(table) for table in TABLES)
    with connection.cursor() as cursor:
        # Django's foreign keys are deferred: check them now, or TRUNCATE refuses to run.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE tracker_event CASCADE")
    assert not any(cells(table) for table in TABLES)
    assert crowd_medians_from_histograms(filters={}, interval="year") == {}


def test_medians_with_cities_and_categories_from_the_crowd_indexes():
    """Cities and categories: sorted from the events by the masks of migration 0018, equal
    to percentile_cont over the arrays, also for arrays with a repeated slug,
    after inserts and edits (the masks are stored columns PostgreSQL keeps)."""
    a, b = City.objects.filter(country="KZ").order_by("id")[:2]
    events = [
        _make(city=a, grievances=["labor", "land"], police_responses=["detained"]),
        _make(
            city=a,
            grievances=["land"],
            police_responses=["force"],
            participants_low=70,
            participants_high=80,
        ),
        _make(city=b, grievances=["welfare"], participants_low=None, participants_high=15),
        _make(city=b, date=dt.date(2020, 7, 1), grievances=["labor", "labor"], participants_low=3),
        _make(city=None, grievances=["land"], police_responses=["force", "force"]),
        _make(city=a, date=dt.date(2019, 2, 2), participants_low=500, participants_high=900),
        _make(city=a, grievances=["land"], status=Event.Status.PENDING, participants_low=1),
    ]
    Event.objects.bulk_create(events)
    grid = [
        {"city": [a.pk]},
        {"city": [a.pk, b.pk], "year": 2020},
        {"grievance": ["labor"]},
        {"grievance": ["labor", "land"], "country": ["KZ"]},
        {"police_response": ["force"], "city": [a.pk]},
        {"grievance": ["land"], "police_response": ["detained", "force"]},
        {"grievance": ["welfare"], "date_after": dt.date(2020, 5, 3)},
    ]

    def check():
        for filters in grid:
            for interval in INTERVALS:
                got = crowd_medians_from_events(filters=filters, interval=interval)
                assert got == reference(filters, interval), (filters, interval)
                assert got, (filters, interval)  # the grid has events for every filter

    check()
    # An edit of the categories moves the event between masks.
    Event.objects.filter(pk=events[0].pk).update(grievances=["welfare"], participants_low=2)
    check()
    # Not answered: a region (no index of its own), a text search, an unknown slug.
    assert crowd_medians_from_events(filters={"admin1": ["Almaty"]}, interval="year") is None
    assert crowd_medians_from_events(filters={"q": "pensions"}, interval="year") is None
    assert crowd_medians_from_events(filters={"grievance": ["nope"]}, interval="year") is None
    assert crowd_medians_from_events(filters={}, interval="week") is None
