"""Reads: querysets and rows for the views, the API and the importers."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import GEOSGeometry, Point
from django.contrib.gis.measure import D
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils.translation import get_language

from tracker import taxonomy
from tracker.history import is_moderator
from tracker.models import City, CityName, Event, ExternalId, Organization, Source, normalize_name


def city_lookup(name: str, *, country: str | None = None) -> QuerySet[City]:
    """Cities known by `name` in any language or former name; the most populous first."""
    key = normalize_name(name)
    if not key:
        return City.objects.none()
    cities = City.objects.filter(names__normalized=key)
    if country:
        cities = cities.filter(country=country.upper())
    return cities.distinct().order_by("-population", "id")


def city_search(query: str, *, limit: int = 20) -> QuerySet[City]:
    """Cities with a name starting with `query` (autocomplete)."""
    key = normalize_name(query)
    if not key:
        return City.objects.none()
    ids = City.objects.filter(names__normalized__startswith=key).values("id").distinct()
    return City.objects.filter(id__in=ids).order_by("-population", "name")[:limit]


def city_list(*, query: str = "", country: str | None = None, limit: int = 20) -> QuerySet[City]:
    """Cities for a picker: those with a name starting with `query` (any language), or the
    most populous ones when there is no query; optionally in one country."""
    cities = City.objects.all()
    key = normalize_name(query) if query else ""
    if query and not key:
        return City.objects.none()
    if key:
        ids = CityName.objects.filter(normalized__startswith=key).values("city_id")
        cities = cities.filter(id__in=ids)
    if country:
        cities = cities.filter(country=country.upper())
    return cities.order_by("-population", "name", "id")[:limit]


def city_nearest(point: Point, *, max_km: float = 30) -> City | None:
    """The nearest gazetteer city within `max_km` of `point`, if any."""
    # A generous box in degrees first (uses the GiST index), then the true distance.
    degrees = max_km / 111.0 / max(math.cos(math.radians(point.y)), 0.1)
    return (
        City.objects.filter(
            location__dwithin=(point, degrees), location__distance_lte=(point, D(km=max_km))
        )
        .annotate(distance=Distance("location", point))
        .order_by("distance")
        .first()
    )


def event_visible_to(user) -> QuerySet[Event]:
    """Events `user` may read: published ones; a contributor's own submissions too; every
    event for moderators. Never keyed on anything a client could forge."""
    if is_moderator(user):
        return Event.objects.all()
    if user is not None and user.is_authenticated:
        return Event.objects.filter(Q(status=Event.Status.PUBLISHED) | Q(submitted_by=user))
    return Event.objects.published()


def event_submissions(*, user) -> QuerySet[Event]:
    """What `user` submitted, in any status, newest first: their submission tracker."""
    return Event.objects.filter(submitted_by=user).order_by("-created_at", "-id")


def event_with_related(queryset: QuerySet[Event]) -> QuerySet[Event]:
    """Everything an event's representation needs, in a fixed number of queries."""
    return queryset.select_related("city").prefetch_related(
        Prefetch("sources", queryset=Source.objects.order_by("id")),
        Prefetch("organizers", queryset=Organization.objects.order_by("name")),
        Prefetch("external_ids", queryset=ExternalId.objects.order_by("scheme", "value")),
    )


class TrendInterval:
    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"
    WEEK = "week"
    CHOICES = (YEAR, QUARTER, MONTH, WEEK)


class TrendGroup:
    GRIEVANCE = "grievance"
    POLICE_RESPONSE = "police_response"
    CITY = "city"
    ADMIN1 = "admin1"
    COUNTRY = "country"
    CHOICES = (GRIEVANCE, POLICE_RESPONSE, CITY, ADMIN1, COUNTRY)


# What every count row holds, for each period (and group): sums of NULL count as 0.
COUNT_METRICS = (
    "events",
    "arrests",
    "events_with_arrests",
    "events_with_force",
    "injuries",
    "deaths",
    "participants_low",
    "participants_high",
    "events_with_participants",
)

# Weeks only for short ranges: a week axis over years is unreadable and unbounded.
MAX_WEEK_RANGE_DAYS = 366


class IntervalTooLong(ValueError):
    """interval=week over a date range of more than a year (or none at all)."""


def period_start(day: dt.date, interval: str) -> dt.date:
    if interval == TrendInterval.YEAR:
        return dt.date(day.year, 1, 1)
    if interval == TrendInterval.QUARTER:
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if interval == TrendInterval.MONTH:
        return dt.date(day.year, day.month, 1)
    return day - dt.timedelta(days=day.weekday())  # ISO weeks start on Monday


