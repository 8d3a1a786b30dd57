"""Forms of the HTML pages. They only validate and translate input; writes go through
tracker.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from tracker import taxonomy
from tracker.models import Event, web_url_validator
from tracker.query import EventFilterSet, ListInput
from tracker.selectors import city_lookup, filter_options

MAX_COUNT = 2_147_483_647  # PostgreSQL integer, the type of the count columns


class ListCheckboxes(forms.CheckboxSelectMultiple):
    """Checkboxes that read values as tracker.query.ListInput does (repeated parameters and
    the API's comma-separated spelling, `grievance=welfare,labor`), so a link copied from
    the map or the API opens the same selection."""

    def value_from_datadict(self, data, files, name):
        return ListInput().value_from_datadict(data, files, name)


class ListSelect(forms.SelectMultiple):
    """A multiple select read as ListInput reads values. Rendered in Python: the city menu
    has hundreds of options, and Django's template per option took 30 ms of every page."""

    def value_from_datadict(self, data, files, name):
        return ListInput().value_from_datadict(data, files, name)

    def render(self, name, value, attrs=None, renderer=None):
        selected = set(self.format_value(value))
        attributes = self.build_attrs(self.attrs, attrs)
        attributes["multiple"] = True
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (key, mark_safe(" selected") if str(key) in selected else "", label)
                for key, label in self.choices
            ),
        )
        return format_html('<select name="{}"{}>{}</select>', name, flatatt(attributes), options)


class TrueFalseSelect(forms.Select):
    """A menu of tracker.query.TrueFalseField's values; `FALSE` in a link shows as false."""

    def format_value(self, value):
        return [str(v).lower() for v in super().format_value(value)]


def _vocabulary_choices(terms: tuple[taxonomy.Term, ...]) -> list[tuple[str, str]]:
    return [(term.slug, term.label()) for term in terms]


def filter_panel(filterset: EventFilterSet) -> forms.Form:
    """The form of `filterset` dressed for the filter panel of the pages: labels in the
    page's language and widgets for people. It changes no parsing: the filter set's fields
    (tracker.query) still read and check every value. Call before `is_valid()`."""
    options = filter_options()
    form = filterset.form
    fields = form.fields
    labels = {
        "date_after": _("From"),
        "date_before": _("To"),
        "year": _("Year"),
        "country": _("Country"),
        "admin1": _("Region"),
        "city": _("City"),
        "organizer": _("Organizer"),
        "grievance": _("Grievance"),
        "police_response": _("Police response"),
        "arrests_min": _("Arrests at least"),
        "arrests_max": _("Arrests at most"),
        "q": _("Words"),
        "has_location": _("Exact place"),
    }
    for name, label in labels.items():
        fields[name].label = label
        fields[name].help_text = ""
    fields["date_after"].widget = forms.DateInput(attrs={"type": "date"})
    fields["date_before"].widget = forms.DateInput(attrs={"type": "date"})
    fields["year"].widget = forms.NumberInput(attrs={"min": 1900, "max": 2100})
    fields["country"].widget = ListSelect(choices=[(c, c) for c in options["countries"]])
    fields["admin1"].widget = ListSelect(choices=[(r, r) for r in options["regions"]])
    fields["city"].widget = ListSelect(
        choices=[(str(pk), label) for pk, label in options["cities"]]
    )
    fields["organizer"].widget = ListInput(split_commas=False)
    fields["grievance"].widget = ListCheckboxes(choices=_vocabulary_choices(taxonomy.GRIEVANCES))
    fields["police_response"].widget = ListCheckboxes(
        choices=_vocabulary_choices(taxonomy.POLICE_RESPONSES)
    )
    fields["q"].widget = forms.TextInput(attrs={"type": "search"})
    # Events placed only at region or country level have no point and are not on the map.
    fields["has_location"].widget = TrueFalseSelect(
        choices=[
            ("", pgettext_lazy("exact place", "Any")),
            ("true", _("Known: on the map")),
            ("false", _("Region or country only")),
        ]
    )
    # Filters without a control of their own on the pages (set from the map or a link)
    # are carried along, so that applying the panel does not drop them.
    for name in ("in_bbox", "near", "radius_km", "updated_since"):
        fields[name].widget = forms.HiddenInput()
    return form


def page_filters(request, *, extra_params=()) -> tuple[EventFilterSet, forms.Form, bool]:
    """The event filters of a page's query string over published events, with the panel's
    form; (filterset, form, valid). An invalid selection shows its messages in the panel
    and no numbers, never the numbers of another (unfiltered) selection."""
    filterset = EventFilterSet(
        data=request.GET, queryset=Event.objects.published(), extra_params=extra_params
    )
    form = filter_panel(filterset)
    valid = filterset.is_valid()
    if valid and form.cleaned_data.get("city"):
        # Cities may be given by name (`city=Almaty`); the menu's options are ids, so show
        # the cities found, or the map's next request would silently drop them.
        form.data = form.data.copy()
        form.data.setlist("city", [str(pk) for pk in form.cleaned_data["city"]])
    return filterset, form, valid


