"""Query parameters of the event endpoints, shared by the API, the exports and the pages.

Every parameter is parsed and checked by a form field, so a bad value makes
`EventFilterSet(...).is_valid()` false with a message that says what is wrong and what is
expected; nothing is silently ignored and no value can reach the database unchecked.
"""

from __future__ import annotations

import datetime as dt
import math
import re

import django_filters
from django import forms
from django.contrib.gis.geos import Point, Polygon
from django.contrib.gis.measure import D
from django.db.models import Q, QuerySet, lookups
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from tracker import taxonomy
from tracker.models import Event
from tracker.selectors import city_lookup

MAX_RADIUS_KM = 2000
MAX_COUNT = 2_147_483_647  # the arrests column is a PostgreSQL integer
COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")
ASCII_ID_RE = re.compile(r"[0-9]+")


class ILikeContains(lookups.IContains):
    """`col ILIKE '%word%'`. Django writes icontains as `UPPER(col::text) LIKE UPPER(...)`,
    which PostgreSQL estimates at a hundredth of the matching rows and runs slower per row:
    at a million events a `q=` page took 150-500 ms instead of 15-40 ms."""

    lookup_name = "ilike_contains"

    def get_rhs_op(self, connection, rhs):
        return f"ILIKE {rhs}"


TEXT_FIELDS = ("title", "description", "location_detail")
for _name in TEXT_FIELDS:
    # On these fields only, not on every CharField of the project.
    Event._meta.get_field(_name).register_lookup(ILikeContains)


def _parse_floats(value: str, count: int, what: str, example: str) -> list[float]:
    parts = [part.strip() for part in value.split(",")]
    if len(parts) != count:
        raise forms.ValidationError(
            f"{what} needs {count} comma-separated numbers, e.g. {example} (got %(value)s).",
            code="malformed",
            params={"value": repr(value)},
        )
    try:
        numbers = [float(part) for part in parts]
    except ValueError:
        raise forms.ValidationError(
            f"{what} needs {count} comma-separated numbers, e.g. {example} (got %(value)s).",
            code="malformed",
            params={"value": repr(value)},
        ) from None
    if not all(math.isfinite(number) for number in numbers):
        raise forms.ValidationError(f"{what} must be finite numbers.", code="malformed")
    return numbers


def _check_lon_lat(lon: float, lat: float) -> None:
    if not -180 <= lon <= 180 or not -90 <= lat <= 90:
        raise forms.ValidationError(
            "Longitude must be between -180 and 180 and latitude between -90 and 90 "
            "(got %(lon)g, %(lat)g).",
            code="out_of_range",
            params={"lon": lon, "lat": lat},
        )


