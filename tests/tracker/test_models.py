import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tracker.models import City, Event, ExternalId, Source
from tracker.selectors import city_lookup
from tracker.services.events import event_create, event_review

pytestmark = pytest.mark.django_db


def _event(**overrides) -> Event:
    values = {
        "title": "Test protest",
        "date": dt.date(2020, 5, 1),
        "country": "KZ",
        "grievances": ["welfare"],
        "status": Event.Status.PUBLISHED,
    }
    values.update(overrides)
    return Event(**values)


@pytest.mark.parametrize(
    ("overrides", "constraint"),
    [
        ({"end_date": dt.date(2020, 4, 30)}, "event_end_not_before_start"),
        ({"arrests": -1}, "event_arrests_non_negative"),
        ({"injuries": -3}, "event_injuries_non_negative"),
        ({"deaths": -1}, "event_deaths_non_negative"),
        ({"participants_low": 100, "participants_high": 10}, "event_participants_low_le_high"),
        ({"grievances": []}, "event_grievances_known_nonempty"),
        ({"grievances": ["aliens"]}, "event_grievances_known_nonempty"),
        ({"police_responses": ["teleported"]}, "event_police_responses_known"),
        ({"status": "lost"}, "event_status_valid"),
        ({"country": "kz"}, "event_country_iso2"),
        ({"geo_precision": 7}, "event_geo_precision_valid"),
    ],
)
def test_database_rejects_invalid_rows(overrides, constraint):
    # Saved without full_clean: the database itself must refuse the row.
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        _event(**overrides).save()


def test_external_ids_are_unique_in_the_database():
    first, second = _event(), _event(title="Another")
    first.save()
    second.save()
    ExternalId.objects.create(event=first, scheme="acled", value="KAZ1")
    with pytest.raises(IntegrityError, match="external_id_unique"), transaction.atomic():
        ExternalId.objects.create(event=second, scheme="acled", value="KAZ1")


def test_service_refuses_an_external_id_of_another_event():
    first = event_create(
        fields={"title": "A", "date": dt.date(2020, 1, 1), "country": "KZ", "grievances": ["land"]},
        external_ids=["acled:KAZ9"],
    )
    with pytest.raises(ValidationError, match=rf"already belongs to event {first.pk}"):
        event_create(
            fields={
                "title": "B",
                "date": dt.date(2020, 1, 2),
                "country": "KZ",
                "grievances": ["land"],
            },
            external_ids=["acled:KAZ9"],
        )


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"date": timezone.localdate() + dt.timedelta(days=2)}, "date", "is in the future"),
        ({"location": Point(200, 43, srid=4326)}, "location", "Coordinates out of range"),
        ({"location": Point(76, -95, srid=4326)}, "location", "Coordinates out of range"),
        ({"arrests": -5}, "arrests", "A count cannot be negative"),
        ({"participants_high": -1}, "participants_high", "A count cannot be negative"),
        ({"participants_low": 50, "participants_high": 5}, "participants_low", "cannot exceed"),
        ({"end_date": dt.date(2020, 4, 1)}, "end_date", "cannot be before the start date"),
        ({"grievances": ["aliens"]}, "grievances", "Unknown value: aliens"),
        ({"police_responses": ["hugs"]}, "police_responses", "Unknown value: hugs"),
    ],
)
def test_validation_explains_bad_values(overrides, field, message):
    with pytest.raises(ValidationError) as caught:
        _event(**overrides).full_clean()
    errors = caught.value.message_dict
    assert field in errors
    assert any(message in text for text in errors[field]), errors[field]


def test_city_fills_country_region_and_point():
    almaty = city_lookup("Almaty").get()
    event = event_create(
        fields={
            "title": "X",
            "date": dt.date(2019, 6, 9),
            "city": almaty,
            "grievances": ["political"],
        },
    )
    assert event.country == "KZ"
    assert event.admin1 == "Almaty"
    assert event.location == almaty.location
    assert event.geo_precision == Event.GeoPrecision.CITY


def test_publishing_needs_a_source(make_user):
    moderator = make_user("mod", "Moderator")
    event = event_create(
        fields={
            "title": "X",
            "date": dt.date(2019, 6, 9),
            "country": "KZ",
            "grievances": ["political"],
        }
    )
    with pytest.raises(ValidationError, match="at least one source"):
        event_review(event=event, moderator=moderator, decision="publish")
    Source.objects.create(event=event, url="https://example.org/a", title="A")
    event_review(event=event, moderator=moderator, decision="publish")
    event.refresh_from_db()
    assert event.status == Event.Status.PUBLISHED
    assert event.reviewed_by == moderator


def test_rejecting_needs_a_reason(make_user):
    moderator = make_user("mod", "Moderator")
    event = event_create(
        fields={
            "title": "X",
            "date": dt.date(2019, 6, 9),
            "country": "KZ",
            "grievances": ["political"],
        }
    )
    with pytest.raises(ValidationError, match="Give a reason"):
        event_review(event=event, moderator=moderator, decision="reject", note="  ")


def test_history_records_who_changed_what_but_never_the_submitter(make_user):
    contributor = make_user("reporter", "Contributor")
    moderator = make_user("mod", "Moderator")
    event = event_create(
        fields={
            "title": "Rally",
            "date": dt.date(2020, 3, 1),
            "country": "KZ",
            "grievances": ["labor"],
        },
        sources=[{"url": "https://example.org/rally", "title": "Report"}],
        submitted_by=contributor,
        actor=contributor,
    )
    event_review(event=event, moderator=moderator, decision="publish")
    records = list(event.history.order_by("history_date"))
    assert [r.history_type for r in records] == ["+", "~"]
    assert records[0].history_user is None  # the contributor is not named
    assert records[1].history_user == moderator
    assert records[1].status == "published" and records[0].status == "pending"
    assert not hasattr(records[0], "submitted_by")
    delta = records[1].diff_against(records[0])
    assert "status" in delta.changed_fields


def test_city_point_must_be_valid():
    with pytest.raises(IntegrityError, match="city_country_iso2"), transaction.atomic():
        City.objects.create(name="Nowhere", country="xx", location=Point(1, 1, srid=4326))
