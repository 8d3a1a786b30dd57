"""The one definition of the event filters: query parameters -> QuerySet.

Every view that selects events reads its parameters here: the API list, GeoJSON and CSV,
the exports and export jobs, the trends, the map, the dashboard and its CSVs. Each
parameter is parsed and checked by a form field, so a bad value makes `.is_valid()` false
with a message that says what is wrong and what is expected. A parameter nobody knows is an
error too (naming the known ones): nothing is silently ignored, and no value reaches the
database unchecked.

    filterset = EventFilterSet(data=request.GET, queryset=Event.objects.published(),
                               extra_params=("interval", "by"))
    if not filterset.is_valid(): ... filterset.errors (400)
    events = filterset.qs; values = filterset.form.cleaned_data
"""

from __future__ import annotations

import datetime as dt
import math
import re

import django_filters
from django import forms
from django.contrib.gis.geos import Point, Polygon
from django.contrib.gis.measure import D
from django.db.models import Exists, OuterRef, Q, QuerySet
from django_filters.fields import IsoDateTimeField

from tracker import taxonomy
from tracker.models import Event
from tracker.search import search, words
from tracker.selectors import city_lookup

MAX_RADIUS_KM = 2000
MAX_COUNT = 2_147_483_647  # the arrests column is a PostgreSQL integer
COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")
ASCII_ID_RE = re.compile(r"[0-9]+")
MAX_VALUES = 50  # values of one list parameter (cities, regions, organizers ...)


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


class ListInput(forms.TextInput):
    """Reads every value of a repeated parameter (`?city=1&city=2`, as a page's multiple
    select sends them), each of which may itself be a comma-separated list (the API's
    spelling, `city=1,2`)."""

    def __init__(self, *args, split_commas: bool = True, **kwargs):
        self.split_commas = split_commas
        super().__init__(*args, **kwargs)

    def value_from_datadict(self, data, files, name):
        values = data.getlist(name) if hasattr(data, "getlist") else [data.get(name)]
        values = [str(value) for value in values if value not in (None, "")]
        if self.split_commas:
            values = [part for value in values for part in value.split(",")]
        values = [value.strip() for value in values if value.strip()]
        return values or None

    def format_value(self, value):
        if isinstance(value, list | tuple):
            return ",".join(str(item) for item in value)
        return super().format_value(value)


class ListField(forms.Field):
    """A list of short texts (see ListInput); subclasses check each item."""

    widget = ListInput
    item_max_length = 200
    what = "value"

    def to_python(self, value):
        if not value:
            return []
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if len(value) > MAX_VALUES:
            raise forms.ValidationError(
                "At most %(max)d values, got %(count)d.",
                code="too_many",
                params={"max": MAX_VALUES, "count": len(value)},
            )
        if any("\x00" in item for item in value):
            raise forms.ValidationError("Null characters are not allowed.", code="null_characters")
        too_long = [item for item in value if len(item) > self.item_max_length]
        if too_long:
            raise forms.ValidationError(
                "A %(what)s has at most %(max)d characters.",
                code="too_long",
                params={"what": self.what, "max": self.item_max_length},
            )
        return list(value)

    def clean(self, value):
        return self.clean_items(super().clean(value))

    def clean_items(self, items: list[str]):
        return items


class SlugListField(ListField):
    """Slugs of one vocabulary, e.g. `human_rights,welfare` (any of them)."""

    item_max_length = 40
    what = "slug"

    def __init__(self, *args, vocabulary: tuple[str, ...] = (), **kwargs):
        self.vocabulary = vocabulary
        super().__init__(*args, **kwargs)

    def clean_items(self, items):
        slugs = [slug.lower() for slug in items]
        unknown = [slug for slug in slugs if slug not in self.vocabulary]
        if unknown:
            raise forms.ValidationError(
                "Unknown value: %(unknown)s. Choose from: %(known)s.",
                code="unknown_slug",
                params={"unknown": ", ".join(unknown), "known": ", ".join(self.vocabulary)},
            )
        return slugs


class CountryListField(ListField):
    """ISO 3166-1 alpha-2 codes (any of them)."""

    item_max_length = 200  # a longer value gets the message about codes, not about length
    what = "country code"

    def clean_items(self, codes):
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


