# ruff: noqa: S608 - the SQL below is built from constants of this file; values are parameters
"""Medians of the crowd estimates, read from the histograms of migration 0009, exactly,
or not at all.

The histograms count the published events per month (and country) and reported value
of participants_low / participants_high. Triggers keep them in step with tracker_event in
the same transaction as every write, so an answer read from them is never stale.

The median of a period is a function of its histogram: with the values in order and n of
them, it is the value at position (n + 1) // 2 averaged with the one at n // 2 + 1 (for
an odd n the same one), which is what percentile_cont(0.5) computes. The bucket counts
of a period say which one or two buckets hold those positions and how many events come
before them; only the values of those buckets are then read. The histograms of
months and countries add up, so any filter that keeps or drops whole months and
countries is answered from the cells; a date range that starts or ends inside a month
gets that part of the month from tracker_event (the date index keeps it to a few
thousand rows). Any other filter (a region, a city, a category, text, a box...) returns
None and the caller sorts the events themselves.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable

from django.db import connection

INTERVALS = ("year", "quarter", "month")
# The filter keys answered here; any other with a value makes the answer None.
KNOWN_FILTERS = {"date_after", "date_before", "year", "country"}
SIDES = {"low": "participants_low", "high": "participants_high"}


def _empty(value) -> bool:
    return value is None or value == "" or (isinstance(value, Iterable) and not value)


def _as_list(value) -> list:
    if _empty(value):
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _as_date(value) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def _month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _previous_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return _month_end(day) + dt.timedelta(days=1)


def _days(filters: dict) -> tuple[dt.date | None, dt.date | None]:
    """The first and last day asked for (None: open), from date_after/before and year."""
    low, high = _as_date(filters.get("date_after")), _as_date(filters.get("date_before"))
    year = filters.get("year")
    if not _empty(year):
        first, last = dt.date(int(year), 1, 1), dt.date(int(year), 12, 31)
        low = first if low is None else max(low, first)
        high = last if high is None else min(high, last)
    return low, high


def split_months(
    low: dt.date | None, high: dt.date | None
) -> tuple[bool, dt.date | None, dt.date | None, list[tuple[dt.date, dt.date]]]:
    """(any whole months?, first whole month, last whole month, partial day ranges).

    Months are their first day; None is open. The partial ranges are the days of the
    first and last month that the range does not cover whole."""
    partial: list[tuple[dt.date, dt.date]] = []
    first = last = None
    if low is not None and high is not None and low.replace(day=1) == high.replace(day=1):
        if low.day == 1 and high == _month_end(high):
            return True, low, low, []
        return False, None, None, [(low, high)]
    if low is not None:
        if low.day == 1:
            first = low
        else:
            partial.append((low, _month_end(low)))
            first = _next_month(low)
    if high is not None:
        if high == _month_end(high):
            last = high.replace(day=1)
        else:
            partial.append((high.replace(day=1), high))
            last = _previous_month(high)
    whole = first is None or last is None or first <= last
    return whole, first, last, partial


STEPS = {"year": "1 year", "quarter": "3 months", "month": "1 month"}


def _side_ctes(side: str, interval: str, countries, whole, first, last, partial):
    """The CTEs (text, parameters in order) that end in `{side}_median` (period, median)
    for one estimate: the bucket counts find the one or two buckets that hold the middle
    positions of each period, then only the values of those buckets are read."""
    suffix = "" if countries else "_all"
    ctes: list[tuple[str, list]] = []
    if partial:
        # The days of partial months (crowd_partial, shared by both sides) per value.
        ctes.append(
            (
                f"{side}_partial AS (SELECT period, {side} AS value, "
                f"tracker_crowd_bucket({side}) AS bucket, sum(events)::int AS events "
                f"FROM crowd_partial WHERE {side} IS NOT NULL GROUP BY 1, 2)",
                [],
            )
        )

    def months(alias: str) -> tuple[str, list]:
        where, params = [], []
        if first is not None:
            where.append(f"{alias}.month >= %s")
            params.append(first)
        if last is not None:
            where.append(f"{alias}.month <= %s")
            params.append(last)
        if countries:
            where.append(f"{alias}.country = ANY(%s)")
            params.append(countries)
        return "".join(f" AND {condition}" for condition in where), params

    # 1. Events per period and bucket.
    parts, params = [], []
    if whole:
        if interval == "month":
            period = "c.month"
        else:
            period = "date_trunc(%s, c.month::timestamp)::date"
            params.append(interval)
        where, where_params = months("c")
        parts.append(
            f"SELECT {period} AS period, c.bucket, c.events "
            f"FROM tracker_crowd_{side}_bucket{suffix} c WHERE TRUE{where}"
        )
        params += where_params
    if partial:
        parts.append(f"SELECT period, bucket, events FROM {side}_partial")
    if interval == "month" and not partial and len(countries) <= 1:
        # One cell per month and bucket already, in the order of the cell index.
        cells = f"SELECT period, bucket, events AS n FROM ({parts[0]}) u"
    else:
        cells = (
            "SELECT period, bucket, sum(events)::int AS n "
            f"FROM ({' UNION ALL '.join(parts)}) u GROUP BY 1, 2"
        )
    ctes.append((f"{side}_buckets AS ({cells})", params))
    # 2. The buckets that hold position (total + 1) / 2 or total / 2 + 1 (1-based), with
    # how many events of the period come before them.
    ctes.append(
        (
            f"{side}_targets AS (SELECT period, bucket, upto - n AS before, total FROM ("
            f"SELECT period, bucket, n, sum(n) OVER (PARTITION BY period ORDER BY bucket "
            f"ROWS UNBOUNDED PRECEDING) AS upto, sum(n) OVER (PARTITION BY period) AS total "
            f"FROM {side}_buckets) w "
            f"WHERE upto >= (total + 1) / 2 AND upto - n < total / 2 + 1)",
            [],
        )
    )
    # 3. The values of those buckets (the month cells of the period, and partial days).
    parts, params = [], []
    if whole:
        where, where_params = months("f")
        # One index range per target bucket (OFFSET 0 keeps the subquery apart, so that
        # the planner does not hash the whole table for a handful of targets).
        parts.append(
            f"SELECT t.period, f.value, f.events FROM {side}_targets t CROSS JOIN LATERAL ("
            f"SELECT f.value, f.events FROM tracker_crowd_{side}{suffix} f "
            f"WHERE f.bucket = t.bucket AND f.month >= t.period "
            f"AND f.month < (t.period + %s::interval)::date{where} OFFSET 0) f"
        )
        params += [STEPS[interval], *where_params]
    if partial:
        parts.append(
            f"SELECT p.period, p.value, p.events FROM {side}_partial p "
            f"JOIN {side}_targets t ON t.period = p.period AND t.bucket = p.bucket"
        )
    ctes.append(
        (
            f"{side}_values AS (SELECT period, value, sum(events)::int AS n "
            f"FROM ({' UNION ALL '.join(parts)}) u GROUP BY 1, 2)",
            params,
        )
    )
    # 4. The middle values: for an odd count one, for an even one the mean of two (as
    # percentile_cont(0.5)).
    ctes.append(
        (
            f"{side}_median AS (SELECT period, "
            f"(min(value) FILTER (WHERE upto >= (total + 1) / 2)::float8 "
            f"+ min(value) FILTER (WHERE upto >= total / 2 + 1)) / 2 AS median FROM ("
            f"SELECT v.period, v.value, b.total, b.before + sum(v.n) OVER (PARTITION BY "
            f"v.period ORDER BY v.value ROWS UNBOUNDED PRECEDING) AS upto "
            f"FROM {side}_values v JOIN (SELECT period, min(before) AS before, "
            f"min(total) AS total FROM {side}_targets GROUP BY 1) b ON b.period = v.period"
            f") w GROUP BY 1)",
            [],
        )
    )
    return ctes


def crowd_medians_from_histograms(*, filters: dict, interval: str) -> dict | None:
    """{first day of the period: {"median_low": float | None, "median_high": ...}} for the
    published events that `filters` (EventFilterSet cleaned data) selects, per `interval`,
    from the histograms; None when they cannot answer it exactly (see the module
    docstring). Periods where no event reports an estimate are left out; a period where
    only one estimate is reported has None for the other."""
    if interval not in INTERVALS:
        return None
    if any(key not in KNOWN_FILTERS and not _empty(value) for key, value in filters.items()):
        return None
    countries = sorted({str(code).upper() for code in _as_list(filters.get("country"))})
    low, high = _days(filters)
    if low is not None and high is not None and low > high:
        return {}
    try:
        whole, first, last, partial = split_months(low, high)
    except OverflowError:  # a bound in December 9999 or January of year 1: the events
        return None
    ctes: list[tuple[str, list]] = []
    if partial:
        # The events of the partial months' days, read once for both estimates.
        ranges = " OR ".join("(e.date >= %s AND e.date <= %s)" for _ in partial)
        params = [interval, *(day for bounds in partial for day in bounds)]
        place = ""
        if countries:
            place = " AND e.country = ANY(%s)"
            params.append(countries)
        ctes.append(
            (
                "crowd_partial AS MATERIALIZED (SELECT "
                "date_trunc(%s, e.date::timestamp)::date AS period, "
                f"{', '.join(f'e.{column} AS {side}' for side, column in SIDES.items())}, "
                "count(*)::int AS events FROM tracker_event e WHERE e.status = 'published' "
                "AND (e.participants_low IS NOT NULL OR e.participants_high IS NOT NULL) "
                f"AND ({ranges}){place} GROUP BY 1, 2, 3)",
                params,
            )
        )
    for side in SIDES:
        ctes += _side_ctes(side, interval, countries, whole, first, last, partial)
    sql = (
        f"WITH {', '.join(text for text, _ in ctes)} "
        "SELECT coalesce(l.period, h.period), l.median, h.median "
        "FROM low_median l FULL JOIN high_median h ON l.period = h.period"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [param for _, params in ctes for param in params])
        return {
            period: {"median_low": low_median, "median_high": high_median}
            for period, low_median, high_median in cursor.fetchall()
        }


# The filter keys crowd_medians_from_events answers (a region would need its own index).
EVENT_FILTERS = {
    "date_after",
    "date_before",
    "year",
    "country",
    "city",
    "grievance",
    "police_response",
}


def crowd_medians_from_events(*, filters: dict, interval: str) -> dict | None:
    """The same medians as crowd_medians_from_histograms, sorted from the events that
    report a crowd, for filters of dates, countries, cities and categories: the category
    masks of migration 0018 let one of its partial indexes (by date, country or city)
    answer by an index-only scan. None for any other filter (the caller then sorts the
    events its own filter selects)."""
    from tracker.rollups import (
        GRIEVANCE_BITS,
        POLICE_RESPONSE_BITS,
        _mask,
        _place_conditions,
        _Query,
    )

    if interval not in INTERVALS:
        return None
    if any(key not in EVENT_FILTERS and not _empty(value) for key, value in filters.items()):
        return None
    gmask = _mask(sorted({str(s) for s in _as_list(filters.get("grievance"))}), GRIEVANCE_BITS)
    rmask = _mask(
        sorted({str(s) for s in _as_list(filters.get("police_response"))}), POLICE_RESPONSE_BITS
    )
    if gmask is None or rmask is None:  # a slug the masks do not know
        return None
    query = _Query()
    query.add("e.status = 'published'")
    query.add("(e.participants_low IS NOT NULL OR e.participants_high IS NOT NULL)")
    low, high = _days(filters)
    if low is not None:
        query.add("e.date >= %s", low)
    if high is not None:
        query.add("e.date <= %s", high)
    countries = sorted({str(code).upper() for code in _as_list(filters.get("country"))})
    cities = [int(getattr(city, "pk", city)) for city in _as_list(filters.get("city"))]
    _place_conditions(query, "e", countries, [], cities)
    # The known slugs' bits are exact in a mask (bit 31 marks a repeated or unknown one).
    if gmask:
        query.add("e.grievance_bits & %s <> 0", gmask)
    if rmask:
        query.add("e.response_bits & %s <> 0", rmask)
    sql = (
        "SELECT date_trunc(%s, e.date::timestamp)::date, "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY e.participants_low), "
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY e.participants_high) "
        f"FROM tracker_event e WHERE {query.sql()} GROUP BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [interval, *query.params])
        return {
            period: {"median_low": low_median, "median_high": high_median}
            for period, low_median, high_median in cursor.fetchall()
        }
