from __future__ import annotations

import unicodedata

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, URLValidator
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Lower, Upper
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from tracker import taxonomy
from tracker.history import history_user

# Source links are shown as links: only the web's schemes (no javascript:, data:, ftp:).
WEB_URL_SCHEMES = ("http", "https")
web_url_validator = URLValidator(
    schemes=list(WEB_URL_SCHEMES),
    message=_("Give a link that starts with http:// or https://."),
    # Not "invalid": a form field would put its own "Enter a valid URL." in its place.
    code="web_url",
)


def is_web_url(url: str) -> bool:
    try:
        web_url_validator(url)
    except ValidationError:
        return False
    return True


def normalize_name(name: str) -> str:
    """A place or organisation name reduced to a comparison key.

    Case, accents, punctuation and spaces are dropped, so "Nur-Sultan", "nur sultan" and
    "Nursultan" meet, as do "Алма-Ата" and "алмаата"; Kazakh letters (қ, ұ, ө ...) are
    letters of their own and are kept.
    """
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


class City(models.Model):
    """One place of the gazetteer. Names in other languages and former names are CityNames."""

    name = models.CharField(_("name"), max_length=120)
    name_ru = models.CharField(_("Russian name"), max_length=120, blank=True)
    name_kk = models.CharField(_("Kazakh name"), max_length=120, blank=True)
    country = models.CharField(_("country"), max_length=2, help_text="ISO 3166-1 alpha-2")
    admin1 = models.CharField(_("region"), max_length=120, blank=True)
    location = models.PointField(_("location"), srid=4326)
    population = models.PositiveIntegerField(default=0)
    geonames_id = models.PositiveIntegerField(null=True, blank=True, unique=True)

    class Meta:
        verbose_name = _("city")
        verbose_name_plural = _("cities")
        ordering = ["country", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(country__regex=r"^[A-Z]{2}$"), name="city_country_iso2"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.country})"

    def label(self, language: str | None = None) -> str:
        from django.utils.translation import get_language

        code = (language or get_language() or "en")[:2]
        return self.label_of(self.name, self.name_ru, self.name_kk, code)

    @staticmethod
    def label_of(name: str, name_ru: str, name_kk: str, code: str) -> str:
        """The name shown in language `code` (Kazakh falls back to Russian, then English)."""
        if code == "kk":
            return name_kk or name_ru or name
        if code == "ru":
            return name_ru or name
        return name


class CityName(models.Model):
    """Every spelling a city is known by: the lookup table of the gazetteer."""

    class Kind(models.TextChoices):
        NAME = "name", _("English name")
        RU = "ru", _("Russian name")
        KK = "kk", _("Kazakh name")
        FORMER = "former", _("former name")
        VARIANT = "variant", _("variant spelling")

    city = models.ForeignKey(City, on_delete=models.CASCADE, related_name="names")
    name = models.CharField(max_length=120)
    normalized = models.CharField(max_length=120, db_index=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.VARIANT)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["city", "normalized"], name="cityname_unique_per_city")
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.normalized = normalize_name(self.name)
        super().save(*args, **kwargs)