class CityField(ListField):
    """Gazetteer cities, each by id or by any of its names (any language, former names);
    a name several cities share means all of them."""

    item_max_length = 120
    what = "city"

    def clean_items(self, items):
        # Not str.isdigit(): it is true for "²", which int() refuses.
        numbers = [int(v) for v in items if ASCII_ID_RE.fullmatch(v) and len(v) <= 18]
        known = set(city_lookup_by_id(numbers)) if numbers else set()  # one query for all ids
        ids: list[int] = []
        for value in items:
            if ASCII_ID_RE.fullmatch(value):
                found = [int(value)] if len(value) <= 18 and int(value) in known else []
            else:
                found = list(city_lookup(value).values_list("id", flat=True))
            if not found:
                raise forms.ValidationError(
                    "Unknown city: %(city)s. Give a city id or a name; /api/v1/cities/?q= "
                    "lists the cities the tracker knows.",
                    code="unknown_city",
                    params={"city": repr(value)},
                )
            ids.extend(pk for pk in found if pk not in ids)
        return ids


class Admin1ListField(ListField):
    """Regions (oblasts) as named in the data, case-insensitive (any of them)."""

    item_max_length = 120
    what = "region"


class OrganizerListField(ListField):
    """Organizer names or parts of them (any of them). Names hold commas ("Oyan,
    Qazaqstan"), so several organizers are given as repeated parameters."""

    what = "organizer"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", ListInput(split_commas=False))
        super().__init__(*args, **kwargs)


def city_lookup_by_id(city_ids: list[int]):
    from tracker.models import City

    return City.objects.filter(pk__in=city_ids).values_list("id", flat=True)


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


