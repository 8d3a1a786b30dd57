"""Places resolved again: imported events left without a city (their place was not in the
gazetteer, or the gazetteer was not loaded yet) get one when the gazetteer now knows the
place, by name first, then as the nearest city to the event's point (the importers' rule).
`manage.py relink_places` runs it over every such event; a re-import does the same for the
rows of its file (imports.services.ImportWriter)."""

from __future__ import annotations

from collections import Counter

from django.db import transaction
from django.utils import timezone

from imports.base import Gazetteer
from tracker.models import City, Event, ExternalId

UPDATE_FIELDS = [
    "city",
    "admin1",
    "location_detail",
    "location",
    "geo_precision",
    "version",
    "updated_at",
]


def place_event(event: Event, gazetteer: Gazetteer) -> str | None:
    """Give `event` (no city yet) its gazetteer city: "name" or "point" for how it was
    found, None when the gazetteer still does not know the place. Changes `event` only."""
    name = event.location_detail
    city, how = (gazetteer.lookup(name, country=event.country), "name") if name else (None, "")
    if city is None and event.location is not None:
        city, how = gazetteer.nearest(event.location, country=event.country), "point"
    if city is None:
        return None
    link_city(event, city, by_name=how == "name")
    event.version += 1
    event.updated_at = timezone.now()
    return how


def link_city(event: Event, city: City, *, by_name: bool) -> None:
    """Set the city as an importer does: the region and point from the city when the
    event has none, and the place name dropped once it is the city's own."""
    event.city = city
    event.admin1 = event.admin1 or city.admin1
    if by_name:
        event.location_detail = ""
    if event.location is None:
        event.location = city.location
        event.geo_precision = Event.GeoPrecision.CITY


def relink_places(*, user=None, batch: int = 2000) -> dict:
    """Place every imported event that has no city yet, in batches (each one transaction,
    its events locked against concurrent edits). Returns the counts and the place names
    still unknown, the most frequent first."""
    from imports.services import write_history

    gazetteer = Gazetteer()
    imported = ExternalId.objects.exclude(scheme="tracker").values("event_id")
    ids = list(
        Event.objects.filter(city__isnull=True, pk__in=imported)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    counts = {"by_name": 0, "by_point": 0, "unplaced": 0}
    unplaced: Counter[str] = Counter()
    for start in range(0, len(ids), batch):
        with transaction.atomic():
            events = list(
                Event.objects.select_for_update().filter(
                    pk__in=ids[start : start + batch], city__isnull=True
                )
            )
            placed = []
            for event in events:
                how = place_event(event, gazetteer)
                if how is None:
                    counts["unplaced"] += 1
                    unplaced[event.location_detail or "(no place name)"] += 1
                    continue
                counts[f"by_{how}"] += 1
                placed.append(event)
            Event.objects.bulk_update(placed, UPDATE_FIELDS, batch_size=500)
            write_history(placed, kind="~", user=user, reason="relink_places")
    return {**counts, "unplaced_names": unplaced.most_common()}
