"""Reads: querysets and rows for the views, the API and the importers."""

from __future__ import annotations

import math

from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import GEOSGeometry, Point
from django.contrib.gis.measure import D
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

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
    MONTH = "month"
    CHOICES = (YEAR, MONTH)


class TrendGroup:
    GRIEVANCE = "grievance"
    POLICE_RESPONSE = "police_response"
    CITY = "city"
    COUNTRY = "country"
    CHOICES = (GRIEVANCE, POLICE_RESPONSE, CITY, COUNTRY)


def event_trends(
    *, queryset: QuerySet[Event], interval: str = TrendInterval.YEAR, by: str | None = None
) -> list[dict]:
    """Events, arrests, events with arrests and events with force per period (and group).

    One GROUP BY in PostgreSQL over the filtered events. With by=grievance or
    by=police_response an event counts once in each of its categories (the array is
    unnested), so the groups of one period can add up to more than its events.
    """
    if interval not in TrendInterval.CHOICES:
        raise ValueError(f"interval must be one of {TrendInterval.CHOICES}")
    if by is not None and by not in TrendGroup.CHOICES:
        raise ValueError(f"by must be one of {TrendGroup.CHOICES}")
    try:
        inner_sql, inner_params = (
            queryset.order_by()
            .values("id", "date", "arrests", "police_responses", "grievances", "country", "city_id")
            .query.sql_with_params()
        )
    except EmptyResultSet:  # a filter Django knows can match nothing
        return []
    period_format = "YYYY" if interval == TrendInterval.YEAR else "YYYY-MM"
    # Counted per (period, group key) first, names joined to the few counted rows after:
    # at a million events, truncating dates instead of formatting each one, and joining
    # cities after the GROUP BY rather than before, halves the time of a cold answer.
    join, key, outer_join, group = "", None, "", None
    if by == TrendGroup.GRIEVANCE:
        join, key, group = "CROSS JOIN LATERAL unnest(e.grievances) AS g(slug)", "g.slug", "t.grp"
    elif by == TrendGroup.POLICE_RESPONSE:
        join = "CROSS JOIN LATERAL unnest(e.police_responses) AS g(slug)"
        key, group = "g.slug", "t.grp"
    elif by == TrendGroup.COUNTRY:
        key, group = "e.country", "t.grp"
    elif by == TrendGroup.CITY:
        key, group = "e.city_id", "c.name"
        outer_join = f"LEFT JOIN {City._meta.db_table} c ON c.id = t.grp"
    key_select = f", {key} AS grp" if key else ""
    group_select = f", {group} AS grp" if group else ""
    # Identifiers above come from fixed choices, values only through parameters.
    sql = f"""
        SELECT to_char(t.period, %s) AS period{group_select},
               t.events, t.arrests, t.events_with_arrests, t.events_with_force
        FROM (
            SELECT date_trunc(%s, e.date::timestamp) AS period{key_select},
                   count(*) AS events,
                   coalesce(sum(e.arrests), 0) AS arrests,
                   count(*) FILTER (WHERE e.arrests > 0) AS events_with_arrests,
                   count(*) FILTER (WHERE e.police_responses && %s::varchar[])
                       AS events_with_force
            FROM ({inner_sql}) e {join}
            GROUP BY 1{", 2" if key else ""}
        ) t {outer_join}
        ORDER BY t.period{", 2" if group else ""}
    """  # noqa: S608
    force = sorted(taxonomy.FORCE_RESPONSES)
    params = (period_format, interval, force, *inner_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    results = []
    for row in rows:
        item = {"period": row[0]}
        offset = 1
        if group:
            item["group"] = row[1]
            offset = 2
        events, arrests, with_arrests, with_force = row[offset : offset + 4]
        item.update(
            events=events,
            arrests=int(arrests),
            events_with_arrests=with_arrests,
            events_with_force=with_force,
        )
        results.append(item)
    return results


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
