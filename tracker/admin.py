from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.gis.admin import GISModelAdmin
from django.db import models
from django.db.models.functions import ExtractYear
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from tracker import taxonomy
from tracker.history import history_actor
from tracker.models import (
    City,
    CityName,
    Event,
    ExportJob,
    ExternalId,
    ImportIssue,
    ImportJob,
    Organization,
    Source,
)
from tracker.widgets import OfflineOSMWidget

# Every spelling by which a lookup can reach who submitted an event: the field, its column
# and the reverse relation from the user. A path through any of them (submitted_by__email,
# sources__event__submitted_by, submitted_events__title ...) is refused.
SUBMITTER_PATH_PARTS = frozenset({"submitted_by", "submitted_by_id", "submitted_events"})


def reaches_submitter(lookup: str) -> bool:
    return any(part in SUBMITTER_PATH_PARTS for part in lookup.split("__"))


class SubmitterPrivacyMixin:
    """No admin filter or ordering of any model may go through the submitter: the list it
    gave would say who reported what. A refused lookup gets the admin's own 400."""

    def lookup_allowed(self, lookup, value, request=None):
        if reaches_submitter(lookup):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_search_fields(self, request):
        return [f for f in super().get_search_fields(request) if not reaches_submitter(f)]

    def get_ordering(self, request):
        return [f for f in super().get_ordering(request) or () if not reaches_submitter(f)]


class YearFilter(admin.SimpleListFilter):
    title = _("year")
    parameter_name = "year"

    def lookups(self, request, model_admin):
        years = (
            Event.objects.annotate(y=ExtractYear("date"))
            .values_list("y", flat=True)
            .distinct()
            .order_by("-y")
        )
        return [(str(y), str(y)) for y in years]

    def queryset(self, request, queryset):
        # Not str.isdigit(): it is true for "²", which int() refuses (a 500).
        if self.value() and self.value().isascii() and self.value().isdigit():
            return queryset.filter(date__year=int(self.value()))
        return queryset


class _ArrayContainsFilter(admin.SimpleListFilter):
    field = ""
    terms: tuple = ()

    def lookups(self, request, model_admin):
        return [(t.slug, t.label()) for t in self.terms]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{f"{self.field}__contains": [self.value()]})
        return queryset


class GrievanceFilter(_ArrayContainsFilter):
    title = _("grievance")
    parameter_name = "grievance"
    field = "grievances"
    terms = taxonomy.GRIEVANCES


class PoliceResponseFilter(_ArrayContainsFilter):
    title = _("police response")
    parameter_name = "police_response"
    field = "police_responses"
    terms = taxonomy.POLICE_RESPONSES


class SourceInline(admin.TabularInline):
    model = Source
    # A link typed without a scheme is taken as https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    extra = 1
    fields = ["url", "title", "publisher", "published_on", "language"]


class ExternalIdInline(admin.TabularInline):
    model = ExternalId
    extra = 0
    fields = ["scheme", "value"]


class EventAdminForm(forms.ModelForm):
    """The admin's event form carries the version it was read at: a save over a change made
    since (by another moderator, the API, an import) is refused, never a silent revert."""

    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    class Meta:
        model = Event
        # The admin builds the form from its fieldsets (which leave the submitter out).
        exclude = ["submitted_by"]  # noqa: DJ006

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # The stored version, not the instance's: the history view's "revert" form is
            # built on an old copy of the event, and reverting is a change of the current one.
            stored = Event.objects.filter(pk=self.instance.pk).values_list("version", flat=True)
            self.fields["expected_version"].initial = stored.first()
        else:
            self.fields["expected_version"].initial = 1
        self.stored_version: int | None = None

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk or "expected_version" not in cleaned:
            return cleaned
        # The admin runs the whole change view in one transaction, so this lock is held
        # until the row is saved: a second moderator's save waits, then sees the new version.
        stored = Event.objects.select_for_update().filter(pk=self.instance.pk).first()
        if stored is None:
            raise forms.ValidationError(gettext("This event was deleted meanwhile."))
        self.stored_version = stored.version
        if cleaned["expected_version"] != stored.version:
            changed = [
                f"{self.fields[name].label}: {_stored_value(stored, name)}"
                for name in self.changed_data
                if name in self.fields and name != "expected_version"
            ]
            # Re-shown with the stored version: saving again, after reading the stored values,
            # replaces them knowingly.
            data = self.data.copy()
            data[self.add_prefix("expected_version")] = str(stored.version)
            self.data = data
            message = gettext(
                "Someone else changed this event while you were editing it (it is now "
                "version %(version)s); your changes were not saved. Where your form differs, "
                "the stored values are: %(values)s. Save again to replace them with yours."
            ) % {"version": stored.version, "values": "; ".join(changed) or "-"}
            raise forms.ValidationError(message, code="stale")
        return cleaned


def _stored_value(event: Event, name: str) -> str:
    value = getattr(event, name, "")
    if hasattr(value, "all"):
        value = ", ".join(str(v) for v in value.all())
    elif isinstance(value, list):
        value = ", ".join(value)
    return "-" if value in (None, "") else str(value)


