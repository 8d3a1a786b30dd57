"""Bulk import of events from files, as a tracked job.

`import_job_create` stores the upload and queues the Celery task; `import_job_run` does the
work. A run first reads the whole file once to reject a broken file (encoding, not CSV,
missing columns) before anything is written, then imports inside one transaction: rows are
written in batches with COPY, each with its edit-history row, and every row that is not
imported lands in the job's row-level report. The counts always add up to the rows read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import GEOSGeometry
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone

from imports.base import Context, FileRejected, Gazetteer, Importer, Record, RowProblem
from imports.copy import copy_insert, copy_rows, geometry_text, reserve_ids
from imports.formats import importer_for
from imports.jobs import (
    TAKEOVER_WAIT_SECONDS,
    JobCancelled,
    JobRun,
    StorageUnavailable,
    dispatch_job,
    job_begin,
    job_cancel,
    job_retry,
)
from imports.parallel import parsed_batches
from tracker.cache import events_changed
from tracker.history import history_actor, is_moderator
from tracker.models import (
    Event,
    ExternalId,
    ImportIssue,
    ImportJob,
    JobStatus,
    Organization,
    Source,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
COUNT_FIELDS = [
    "rows_total", "rows_done", "rows_created", "rows_updated", "rows_unchanged",
    "rows_skipped", "rows_failed",
]  # fmt: skip
EVENT_FIELD_NAMES = [f.name for f in Event._meta.concrete_fields]
ProgressCallback = Callable[[int, int], None]


def _progress_key(job_id: int) -> str:
    return f"import-job:{job_id}:progress"


def import_job_progress(*, job: ImportJob) -> tuple[int, int]:
    """(rows done, rows total): live from the cache while the job runs, else from the row."""
    if job.status == JobStatus.RUNNING:
        done = cache.get(_progress_key(job.pk))
        if done is not None:
            return min(done, job.rows_total), job.rows_total
    return job.rows_done, job.rows_total


@transaction.atomic
def import_job_create(
    *, file: File, format: str, publish: bool, user, dispatch: bool = True
) -> ImportJob:
    """Store an uploaded file as a queued job; the worker picks it up once this commits.

    The file is stored under a random name (the uploader's name is kept in the job only, and
    never shown publicly). A media folder that is full or not writable raises
    StorageUnavailable, with nothing left behind: no partial file and no job row."""
    if not is_moderator(user):
        raise PermissionDenied("Only moderators can import events.")
    importer_for(format)
    name = Path(getattr(file, "name", "") or "upload").name
    job = ImportJob(format=format, publish=publish, created_by=user, original_name=name[:255])
    stored = f"{uuid.uuid4().hex}{Path(name).suffix.lower()[:10]}"
    target = job.file.field.generate_filename(job, stored)
    try:
        job.file.save(stored, file, save=False)
    except OSError as exc:
        _discard(job.file.storage, target)
        logger.error("Import upload not stored (%s): %s", target, exc)
        raise StorageUnavailable(
            "The upload could not be stored: the server's media folder is full or not "
            "writable. Nothing was saved; try again later or tell the administrator."
        ) from exc
    try:
        job.heartbeat_at = timezone.now()  # for a queued job: when it was queued
        job.full_clean()
        job.save()
    except BaseException:
        _discard(job.file.storage, job.file.name)
        raise
    if dispatch:
        dispatch_job(job)
    return job


def _discard(storage, name: str) -> None:
    try:
        if name and storage.exists(name):
            storage.delete(name)
    except OSError:
        logger.exception("Could not delete the partial file %s", name)


def import_job_cancel(*, job_id: int, user) -> ImportJob:
    return job_cancel(model=ImportJob, job_id=job_id, user=user)


def import_job_retry(*, job_id: int, user) -> ImportJob:
    return job_retry(model=ImportJob, job_id=job_id, user=user)


def import_job_run(*, job_id: int, progress: ProgressCallback | None = None) -> ImportJob:
    """Run a queued job. Idempotent: a finished job is returned untouched, a job that another
    live worker runs is left to it, and a job whose worker died half-way is run again from
    the start (its writes were rolled back with it)."""
    with JobRun(ImportJob, job_id) as run:
        if not run.acquire(wait=TAKEOVER_WAIT_SECONDS):
            return ImportJob.objects.get(pk=job_id)
        job, go = job_begin(model=ImportJob, job_id=job_id)
        if not go:
            return job
        return _import(job, run, progress)


def _import(job: ImportJob, run: JobRun, progress: ProgressCallback | None) -> ImportJob:
    importer = importer_for(job.format)
    try:
        with job.file.open("rb") as fh:
            job.rows_total = importer.check(fh)
    except FileRejected as exc:
        return _finish(job, status=JobStatus.FAILED, message=str(exc))
    except OSError as exc:
        return _finish(job, status=JobStatus.FAILED, message=f"The file cannot be read: {exc}.")
    job.save(update_fields=["rows_total"])
    cache.set(_progress_key(job.pk), 0, timeout=24 * 3600)

    try:
        with transaction.atomic():
            writer = ImportWriter(job=job)
            for batch in _parsed_batches(job, importer, Gazetteer()):
                if run.beat():
                    raise JobCancelled
                writer.write(batch)
                _report_progress(job, writer.rows_done, progress)
            writer.store_counts()
            transaction.on_commit(events_changed)
            return _finish(job, status=JobStatus.SUCCEEDED, message=writer.summary())
    except FileRejected as exc:
        return _finish(job, status=JobStatus.FAILED, message=str(exc))
    except JobCancelled:
        return _finish(
            job,
            status=JobStatus.CANCELLED,
            message="Cancelled while running; nothing was imported.",
            reset=True,
        )
    except Exception:
        logger.exception("Import job %s stopped", job.pk)
        return _finish(
            job,
            status=JobStatus.FAILED,
            message="The import stopped on an internal error; nothing was imported. "
            "The error is in the server log.",
            reset=True,
        )


def _parsed_batches(
    job: ImportJob, importer: Importer, gazetteer: Gazetteer
) -> Iterator[list[tuple[int, Record | RowProblem]]]:
    """The file's rows as records in batches; a large file on local disk is parsed by a
    second process meanwhile (see imports.parallel)."""
    try:
        path = Path(job.file.path)
    except NotImplementedError:  # a storage without local files
        path = None
    threshold = settings.IMPORT_PARALLEL_MIN_ROWS
    if path is not None and threshold and job.rows_total >= threshold:
        batches = parsed_batches(importer, path, gazetteer, batch_size=BATCH_SIZE)
        if batches is not None:
            yield from batches
            return
    batch: list[tuple[int, Record | RowProblem]] = []
    with job.file.open("rb") as fh:
        for item in importer.records(fh, Context(gazetteer=gazetteer)):
            batch.append(item)
            if len(batch) >= BATCH_SIZE:
                yield batch
                batch = []
    yield batch


def _report_progress(job: ImportJob, done: int, progress: ProgressCallback | None) -> None:
    cache.set(_progress_key(job.pk), done, timeout=24 * 3600)
    if progress:
        progress(done, job.rows_total)


def _finish(job: ImportJob, *, status: str, message: str, reset: bool = False) -> ImportJob:
    if reset:
        job.rows_done = job.rows_created = job.rows_updated = job.rows_unchanged = 0
        job.rows_skipped = job.rows_failed = 0
    job.status = status
    job.message = message
    job.finished_at = timezone.now()
    # Not the whole row: cancel_requested belongs to the moderator, who may set it meanwhile.
    job.save(update_fields=[*COUNT_FIELDS, "status", "message", "finished_at"])
    cache.delete(_progress_key(job.pk))
    return job


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | list):
        return value
    if isinstance(value, Model):
        return value.pk
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, GEOSGeometry):
        return geometry_text(value)
    return str(value)


def _fingerprint(record: Record) -> str:
    """A hash of the row as mapped: equal on a re-import of the same data."""
    payload = (
        sorted((k, _plain(v)) for k, v in record.fields.items()),
        record.sources,
        record.organizers,
        record.auto_coded,
        record.status,
    )
    return hashlib.blake2b(repr(payload).encode(), digest_size=20).hexdigest()


def _is_newer(version: str, stored: str) -> bool:
    # ASCII digits only: str.isdigit() is true for "²", which int() refuses.
    if version.isascii() and version.isdigit() and stored.isascii() and stored.isdigit():
        return int(version) > int(stored)
    return version > stored


def _history_columns(model: type[Model]) -> tuple[type[Model], list[str], list[str]]:
    historical = model.history.model
    tracked = [
        f.attname for f in historical._meta.concrete_fields if not f.name.startswith("history_")
    ]
    columns = [historical._meta.get_field(name).column for name in tracked]
    columns += ["history_id", "history_date", "history_type", "history_user_id"]
    return historical, tracked, [*columns, "history_change_reason"]


def write_history(
    objs: Sequence[Any], *, kind: str, user, reason: str, model: type[Model] | None = None
) -> None:
    """One history row per object, as simple_history would write on save, but with COPY."""
    if not objs:
        return
    historical, tracked, columns = _history_columns(model or type(objs[0]))
    ids = reserve_ids(historical, len(objs))
    when = timezone.now()
    user_id = user.pk if user is not None else None
    geometry = {
        name for name in tracked if isinstance(historical._meta.get_field(name), GeometryField)
    }
    rows = (
        [
            *(
                geometry_text(getattr(obj, name)) if name in geometry else getattr(obj, name)
                for name in tracked
            ),
            history_id,
            when,
            kind,
            user_id,
            reason,
        ]
        for obj, history_id in zip(objs, ids, strict=True)
    )
    copy_rows(historical, columns, rows)


class ImportWriter:
    """Writes batches of records for one job and keeps its counts and report."""

    def __init__(self, *, job: ImportJob):
        self.job = job
        self.actor = history_actor(job.created_by)
        # Public on the event's history page: the job and the format, never the file's name.
        self.reason = f"import job {job.pk} ({job.format})"
        self.status = Event.Status.PUBLISHED if job.publish else Event.Status.PENDING
        self.seen: dict[str, int] = {}
        self.organizations = {o.name.lower(): o for o in Organization.objects.all()}
        self.counts = dict.fromkeys(("created", "updated", "unchanged", "skipped", "failed"), 0)

    @property
    def rows_done(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        return ", ".join(f"{n} {k}" for k, n in self.counts.items())

    def store_counts(self) -> None:
        job = self.job
        job.rows_done = self.rows_done
        job.rows_total = max(job.rows_total, job.rows_done)
        job.rows_created = self.counts["created"]
        job.rows_updated = self.counts["updated"]
        job.rows_unchanged = self.counts["unchanged"]
        job.rows_skipped = self.counts["skipped"]
        job.rows_failed = self.counts["failed"]

    # --- one batch ------------------------------------------------------------------------

    def write(self, batch: Iterable[tuple[int, Record | RowProblem]]) -> None:
        issues: list[ImportIssue] = []
        records: list[tuple[int, Record]] = []
        for number, item in batch:
            if isinstance(item, RowProblem):
                issues.append(self._issue(number, item))
                continue
            first = self.seen.get(item.external_id)
            if first is not None:
                issues.append(
                    self._issue(
                        number,
                        RowProblem(
                            f"Duplicate id {item.external_id}: row {first} has the same id.",
                            column=item.columns.get("id", "id"),
                            value=item.external_id,
                        ),
                    )
                )
                continue
            self.seen[item.external_id] = number
            records.append((number, item))

        existing = self._existing_ids([r.external_id for _, r in records])
        to_create: list[tuple[int, Record, Event]] = []
        to_update: list[tuple[int, Record, ExternalId]] = []
        to_refresh: dict[int, Record] = {}
        for number, record in records:
            found = existing.get(record.external_id)
            # A dataset's own version (ACLED's timestamp) decides what changed; the hash is
            # for datasets without one.
            fingerprint = "" if record.version else _fingerprint(record)
            record.fields.setdefault("is_generated", False)
            if found is None:
                event = self._build_event(number, record, issues)
                if event is not None:
                    to_create.append((number, record, event))
                    record.fingerprint = fingerprint
                continue
            if record.version and found.version:
                changed = _is_newer(record.version, found.version)
            else:
                changed = fingerprint != found.fingerprint
            if not changed:
                if self._publishes(record) or record.fields.get("city") is not None:
                    to_refresh[found.event_id] = record  # perhaps pending, or unplaced
                else:
                    self.counts["unchanged"] += 1
                continue
            record.fingerprint = fingerprint
            to_update.append((number, record, found))

        self._create(to_create)
        self._update(to_update, issues)
        self._refresh_unchanged(to_refresh)
        copy_insert(ImportIssue, issues)

    def _publishes(self, record: Record) -> bool:
        """Whether this job publishes the row's event if it is pending: a trusted job (the
        file's own status aside) and a row with a source, as for a new event."""
        return self.status == Event.Status.PUBLISHED and not record.status and bool(record.sources)

    def _refresh_unchanged(self, records: dict[int, Record]) -> None:
        """Rows the file has not changed whose event the job still changes, and nothing else
        of it (a moderator's corrections stay):

        - a trusted job publishes the pending events of an earlier, untrusted import of the
          file (rejected, merged and published ones stay as they are);
        - an event without a city gets the one the gazetteer now finds for the row (it was
          loaded or extended since the first import)."""
        if not records:
            return
        from imports.relink import link_city

        now = timezone.now()
        changed = []
        # Only the events that can change are read (a re-import of 100,000 unchanged rows
        # reads none when all are published and placed).
        candidates = Event.objects.select_for_update().filter(
            Q(status=Event.Status.PENDING) | Q(city__isnull=True), pk__in=list(records)
        )
        for event in candidates:
            record = records[event.pk]
            touched = False
            if event.status == Event.Status.PENDING and self._publishes(record):
                event.status = Event.Status.PUBLISHED
                event.reviewed_by = self.actor
                event.reviewed_at = now
                touched = True
            city = record.fields.get("city")
            if event.city_id is None and city is not None:
                # The place name goes where the file's row, read with the city, has none.
                link_city(event, city, by_name=not record.fields.get("location_detail"))
                touched = True
            if touched:
                event.version += 1
                event.updated_at = now
                changed.append(event)
        fields = ["status", "reviewed_by", "reviewed_at", "city", "admin1", "location_detail"]
        fields += ["location", "geo_precision", "version", "updated_at"]
        Event.objects.bulk_update(changed, fields, batch_size=500)
        self._history(changed, "~")
        self.counts["updated"] += len(changed)
        self.counts["unchanged"] += len(records) - len(changed)

    def _issue(self, number: int, problem: RowProblem) -> ImportIssue:
        kind = ImportIssue.Kind.SKIPPED if problem.skipped else ImportIssue.Kind.FAILED
        self.counts["skipped" if problem.skipped else "failed"] += 1
        return ImportIssue(
            job=self.job,
            row=number,
            kind=kind,
            column=problem.column[:100],
            value=problem.value,
            reason=problem.reason,
        )

    def _existing_ids(self, external_ids: list[str]) -> dict[str, ExternalId]:
        by_scheme: dict[str, list[str]] = {}
        for text in external_ids:
            scheme, value = ExternalId.parse(text)
            by_scheme.setdefault(scheme, []).append(value)
        found: dict[str, ExternalId] = {}
        for scheme, values in by_scheme.items():
            for ext in ExternalId.objects.filter(scheme=scheme, value__in=values):
                found[f"{ext.scheme}:{ext.value}"] = ext
        return found

    def _apply(self, event: Event, record: Record) -> None:
        for name, value in record.fields.items():
            setattr(event, name, value)
        event.auto_coded = list(record.auto_coded)
        city = record.fields.get("city")
        if city is not None:
            event.country = event.country or city.country
            event.admin1 = event.admin1 or city.admin1
            if event.location is None:
                event.location = city.location
                event.geo_precision = Event.GeoPrecision.CITY

    def _validate(self, number: int, record: Record, event: Event, issues: list) -> bool:
        try:
            # Only the fields the file gave are checked (the rest are ours). Cities come from
            # the gazetteer in memory, so checking the foreign key would cost a query per row;
            # the point's range is checked by Event.clean(). At 100,000 rows this halves the
            # time of validation.
            event.full_clean(
                exclude=[name for name in EVENT_FIELD_NAMES if name not in record.fields]
                + ["city", "location"],
                validate_unique=False,
                validate_constraints=False,
            )
        except ValidationError as exc:
            field, messages = next(iter(exc.message_dict.items()))
            column = record.columns.get(field, field)
            value = record.fields.get(field, "")
            issues.append(
                self._issue(
                    number, RowProblem(f"{field}: {' '.join(messages)}", column=column, value=value)
                )
            )
            return False
        return True

    def _build_event(self, number: int, record: Record, issues: list) -> Event | None:
        status = record.status or self.status
        if status == Event.Status.PUBLISHED and not record.sources:
            # An event needs a source to be published; without one a moderator decides.
            status = Event.Status.PENDING
        event = Event(status=status)
        if status == Event.Status.PUBLISHED and record.status is None:
            event.reviewed_by = self.actor
            event.reviewed_at = timezone.now()
        self._apply(event, record)
        if not self._validate(number, record, event, issues):
            return None
        return event

    def _sources_for(self, event: Event, record: Record) -> list[SimpleNamespace]:
        # Plain rows, not model instances: 200,000 Source() calls cost seconds.
        sources, urls = [], set()
        for data in record.sources:
            url = (data.get("url") or "")[:1000]
            title = (data.get("title") or "")[:500]
            if (url and url in urls) or not (url or title):
                continue
            urls.add(url)
            sources.append(
                SimpleNamespace(
                    id=None,
                    event_id=event.pk,
                    url=url,
                    title=title,
                    publisher=(data.get("publisher") or "")[:200],
                    published_on=data.get("published_on"),
                    language=(data.get("language") or "")[:10],
                )
            )
        return sources

    def _organizations(self, names: Iterable[str]) -> list[Organization]:
        new = []
        for name in names:
            key = name.lower()
            if key not in self.organizations:
                self.organizations[key] = Organization(name=name[:200])
                new.append(self.organizations[key])
        copy_insert(Organization, new)
        self._history(new, "+")
        return [self.organizations[n.lower()] for n in names]

    def _history(self, objs: Sequence[Any], kind: str, *, model: type[Model] | None = None) -> None:
        write_history(objs, kind=kind, user=self.actor, reason=self.reason, model=model)

    def _attach(self, pairs: list[tuple[Event, Record]]) -> None:
        """Sources, organizers and other external ids of freshly written events."""
        sources, links = [], []
        through = Event.organizers.through
        for event, record in pairs:
            sources += self._sources_for(event, record)
            for organization in dict.fromkeys(self._organizations(record.organizers)):
                links.append(through(event_id=event.pk, organization_id=organization.pk))
        copy_insert(Source, sources)
        self._history(sources, "+", model=Source)
        copy_insert(through, links)

    def _create(self, items: list[tuple[int, Record, Event]]) -> None:
        if not items:
            return
        events = [event for _, _, event in items]
        copy_insert(Event, events)
        self._history(events, "+")
        external_ids = []
        for _, record, event in items:
            scheme, value = ExternalId.parse(record.external_id)
            external_ids.append(
                ExternalId(
                    event=event,
                    scheme=scheme,
                    value=value,
                    version=record.version[:40],
                    fingerprint=record.fingerprint,
                )
            )
        self._attach([(event, record) for _, record, event in items])
        external_ids += self._other_external_ids([(event, record) for _, record, event in items])
        copy_insert(ExternalId, external_ids)
        self._history(external_ids, "+")
        self.counts["created"] += len(items)

    def _other_external_ids(self, pairs: list[tuple[Event, Record]]) -> list[ExternalId]:
        wanted = {}
        for event, record in pairs:
            for text in record.other_external_ids:
                scheme, value = ExternalId.parse(text)
                wanted[(scheme, value)] = event
        if not wanted:
            return []
        taken = set(
            ExternalId.objects.filter(
                scheme__in={s for s, _ in wanted}, value__in={v for _, v in wanted}
            ).values_list("scheme", "value")
        )
        return [
            ExternalId(event=event, scheme=scheme, value=value)
            for (scheme, value), event in wanted.items()
            if (scheme, value) not in taken
        ]

    def _update(self, items: list[tuple[int, Record, ExternalId]], issues: list) -> None:
        if not items:
            return
        # Locked, so that an edit made meanwhile waits for the import (and the other way round)
        # and the version raised below is the stored one plus one: an If-Match check made
        # with the version read before the import then sees the change.
        events = Event.objects.select_for_update().in_bulk([ext.event_id for _, _, ext in items])
        now = timezone.now()
        changed: list[tuple[Event, Record, ExternalId]] = []
        for number, record, ext in items:
            event = events[ext.event_id]
            self._apply(event, record)
            if record.status:
                event.status = record.status
            elif event.status == Event.Status.PENDING and self._publishes(record):
                event.status = Event.Status.PUBLISHED
                event.reviewed_by = self.actor
                event.reviewed_at = now
            if not self._validate(number, record, event, issues):
                continue
            event.updated_at = now
            event.version += 1
            ext.version = record.version[:40]
            ext.fingerprint = record.fingerprint
            changed.append((event, record, ext))
        if not changed:
            return
        # The city fills country, region and point when the file leaves them out.
        fields = {name for _, record, _ in changed for name in record.fields}
        fields |= {"auto_coded", "updated_at", "version", "country", "admin1", "location"}
        fields |= {"geo_precision", "status", "reviewed_by", "reviewed_at"}
        updated = [event for event, _, _ in changed]
        Event.objects.bulk_update(updated, sorted(fields), batch_size=500)
        self._history(updated, "~")
        old_sources = list(Source.objects.filter(event__in=updated))
        self._history(old_sources, "-")
        Source.objects.filter(pk__in=[s.pk for s in old_sources])._raw_delete(using="default")
        Event.organizers.through.objects.filter(event__in=updated).delete()
        self._attach([(event, record) for event, record, _ in changed])
        exts = [ext for _, _, ext in changed]
        ExternalId.objects.bulk_update(exts, ["version", "fingerprint"], batch_size=500)
        self._history(exts, "~")
        self.counts["updated"] += len(changed)


REPORT_HEADER = ("row", "column", "value", "reason", "kind")


def report_rows(*, job: ImportJob):
    """The job's row-level report as CSV rows, header first; streamed from the database."""
    yield REPORT_HEADER
    issues = job.issues.order_by("row", "id").values_list(*REPORT_HEADER)
    yield from issues.iterator(chunk_size=2000)