def _version_field() -> forms.IntegerField:
    # The version of the event the page showed: a save on a row changed since is refused
    # (the conflict page) instead of silently undoing the other change. Optional, so a
    # form without it (a new submission, a script) still saves, like a PATCH without If-Match.
    return forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class EventForm(forms.Form):
    """A contributor's submission, or a moderator's edit of one."""

    version = _version_field()

    title = forms.CharField(label=_("Title"), max_length=300)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(
        label=_("End date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Only for events that lasted several days."),
    )
    date_precision = forms.ChoiceField(
        label=_("Date precision"), choices=Event.DatePrecision.choices, initial="day"
    )
    city_name = forms.CharField(
        label=_("City"),
        required=False,
        max_length=120,
        help_text=_("Any spelling: Astana, Nur-Sultan, Астана, Нұр-Сұлтан..."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "list": "city-suggestions"}),
    )
    country = forms.CharField(
        label=_("Country code"),
        required=False,
        max_length=2,
        help_text=_("Two letters (KZ). Filled from the city when empty."),
    )
    admin1 = forms.CharField(label=_("Region"), required=False, max_length=120)
    location_detail = forms.CharField(
        label=_("Place"),
        required=False,
        max_length=200,
        help_text=_('For example "Republic Square".'),
    )
    latitude = forms.FloatField(
        label=_("Latitude"),
        required=False,
        min_value=-90,
        max_value=90,
        help_text=_("Click the map to place the point, or type it."),
    )
    longitude = forms.FloatField(
        label=_("Longitude"), required=False, min_value=-180, max_value=180
    )
    grievances = forms.MultipleChoiceField(
        label=_("Grievances"),
        choices=_vocabulary_choices(taxonomy.GRIEVANCES),
        widget=forms.CheckboxSelectMultiple,
    )
    police_responses = forms.MultipleChoiceField(
        label=_("Police response"),
        required=False,
        choices=_vocabulary_choices(taxonomy.POLICE_RESPONSES),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Leave empty when not reported."),
    )
    arrests = forms.IntegerField(
        label=_("Arrests"),
        required=False,
        min_value=0,
        help_text=_("Empty = not reported, 0 = reported none."),
    )
    injuries = forms.IntegerField(label=_("Injuries"), required=False, min_value=0)
    deaths = forms.IntegerField(label=_("Deaths"), required=False, min_value=0)
    participants_low = forms.IntegerField(
        label=_("Participants (low estimate)"), required=False, min_value=0
    )
    participants_high = forms.IntegerField(
        label=_("Participants (high estimate)"), required=False, min_value=0
    )
    organizers = forms.CharField(
        label=_("Organizers"),
        required=False,
        max_length=1000,
        help_text=_("Separate several with semicolons."),
    )

    def clean_country(self) -> str:
        return self.cleaned_data["country"].strip().upper()

    def clean(self):
        data = super().clean()
        name = (data.get("city_name") or "").strip()
        data["city"] = None
        if name:
            city = city_lookup(name, country=data.get("country") or None).first()
            if city is None:
                self.add_error(
                    "city_name",
                    _("No city called “%(name)s” in the gazetteer. Check the spelling.")
                    % {"name": name},
                )
            data["city"] = city
        lat, lon = data.get("latitude"), data.get("longitude")
        if (lat is None) != (lon is None):
            self.add_error("longitude", _("Give both latitude and longitude, or neither."))
        if not name and lat is None and not data.get("country"):
            self.add_error("city_name", _("Give a city, a point on the map or a country."))
        return data

    def event_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        fields = {
            key: data.get(key)
            for key in (
                "title",
                "description",
                "date",
                "end_date",
                "date_precision",
                "country",
                "admin1",
                "city",
                "location_detail",
                "grievances",
                "police_responses",
                "arrests",
                "injuries",
                "deaths",
                "participants_low",
                "participants_high",
            )
        }
        if data.get("latitude") is not None and data.get("longitude") is not None:
            fields["location"] = Point(data["longitude"], data["latitude"], srid=4326)
            fields["geo_precision"] = Event.GeoPrecision.EXACT
        return fields

    def organizer_names(self) -> list[str]:
        return [
            n.strip() for n in (self.cleaned_data.get("organizers") or "").split(";") if n.strip()
        ]

    @classmethod
    def initial_from(cls, event: Event) -> dict[str, Any]:
        return {
            "title": event.title,
            "description": event.description,
            "date": event.date,
            "end_date": event.end_date,
            "date_precision": event.date_precision,
            "city_name": event.city.name if event.city else "",
            "country": event.country,
            "admin1": event.admin1,
            "location_detail": event.location_detail,
            "latitude": event.location.y if event.location and event.geo_precision == 1 else None,
            "longitude": event.location.x if event.location and event.geo_precision == 1 else None,
            "grievances": event.grievances,
            "police_responses": event.police_responses,
            "arrests": event.arrests,
            "injuries": event.injuries,
            "deaths": event.deaths,
            "participants_low": event.participants_low,
            "participants_high": event.participants_high,
            "organizers": "; ".join(o.name for o in event.organizers.all()),
            "version": event.version,
        }

    def expected_versions(self) -> set[int] | None:
        version = self.cleaned_data.get("version")
        return None if version is None else {version}

    def add_service_errors(self, error: ValidationError) -> None:
        """Put a service's ValidationError next to the matching fields."""
        mapping = {"location": "latitude", "city": "city_name", "sources": None}
        if not hasattr(error, "error_dict"):
            self.add_error(None, error.messages)
            return
        for field, errors in error.error_dict.items():
            target = mapping.get(field, field)
            if target not in self.fields:
                target = None
            for item in errors:
                self.add_error(target, item.messages)


