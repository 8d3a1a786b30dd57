from __future__ import annotations

from django.db import transaction

from tracker.models import Event
from tracker.selectors import city_nearest


@transaction.atomic
def event_geocode(*, event_id: int, max_km: float = 30) -> dict:
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