@admin.register(Event)
class EventAdmin(SubmitterPrivacyMixin, SimpleHistoryAdmin, GISModelAdmin):
    form = EventAdminForm
    gis_widget = OfflineOSMWidget
    gis_widget_kwargs = {"attrs": {"default_lon": 68, "default_lat": 48, "default_zoom": 4}}
    list_display = [
        "date",
        "title",
        "city",
        "country",
        "status",
        "arrests",
        "is_generated",
        "updated_at",
    ]
    list_filter = [
        "status",
        YearFilter,
        "country",
        GrievanceFilter,
        PoliceResponseFilter,
        "geo_precision",
        "is_generated",
    ]
    search_fields = [
        "title",
        "description",
        "location_detail",
        "admin1",
        "city__name",
        "city__names__name",
        "external_ids__value",
    ]
    date_hierarchy = "date"
    list_select_related = ["city"]
    autocomplete_fields = ["city", "organizers"]
    inlines = [SourceInline, ExternalIdInline]
    # Who submitted an event is never shown, here included.
    exclude = ["submitted_by"]
    readonly_fields = ["reviewed_by", "reviewed_at", "created_at", "updated_at"]
    history_list_display = ["status"]
    fieldsets = [
        (None, {"fields": ["title", "description", "status", "is_generated", "expected_version"]}),
        (_("When"), {"fields": [("date", "end_date", "date_precision")]}),
        (
            _("Where"),
            {
                "fields": [
                    "country",
                    "admin1",
                    "city",
                    "location_detail",
                    "location",
                    "geo_precision",
                ]
            },
        ),
        (
            _("What happened"),
            {
                "fields": [
                    "grievances",
                    "police_responses",
                    ("arrests", "injuries", "deaths"),
                    ("participants_low", "participants_high"),
                    "organizers",
                ]
            },
        ),
        (
            _("Review"),
            {"fields": ["review_note", "reviewed_by", "reviewed_at", "created_at", "updated_at"]},
        ),
    ]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in ("grievances", "police_responses"):
            terms = (
                taxonomy.GRIEVANCES if db_field.name == "grievances" else taxonomy.POLICE_RESPONSES
            )
            return forms.MultipleChoiceField(
                choices=[(t.slug, t.label()) for t in terms],
                widget=forms.CheckboxSelectMultiple,
                required=not db_field.blank,
                label=db_field.verbose_name,
                help_text=db_field.help_text,
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        obj._history_user = history_actor(request.user)
        if change and form.stored_version is not None:
            obj.version = form.stored_version + 1
        super().save_model(request, obj, form, change)


class CityNameInline(admin.TabularInline):
    model = CityName
    extra = 0
    fields = ["name", "kind"]


@admin.register(City)
class CityAdmin(SubmitterPrivacyMixin, GISModelAdmin):
    gis_widget = OfflineOSMWidget
    list_display = ["name", "name_ru", "name_kk", "country", "admin1", "population"]
    list_filter = ["country"]
    search_fields = ["name", "name_ru", "name_kk", "names__name"]
    inlines = [CityNameInline]


@admin.register(Organization)
class OrganizationAdmin(SubmitterPrivacyMixin, SimpleHistoryAdmin):
    list_display = ["name", "name_ru"]
    search_fields = ["name", "name_ru"]


class ImportIssueInline(admin.TabularInline):
    model = ImportIssue
    extra = 0
    can_delete = False
    fields = ["row", "kind", "column", "value", "reason"]
    readonly_fields = fields
    max_num = 0


@admin.register(ImportJob)
class ImportJobAdmin(SubmitterPrivacyMixin, admin.ModelAdmin):
    list_display = ["id", "original_name", "format", "status", "publish", "message", "created_at"]
    list_filter = ["status", "format", "publish"]
    readonly_fields = [
        "format", "file", "original_name", "publish", "status", "message", "rows_total",
        "rows_done", "rows_created", "rows_updated", "rows_unchanged", "rows_skipped",
        "rows_failed", "created_by", "created_at", "started_at", "finished_at",
    ]  # fmt: skip
    inlines = [ImportIssueInline]

    def has_add_permission(self, request):
        return False  # uploads go through /review/imports/, which queues the worker


@admin.register(ExportJob)
class ExportJobAdmin(SubmitterPrivacyMixin, admin.ModelAdmin):
    list_display = ["id", "layout", "query", "status", "rows_written", "created_at"]
    list_filter = ["status", "layout"]
    readonly_fields = ["layout", "query", "status", "message", "file", "rows_written",
                       "created_by", "created_at", "finished_at"]  # fmt: skip

    def has_add_permission(self, request):
        return False


User = get_user_model()


class PrivateUserAdmin(SubmitterPrivacyMixin, UserAdmin):
    """Django's user admin without the way back from an event to its submitter: the stock
    one lets ?submitted_events=<event id> (a reverse relation passes as a local field) show
    who reported it. Lookups through any relation to events are refused."""

    def lookup_allowed(self, lookup, value, request=None):
        if lookup.split("__", 1)[0] in ("reviewed_events", "logentry"):
            return False
        return super().lookup_allowed(lookup, value, request)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, PrivateUserAdmin)


def _guard_other_admins() -> None:
    """The same refusal for the admins of other apps (groups, tokens, axes ...), whose
    default lookup_allowed passes a reverse relation such as user__submitted_events."""
    for model_admin in admin.site._registry.values():
        if isinstance(model_admin, SubmitterPrivacyMixin):
            continue
        allowed = model_admin.lookup_allowed

        def guarded(lookup, value, request=None, _allowed=allowed):
            return not reaches_submitter(lookup) and _allowed(lookup, value, request)

        model_admin.lookup_allowed = guarded


_guard_other_admins()
