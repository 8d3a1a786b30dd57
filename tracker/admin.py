import datetime as dt
import json
import re

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.gis.admin import GISModelAdmin
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db import connections, models
from django.db.models import Max, Min, Q, QuerySet
from django.utils.dates import MONTHS
from django.utils.functional import cached_property
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from tracker import search, taxonomy
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


# -- the admin at a million events ------------------------------------------------------
#
# The stock changelist counts every row twice on every page (the page count, and the total
# "of M" beside it: show_full_result_count), runs a DISTINCT over the table for each filter
# that lists the values found (AllValuesFieldListFilter, the date hierarchy, a year list),
# searches with icontains across joins, and pages with OFFSET. Here: one count, capped or
# estimated; choices from the taxonomy, the gazetteer and the ends of the date index; the
# search of the public list (tracker.search: the indexed search document and the city
# names); and a deep page that finds its first row in an index.


def _estimated_rows(model) -> int:
    """The planner's row count of the model's table (pg_class.reltuples, kept by ANALYZE and
    autovacuum); -1 when the table was never analyzed."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [model._meta.db_table],
        )
        row = cursor.fetchone()
    return int(row[0]) if row else -1


def _planned_rows(queryset: QuerySet) -> int:
    """The planner's estimate of the rows the queryset returns (EXPLAIN, nothing run)."""
    sql, params = queryset.order_by().query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class ScalePaginator(Paginator):
    """The changelist's paginator at a million rows.

    - The count: exact for a table of fewer than ESTIMATE_FROM rows (pg_class.reltuples).
      Above, the unfiltered list takes reltuples for its count, and a filter or a search
      is counted up to EXACT_UP_TO (a count of at most that many rows, LIMIT in a
      subquery), the planner's estimate above that. `estimated` says when; past an
      estimate every page number is read, an empty page shown empty.
    - A deep page (from DEEP_FROM rows on) does not OFFSET over whole rows, when the list
      is ordered by plain non-null columns. If an index alone gives the first column in
      order (the date, or the date of a status or a country: EXPLAIN says), its value at
      the page's first row is read by itself, the rows before that value counted the same
      way, and the page read from that value on with the small offset left. Otherwise the
      whole ordering key of the page's first row is read (its columns only), and the page
      from that key on (keyset). The rows are the ones OFFSET would give.
    """

    EXACT_UP_TO = 500
    ESTIMATE_FROM = 100_000
    DEEP_FROM = 2_000

    estimated = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        rows = _estimated_rows(queryset.model)
        if rows < self.ESTIMATE_FROM:
            return queryset.count()  # a small table: any count of it is cheap
        if not queryset.query.where and not queryset.query.distinct:
            self.estimated = True
            return rows
        capped = queryset.order_by()[: self.EXACT_UP_TO + 1].count()
        if capped <= self.EXACT_UP_TO:
            return capped
        self.estimated = True
        return max(capped, _planned_rows(queryset))

    def validate_number(self, number):
        if not self.estimated:
            return super().validate_number(number)
        # Past an estimate there may be rows still: any page is read (an empty one is
        # shown empty, not refused).
        try:
            number = int(number)
        except (TypeError, ValueError):
            return super().validate_number(number)  # PageNotAnInteger, as always
        return max(number, 1)

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if not self.estimated and top + self.orphans >= self.count:
            top = self.count
        return self._get_page(self._rows(bottom, top), number, self)

    def _rows(self, bottom: int, top: int):
        queryset = self.object_list
        keys = self._ordering_columns(queryset) if bottom >= self.DEEP_FROM else None
        if not keys:
            return queryset[bottom:top]
        name, descending = keys[0]
        lead = queryset.order_by(f"-{name}" if descending else name).values_list(name, flat=True)
        if _index_only(lead[bottom : bottom + 1]):
            # The first column's value at the page's first row, and the rows before it,
            # both from an index alone; then the few rows of that value before the page.
            first = list(lead[bottom : bottom + 1])
            if not first:
                return queryset.none()
            before = (
                queryset.filter(**{f"{name}__{'gt' if descending else 'lt'}": first[0]})
                .order_by()
                .count()
            )
            rest = queryset.filter(**{f"{name}__{'lte' if descending else 'gte'}": first[0]})
            return rest[bottom - before : top - before]
        # Otherwise the whole ordering key of the page's first row (its columns only, not
        # the whole rows OFFSET would read), and the page from that key on.
        found = list(queryset.values_list(*(key for key, _ in keys))[bottom : bottom + 1])
        if not found:
            return queryset.none()
        key = found[0]
        after = Q(**dict(zip((k for k, _ in keys), key, strict=True)))  # the key's row
        for i, (column, desc) in enumerate(keys):
            equal = {keys[j][0]: key[j] for j in range(i)}
            after |= Q(**equal, **{f"{column}__{'lt' if desc else 'gt'}": key[i]})
        bound = {f"{name}__{'lte' if descending else 'gte'}": key[0]}  # for the index
        return queryset.filter(after, **bound)[: top - bottom]

    @staticmethod
    def _ordering_columns(queryset) -> list[tuple[str, bool]] | None:
        """[(column, descending)] of the ordering, when every term is a plain non-null
        column of the model's own table (the changelist ends it with the primary key)."""
        if not isinstance(queryset, QuerySet) or queryset.query.distinct:
            return None
        ordering = queryset.query.order_by
        if not ordering:
            return None
        opts = queryset.model._meta
        columns = []
        for term in ordering:
            if not isinstance(term, str):
                return None
            name = term.removeprefix("-")
            if "__" in name or name == "?":
                return None
            try:
                field = opts.pk if name == "pk" else opts.get_field(name)
            except FieldDoesNotExist:
                return None
            if not getattr(field, "concrete", False) or field.is_relation or field.null:
                return None
            columns.append((field.attname, term.startswith("-")))
        return columns


