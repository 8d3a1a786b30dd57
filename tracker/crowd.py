# ruff: noqa: S608 - the SQL below is built from constants of this file; values are parameters
"""Medians of the crowd estimates, read from the histograms of migration 0009, exactly,
or not at all.

The histograms count the published events per month (and country) and reported value
of participants_low / participants_high. Triggers keep them in step with tracker_event in
the same transaction as every write, so an answer read from them is never stale.

The median of a period is a function of its histogram: with the values in order and n of
them, it is the value at position (n + 1) // 2 averaged with the one at n // 2 + 1 (for
an odd n the same one), which is what percentile_cont(0.5) computes. The histograms of
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


def _side_sql(column: str, table: str, interval: str, countries, whole, first, last, partial):
    """SQL and parameters of the rows (period, median) of one estimate."""
    params: list = []
    parts = []
    # One row per (month, value) already, in index order: no grouping needed.
    unique = interval == "month" and not partial and len(countries) <= 1
    if whole:
        period = "c.month" if interval == "month" else "date_trunc(%s, c.month::timestamp)::date"
        if interval != "month":
            params.append(interval)
        where = ["TRUE"]
        if first is not None:
            where.append("c.month >= %s")
            params.append(first)
        if last is not None:
            where.append("c.month <= %s")
            params.append(last)
        if countries:
            where.append("c.country = ANY(%s)")
            params.append(countries)
        parts.append(
            f"SELECT {period} AS period, c.value, c.events FROM {table} c "
            f"WHERE {' AND '.join(where)}"
        )
    for start, end in partial:
        where = (
            f"e.status = 'published' AND e.{column} IS NOT NULL AND e.date >= %s AND e.date <= %s"
        )
        params.extend([interval, start, end])
        if countries:
            where += " AND e.country = ANY(%s)"
            params.append(countries)
        parts.append(
            f"SELECT date_trunc(%s, e.date::timestamp)::date AS period, e.{column} AS value, "
            f"count(*)::int AS events FROM tracker_event e WHERE {where} GROUP BY 1, 2"
        )
    cells = (
        parts[0]
        if unique
        else (
            "SELECT period, value, sum(events)::int AS events "
            f"FROM ({' UNION ALL '.join(parts)}) u GROUP BY 1, 2"
        )
    )
    # upto: events up to this value in the period; total: in the period (int sums: bigint).
    sql = (
        f"SELECT period, (min(value) FILTER (WHERE upto >= (total + 1) / 2)::float8"
        f" + min(value) FILTER (WHERE upto >= total / 2 + 1)) / 2 AS median FROM ("
        f"SELECT h.period, h.value, sum(h.events) OVER (PARTITION BY h.period ORDER BY h.value "
        f"ROWS UNBOUNDED PRECEDING) AS upto, sum(h.events) OVER (PARTITION BY h.period) AS total "
        f"FROM ({cells}) h) w GROUP BY 1"
    )
    return sql, params


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
    whole, first, last, partial = split_months(low, high)
    suffix = "" if countries else "_all"
    queries = {
        side: _side_sql(
            column,
            f"tracker_crowd_{side}{suffix}",
            interval,
            countries,
            whole,
            first,
            last,
            partial,
        )
        for side, column in SIDES.items()
    }
    sql = (
        f"SELECT coalesce(l.period, h.period), l.median, h.median "
        f"FROM ({queries['low'][0]}) l FULL JOIN ({queries['high'][0]}) h ON l.period = h.period"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*queries["low"][1], *queries["high"][1]])
        return {
            period: {"median_low": low_median, "median_high": high_median}
            for period, low_median, high_median in cursor.fetchall()
        }
