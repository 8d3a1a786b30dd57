"""Reads: querysets and rows for the views, the API and the importers."""

from __future__ import annotations

import math

from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import Point
from django.contrib.gis.measure import D
from django.db.models import QuerySet

from tracker.models import City, Event, normalize_name


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


def event_published_list() -> QuerySet[Event]:
    return Event.objects.published()