def period_after(start: dt.date, interval: str) -> dt.date:
    """The first day of the period after the one starting on `start`."""
    if interval == TrendInterval.WEEK:
        return start + dt.timedelta(days=7)
    months = {TrendInterval.YEAR: 12, TrendInterval.QUARTER: 3, TrendInterval.MONTH: 1}[interval]
    month = start.month - 1 + months
    return dt.date(start.year + month // 12, month % 12 + 1, 1)


def period_label(start: dt.date, interval: str) -> str:
    """ "2019", "2019-Q2", "2019-06" or "2019-W05" (ISO week)."""
    if interval == TrendInterval.YEAR:
        return str(start.year)
    if interval == TrendInterval.QUARTER:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    if interval == TrendInterval.MONTH:
        return f"{start.year}-{start.month:02d}"
    year, week, _ = start.isocalendar()
    return f"{year}-W{week:02d}"


def periods_between(first: dt.date, last: dt.date, interval: str) -> list[dt.date]:
    """The start of every period from the one holding `first` to the one holding `last`."""
    starts, start = [], period_start(first, interval)
    while start <= last:
        starts.append(start)
        start = period_after(start, interval)
    return starts


def published_date_range() -> tuple[dt.date, dt.date] | None:
    """The first and last day with a published event (two index lookups)."""
    dates = Event.objects.published().order_by("date").values_list("date", flat=True)
    first = dates.first()
    if first is None:
        return None
    return first, dates.reverse().first()


def filter_date_range(filters: dict) -> tuple[dt.date | None, dt.date | None]:
    """The days a filter's date_after, date_before and year allow (None: unbounded)."""
    after, before = filters.get("date_after"), filters.get("date_before")
    year = filters.get("year")
    if year is not None:
        after = max(after, dt.date(year, 1, 1)) if after else dt.date(year, 1, 1)
        before = min(before, dt.date(year, 12, 31)) if before else dt.date(year, 12, 31)
    return after, before


def axis_periods(*, filters: dict, interval: str) -> list[dt.date]:
    """The periods an axis shows for `filters`: those of the filter's date range, clipped
    to the days that hold published events (so zero periods inside stay, as zeros)."""
    bounds = published_date_range()
    if bounds is None:
        return []
    after, before = filter_date_range(filters)
    first = max(after, bounds[0]) if after else bounds[0]
    last = min(before, bounds[1]) if before else bounds[1]
    if first > last:
        return []
    return periods_between(first, last, interval)


def within_data(filters: dict) -> dict | None:
    """`filters` with a date bound that lies beyond the months holding published events
    dropped (it selects nothing more or less), so that month arithmetic near year 1 or 9999
    never overflows; None when the date range holds no published event at all."""
    after, before = filters.get("date_after"), filters.get("date_before")
    if after is None and before is None:
        return filters
    bounds = published_date_range()
    if bounds is None:
        return None
    first = period_start(bounds[0], TrendInterval.MONTH)
    last = period_after(period_start(bounds[1], TrendInterval.MONTH), TrendInterval.MONTH)
    if (after is not None and after >= last) or (before is not None and before < first):
        return None
    filters = dict(filters)
    if after is not None and after <= first:
        filters["date_after"] = None
    if before is not None and before >= last:
        filters["date_before"] = None
    return filters


def check_interval(*, filters: dict, interval: str) -> None:
    """Raise IntervalTooLong for weeks over more than a year."""
    if interval != TrendInterval.WEEK:
        return
    after, before = filter_date_range(filters)
    if after is None or before is None or (before - after).days > MAX_WEEK_RANGE_DAYS:
        raise IntervalTooLong(
            "interval=week needs a date range of at most a year: give year= or "
            "date_after= and date_before= (or choose month)."
        )


def event_counts(*, filterset, interval: str = TrendInterval.YEAR, by: str | None = None):
    """The one aggregation of events: COUNT_METRICS per period (and group) for a valid
    tracker.query.EventFilterSet, as rows {"period": first day, "group": key, ...}.

    Groups are keys: a slug, an ISO code, a region's name, a city id (None: no city).
    With by=grievance or by=police_response an event counts once in each of its
    categories, so the groups of one period can add up to more than its events.
    Answered from the rollup tables (tracker.rollups) when they hold the exact answer,
    else by one GROUP BY over the filtered events. Periods without events are left out;
    axis_periods() gives the ones to show.
    """
    keys = ("period", "group", *COUNT_METRICS) if by is not None else ("period", *COUNT_METRICS)
    rows = event_count_rows(filterset=filterset, interval=interval, by=by)
    return [dict(zip(keys, row, strict=True)) for row in rows]


def event_count_rows(
    *,
    filterset,
    interval: str = TrendInterval.YEAR,
    by: str | None = None,
    build=None,
    named: bool = False,
) -> list:
    """event_counts' rows as tuples (period, [group,] *COUNT_METRICS), in the same order:
    for callers that build their own rows from thousands of them (the trends API). With
    `build`, a function of a list of rows that returns a list, build's result instead,
    computed from the rollups' rows while they arrive. With `named`, the rows are as the
    API shows them: a by=city row holds the city's name instead of its id, and the rows
    are ordered by period, then group as text in code point order (two cities of one name
    by id, no group last)."""
    if interval not in TrendInterval.CHOICES:
        raise ValueError(f"interval must be one of {TrendInterval.CHOICES}")
    if by is not None and by not in TrendGroup.CHOICES:
        raise ValueError(f"by must be one of {TrendGroup.CHOICES}")
    from tracker.rollups import rollup_rows

    filters = within_data(filterset.form.cleaned_data)
    if filters is None:
        return []
    # The rollups' SQL orders text groups in code point order already, and names cities.
    rows = rollup_rows(filters=filters, interval=interval, by=by, build=build, city_names=named)
    if rows is None:
        rows = _raw_count_rows(queryset=filterset.qs, interval=interval, by=by)
        if named and by is not None:
            rows = _as_shown(rows, by)
        if build is not None:
            rows = build(rows)
    return rows


def _as_shown(rows: list[tuple], by: str) -> list[tuple]:
    """Grouped rows (period, group, ...) as event_count_rows(named=True) gives them."""
    names: dict = {}
    if by == TrendGroup.CITY:
        names = city_names_by_id(row[1] for row in rows)
        names[None] = None
        rows = sorted(
            rows, key=lambda row: (row[0], row[1] is None, names[row[1]] or "", row[1] or 0)
        )
        return [(row[0], names[row[1]], *row[2:]) for row in rows]
    return sorted(rows, key=lambda row: (row[0], row[1] is None, str(row[1])))


_GROUP_SQL = {
    None: ("", None),
    TrendGroup.GRIEVANCE: ("CROSS JOIN LATERAL unnest(e.grievances) AS g(slug)", "g.slug"),
    TrendGroup.POLICE_RESPONSE: (
        "CROSS JOIN LATERAL unnest(e.police_responses) AS g(slug)",
        "g.slug",
    ),
    TrendGroup.COUNTRY: ("", "e.country"),
    TrendGroup.ADMIN1: ("", "e.admin1"),
    TrendGroup.CITY: ("", "e.city_id"),
}


def _raw_count_rows(*, queryset: QuerySet[Event], interval: str, by: str | None) -> list[tuple]:
    """event_count_rows by one GROUP BY in PostgreSQL over the events of `queryset`."""
    try:
        inner_sql, inner_params = (
            queryset.order_by()
            .values(
                "id",
                "date",
                "arrests",
                "injuries",
                "deaths",
                "participants_low",
                "participants_high",
                "police_responses",
                "grievances",
                "country",
                "admin1",
                "city_id",
            )
            .query.sql_with_params()
        )
    except EmptyResultSet:  # a filter Django knows can match nothing
        return []
    join, key = _GROUP_SQL[by]
    key_select = f", {key} AS grp" if key else ""
    # Identifiers above come from fixed choices, values only through parameters.
    sql = f"""
        SELECT date_trunc(%s, e.date::timestamp)::date AS period{key_select},
               count(*),
               coalesce(sum(e.arrests), 0),
               count(*) FILTER (WHERE e.arrests > 0),
               count(*) FILTER (WHERE e.police_responses && %s::varchar[]),
               coalesce(sum(e.injuries), 0),
               coalesce(sum(e.deaths), 0),
               coalesce(sum(e.participants_low), 0),
               coalesce(sum(e.participants_high), 0),
               count(*) FILTER (WHERE e.participants_low IS NOT NULL
                                   OR e.participants_high IS NOT NULL)
        FROM ({inner_sql}) e {join}
        GROUP BY 1{", 2" if key else ""}
        ORDER BY 1{", 2" if key else ""}
    """  # noqa: S608
    params = (interval, sorted(taxonomy.FORCE_RESPONSES), *inner_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    first = 2 if key else 1  # the counts after period [and group], as ints (sums: numeric)
    return [(*row[:first], *(int(v) for v in row[first:])) for row in fetched]


def crowd_medians(*, filterset, interval: str) -> dict[dt.date, dict[str, float | None]]:
    """Per period: the median of the low and of the high crowd estimates, over the events
    that report one. Read from the crowd histograms (tracker.crowd) when the filter keeps
    whole months and countries only (a day-precise range's partial months from the events),
    as event_counts reads the rollups for a filter set over published events; with cities
    or categories besides, from the crowd indexes of migration 0018; else one pass over
    the filtered events."""
    from tracker.crowd import crowd_medians_from_events, crowd_medians_from_histograms

    filters = within_data(filterset.form.cleaned_data)
    if filters is None:
        return {}
    found = crowd_medians_from_histograms(filters=filters, interval=interval)
    if found is None:
        found = crowd_medians_from_events(filters=filters, interval=interval)
    if found is not None:
        return found
    try:
        inner_sql, inner_params = (
            filterset.qs.order_by()
            .filter(Q(participants_low__isnull=False) | Q(participants_high__isnull=False))
            .values("date", "participants_low", "participants_high")
            .query.sql_with_params()
        )
    except EmptyResultSet:
        return {}
    sql = f"""
        SELECT date_trunc(%s, e.date::timestamp)::date,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY e.participants_low),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY e.participants_high)
        FROM ({inner_sql}) e GROUP BY 1
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, (interval, *inner_params))
        return {
            period: {"median_low": low, "median_high": high}
            for period, low, high in cursor.fetchall()
        }


def city_names(ids) -> dict[int, City]:
    """The cities of `ids` (repeats and None allowed): names and population, no geometry."""
    wanted = {pk for pk in ids if pk is not None}
    cities = City.objects.filter(pk__in=wanted).only(
        "id", "name", "name_ru", "name_kk", "country", "population"
    )
    return {city.pk: city for city in cities}


def city_names_by_id(ids) -> dict[int, str]:
    """The name of each city of `ids` (repeats and None allowed), from one small query."""
    wanted = sorted({pk for pk in ids if pk is not None})
    with connection.cursor() as cursor:  # one array parameter, not an IN list of thousands
        cursor.execute(
            f"SELECT id, name FROM {City._meta.db_table} WHERE id = ANY(%s)",  # noqa: S608
            [wanted],
        )
        return dict(cursor.fetchall())


def _plain(value):
    """A history value as JSON can hold it (points as [lon, lat])."""
    if isinstance(value, GEOSGeometry):
        return [value.x, value.y] if isinstance(value, Point) else value.wkt
    return value


def event_history(*, event: Event) -> list[dict]:
    """The edit history of `event`, newest first, each record with the fields it changed.

    The historical table has no submitter column, and contributors' edits are stored
    without a user (see tracker.history), so nothing here can reveal who reported.
    """
    records = list(event.history.select_related("history_user").order_by("-history_date"))
    entries = []
    for index, record in enumerate(records):
        previous = records[index + 1] if index + 1 < len(records) else None
        changes = []
        if previous is not None:
            delta = record.diff_against(previous, foreign_keys_are_objs=False)
            changes = [
                {"field": change.field, "old": _plain(change.old), "new": _plain(change.new)}
                for change in delta.changes
            ]
        user = record.history_user
        entries.append(
            {
                "id": record.history_id,
                "date": record.history_date,
                "type": {"+": "created", "~": "changed", "-": "deleted"}[record.history_type],
                "user": user.get_username() if user is not None else None,
                "reason": record.history_change_reason or "",
                "status": record.status,
                "changes": changes,
            }
        )
    return entries


_EVENT_ROWS_SQL = """
SELECT e.id, e.title, e.description, e.date, e.end_date, e.date_precision,
       c.name AS city, e.city_id, e.country, e.admin1, e.location_detail,
       ST_X(e.location) AS longitude, ST_Y(e.location) AS latitude, e.geo_precision,
       e.grievances, e.police_responses, e.arrests, e.injuries, e.deaths,
       e.participants_low, e.participants_high,
       ARRAY(SELECT o.name FROM {organizers} eo JOIN {organization} o
               ON o.id = eo.organization_id
              WHERE eo.event_id = e.id ORDER BY o.name) AS organizers,
       coalesce((SELECT json_agg(json_build_object(
                    'url', s.url, 'title', s.title, 'publisher', s.publisher,
                    'published_on', s.published_on, 'language', s.language) ORDER BY s.id)
                   FROM {source} s WHERE s.event_id = e.id), '[]'::json) AS sources,
       ARRAY(SELECT x.scheme || ':' || x.value FROM {external_id} x
              WHERE x.event_id = e.id ORDER BY x.scheme, x.value) AS external_ids,
       e.created_at, e.updated_at
FROM {event} e LEFT JOIN {city} c ON c.id = e.city_id
WHERE e.id = ANY(%s)
"""


def event_rows(*, ids: list[int]) -> list[dict]:
    """The public representation of the events `ids`, in that order, from one query.

    The same fields as api.serializers.events.EventSerializer (a test holds them equal),
    built by PostgreSQL: list pages of up to 1000 events then cost one round trip instead
    of a model instance, three prefetches and a serializer per event.
    """
    if not ids:
        return []
    sql = _EVENT_ROWS_SQL.format(
        event=Event._meta.db_table,
        city=City._meta.db_table,
        source=Source._meta.db_table,
        external_id=ExternalId._meta.db_table,
        organization=Organization._meta.db_table,
        organizers=Event.organizers.through._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(ids)])
        columns = [column.name for column in cursor.description]
        by_id = {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}
    return [by_id[pk] for pk in ids if pk in by_id]


def submitter_accepted_count(*, event: Event) -> int | None:
    """How many other events the submitter of `event` had published: the trust signal a
    moderator sees instead of an identity. None when nobody submitted it (an import)."""
    if event.submitted_by_id is None:
        return None
    return (
        Event.objects.published()
        .filter(submitted_by_id=event.submitted_by_id)
        .exclude(pk=event.pk)
        .count()
    )


def filter_options() -> dict:
    """What the filter panel offers: the countries, regions and cities that have published
    events, the cities as (id, name in the active language) sorted by that name. Read from
    the year cells of places (2 k rows at a million events), so it is current and cheap on
    every page."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT country, admin1 FROM tracker_rollup_place_year")
        places = cursor.fetchall()
        cursor.execute(
            f"SELECT id, name, name_ru, name_kk FROM {City._meta.db_table} WHERE id IN "  # noqa: S608
            "(SELECT DISTINCT city_id FROM tracker_rollup_place_year)"
        )
        language = (get_language() or "en")[:2]  # as City.label
        cities = [
            (pk, City.label_of(name, name_ru, name_kk, language))
            for pk, name, name_ru, name_kk in cursor.fetchall()
        ]
    return {
        "countries": sorted({country for country, _ in places}),
        "regions": sorted({region for _, region in places if region}),
        "cities": sorted(cities, key=lambda city: city[1]),
    }


def my_submissions(*, user) -> QuerySet[Event]:
    """A contributor's own submissions, newest first (only they see this list)."""
    return (
        Event.objects.filter(submitted_by=user)
        .select_related("city")
        .order_by("-created_at", "-id")
    )


def review_queue() -> QuerySet[Event]:
    """Pending submissions, the oldest first so that none waits forever."""
    return (
        Event.objects.filter(status=Event.Status.PENDING)
        .select_related("city")
        .annotate(source_count=Count("sources"))
        .order_by("created_at", "id")
    )


def likely_duplicates(*, event: Event, days: int = 3) -> QuerySet[Event]:
    """Other events in the same city (or, without a city, the same region of the same
    country) whose dates lie within `days` of this one's."""
    window = dt.timedelta(days=days)
    others = Event.objects.exclude(pk=event.pk).exclude(status=Event.Status.REJECTED)
    if event.city_id:
        others = others.filter(city_id=event.city_id)
    else:
        others = others.filter(country=event.country, admin1=event.admin1, city__isnull=True)
    return (
        others.filter(date__gte=event.date - window, date__lte=event.date + window)
        .select_related("city")
        .prefetch_related("sources")
        .order_by("date", "id")
    )


def event_with_sources(*, pk: int) -> Event:
    return Event.objects.select_related("city").prefetch_related("sources", "organizers").get(pk=pk)


def event_history_summary(*, event: Event, limit: int = 20) -> list[dict[str, Any]]:
    """What changed and when, newest first. Only moderators' names are stored in the history
    (see tracker.history), and the submitter never is, so nothing here says who reported."""
    records = list(event.history.order_by("-history_date", "-history_id")[: limit + 1])
    summary = []
    for index, record in enumerate(records[:limit]):
        previous = records[index + 1] if index + 1 < len(records) else None
        changed: list[str] = []
        if previous is not None:
            delta = record.diff_against(previous)
            changed = [
                str(Event._meta.get_field(change.field).verbose_name) for change in delta.changes
            ]
        summary.append(
            {
                "when": record.history_date,
                "kind": record.history_type,
                "changed": changed,
                "reason": record.history_change_reason or "",
                "status": record.status,
            }
        )
    return summary
