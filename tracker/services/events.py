"""Writes of events: every create, edit and review goes through here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tracker.history import history_actor
from tracker.models import City, Event, ExternalId, Organization, Source

EVENT_FIELDS = frozenset(
    {
        "title",
        "description",
        "date",
        "end_date",
        "date_precision",
        "country",
        "admin1",
        "city",
        "location_detail",
        "location",
        "geo_precision",
        "grievances",
        "police_responses",
        "arrests",
        "injuries",
        "deaths",
        "participants_low",
        "participants_high",
        "is_generated",
    }
)
SOURCE_FIELDS = ("url", "publisher", "title", "published_on", "language")


# Services call full_clean(validate_constraints=False): clean() and the field validators give
# the same checks as the CheckConstraints, with messages a moderator understands, while
# Django would spend one query per constraint; the database still enforces them all.


def _check_fields(fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - EVENT_FIELDS
    if unknown:
        raise ValidationError(f"Unknown event fields: {', '.join(sorted(unknown))}.")


def _fill_from_city(event: Event) -> None:
    city: City | None = event.city
    if city is None:
        return
    if not event.country:
        event.country = city.country
    if not event.admin1:
        event.admin1 = city.admin1
    if event.location is None:
        event.location = city.location
        event.geo_precision = Event.GeoPrecision.CITY


def organization_get_or_create(*, name: str) -> Organization:
    name = " ".join(name.split())
    organization = Organization.objects.filter(name__iexact=name).first()
    if organization is None:
        organization = Organization(name=name)
        organization.full_clean()
        organization.save()
    return organization


def _set_sources(event: Event, sources: Iterable[Mapping[str, Any]]) -> None:
    kept = []
    for data in sources:
        values = {
            key: data.get(key) or ("" if key != "published_on" else None) for key in SOURCE_FIELDS
        }
        match = {"url": values["url"]} if values["url"] else {"url": "", "title": values["title"]}
        source = Source.objects.filter(event=event, **match).first() or Source(event=event)
        for key, value in values.items():
            setattr(source, key, value)
        try:
            source.full_clean()
        except ValidationError as exc:
            raise ValidationError({"sources": exc.messages}) from exc
        source.save()
        kept.append(source.pk)
    Source.objects.filter(event=event).exclude(pk__in=kept).delete()


def _add_external_ids(event: Event, external_ids: Iterable[str]) -> None:
    for text in external_ids:
        scheme, value = ExternalId.parse(text)
        existing = ExternalId.objects.filter(scheme=scheme, value=value).first()
        if existing is not None and existing.event_id != event.pk:
            raise ValidationError(
                {
                    "external_ids": [
                        f"{scheme}:{value} already belongs to event {existing.event_id}."
                    ]
                }
            )
        if existing is None:
            ExternalId.objects.create(event=event, scheme=scheme, value=value)


def _require_source_to_publish(event: Event) -> None:
    if event.status == Event.Status.PUBLISHED and not event.sources.exists():
        raise ValidationError({"sources": ["An event needs at least one source to be published."]})


@transaction.atomic
def event_create(
    *,
    fields: Mapping[str, Any],
    sources: Iterable[Mapping[str, Any]] = (),
    organizers: Iterable[str] = (),
    external_ids: Iterable[str] = (),
    status: str = Event.Status.PENDING,
    submitted_by=None,
    actor=None,
) -> Event:
    """Create an event (pending by default) with its sources, organizers and external ids."""
    _check_fields(fields)
    event = Event(**fields, status=status, submitted_by=submitted_by)
    _fill_from_city(event)
    event.full_clean(validate_constraints=False)
    event._history_user = history_actor(actor)
    event.save()
    if organizers:
        event.organizers.set([organization_get_or_create(name=name) for name in organizers])
    _set_sources(event, sources)
    _add_external_ids(event, external_ids)
    _require_source_to_publish(event)
    if event.location is not None and event.city_id is None:
        from tracker.tasks import event_geocode

        transaction.on_commit(lambda: event_geocode.delay(event.pk))
    return event


@transaction.atomic
def event_update(
    *,
    event: Event,
    actor,
    fields: Mapping[str, Any],
    sources: Iterable[Mapping[str, Any]] | None = None,
    organizers: Iterable[str] | None = None,
    external_ids: Iterable[str] = (),
    reason: str = "",
) -> Event:
    """Change an event; every change lands in its history with the actor (if a moderator)."""
    _check_fields(fields)
    for key, value in fields.items():
        setattr(event, key, value)
    if "city" in fields and "location" not in fields:
        event.location = None
    _fill_from_city(event)
    event.full_clean(validate_constraints=False)
    event._history_user = history_actor(actor)
    event._change_reason = reason or None
    event.save()
    if organizers is not None:
        event.organizers.set([organization_get_or_create(name=name) for name in organizers])
    if sources is not None:
        _set_sources(event, sources)
    _add_external_ids(event, external_ids)
    _require_source_to_publish(event)
    return event


class ReviewDecision:
    PUBLISH = "publish"
    REJECT = "reject"
    CHOICES = (PUBLISH, REJECT)


@transaction.atomic
def event_review(*, event: Event, moderator, decision: str, note: str = "") -> Event:
    """Publish an event, or reject it with a reason the contributor will read."""
    if decision not in ReviewDecision.CHOICES:
        raise ValidationError(
            {"decision": [f"Choose one of: {', '.join(ReviewDecision.CHOICES)}."]}
        )
    if decision == ReviewDecision.REJECT and not note.strip():
        raise ValidationError({"note": ["Give a reason when rejecting a submission."]})
    event.status = (
        Event.Status.PUBLISHED if decision == ReviewDecision.PUBLISH else Event.Status.REJECTED
    )
    event.reviewed_by = moderator
    event.reviewed_at = timezone.now()
    event.review_note = note.strip()
    _require_source_to_publish(event)
    event.full_clean(validate_constraints=False)
    event._history_user = history_actor(moderator)
    event._change_reason = f"review: {decision}"
    event.save()
    return event