def _shown(value) -> str:
    """A value as the conflict page shows it; "—" for nothing."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list | tuple):
        return "; ".join(str(item) for item in value)
    if isinstance(value, float):
        return f"{value:.5f}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _source_lines(sources) -> list[str]:
    return sorted(
        " — ".join(part for part in (s.get("url"), s.get("title")) if part) for s in sources
    )


def event_form_differences(
    form: EventForm, sources: list[dict[str, Any]], current: Event
) -> list[dict[str, str]]:
    """Each field where what a moderator submitted differs from what is stored now: the
    rows of the conflict page (label, submitted value, stored value)."""
    stored = EventForm.initial_from(current)
    submitted = dict(form.cleaned_data)
    city = submitted.get("city")
    submitted["city_name"] = city.name if city is not None else ""
    submitted["organizers"] = form.organizer_names()
    stored["organizers"] = [o.name for o in current.organizers.all()]
    labels = {
        "date_precision": dict(Event.DatePrecision.choices),
        "grievances": {t.slug: t.label() for t in taxonomy.GRIEVANCES},
        "police_responses": {t.slug: t.label() for t in taxonomy.POLICE_RESPONSES},
    }
    rows = []
    for name, field in form.fields.items():
        if name == "version":
            continue
        values = []
        for value in (submitted.get(name), stored.get(name)):
            if name in labels:
                names = labels[name]
                value = (
                    sorted(str(names.get(v, v)) for v in value)
                    if isinstance(value, list)
                    else (str(names.get(value, value)) if value else value)
                )
            values.append(_shown(value))
        if values[0] != values[1]:
            rows.append({"label": str(field.label), "yours": values[0], "stored": values[1]})
    yours = _source_lines(sources)
    now = _source_lines({"url": s.url, "title": s.title} for s in current.sources.all())
    if yours != now:
        rows.append({"label": str(_("Sources")), "yours": _shown(yours), "stored": _shown(now)})
    return rows


class SourceForm(forms.Form):
    url = forms.URLField(
        label=_("Link"),
        required=False,
        max_length=1000,
        assume_scheme="https",
        validators=[web_url_validator],
    )
    title = forms.CharField(label=_("Headline"), required=False, max_length=500)
    publisher = forms.CharField(label=_("Publisher"), required=False, max_length=200)
    published_on = forms.DateField(
        label=_("Published on"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        data = super().clean()
        if (data.get("publisher") or data.get("published_on")) and not (
            data.get("url") or data.get("title")
        ):
            self.add_error("url", _("A source needs a link or a headline."))
        return data


class BaseSourceFormSet(forms.BaseFormSet):
    def clean(self):
        super().clean()
        if any(self.errors):
            return
        if not self.sources():
            raise ValidationError(_("Give at least one source: a link or a headline."))

    def sources(self) -> list[dict[str, Any]]:
        return [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data
            and (form.cleaned_data.get("url") or form.cleaned_data.get("title"))
        ]


SourceFormSet = forms.formset_factory(SourceForm, formset=BaseSourceFormSet, extra=3, max_num=10)


class ReviewForm(forms.Form):
    version = _version_field()
    decision = forms.ChoiceField(
        label=_("Decision"),
        choices=[("publish", _("Publish")), ("reject", _("Reject"))],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label=_("Note to the contributor"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required when rejecting: say why."),
    )

    def expected_versions(self) -> set[int] | None:
        version = self.cleaned_data.get("version")
        return None if version is None else {version}

    def clean(self):
        data = super().clean()
        if data.get("decision") == "reject" and not (data.get("note") or "").strip():
            self.add_error("note", _("Give a reason when rejecting a submission."))
        return data
