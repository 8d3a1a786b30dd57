"""Reads for the HTML pages that tracker.selectors does not offer: the page filters, the
dashboard's yearly figures, a contributor's own submissions, the review queue and the likely
duplicates of a submission."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from tracker import taxonomy
from tracker.cache import events_version
from tracker.models import City, Event

T = TypeVar("T")


@dataclass(frozen=True)
class EventFilters:
    """The filters shared by the map and the dashboard (the same names as the API's)."""

    date_after: dt.date | None = None
    date_before: dt.date | None = None
    country: str = ""
    city: City | None = None
    grievances: tuple[str, ...] = ()
    police_responses: tuple[str, ...] = ()
    arrests_min: int | None = None
    arrests_max: int | None = None

    @classmethod
    def from_cleaned(cls, data: Mapping[str, Any]) -> EventFilters:
        return cls(
            date_after=data.get("date_after"),
            date_before=data.get("date_before"),
            country=(data.get("country") or "").upper(),
            city=data.get("city"),
            grievances=tuple(data.get("grievance") or ()),
            police_responses=tuple(data.get("police_response") or ()),
            arrests_min=data.get("arrests_min"),
            arrests_max=data.get("arrests_max"),
        )

    def cache_key(self) -> str:
        parts = (
            self.date_after,
            self.date_before,
            self.country,
            self.city.pk if self.city else None,
            self.grievances,
            self.police_responses,
            self.arrests_min,
            self.arrests_max,
        )
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def _cached(name: str, key: str, compute: Callable[[], T]) -> T:
    """Aggregates are cached under the version of the published data (tracker.cache), so
    any change of an event makes every older answer unreachable at once."""
    return cache.get_or_set(f"pages:{name}:v{events_version()}:{key}", compute, timeout=3600)


def events_filtered(*, filters: EventFilters) -> QuerySet[Event]:
    """Published events matching `filters`. Several grievances (or responses) mean any of them."""
    events = Event.objects.published()
    if filters.date_after:
        events = events.filter(date__gte=filters.date_after)
    if filters.date_before:
        events = events.filter(date__lte=filters.date_before)
    if filters.country:
        events = events.filter(country=filters.country)
    if filters.city is not None:
        events = events.filter(city=filters.city)
    if filters.grievances:
        events = events.filter(grievances__overlap=list(filters.grievances))
    if filters.police_responses:
        events = events.filter(police_responses__overlap=list(filters.police_responses))
    if filters.arrests_min is not None:
        events = events.filter(arrests__gte=filters.arrests_min)
    if filters.arrests_max is not None:
        events = events.filter(arrests__lte=filters.arrests_max)
    return events


def _where(events: QuerySet[Event]) -> tuple[str, tuple]:
    """The SQL of a filtered queryset, to be used as a sub-select by the GROUP BY queries."""
    sql, params = events.values("id").query.sql_with_params()
    return sql, params


def yearly_totals(*, filters: EventFilters) -> list[dict[str, Any]]:
    """Per year: events, people arrested, events with arrests, events with force."""
    return _cached("totals", filters.cache_key(), lambda: _yearly_totals(filters))


def _yearly_totals(filters: EventFilters) -> list[dict[str, Any]]:
    force = list(taxonomy.FORCE_RESPONSES)
    rows = (
        events_filtered(filters=filters)
        .order_by()
        .values("date__year")
        .annotate(
            events=Count("id"),
            arrests_total=Sum("arrests"),
            events_with_arrests=Count("id", filter=Q(arrests__gt=0)),
            events_with_force=Count("id", filter=Q(police_responses__overlap=force)),
        )
        .order_by("date__year")
    )
    result = []
    for row in rows:
        events = row["events"]
        result.append(
            {
                "year": row["date__year"],
                "events": events,
                "arrests": row["arrests_total"] or 0,
                "events_with_arrests": row["events_with_arrests"],
                "events_with_force": row["events_with_force"],
                "share_with_arrests": round(100 * row["events_with_arrests"] / events, 1),
                "share_with_force": round(100 * row["events_with_force"] / events, 1),
            }
        )
    return result


def yearly_by_vocabulary(*, filters: EventFilters, field: str) -> dict[int, dict[str, int]]:
    """{year: {slug: events}} for `field` "grievances" or "police_responses". An event with
    two grievances counts once under each, as in the tracker's published shares."""
    if field not in ("grievances", "police_responses"):
        raise ValueError(field)
    return _cached(field, filters.cache_key(), lambda: _yearly_by_vocabulary(filters, field))


def _yearly_by_vocabulary(filters: EventFilters, field: str) -> dict[int, dict[str, int]]:
    subquery, params = _where(events_filtered(filters=filters))
    column = connection.ops.quote_name(field)
    # unnest() has no ORM spelling; the filtered ids come from the ORM as a sub-select.
    sql = (
        f"SELECT EXTRACT(YEAR FROM e.date)::int AS year, slug, COUNT(*) "  # noqa: S608
        f"FROM tracker_event e, unnest(e.{column}) AS slug "
        f"WHERE e.id IN ({subquery}) GROUP BY 1, 2 ORDER BY 1, 2"
    )
    result: dict[int, dict[str, int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for year, slug, count in cursor.fetchall():
            result.setdefault(year, {})[slug] = count
    return result


def top_cities(*, filters: EventFilters, limit: int = 10) -> list[dict[str, Any]]:
    key = f"{filters.cache_key()}:{limit}"
    return _cached("cities", key, lambda: _top_cities(filters, limit))


def _top_cities(filters: EventFilters, limit: int) -> list[dict[str, Any]]:
    rows = (
        events_filtered(filters=filters)
        .filter(city__isnull=False)
        .order_by()
        .values("city")
        .annotate(events=Count("id"))
        .order_by("-events", "city")[:limit]
    )
    cities = City.objects.in_bulk([row["city"] for row in rows])
    return [{"city": cities[row["city"]], "events": row["events"]} for row in rows]


def filter_countries() -> list[str]:
    return _cached(
        "countries",
        "all",
        lambda: list(
            Event.objects.published()
            .order_by("country")
            .values_list("country", flat=True)
            .distinct()
        ),
    )


def filter_cities() -> QuerySet[City]:
    """Cities that have a published event (the city menu of the filters)."""
    ids = _cached(
        "city-ids",
        "all",
        lambda: list(
            City.objects.filter(
                Exists(Event.objects.published().filter(city=OuterRef("pk")))
            ).values_list("pk", flat=True)
        ),
    )
    return City.objects.filter(pk__in=ids).order_by("name")


def event_year_range() -> tuple[int, int]:
    def compute() -> tuple[int, int]:
        dates = Event.objects.published().order_by("date").values_list("date", flat=True)
        first = dates.first()
        last = dates.reverse().first() if first else None
        this_year = dt.date.today().year
        return (first.year if first else this_year, last.year if last else this_year)

    return _cached("years", "all", compute)


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