class SlugListField(forms.CharField):
    """Comma-separated slugs of one vocabulary, e.g. `human_rights,welfare`."""

    def __init__(self, *args, vocabulary: tuple[str, ...] = (), **kwargs):
        self.vocabulary = vocabulary
        super().__init__(*args, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return []
        slugs = [slug.strip().lower() for slug in value.split(",") if slug.strip()]
        unknown = [slug for slug in slugs if slug not in self.vocabulary]
        if unknown:
            raise forms.ValidationError(
                "Unknown value: %(unknown)s. Choose from: %(known)s.",
                code="unknown_slug",
                params={"unknown": ", ".join(unknown), "known": ", ".join(self.vocabulary)},
            )
        return slugs


class CountryListField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        if not value:
            return []
        codes = [code.strip() for code in value.split(",") if code.strip()]
        bad = [code for code in codes if not COUNTRY_RE.match(code)]
        if bad:
            raise forms.ValidationError(
                "A country is an ISO 3166-1 alpha-2 code such as KZ (got %(bad)s).",
                code="invalid_country",
                params={"bad": ", ".join(bad)},
            )
        return [code.upper() for code in codes]


class BBoxField(forms.CharField):
    """`minlon,minlat,maxlon,maxlat` in WGS 84 degrees."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        example = "in_bbox=46.5,40.5,87.4,55.5"
        min_lon, min_lat, max_lon, max_lat = _parse_floats(value, 4, "in_bbox", example)
        _check_lon_lat(min_lon, min_lat)
        _check_lon_lat(max_lon, max_lat)
        if min_lon > max_lon or min_lat > max_lat:
            raise forms.ValidationError(
                "in_bbox is minlon,minlat,maxlon,maxlat: the minimum cannot exceed the maximum.",
                code="malformed",
            )
        return Polygon.from_bbox((min_lon, min_lat, max_lon, max_lat))


class LonLatField(forms.CharField):
    """`lon,lat` in WGS 84 degrees."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        lon, lat = _parse_floats(value, 2, "near", "near=76.95,43.24")
        _check_lon_lat(lon, lat)
        return Point(lon, lat, srid=4326)


class CityField(forms.CharField):
    """A gazetteer city by id or by any of its names (any language, former names)."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        value = value.strip()
        # Not str.isdigit(): it is true for "²", which int() refuses.
        if ASCII_ID_RE.fullmatch(value):
            ids = list(city_lookup_by_id(int(value))) if len(value) <= 18 else []
        else:
            ids = list(city_lookup(value).values_list("id", flat=True))
        if not ids:
            raise forms.ValidationError(
                "Unknown city: %(city)s. Give a city id or a name; /api/v1/cities/?q= "
                "lists the cities the tracker knows.",
                code="unknown_city",
                params={"city": repr(value)},
            )
        return ids


def city_lookup_by_id(city_id: int):
    from tracker.models import City

    return City.objects.filter(pk=city_id).values_list("id", flat=True)


class MomentField(IsoDateTimeField):
    """An ISO 8601 moment, handed on in UTC.

    Python accepts offsets up to ±23:59 but PostgreSQL only up to ±15:59, and a moment
    near year 1 or 9999 may not exist in UTC at all: either was a database error (and, in a
    streamed CSV, a file cut off after its 200)."""

    def clean(self, value):
        moment = super().clean(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(
                "%(value)s is outside the range of dates the tracker can compare; "
                "give a moment between years 1 and 9999 in UTC.",
                code="out_of_range",
                params={"value": value},
            ) from None


@extend_schema_field(OpenApiTypes.DATETIME)
class MomentFilter(django_filters.IsoDateTimeFilter):
    field_class = MomentField


@extend_schema_field(OpenApiTypes.STR)
class SlugListFilter(django_filters.Filter):
    field_class = SlugListField


@extend_schema_field(OpenApiTypes.STR)
class CountryListFilter(django_filters.Filter):
    field_class = CountryListField


@extend_schema_field(OpenApiTypes.STR)
class CityFilter(django_filters.Filter):
    field_class = CityField


@extend_schema_field(OpenApiTypes.STR)
class BBoxFilter(django_filters.Filter):
    field_class = BBoxField


@extend_schema_field(OpenApiTypes.STR)
class LonLatFilter(django_filters.Filter):
    field_class = LonLatField


class EventFilterSet(django_filters.FilterSet):
    """Filters of /api/v1/events/, the trends, the exports and the map.

    `EventFilterSet(data=request.GET, queryset=Event.objects.published(), request=request)`;
    `.is_valid()` then `.qs`, or `.errors` for the 400 answer.
    """

    date_after = django_filters.DateFilter(
        field_name="date",
        lookup_expr="gte",
        label="Events that started on or after this day (YYYY-MM-DD).",
    )
    date_before = django_filters.DateFilter(
        field_name="date",
        lookup_expr="lte",
        label="Events that started on or before this day (YYYY-MM-DD).",
    )
    year = django_filters.NumberFilter(
        method="filter_year",
        label="Events that started in this year.",
        min_value=1900,
        max_value=2100,
        decimal_places=0,
    )
    country = CountryListFilter(
        field_name="country",
        lookup_expr="in",
        label="ISO 3166-1 alpha-2 codes, comma-separated (any of).",
    )
    admin1 = django_filters.CharFilter(
        field_name="admin1", lookup_expr="iexact", label="Region (oblast), as named in the data."
    )
    city = CityFilter(
        field_name="city_id",
        lookup_expr="in",
        label="City id, or any name of the city (English, Russian, Kazakh, former names).",
    )
    grievance = SlugListFilter(
        field_name="grievances",
        lookup_expr="overlap",
        vocabulary=taxonomy.GRIEVANCE_SLUGS,
        label="Grievance slugs, comma-separated (any of).",
    )
    police_response = SlugListFilter(
        field_name="police_responses",
        lookup_expr="overlap",
        vocabulary=taxonomy.POLICE_RESPONSE_SLUGS,
        label="Police response slugs, comma-separated (any of).",
    )
    arrests_min = django_filters.NumberFilter(
        field_name="arrests",
        lookup_expr="gte",
        min_value=0,
        max_value=MAX_COUNT,
        decimal_places=0,
        label="At least this many people detained (events with unreported arrests excluded).",
    )
    arrests_max = django_filters.NumberFilter(
        field_name="arrests",
        lookup_expr="lte",
        min_value=0,
        max_value=MAX_COUNT,
        decimal_places=0,
        label="At most this many people detained (events with unreported arrests excluded).",
    )
    in_bbox = BBoxFilter(
        method="filter_in_bbox",
        label="minlon,minlat,maxlon,maxlat (WGS 84).",
    )
    near = LonLatFilter(
        method="filter_near",
        label="lon,lat (WGS 84); use with radius_km.",
    )
    radius_km = django_filters.NumberFilter(
        method="filter_noop",
        min_value=0,
        max_value=MAX_RADIUS_KM,
        label=f"Radius around `near`, in km (up to {MAX_RADIUS_KM}).",
    )
    q = django_filters.CharFilter(
        method="filter_text",
        max_length=200,
        label="Words to find in the title, description or place (all words must match).",
    )
    updated_since = MomentFilter(
        field_name="updated_at",
        lookup_expr="gte",
        label="Events changed at or after this moment (ISO 8601), for incremental sync.",
    )

    class Meta:
        model = Event
        fields: list[str] = []

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if not valid:
            return False
        data = self.form.cleaned_data
        if data.get("near") is not None and data.get("radius_km") is None:
            self.form.add_error("radius_km", "near needs radius_km (in km), e.g. radius_km=25.")
        elif data.get("radius_km") is not None and data.get("near") is None:
            self.form.add_error("near", "radius_km needs near=lon,lat.")
        return self.form.is_valid()

    def filter_year(self, queryset: QuerySet[Event], name: str, value) -> QuerySet[Event]:
        # A range on the raw column keeps the date index usable (EXTRACT would not).
        year = int(value)
        return queryset.filter(date__gte=f"{year}-01-01", date__lte=f"{year}-12-31")

    def filter_in_bbox(self, queryset: QuerySet[Event], name: str, value) -> QuerySet[Event]:
        return queryset.filter(location__intersects=value)

    def filter_near(self, queryset: QuerySet[Event], name: str, value) -> QuerySet[Event]:
        radius_km = float(self.form.cleaned_data["radius_km"])
        # A box in degrees that surely holds the circle lets the GiST index work; the true
        # spherical distance then decides.
        degrees = radius_km / 111.0 / max(math.cos(math.radians(value.y)), 0.05) + 0.01
        return queryset.filter(
            location__dwithin=(value, degrees),
            location__distance_lte=(value, D(km=radius_km)),
        )

    def filter_noop(self, queryset: QuerySet[Event], name: str, value) -> QuerySet[Event]:
        return queryset  # read by filter_near

    def filter_text(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        for word in value.split():
            queryset = queryset.filter(
                Q(title__ilike_contains=word)
                | Q(description__ilike_contains=word)
                | Q(location_detail__ilike_contains=word)
            )
        return queryset