class TrueFalseField(forms.Field):
    """`true` or `false` (any case). Django's NullBooleanField reads any other value as
    "not given", so a misspelt `has_location=flase` would silently select every event."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "false"):
            return text == "true"
        raise forms.ValidationError(
            "Give true or false (got %(value)s).", code="invalid", params={"value": repr(value)}
        )


class MomentFilter(django_filters.IsoDateTimeFilter):
    field_class = MomentField


class SlugListFilter(django_filters.Filter):
    field_class = SlugListField


class CountryListFilter(django_filters.Filter):
    field_class = CountryListField


class CityFilter(django_filters.Filter):
    field_class = CityField


class BBoxFilter(django_filters.Filter):
    field_class = BBoxField


class LonLatFilter(django_filters.Filter):
    field_class = LonLatField


class Admin1ListFilter(django_filters.Filter):
    field_class = Admin1ListField


class OrganizerListFilter(django_filters.Filter):
    field_class = OrganizerListField


class IntegerFilter(django_filters.Filter):
    field_class = forms.IntegerField


class TrueFalseFilter(django_filters.BooleanFilter):
    """A boolean filter (the OpenAPI schema says so) that refuses what is not true/false."""

    field_class = TrueFalseField


# Parameters that take several values (repeated, or comma-separated where a value cannot
# hold a comma); any other parameter given twice is an error rather than a silent pick.
LIST_PARAMS = ("country", "admin1", "city", "organizer", "grievance", "police_response")


class EventFilterSet(django_filters.FilterSet):
    """The event filters (see the module's docstring).

    `extra_params` names the parameters of the view itself (paging, ordering, interval...)
    that are not filters; any other unknown parameter makes the filter set invalid.
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
    year = IntegerFilter(
        method="filter_year",
        label="Events that started in this year.",
        min_value=1900,
        max_value=2100,
    )
    country = CountryListFilter(
        field_name="country",
        lookup_expr="in",
        label="ISO 3166-1 alpha-2 codes, comma-separated (any of).",
    )
    admin1 = Admin1ListFilter(
        method="filter_admin1",
        label="Regions (oblasts) as named in the data, comma-separated (any of).",
    )
    city = CityFilter(
        field_name="city_id",
        lookup_expr="in",
        label="City ids or names (English, Russian, Kazakh, former names), comma-separated "
        "(any of).",
    )
    organizer = OrganizerListFilter(
        method="filter_organizer",
        label="Organizer name or part of it; repeat the parameter for several (any of).",
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
    arrests_min = IntegerFilter(
        field_name="arrests",
        lookup_expr="gte",
        min_value=0,
        max_value=MAX_COUNT,
        label="At least this many people detained (events with unreported arrests excluded).",
    )
    arrests_max = IntegerFilter(
        field_name="arrests",
        lookup_expr="lte",
        min_value=0,
        max_value=MAX_COUNT,
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
    has_location = TrueFalseFilter(
        method="filter_has_location",
        label="true: only events with a point (those the map draws); false: only events "
        "placed at region or country level, without a point.",
    )
    q = django_filters.CharFilter(
        method="filter_text",
        max_length=200,
        label="Words to find (all of them, each by its start): in the title, description, "
        "place or region, the sources' titles, the organizers' names, the city's names in any "
        "language, or the grievance and police-response labels.",
    )
    updated_since = MomentFilter(
        field_name="updated_at",
        lookup_expr="gte",
        label="Events changed at or after this moment (ISO 8601), for incremental sync.",
    )

    class Meta:
        model = Event
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None, extra_params=()):
        super().__init__(data=data, queryset=queryset, request=request, prefix=prefix)
        self.extra_params = tuple(extra_params)

    def is_valid(self) -> bool:
        valid = super().is_valid()
        self._check_parameters()
        if not valid:
            return False
        data = self.form.cleaned_data
        if data.get("near") is not None and data.get("radius_km") is None:
            self.form.add_error("radius_km", "near needs radius_km (in km), e.g. radius_km=25.")
        elif data.get("radius_km") is not None and data.get("near") is None:
            self.form.add_error("near", "radius_km needs near=lon,lat.")
        after, before = data.get("date_after"), data.get("date_before")
        if after and before and after > before:
            self.form.add_error("date_before", "date_before is earlier than date_after.")
        if data.get("q") and not words(data["q"]):
            self.form.add_error(
                "q", "q needs a word to find: letters or digits (punctuation is not searched)."
            )
        low, high = data.get("arrests_min"), data.get("arrests_max")
        if low is not None and high is not None and low > high:
            self.form.add_error("arrests_max", "arrests_max is below arrests_min.")
        return self.form.is_valid()

    def _check_parameters(self) -> None:
        """Unknown parameters and single-valued ones given twice are errors."""
        if self.data is None:
            return
        known = set(self.filters) | set(self.extra_params)
        unknown = sorted(name for name in self.data if name not in known)
        for name in unknown:
            self.form.add_error(
                None,
                forms.ValidationError(
                    "Unknown parameter %(name)s. Known parameters: %(known)s.",
                    code="unknown_parameter",
                    params={"name": repr(name), "known": ", ".join(sorted(known))},
                ),
            )
        if hasattr(self.data, "getlist"):
            for name in self.filters:
                if name not in LIST_PARAMS and len(set(self.data.getlist(name))) > 1:
                    self.form.add_error(
                        name if name in self.form.fields else None,
                        forms.ValidationError(
                            "%(name)s was given more than once with different values.",
                            code="repeated_parameter",
                            params={"name": name},
                        ),
                    )

    def filter_year(self, queryset: QuerySet[Event], name: str, value) -> QuerySet[Event]:
        # A range on the raw column keeps the date index usable (EXTRACT would not).
        year = int(value)
        return queryset.filter(date__gte=f"{year}-01-01", date__lte=f"{year}-12-31")

    def filter_admin1(self, queryset: QuerySet[Event], name: str, value) -> QuerySet[Event]:
        condition = Q()
        for region in value:
            condition |= Q(admin1__iexact=region)
        return queryset.filter(condition)

    def filter_organizer(self, queryset: QuerySet[Event], name: str, value) -> QuerySet[Event]:
        condition = Q()
        for text in value:
            condition |= Q(organization__name__icontains=text)
            condition |= Q(organization__name_ru__icontains=text)
        links = Event.organizers.through.objects.filter(condition, event_id=OuterRef("pk"))
        return queryset.filter(Exists(links))

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

    def filter_has_location(self, queryset: QuerySet[Event], name: str, value) -> QuerySet[Event]:
        return queryset.filter(location__isnull=not value)

    def filter_noop(self, queryset: QuerySet[Event], name: str, value) -> QuerySet[Event]:
        return queryset  # read by filter_near

    def filter_text(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        return search(queryset, value)


def published_events(data, *, extra_params=(), request=None) -> EventFilterSet:
    """The filter set over published events (what anonymous readers see)."""
    return EventFilterSet(
        data=data, queryset=Event.objects.published(), request=request, extra_params=extra_params
    )


def filter_errors_text(filterset: EventFilterSet) -> str:
    """The errors as one line (for a CSV or a job's message)."""
    return "; ".join(
        f"{name}: {' '.join(messages)}" if name != "__all__" else " ".join(messages)
        for name, messages in filterset.errors.items()
    )