class Organization(models.Model):
    name = models.CharField(_("name"), max_length=200)
    name_ru = models.CharField(_("Russian name"), max_length=200, blank=True)
    description = models.TextField(blank=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="organization_name_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.name


def _not_in_future(value):
    if value and value > timezone.localdate():
        raise ValidationError(
            _("%(date)s is in the future: events are recorded once they have happened."),
            params={"date": value.isoformat()},
            code="future_date",
        )


@deconstructible
class SlugsValidator:
    """Every value must be a slug of the named vocabulary (see tracker.taxonomy)."""

    def __init__(self, vocabulary: str):
        self.vocabulary = vocabulary

    def __call__(self, values):
        known = getattr(taxonomy, self.vocabulary)
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValidationError(
                _("Unknown value: %(unknown)s. Choose from: %(known)s."),
                params={"unknown": ", ".join(unknown), "known": ", ".join(known)},
                code="unknown_slug",
            )

    def __eq__(self, other):
        return isinstance(other, SlugsValidator) and other.vocabulary == self.vocabulary


validate_grievances = SlugsValidator("GRIEVANCE_SLUGS")
validate_police_responses = SlugsValidator("POLICE_RESPONSE_SLUGS")
non_negative = MinValueValidator(0, message=_("A count cannot be negative."))


class EventQuerySet(models.QuerySet):
    def published(self):
        return self.filter(status=EventStatus.PUBLISHED)


class EventStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    PENDING = "pending", _("pending review")
    PUBLISHED = "published", _("published")
    REJECTED = "rejected", _("rejected")
    ARCHIVED = "archived", _("archived")


class DatePrecision(models.TextChoices):
    DAY = "day", _("exact day")
    WEEK = "week", _("week only")  # within the week of the date (ACLED time_precision 2)
    MONTH = "month", _("month only")
    YEAR = "year", _("year only")


class GeoPrecision(models.IntegerChoices):
    EXACT = 1, _("exact place")
    CITY = 2, _("city")
    REGION = 3, _("region or country")


# What a count of events reads from each row (tracker.selectors._raw_count_rows): the
# covering indexes of Event.Meta hold them.
COUNT_COLUMNS = [
    "country",
    "admin1",
    "city",
    "grievances",
    "police_responses",
    "arrests",
    "injuries",
    "deaths",
    "participants_low",
    "participants_high",
]


class Event(models.Model):
    Status = EventStatus
    DatePrecision = DatePrecision
    GeoPrecision = GeoPrecision

    title = models.CharField(_("title"), max_length=300)
    description = models.TextField(_("description"), blank=True)
    date = models.DateField(_("date"), validators=[_not_in_future], help_text=_("First day."))
    end_date = models.DateField(_("end date"), null=True, blank=True, validators=[_not_in_future])
    date_precision = models.CharField(
        _("date precision"), max_length=5, choices=DatePrecision.choices, default=DatePrecision.DAY
    )
    country = models.CharField(_("country"), max_length=2, help_text="ISO 3166-1 alpha-2")
    admin1 = models.CharField(_("region"), max_length=120, blank=True)
    city = models.ForeignKey(
        City, verbose_name=_("city"), null=True, blank=True, on_delete=models.PROTECT
    )
    location_detail = models.CharField(
        _("place"), max_length=200, blank=True, help_text=_('For example "Republic Square".')
    )
    location = models.PointField(_("location"), srid=4326, null=True, blank=True)
    geo_precision = models.PositiveSmallIntegerField(
        _("location precision"), choices=GeoPrecision.choices, null=True, blank=True
    )
    grievances = ArrayField(
        models.CharField(max_length=20),
        verbose_name=_("grievances"),
        default=list,
        validators=[validate_grievances],
    )
    police_responses = ArrayField(
        models.CharField(max_length=20),
        verbose_name=_("police responses"),
        default=list,
        blank=True,
        validators=[validate_police_responses],
        help_text=_("Empty when not reported; 'none' when reported that police did nothing."),
    )
    arrests = models.IntegerField(
        _("arrests"),
        null=True,
        blank=True,
        validators=[non_negative],
        help_text=_("People detained or arrested. Empty = not reported, 0 = reported none."),
    )
    injuries = models.IntegerField(_("injuries"), null=True, blank=True, validators=[non_negative])
    deaths = models.IntegerField(_("deaths"), null=True, blank=True, validators=[non_negative])
    participants_low = models.IntegerField(
        _("participants (low)"), null=True, blank=True, validators=[non_negative]
    )
    participants_high = models.IntegerField(
        _("participants (high)"), null=True, blank=True, validators=[non_negative]
    )
    organizers = models.ManyToManyField(
        Organization, verbose_name=_("organizers"), blank=True, related_name="events"
    )
    status = models.CharField(
        _("status"), max_length=10, choices=EventStatus.choices, default=EventStatus.PENDING
    )
    is_generated = models.BooleanField(
        _("generated"),
        default=False,
        help_text=_("Synthetic demo record, not a real event."),
    )
    auto_coded = ArrayField(
        models.CharField(max_length=30),
        verbose_name=_("auto-coded fields"),
        default=list,
        blank=True,
        help_text=_(
            "Fields an importer filled from the notes by keyword rules; a moderator should "
            "check them and remove the field name once confirmed."
        ),
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="submitted_events",
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviewed_events",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(_("review note"), blank=True)
    # Raised by one on every write (services, admin, imports). Writers compare it with the
    # version they read (ETag / If-Match, the forms' hidden field) so that a stale write is
    # refused instead of silently undoing somebody else's change.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The submitter never appears in the history table: it would expose who reported.
    history = HistoricalRecords(
        excluded_fields=["submitted_by"], m2m_fields=[organizers], get_user=history_user
    )

    objects = EventQuerySet.as_manager()

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-date", "-id"]
        indexes = [
            models.Index(fields=["date"], name="event_date_idx"),
            models.Index(fields=["status", "date"], name="event_status_date_idx"),
            models.Index(fields=["country", "date"], name="event_country_date_idx"),
            models.Index(fields=["updated_at"], name="event_updated_idx"),
            # The admin's location-precision filter, newest first: 1 s -> 0.1 ms at a million
            # events when few or none match (benchmark_admin); 7 MB.
            models.Index(fields=["geo_precision", "date"], name="event_geo_precision_date_idx"),
            GinIndex(fields=["grievances"], name="event_grievances_gin"),
            GinIndex(fields=["police_responses"], name="event_police_gin"),
            # The API's ordering=-arrests pages on this expression (NULL sorts as -1):
            # 252 ms -> 16 ms a page at a million events (benchmark_api).
            models.Index(
                Coalesce("arrests", Value(-1)).desc(),
                F("id").desc(),
                condition=Q(status="published"),
                name="event_pub_arrests_sort_idx",
            ),
            # Counts that the rollup tables leave to the events (a range's partial months,
            # a city or a region with several categories) read only these: index-only
            # scans of the published events in date order, of a country, of a city or of a
            # region (upper(): the admin1 filter is case-blind), with every column a count
            # needs.
            # benchmark_api, 1M events: a day-precise range 91 -> 28 ms, a region with
            # two grievances by police response 421 -> 25 ms, the dashboard of a country
            # with two grievances (with the year cells of 0011) 2.4 s -> 0.4 s.
            models.Index(
                fields=["date"],
                include=COUNT_COLUMNS,
                condition=Q(status="published"),
                name="event_pub_date_counts_idx",
            ),
            models.Index(
                fields=["country", "date"],
                include=[column for column in COUNT_COLUMNS if column != "country"],
                condition=Q(status="published"),
                name="event_pub_country_counts_idx",
            ),
            models.Index(
                fields=["city", "date"],
                include=[column for column in COUNT_COLUMNS if column != "city"],
                condition=Q(status="published"),
                name="event_pub_city_counts_idx",
            ),
            models.Index(
                Upper("admin1"),
                "date",
                include=COUNT_COLUMNS,
                condition=Q(status="published"),
                name="event_pub_admin1_counts_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("date")),
                name="event_end_not_before_start",
                violation_error_message=_("The end date cannot be before the start date."),
            ),
            models.CheckConstraint(
                condition=Q(arrests__isnull=True) | Q(arrests__gte=0),
                name="event_arrests_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(injuries__isnull=True) | Q(injuries__gte=0),
                name="event_injuries_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(deaths__isnull=True) | Q(deaths__gte=0),
                name="event_deaths_non_negative",
            ),
            models.CheckConstraint(
                condition=(Q(participants_low__isnull=True) | Q(participants_low__gte=0))
                & (Q(participants_high__isnull=True) | Q(participants_high__gte=0)),
                name="event_participants_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(participants_low__isnull=True)
                | Q(participants_high__isnull=True)
                | Q(participants_low__lte=F("participants_high")),
                name="event_participants_low_le_high",
                violation_error_message=_(
                    "The low estimate of participants cannot exceed the high estimate."
                ),
            ),
            models.CheckConstraint(
                condition=Q(grievances__contained_by=list(taxonomy.GRIEVANCE_SLUGS))
                & ~Q(grievances=[]),
                name="event_grievances_known_nonempty",
                violation_error_message=_("Give at least one grievance from the vocabulary."),
            ),
            models.CheckConstraint(
                condition=Q(police_responses__contained_by=list(taxonomy.POLICE_RESPONSE_SLUGS)),
                name="event_police_responses_known",
            ),
            models.CheckConstraint(
                condition=Q(status__in=EventStatus.values), name="event_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(date_precision__in=DatePrecision.values),
                name="event_date_precision_valid",
            ),
            models.CheckConstraint(
                condition=Q(geo_precision__isnull=True) | Q(geo_precision__in=[1, 2, 3]),
                name="event_geo_precision_valid",
            ),
            models.CheckConstraint(
                condition=Q(country__regex=r"^[A-Z]{2}$"), name="event_country_iso2"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.title}"

    def clean(self):
        errors: dict[str, list] = {}
        if self.location is not None:
            lon, lat = self.location.x, self.location.y
            if not (-180 <= lon <= 180) or not (-90 <= lat <= 90):
                errors.setdefault("location", []).append(
                    ValidationError(
                        _(
                            "Coordinates out of range: longitude must be between -180 and 180 "
                            "and latitude between -90 and 90 (got %(lon)s, %(lat)s)."
                        ),
                        params={"lon": lon, "lat": lat},
                        code="out_of_range",
                    )
                )
            if self.geo_precision is None:
                self.geo_precision = self.GeoPrecision.EXACT
        if self.end_date and self.date and self.end_date < self.date:
            errors.setdefault("end_date", []).append(
                ValidationError(
                    _("The end date cannot be before the start date."), code="end_before_start"
                )
            )
        low, high = self.participants_low, self.participants_high
        if low is not None and high is not None and low > high:
            errors.setdefault("participants_low", []).append(
                ValidationError(
                    _("The low estimate of participants cannot exceed the high estimate."),
                    code="low_above_high",
                )
            )
        if self.country:
            self.country = self.country.upper()
        if self.city_id and not self.country:
            self.country = self.city.country
        if self.city_id and self.country and self.city.country != self.country:
            errors.setdefault("city", []).append(
                ValidationError(
                    _("%(city)s is not in %(country)s."),
                    params={"city": self.city.name, "country": self.country},
                    code="city_country_mismatch",
                )
            )
        # Order and de-duplicate the multi-valued fields so that equal sets compare equal.
        for field, vocabulary in (
            ("grievances", taxonomy.GRIEVANCE_SLUGS),
            ("police_responses", taxonomy.POLICE_RESPONSE_SLUGS),
        ):
            values = set(getattr(self, field) or [])
            if values <= set(vocabulary):
                setattr(self, field, [slug for slug in vocabulary if slug in values])
        if errors:
            raise ValidationError(errors)


class Source(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="sources")
    url = models.URLField(_("URL"), max_length=1000, blank=True)
    publisher = models.CharField(_("publisher"), max_length=200, blank=True)
    title = models.CharField(_("title"), max_length=500, blank=True)
    published_on = models.DateField(_("published on"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=10, blank=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = _("source")
        verbose_name_plural = _("sources")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "url"],
                condition=~Q(url=""),
                name="source_unique_url_per_event",
            ),
            # A printed article or a report without a link is a source too, if named.
            models.CheckConstraint(
                condition=~Q(url="") | ~Q(title=""),
                name="source_has_url_or_title",
                violation_error_message=_("A source needs a URL or a title."),
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.url

    def clean(self):
        # In clean(), not in the field's validators: those are part of the migration state,
        # and this keeps the check without a schema migration. Every writer calls full_clean
        # (services, the admin); the importers, which write with COPY, check is_web_url.
        super().clean()
        if self.url and not is_web_url(self.url):
            raise ValidationError({"url": web_url_validator.message})


class ExternalId(models.Model):
    """An event's id in another dataset, e.g. scheme "acled", value "KAZ1234"."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="external_ids")
    scheme = models.CharField(max_length=20)
    value = models.CharField(max_length=100)
    # What the other dataset says about its record, so a re-import can tell "unchanged" from
    # "updated": ACLED's `timestamp`, and a hash of the row as it was mapped.
    version = models.CharField(max_length=40, blank=True)
    # The event's fields as the file gave them last, so that a re-import tells a
    # moderator's correction (the event differs from it) from a stale value.
    imported = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)

    # The snapshot is the file's, already in the event's own history.
    history = HistoricalRecords(excluded_fields=["imported"], get_user=history_user)

    class Meta:
        verbose_name = _("external id")
        verbose_name_plural = _("external ids")
        ordering = ["scheme", "value"]
        constraints = [
            models.UniqueConstraint(fields=["scheme", "value"], name="external_id_unique"),
            models.CheckConstraint(
                condition=Q(scheme__regex=r"^[a-z0-9_-]+$"), name="external_id_scheme_slug"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scheme}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> tuple[str, str]:
        scheme, sep, value = text.partition(":")
        if not sep or not scheme or not value:
            raise ValidationError(
                _('An external id looks like "acled:KAZ1234" (got "%(text)s").'),
                params={"text": text},
            )
        return scheme.strip().lower(), value.strip()


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    CANCELLED = "cancelled", _("cancelled")


FINISHED_JOB_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class ImportFormat(models.TextChoices):
    ACLED = "acled", "ACLED"
    CCC = "ccc", _("Crowd Counting Consortium")
    MM = "mm", _("Mass Mobilization")
    NATIVE = "native", _("this tracker's CSV or GeoJSON")


class ImportJob(models.Model):
    """One uploaded file and what importing it did. The counts add up to `rows_total`."""

    Status = JobStatus
    Format = ImportFormat

    format = models.CharField(_("format"), max_length=10, choices=ImportFormat.choices)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255, blank=True)
    publish = models.BooleanField(
        _("publish"),
        default=False,
        help_text=_("Trusted source: imported events arrive published instead of pending."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED
    )
    message = models.TextField(_("message"), blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    rows_skipped = models.PositiveIntegerField(default=0)
    rows_failed = models.PositiveIntegerField(default=0)
    # Of the rows imported (created or updated): where the gazetteer placed them.
    rows_placed_by_name = models.PositiveIntegerField(default=0)
    rows_placed_by_point = models.PositiveIntegerField(default=0)
    rows_unplaced = models.PositiveIntegerField(default=0)
    # The rows whose file value a moderator's correction outranked (listed in the report).
    rows_conflicts = models.PositiveIntegerField(default=0)
    # The uploader's language: the job's summary and row reasons are written in it.
    language = models.CharField(_("language"), max_length=10, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="import_jobs",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A running job's worker touches heartbeat_at as it goes; a sweep run by beat re-queues
    # (or fails, after MAX attempts) a job whose heartbeat has stopped: its worker is gone.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="importjob_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(format__in=ImportFormat.values), name="importjob_format_valid"
            ),
            models.CheckConstraint(
                condition=Q(rows_done__lte=F("rows_total")), name="importjob_done_le_total"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_format_display()} import {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_JOB_STATUSES


class ImportIssue(models.Model):
    """One line of a job's row-level report: a row skipped on purpose or one that failed,
    and notes on rows that were imported: one the gazetteer did not place, and a field whose
    moderator's correction was kept over the file's new value."""

    class Kind(models.TextChoices):
        SKIPPED = "skipped", _("skipped")
        FAILED = "failed", _("failed")
        UNPLACED = "unplaced", _("imported without a city")
        CONFLICT = "conflict", _("correction kept")

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="issues")
    row = models.PositiveIntegerField(help_text=_("Line in the file; the header is line 1."))
    kind = models.CharField(max_length=10, choices=Kind.choices)
    column = models.CharField(max_length=100, blank=True)
    value = models.TextField(blank=True)
    reason = models.TextField()
    # For a conflict: the event, the value imported before and the moderator's value (the
    # file's new value is `value`).
    event = models.ForeignKey(
        "Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_value = models.TextField(blank=True)
    kept_value = models.TextField(blank=True)

    class Meta:
        ordering = ["job", "row", "id"]
        indexes = [models.Index(fields=["job", "row"], name="importissue_job_row_idx")]

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


class ExportLayout(models.TextChoices):
    ACLED = "acled", _("ACLED-like")
    CCC = "ccc", _("Crowd Counting Consortium-like")


class ExportJob(models.Model):
    """An export too large to stream in one request, written to a file by a worker."""

    Status = JobStatus
    Layout = ExportLayout

    layout = models.CharField(_("layout"), max_length=10, choices=ExportLayout.choices)
    query = models.TextField(_("filters"), blank=True, help_text=_("The API query string."))
    status = models.CharField(
        _("status"), max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED
    )
    message = models.TextField(_("message"), blank=True)
    file = models.FileField(_("file"), upload_to="exports/%Y/%m/", blank=True)
    rows_written = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="export_jobs",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        verbose_name = _("export job")
        verbose_name_plural = _("export jobs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=JobStatus.values), name="exportjob_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(layout__in=ExportLayout.values), name="exportjob_layout_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_layout_display()} export {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_JOB_STATUSES


class RemovalKind(models.TextChoices):
    WITHDRAWN = "withdrawn", _("withdrawn")  # back to pending or draft
    REJECTED = "rejected", _("rejected")
    ARCHIVED = "archived", _("archived")
    DELETED = "deleted", _("deleted")
    # Not written yet: merging events does not exist. Its rows will carry merged_into.
    MERGED = "merged", _("merged")


class EventRemoval(models.Model):
    """An event that left the public record: a published event whose status changed to
    anything else, or that was deleted. The feed /api/v1/events/removed/ reads these rows,
    so that a script syncing with `updated_since` learns of withdrawals and deletions.

    Rows are written by PostgreSQL triggers on tracker_event (migration 0020), whoever
    writes: the services, the admin, a queryset .update(), an import, psql. Nothing here
    names a person; `event_id` is not a foreign key, since the event may be gone.
    """

    Kind = RemovalKind

    event_id = models.BigIntegerField(_("event id"))
    kind = models.CharField(_("kind"), max_length=10, choices=RemovalKind.choices)
    # The removing transaction's time, PostgreSQL's now() (Django's Now() would be the
    # statement's): every removal of one transaction has its time, and it commits later.
    removed_at = models.DateTimeField(
        _("removed at"),
        db_default=models.Func(template="now()", output_field=models.DateTimeField()),
    )
    # Always null for now: set for kind "merged" once merging exists.
    merged_into = models.BigIntegerField(_("merged into"), null=True, blank=True)

    class Meta:
        verbose_name = _("event removal")
        verbose_name_plural = _("event removals")
        ordering = ["removed_at", "id"]
        indexes = [models.Index(fields=["removed_at", "id"], name="eventremoval_time_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=RemovalKind.values), name="eventremoval_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} {self.kind} at {self.removed_at:%Y-%m-%d %H:%M:%S}"