def _index_only(queryset: QuerySet) -> bool:
    """Whether PostgreSQL plans to read the queryset from an index alone (EXPLAIN)."""
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    kinds, nodes = set(), [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        kinds.add(node["Node Type"])
        nodes.extend(node.get("Plans", ()))
    heap = {"Seq Scan", "Index Scan", "Bitmap Heap Scan", "Tid Scan", "Tid Range Scan"}
    return "Index Only Scan" in kinds and not kinds & heap


class ScaleChangeList(ChangeList):
    """A column left out of sortable_by is not sorted by, even when ?o= names it by hand
    (the stock changelist only leaves out its header's link)."""

    def get_ordering_field(self, field_name):
        if self.sortable_by is not None and field_name not in self.sortable_by:
            return None
        return super().get_ordering_field(field_name)


class ScaleAdminMixin:
    """One estimated or capped count per page (no second, full count), no facet counts, a
    subtitle saying when the count is an estimate, and sorting by sortable_by only."""

    paginator = ScalePaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    def get_changelist(self, request, **kwargs):
        return ScaleChangeList

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        changelist = context.get("cl") if context else None
        if changelist is not None and getattr(changelist.paginator, "estimated", False):
            context["subtitle"] = gettext(
                "More than %(count)s match: their number is an estimate."
            ) % {"count": f"{ScalePaginator.EXACT_UP_TO:,}"}
        return response


class YearFilter(admin.SimpleListFilter):
    """The years from the first event's to the last one's: the two ends of the date index,
    not a DISTINCT over every event."""

    title = _("year")
    parameter_name = "year"

    def lookups(self, request, model_admin):
        ends = Event.objects.aggregate(first=Min("date"), last=Max("date"))
        if ends["first"] is None:
            return []
        return [(str(y), str(y)) for y in range(ends["last"].year, ends["first"].year - 1, -1)]

    def queryset(self, request, queryset):
        # Not str.isdigit(): it is true for "²", which int() refuses (a 500).
        if self.value() and self.value().isascii() and self.value().isdigit():
            return queryset.filter(date__year=int(self.value()))
        return queryset


def _chosen_year(request) -> int | None:
    year = request.GET.get(YearFilter.parameter_name, "")
    return int(year) if year.isascii() and year.isdigit() and 1 <= int(year) <= 9998 else None


class MonthFilter(admin.SimpleListFilter):
    """A month of the year chosen (offered once a year is), as a range of the date index:
    in place of the date hierarchy, whose links come from DISTINCT scans of the events."""

    title = _("month")
    parameter_name = "month"

    def lookups(self, request, model_admin):
        if _chosen_year(request) is None:
            return []
        return [(str(number), MONTHS[number]) for number in range(1, 13)]

    def queryset(self, request, queryset):
        value = self.value()
        if not (value and value.isascii() and value.isdigit() and 1 <= int(value) <= 12):
            return queryset
        month, year = int(value), _chosen_year(request)
        if year is None:  # typed by hand: every June, say (no index reads that)
            return queryset.filter(date__month=month)
        start = dt.date(year, month, 1)
        end = dt.date(year + month // 12, month % 12 + 1, 1)
        return queryset.filter(date__gte=start, date__lt=end)


class CountryFilter(admin.SimpleListFilter):
    """The countries of the gazetteer (a few hundred cities), not a DISTINCT over events;
    a country chosen by its code in the address is listed too."""

    title = _("country")
    parameter_name = "country"

    def lookups(self, request, model_admin):
        codes = set(City.objects.order_by("country").values_list("country", flat=True).distinct())
        value = self.value()
        if value and re.fullmatch(r"[A-Z]{2}", value):
            codes.add(value)
        return [(code, code) for code in sorted(codes)]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            return queryset.none()  # no country has that code
        return queryset.filter(country=value.upper())


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


# "acled:12345": an event's id in another dataset, found by its unique (scheme, value) index.
EXTERNAL_ID = re.compile(r"(?P<scheme>[A-Za-z0-9_-]{1,20}):(?P<value>[^\s\x00]{1,100})")


@admin.register(Event)
class EventAdmin(ScaleAdminMixin, SubmitterPrivacyMixin, SimpleHistoryAdmin, GISModelAdmin):
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
        MonthFilter,
        CountryFilter,
        GrievanceFilter,
        PoliceResponseFilter,
        "geo_precision",
        "is_generated",
    ]
    # What the search reads (get_search_results): the event's search document (its title,
    # description, place and region, its sources' titles and publishers, its organizers),
    # its city by any name, and an external id typed as scheme:value.
    search_fields = ["search"]
    search_help_text = _(
        "Words of the title, description, place, sources or organizers (by their start), a "
        "city by any of its names, or an external id such as acled:12345."
    )
    # Sorting by a column without an index would sort every event: these have one.
    sortable_by = ["date", "status", "country", "updated_at"]
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

    def get_search_results(self, request, queryset, search_term):
        """The public list's search (tracker.search): every word by its start in the
        indexed search document, or a city of that name (any language, former names, a
        similar spelling); "scheme:value" an external id, by its unique index. No joins, so
        no duplicates to remove."""
        term = search_term.strip()
        if not term:
            return queryset, False
        match = EXTERNAL_ID.fullmatch(term)
        if match:
            events = ExternalId.objects.filter(
                scheme=match["scheme"].lower(), value=match["value"]
            ).values_list("event_id", flat=True)
            found = list(events[:1])
            if found:
                return queryset.filter(pk__in=events), False
        return search.search(queryset, term), False

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
class CityAdmin(ScaleAdminMixin, SubmitterPrivacyMixin, GISModelAdmin):
    gis_widget = OfflineOSMWidget
    list_display = ["name", "name_ru", "name_kk", "country", "admin1", "population"]
    list_filter = ["country"]
    search_fields = ["name", "name_ru", "name_kk", "names__name"]
    inlines = [CityNameInline]


@admin.register(Organization)
class OrganizationAdmin(ScaleAdminMixin, SubmitterPrivacyMixin, SimpleHistoryAdmin):
    list_display = ["name", "name_ru"]
    search_fields = ["name", "name_ru"]


class ImportIssueInline(admin.TabularInline):
    """The first ISSUES_SHOWN lines of a job's report, as on its page under /review/imports/:
    a file of a million rows can have a hundred thousand, and the inline would render each.
    The whole report is the job's report.csv (/api/v1/imports/<id>/report.csv)."""

    ISSUES_SHOWN = 200

    model = ImportIssue
    extra = 0
    can_delete = False
    fields = ["row", "kind", "column", "value", "reason"]
    readonly_fields = fields
    max_num = 0
    verbose_name_plural = _("import issues (the first 200 lines of the report)")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = request.resolver_match
        job = str(match.kwargs.get("object_id", "")) if match else ""
        if not (job.isascii() and job.isdigit()):
            return queryset
        first = (
            ImportIssue.objects.filter(job_id=int(job))
            .order_by("row", "id")
            .values("pk")[: self.ISSUES_SHOWN]
        )
        return queryset.filter(pk__in=first)


@admin.register(ImportJob)
class ImportJobAdmin(ScaleAdminMixin, SubmitterPrivacyMixin, admin.ModelAdmin):
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
class ExportJobAdmin(ScaleAdminMixin, SubmitterPrivacyMixin, admin.ModelAdmin):
    list_display = ["id", "layout", "query", "status", "rows_written", "created_at"]
    list_filter = ["status", "layout"]
    readonly_fields = ["layout", "query", "status", "message", "file", "rows_written",
                       "created_by", "created_at", "finished_at"]  # fmt: skip

    def has_add_permission(self, request):
        return False


User = get_user_model()


class PrivateUserAdmin(ScaleAdminMixin, SubmitterPrivacyMixin, UserAdmin):
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
