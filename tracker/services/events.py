"""Writes of events: every create, edit and review goes through here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from tracker.dispatch import dispatch_on_commit
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


def _fill_from_city(event: Event) -> set[str]:
    """Fill what the city tells (country, region, point); return the names of the fields set."""
    city: City | None = event.city
    filled: set[str] = set()
    if city is None:
        return filled
    if not event.country:
        event.country = city.country
        filled.add("country")
    if not event.admin1:
        event.admin1 = city.admin1
        filled.add("admin1")
    if event.location is None:
        event.location = city.location
        event.geo_precision = Event.GeoPrecision.CITY
        filled |= {"location", "geo_precision"}
    return filled


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


class EventConflict(Exception):
    """A write refused because the stored event is no longer what the writer read."""


class EventChanged(EventConflict):
    """The event's version is not the one the writer read (If-Match, a form's version)."""

    def __init__(self, *, current: Event):
        self.current = current
        super().__init__(
            f"The event was changed by someone else since you read it (it is now version "
            f"{current.version}). Read it again and re-apply your change."
        )


class EventAlreadyReviewed(EventConflict):
    """A review of an event that is no longer pending (another moderator was first)."""

    def __init__(self, *, current: Event):
        self.current = current
        if current.status in (Event.Status.PUBLISHED, Event.Status.REJECTED) and (
            current.reviewed_at is not None
        ):
            when = current.reviewed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
            text = f"This event was already {current.status} by a moderator at {when}."
        else:
            text = f"Only pending submissions are reviewed; this event is {current.status}."
        super().__init__(f"{text} Your decision was not recorded.")


class EventNotEditable(PermissionDenied):
    """A contributor's edit of an event that is not their own pending submission."""

    def __init__(self):
        super().__init__("You can edit only your own submissions, and only while they are pending.")


def _locked(event: Event) -> Event:
    """The stored row, fresh, locked until the transaction ends: every writer of an event
    takes this lock, so a check made on the returned row still holds when it is saved."""
    return Event.objects.select_for_update().get(pk=event.pk)


def _check_version(event: Event, expected_versions: Collection[int] | None) -> None:
    if expected_versions is not None and event.version not in expected_versions:
        raise EventChanged(current=event)


def _check_may_edit(event: Event, actor) -> None:
    # Evaluated on the locked row: a submission published a moment ago is no longer the
    # contributor's to change, whatever the row they read said.
    if actor is None or actor.has_perm("tracker.change_event"):
        return
    if not (
        event.submitted_by_id == actor.pk
        and event.status == Event.Status.PENDING
        and actor.has_perm("tracker.add_event")
    ):
        raise EventNotEditable()


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
        dispatch_on_commit("tracker.tasks.event_geocode", event.pk)
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
    expected_versions: Collection[int] | None = None,
) -> Event:
    """Change the given fields of an event, and only those, on the stored row.

    The row is locked and re-read first, so a concurrent change of other fields (or a
    moderator's review) survives. With `expected_versions` (what the writer read: If-Match,
    a form's version) a row changed since is refused with EventChanged. A contributor
    (actor without change permission) may edit only their own pending submission; the status
    is never written here. Every change lands in the history with the actor (if a moderator).
    Returns the saved row, with its new version.
    """
    _check_fields(fields)
    event = _locked(event)
    _check_may_edit(event, actor)
    _check_version(event, expected_versions)
    changed = set(fields)
    for key, value in fields.items():
        setattr(event, key, value)
    if "city" in fields and "location" not in fields:
        event.location = None
        changed.add("location")
    changed |= _fill_from_city(event)
    event.full_clean(validate_constraints=False)
    # Read under the lock, so no other writer can have raised it in between.
    event.version += 1
    event._history_user = history_actor(actor)
    event._change_reason = reason or None
    event.save(update_fields=[*sorted(changed), "version", "updated_at"])
    if organizers is not None:
        event.organizers.set([organization_get_or_create(name=name) for name in organizers])
    if sources is not None:
        _set_sources(event, sources)
    _add_external_ids(event, external_ids)
    _require_source_to_publish(event)
    return event


REVIEW_FIELDS = ("status", "reviewed_by", "reviewed_at", "review_note", "version", "updated_at")


class ReviewDecision:
    PUBLISH = "publish"
    REJECT = "reject"
    CHOICES = (PUBLISH, REJECT)


@transaction.atomic
def event_review(
    *,
    event: Event,
    moderator,
    decision: str,
    note: str = "",
    expected_versions: Collection[int] | None = None,
) -> Event:
    """Publish a pending event, or reject it with a reason the contributor will read.

    Under the row lock: an event another moderator reviewed first raises
    EventAlreadyReviewed, so exactly one of two racing decisions is recorded; with
    `expected_versions`, one edited since the moderator read it raises EventChanged.
    """
    if decision not in ReviewDecision.CHOICES:
        raise ValidationError(
            {"decision": [f"Choose one of: {', '.join(ReviewDecision.CHOICES)}."]}
        )
    if decision == ReviewDecision.REJECT and not note.strip():
        raise ValidationError({"note": ["Give a reason when rejecting a submission."]})
    event = _locked(event)
    if event.status != Event.Status.PENDING:
        raise EventAlreadyReviewed(current=event)
    _check_version(event, expected_versions)
    event.status = (
        Event.Status.PUBLISHED if decision == ReviewDecision.PUBLISH else Event.Status.REJECTED
    )
    event.reviewed_by = moderator
    event.reviewed_at = timezone.now()
    event.review_note = note.strip()
    _require_source_to_publish(event)
    event.full_clean(validate_constraints=False)
    event.version += 1
    event._history_user = history_actor(moderator)
    event._change_reason = f"review: {decision}"
    event.save(update_fields=REVIEW_FIELDS)
    return event
