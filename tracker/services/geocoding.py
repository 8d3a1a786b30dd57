from __future__ import annotations

import datetime as dt

from django.contrib.gis.measure import D
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from tracker.models import City, Event
from tracker.selectors import city_nearest

GEOCODE_MAX_KM = 30


@transaction.atomic
def event_geocode(*, event_id: int, max_km: float = GEOCODE_MAX_KM) -> dict:
    """Fill city, country and region of an event that has coordinates but no city.

    Idempotent: an event that already has a city, has no point, or no longer exists is left
    as it is. The point and its precision are never changed.
    """
    event = Event.objects.select_for_update().filter(pk=event_id).first()
    if event is None or event.city_id is not None or event.location is None:
        return {"event": event_id, "city": None, "changed": False}
    city = city_nearest(event.location, max_km=max_km)
    if city is None:
        return {"event": event_id, "city": None, "changed": False}
    event.city = city
    event.country = event.country or city.country
    event.admin1 = event.admin1 or city.admin1
    event._change_reason = "geocoded: nearest gazetteer city"
    event.save(update_fields=["city", "country", "admin1", "updated_at"])
    return {"event": event_id, "city": city.name, "changed": True}


def events_awaiting_geocoding(
    *,
    limit: int = 200,
    within: dt.timedelta = dt.timedelta(days=30),
    grace: dt.timedelta = dt.timedelta(minutes=2),
) -> list[int]:
    """Ids of events that event_geocode would change: a point, no city, and a gazetteer city
    within reach. That is what "never geocoded" means here, without a marker column: a
    geocoded event either got its city or has none in reach, and leaves this set either way,
    so a sweep over it is idempotent and never stalls on events it cannot place (the
    importers place by coordinates themselves, with the same reach).

    Only events changed in the last `within` (the updated_at index keeps this cheap at a
    million events) and not in the last `grace` (their own dispatch is still under way).
    """
    now = timezone.now()
    # A box in degrees first, for the GiST index on the cities, wide enough for the reach
    # in kilometres up to 70° N/S (as city_nearest); then the true distance.
    box_degrees = GEOCODE_MAX_KM / 111.0 / 0.34
    city_in_reach = City.objects.filter(
        location__dwithin=(OuterRef("location"), box_degrees),
        location__distance_lte=(OuterRef("location"), D(km=GEOCODE_MAX_KM)),
    )
    return list(
        Event.objects.filter(
            city__isnull=True,
            location__isnull=False,
            updated_at__gte=now - within,
            updated_at__lte=now - grace,
        )
        .filter(Exists(city_in_reach))
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )
