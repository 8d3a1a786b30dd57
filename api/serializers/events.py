"""Representations of events: JSON, GeoJSON Feature, submission (with its review), input.

None of them has a field for who submitted an event, on purpose.
"""

from __future__ import annotations

import math
import re

from django.contrib.gis.geos import Point
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework_gis.serializers import GeoFeatureModelSerializer

from tracker import taxonomy
from tracker.models import City, Event, ExternalId, Source, web_url_validator
from tracker.selectors import city_lookup


class EventSourceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Source
        fields = ["url", "title", "publisher", "published_on", "language"]


class EventSerializer(serializers.ModelSerializer):
    """A published event as API clients read it."""

    city = serializers.CharField(
        source="city.name", read_only=True, allow_null=True, help_text="English name."
    )
    longitude = serializers.SerializerMethodField()
    latitude = serializers.SerializerMethodField()
    organizers = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")
    sources = EventSourceSerializer(many=True, read_only=True)
    external_ids = serializers.SerializerMethodField(
        help_text='Ids of this event in other datasets, e.g. "acled:KAZ1234".'
    )

    class Meta:
        model = Event
        fields = [
            "id",
            "title",
            "description",
            "date",
            "end_date",
            "date_precision",
            "city",
            "city_id",
            "country",
            "admin1",
            "location_detail",
            "longitude",
            "latitude",
            "geo_precision",
            "grievances",
            "police_responses",
            "arrests",
            "injuries",
            "deaths",
            "participants_low",
            "participants_high",
            "organizers",
            "sources",
            "external_ids",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_longitude(self, event: Event) -> float | None:
        return event.location.x if event.location is not None else None

    def get_latitude(self, event: Event) -> float | None:
        return event.location.y if event.location is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_external_ids(self, event: Event) -> list[str]:
        return [f"{ext.scheme}:{ext.value}" for ext in event.external_ids.all()]


class EventSubmissionSerializer(EventSerializer):
    """An event as its contributor (or a moderator) sees it: with status and review."""

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "status", "review_note", "reviewed_at"]
        read_only_fields = fields


class EventFeatureSerializer(GeoFeatureModelSerializer, EventSerializer):
    """A GeoJSON Feature; `properties` carry the same fields as the JSON representation."""

    class Meta(EventSerializer.Meta):
        geo_field = "location"
        # Keep `id` in the properties (map popups read it there) and copy it to the Feature.
        id_field = False
        fields = [
            name for name in EventSerializer.Meta.fields if name not in ("longitude", "latitude")
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        feature = super().to_representation(instance)
        feature["id"] = instance.pk
        return feature


@extend_schema_serializer(many=False)
class EventFeatureCollectionSerializer(serializers.Serializer):
    """Schema of a GeoJSON list page: a FeatureCollection with the cursor links."""

    type = serializers.ChoiceField(choices=["FeatureCollection"])
    features = EventFeatureSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class SourceInputSerializer(serializers.Serializer):
    url = serializers.URLField(
        max_length=1000, required=False, allow_blank=True, validators=[web_url_validator]
    )
    title = serializers.CharField(max_length=500, required=False, allow_blank=True)
    publisher = serializers.CharField(max_length=200, required=False, allow_blank=True)
    published_on = serializers.DateField(required=False, allow_null=True)
    language = serializers.CharField(max_length=10, required=False, allow_blank=True)

    def validate(self, attrs):
        if not attrs.get("url") and not attrs.get("title"):
            raise serializers.ValidationError("A source needs a url or a title.")
        return attrs


def _slug_choice(vocabulary: tuple[str, ...]) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=vocabulary,
        error_messages={
            "invalid_choice": f'"{{input}}" is not known. Choose from: {", ".join(vocabulary)}.'
        },
    )


class EventInputSerializer(serializers.Serializer):
    """What a contributor or moderator sends to create or edit an event.

    `city` is a gazetteer id or any name of the city; longitude and latitude go together.
    Validation of the whole event (dates, crowd estimates, city in country) is the
    service's job, so that every writer gets the same rules.
    """

    title = serializers.CharField(max_length=300)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    date = serializers.DateField()
    end_date = serializers.DateField(required=False, allow_null=True)
    date_precision = serializers.ChoiceField(choices=Event.DatePrecision.choices, required=False)
    country = serializers.RegexField(
        r"^[A-Za-z]{2}$",
        required=False,
        error_messages={"invalid": "A country is an ISO 3166-1 alpha-2 code such as KZ."},
    )
    admin1 = serializers.CharField(max_length=120, required=False, allow_blank=True)
    city = serializers.CharField(
        max_length=120,
        required=False,
        allow_null=True,
        help_text="Gazetteer city id, or any of its names.",
    )
    location_detail = serializers.CharField(max_length=200, required=False, allow_blank=True)
    longitude = serializers.FloatField(
        min_value=-180, max_value=180, required=False, allow_null=True
    )
    latitude = serializers.FloatField(min_value=-90, max_value=90, required=False, allow_null=True)
    geo_precision = serializers.ChoiceField(
        choices=Event.GeoPrecision.choices, required=False, allow_null=True
    )
    grievances = serializers.ListField(
        child=_slug_choice(taxonomy.GRIEVANCE_SLUGS), min_length=1, max_length=20
    )
    police_responses = serializers.ListField(
        child=_slug_choice(taxonomy.POLICE_RESPONSE_SLUGS), required=False, max_length=20
    )
    arrests = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    injuries = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    deaths = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    participants_low = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    participants_high = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    organizers = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, max_length=50
    )
    sources = SourceInputSerializer(many=True, required=False, max_length=50)
    external_ids = serializers.ListField(
        child=serializers.CharField(max_length=120), required=False, max_length=20
    )

    def validate_city(self, value: str | None) -> City | None:
        if value in (None, ""):
            return None
        value = value.strip()
        # Not str.isdigit(): it is true for "²", which int() refuses.
        if re.fullmatch(r"[0-9]{1,18}", value):
            city = City.objects.filter(pk=int(value)).first()
        else:
            # The country is validated after the city; only a well-formed one may narrow.
            country = self.initial_data.get("country")
            if not (isinstance(country, str) and re.fullmatch(r"[A-Za-z]{2}", country)):
                country = None
            city = city_lookup(value, country=country).first()
        if city is None:
            raise serializers.ValidationError(
                f"Unknown city: {value!r}. /api/v1/cities/?q= lists the cities the tracker knows."
            )
        return city

    def validate_external_ids(self, value: list[str]) -> list[str]:
        scheme_max = ExternalId._meta.get_field("scheme").max_length
        value_max = ExternalId._meta.get_field("value").max_length
        for text in value:
            scheme, sep, rest = text.partition(":")
            if not sep or not rest.strip() or not re.fullmatch(r"[A-Za-z0-9_-]+", scheme.strip()):
                raise serializers.ValidationError(
                    f'An external id looks like "acled:KAZ1234" (got {text!r}).'
                )
            if len(scheme.strip()) > scheme_max or len(rest.strip()) > value_max:
                raise serializers.ValidationError(
                    f"An external id has a scheme of at most {scheme_max} characters and a "
                    f"value of at most {value_max} (got {text[:40]!r}...)."
                )
        return value

    def validate_sources(self, value):
        if not self.partial and not value:
            raise serializers.ValidationError("Give at least one source (a url or a title).")
        return value

    def validate(self, attrs):
        for name in ("longitude", "latitude"):
            # JSON may say NaN or Infinity; NaN passes min/max checks and a stored NaN point
            # would make every later GeoJSON answer invalid JSON.
            if attrs.get(name) is not None and not math.isfinite(attrs[name]):
                raise serializers.ValidationError({name: ["Give a finite number of degrees."]})
        has_lon = attrs.get("longitude") is not None
        has_lat = attrs.get("latitude") is not None
        if has_lon != has_lat:
            raise serializers.ValidationError(
                {"longitude": ["Give longitude and latitude together, or neither."]}
            )
        if not self.partial and "sources" not in attrs:
            raise serializers.ValidationError(
                {"sources": ["Give at least one source (a url or a title)."]}
            )
        if not self.partial and not attrs.get("country") and not attrs.get("city"):
            raise serializers.ValidationError(
                {"country": ["Give the country (ISO code such as KZ) or a city."]}
            )
        return attrs

    def service_arguments(self) -> dict:
        """The validated data split the way tracker.services.events expects it."""
        data = dict(self.validated_data)
        arguments: dict = {}
        for key in ("sources", "organizers", "external_ids"):
            if key in data:
                arguments[key] = data.pop(key)
        lon, lat = data.pop("longitude", None), data.pop("latitude", None)
        if lon is not None and lat is not None:
            data["location"] = Point(lon, lat, srid=4326)
        if "country" in data:
            data["country"] = data["country"].upper()
        for key in ("description", "admin1", "location_detail"):
            if key in data and data[key] is None:
                data[key] = ""
        arguments["fields"] = data
        return arguments


class EventReviewSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=["publish", "reject"],
        error_messages={"invalid_choice": '"{input}" is not a decision: use publish or reject.'},
    )
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=5000,
        help_text="Required when rejecting: the contributor reads it.",
    )


class EventHistoryChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class EventHistoryEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    date = serializers.DateTimeField()
    type = serializers.ChoiceField(choices=["created", "changed", "deleted"])
    user = serializers.CharField(
        allow_null=True, help_text="Moderator or admin; empty for contributors' edits."
    )
    reason = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    changes = EventHistoryChangeSerializer(many=True)


def _iso_datetime(value, zone) -> str | None:
    """What DRF's DateTimeField writes (ISO 8601 in the current time zone, UTC as "Z"),
    without a field's checks per value: a 1000-event page has 2000 of them."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def event_row_representation(row: dict) -> dict:
    """A row of tracker.selectors.event_rows in EventSerializer's exact output format."""
    zone = timezone.get_current_timezone()
    data = dict(row)
    for key in ("date", "end_date"):
        data[key] = data[key].isoformat() if data[key] is not None else None
    for key in ("created_at", "updated_at"):
        data[key] = _iso_datetime(data[key], zone)
    return data


def event_row_feature(row: dict) -> dict:
    """The same row as EventFeatureSerializer's GeoJSON Feature."""
    properties = event_row_representation(row)
    lon, lat = properties.pop("longitude"), properties.pop("latitude")
    geometry = {"type": "Point", "coordinates": [lon, lat]} if lon is not None else None
    return {"type": "Feature", "id": row["id"], "geometry": geometry, "properties": properties}


class EventConflictErrorSerializer(serializers.Serializer):
    """The error body of a refused write (412 stale If-Match, 409 already reviewed)."""

    detail = serializers.CharField(help_text="What happened and what to do: read it again.")
    code = serializers.CharField(help_text="precondition_failed (412) or already_reviewed (409).")
