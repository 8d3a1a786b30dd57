from django import forms
from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin
from django.db.models.functions import ExtractYear
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
        if self.value() and self.value().isdigit():
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
    extra = 1
    fields = ["url", "title", "publisher", "published_on", "language"]


class ExternalIdInline(admin.TabularInline):
    model = ExternalId
    extra = 0
    fields = ["scheme", "value"]


@admin.register(Event)
class EventAdmin(SimpleHistoryAdmin, GISModelAdmin):
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
        (None, {"fields": ["title", "description", "status", "is_generated"]}),
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
        super().save_model(request, obj, form, change)


class CityNameInline(admin.TabularInline):
    model = CityName
    extra = 0
    fields = ["name", "kind"]


@admin.register(City)
class CityAdmin(GISModelAdmin):
    gis_widget = OfflineOSMWidget
    list_display = ["name", "name_ru", "name_kk", "country", "admin1", "population"]
    list_filter = ["country"]
    search_fields = ["name", "name_ru", "name_kk", "names__name"]
    inlines = [CityNameInline]


@admin.register(Organization)
class OrganizationAdmin(SimpleHistoryAdmin):
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
class ImportJobAdmin(admin.ModelAdmin):
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
class ExportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "layout", "query", "status", "rows_written", "created_at"]
    list_filter = ["status", "layout"]
    readonly_fields = ["layout", "query", "status", "message", "file", "rows_written",
                       "created_by", "created_at", "finished_at"]  # fmt: skip

    def has_add_permission(self, request):
        return False
