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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.gis.db.models import GeometryField
from django.contrib.gis.geos import GEOSGeometry
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.db import connection, transaction
from django.db.models import Model, Q
from django.utils import timezone, translation
from django.utils.translation import gettext

from imports.base import Context, FileRejected, Gazetteer, Importer, Record, RowProblem
from imports.bulk import (
    Background,
    array_text,
    certainly_valid,
    lonlat,
    point_text,
    table_columns,
)
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
READ_AHEAD_BATCHES = 10
# The session's table of the job's new events (a fixed name: the functions of migration
# 0015 read it), and those functions.
NEW_EVENTS = "tracker_import_new_events"
RELATED_TEXT = "related_text"  # a column of the event table, not a model field (0016)
ROLLUP_ADDERS = (
    "tracker_rollup_add_imported", "tracker_crowd_add_imported",
    "tracker_rollup_year_add_imported", "tracker_rollup_allof_add_imported",
)  # fmt: skip
# The event fields a snapshot of an import keeps (ExternalId.imported).
SNAPSHOT_FIELDS = (
    "title", "description", "date", "end_date", "date_precision", "country", "admin1", "city",
    "location_detail", "location", "geo_precision", "grievances", "police_responses",
    "arrests", "injuries", "deaths", "participants_low", "participants_high",
)  # fmt: skip
STAGED = (Event, Source, ExternalId, Event.organizers.through)
COUNT_FIELDS = [
    "rows_total", "rows_done", "rows_created", "rows_updated", "rows_unchanged",
    "rows_skipped", "rows_failed", "rows_placed_by_name", "rows_placed_by_point",
    "rows_unplaced", "rows_conflicts",
]  # fmt: skip
# How many unplaced names the summary lists (the report has every row).
UNPLACED_SHOWN = 10
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
        raise PermissionDenied(gettext("Only moderators can import events."))
    importer_for(format)
    name = Path(getattr(file, "name", "") or "upload").name
    job = ImportJob(
        format=format,
        publish=publish,
        created_by=user,
        original_name=name[:255],
        # The job reports in the language its uploader reads the site in.
        language=translation.get_language() or settings.LANGUAGE_CODE,
    )
    stored = f"{uuid.uuid4().hex}{Path(name).suffix.lower()[:10]}"
    target = job.file.field.generate_filename(job, stored)
    try:
        job.file.save(stored, file, save=False)
    except OSError as exc:
        _discard(job.file.storage, target)
        logger.error("Import upload not stored (%s): %s", target, exc)
        raise StorageUnavailable(
            gettext(
                "The upload could not be stored: the server's media folder is full or not "
                "writable. Nothing was saved; try again later or tell the administrator."
            )
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
        with translation.override(job.language or settings.LANGUAGE_CODE):
            try:
                return _import(job, run, progress)
            except SoftTimeLimitExceeded:  # settings.JOB_TIME_LIMIT_SECONDS; rolled back
                logger.warning("Import job %s stopped at its time limit", job.pk)
                return _finish(
                    job,
                    status=JobStatus.FAILED,
                    message=gettext(
                        "The import ran longer than its time limit of %(minutes)d minutes "
                        "and was stopped; nothing was imported. Split the file, or ask the "
                        "administrator to raise JOB_TIME_LIMIT_SECONDS."
                    )
                    % {"minutes": max(1, settings.JOB_TIME_LIMIT_SECONDS // 60)},
                    reset=True,
                )


def _import(job: ImportJob, run: JobRun, progress: ProgressCallback | None) -> ImportJob:
    importer = importer_for(job.format)
    try:
        with job.file.open("rb") as fh:
            job.rows_total = importer.check(fh)
    except FileRejected as exc:
        return _finish(job, status=JobStatus.FAILED, message=str(exc))
    except OSError as exc:
        return _finish(
            job,
            status=JobStatus.FAILED,
            message=gettext("The file cannot be read: %(error)s.") % {"error": exc},
        )
    job.save(update_fields=["rows_total"])
    cache.set(_progress_key(job.pk), 0, timeout=24 * 3600)

    try:
        with transaction.atomic(), ImportWriter(job=job) as writer:
            ahead: list = []
            for batch in _parsed_batches(job, importer, Gazetteer()):
                ahead.append(batch)
                # While rows move in the background, read on (up to a bound, for memory).
                if writer.busy and len(ahead) < READ_AHEAD_BATCHES:
                    continue
                if run.beat():
                    raise JobCancelled
                for parsed in ahead:
                    writer.write(parsed)
                writer.move()  # in the background, while the next batches are read
                ahead = []
                _report_progress(job, writer.rows_done, progress)
            for parsed in ahead:
                writer.write(parsed)
            writer.finish()
            writer.store_counts()
            transaction.on_commit(events_changed)
            return _finish(job, status=JobStatus.SUCCEEDED, message=writer.summary())
    except FileRejected as exc:
        return _finish(job, status=JobStatus.FAILED, message=str(exc))
    except JobCancelled:
        return _finish(
            job,
            status=JobStatus.CANCELLED,
            message=gettext("Cancelled while running; nothing was imported."),
            reset=True,
        )
    except SoftTimeLimitExceeded:
        raise  # import_job_run reports it
    except Exception:
        logger.exception("Import job %s stopped", job.pk)
        return _finish(
            job,
            status=JobStatus.FAILED,
            message=gettext(
                "The import stopped on an internal error; nothing was imported. "
                "The error is in the server log."
            ),
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
        job.rows_placed_by_name = job.rows_placed_by_point = job.rows_unplaced = 0
        job.rows_conflicts = 0
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


def _issue_row(
    job: ImportJob, number: int, kind: str, column: str, value: Any, reason: str, **conflict
) -> dict[str, Any]:
    """One row of the job's report, as COPY writes it (every column, for every kind)."""
    return {
        "job_id": job.pk,
        "row": number,
        "kind": kind,
        "column": column[:100],
        "value": "" if value is None else str(value)[:1000],
        "reason": reason,
        "event_id": conflict.get("event_id"),
        "previous_value": conflict.get("previous_value", ""),
        "kept_value": conflict.get("kept_value", ""),
    }


def _snap(value: Any) -> Any:
    """A field's value as a snapshot keeps it (JSON), and as it is compared with the event's."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, list | tuple):
        return [_snap(v) for v in value]
    if isinstance(value, Model):
        return value.pk
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, GEOSGeometry):
        x, y = lonlat(value)
        return [round(x, 6), round(y, 6)]
    return str(value)


def _shown(value: Any) -> str:
    """A snapshot value as the report shows it."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def snapshot(record: Record) -> dict[str, Any]:
    """The event fields as the file gave them (ExternalId.imported)."""
    return {name: _snap(value) for name, value in record.fields.items()}


def _give_ids(model: type[Model], rows: list[dict[str, Any]]) -> None:
    """Ids from the table's sequence, for rows whose history rows must name them."""
    for row, pk in zip(rows, reserve_ids(model, len(rows)), strict=True):
        row["id"] = pk


def _history_table(model: type[Model]) -> tuple[str, list[str], list[str]] | None:
    """The history table of a model, its tracked columns and their attribute names (the
    history_* columns aside), or None for a model without history."""
    if not hasattr(model, "history"):
        return None
    historical, tracked, columns = _history_columns(model)
    return historical._meta.db_table, columns[: len(tracked)], tracked


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


def _external_ids_stored(pairs: Sequence[tuple[str, str]]) -> list[ExternalId]:
    """The stored external ids among these (scheme, value) pairs, one index probe each.

    A plan that cannot drift: the import's own transaction grows the table by up to a million
    rows that its statistics (taken when it was small, or empty) do not count, and with them
    `scheme = 'ccc' AND value IN (...)` was planned as a walk over every id of the scheme,
    filtered by the list: 0.3 s per batch at 700,000 rows and rising, a quarter of a CCC
    import of a million rows. LIMIT 1 (the pair is unique) keeps each probe a probe."""
    if not pairs:
        return []
    table = ExternalId._meta.db_table
    columns = ", ".join(f'e."{f.column}"' for f in ExternalId._meta.concrete_fields)
    return list(
        ExternalId.objects.raw(
            f"SELECT {columns} FROM unnest(%s::text[], %s::text[]) AS wanted(scheme, value) "  # noqa: S608
            f'CROSS JOIN LATERAL (SELECT * FROM "{table}" x WHERE x.scheme = wanted.scheme '
            "AND x.value = wanted.value LIMIT 1) e",
            [[scheme for scheme, _ in pairs], [value for _, value in pairs]],
        )
    )


class ImportWriter:
    """Writes batches of records for one job and keeps its counts and report."""

    def __init__(self, *, job: ImportJob):
        self.job = job
        self.actor = history_actor(job.created_by)
        self.now = timezone.now()
        self.today = timezone.localdate()
        # Public on the event's history page: the job and the format, never the file's name.
        self.reason = f"import job {job.pk} ({job.format})"
        self.status = Event.Status.PUBLISHED if job.publish else Event.Status.PENDING
        self.organizations = {o.name.lower(): o for o in Organization.objects.all()}
        self.counts = dict.fromkeys(("created", "updated", "unchanged", "skipped", "failed"), 0)
        # Of the rows created or updated: how they were placed; and the rows with a kept
        # correction.
        self.places = Counter(dict.fromkeys(("name", "point", "unplaced"), 0))
        self.unplaced_names: Counter[str] = Counter()
        self.conflicts = 0
        self._tables = {
            model: (*table_columns(model), _history_table(model))
            for model in (Event, Source, ExternalId, ImportIssue, Event.organizers.through)
        }
        # The text of a new event's sources and organizers (migration 0016), written with
        # the event: the triggers that keep it step aside for the job, as the rollups' do.
        table, columns, attnames, history = self._tables[Event]
        self._tables[Event] = (table, [*columns, RELATED_TEXT], [*attnames, RELATED_TEXT], history)
        # Events whose sources an update replaced: their text is refreshed at the end.
        self.related_stale: list[int] = []
        self._event_defaults = {f.name: f.get_default() for f in Event._meta.concrete_fields}

    def __enter__(self) -> ImportWriter:
        # Rows reach their tables through staging tables of the transaction's own (no
        # indexes, no triggers), filled by COPY from here and moved a few batches at a time
        # by INSERT ... SELECT in the background, which writes the history rows from the
        # same rows, while this thread reads the next batches. The event table's rollup triggers
        # cost per cell a statement touches, not per row (0.7 s for 2,000 events, 4.7 s for
        # 90,000), so they step aside for the job (migration 0015) and the job's new events,
        # gathered in `tracker_import_new_events`, are added to the rollups once, at the end.
        # Foreign keys are checked as each move runs, not all at commit.
        self.stage = {}
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('tracker.import_rollups', 'deferred', true)")
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for model in STAGED:
                name = f"import_{self.job.pk}_{model._meta.model_name}"
                # The columns only: no constraints (the real table checks the rows).
                cursor.execute(
                    f'CREATE TEMPORARY TABLE "{name}" ON COMMIT DROP '  # noqa: S608 - our names
                    f'AS SELECT * FROM "{model._meta.db_table}" WITH NO DATA'
                )
                self.stage[model] = name
            cursor.execute(
                f'CREATE TEMPORARY TABLE IF NOT EXISTS "{NEW_EVENTS}" ON COMMIT DROP '  # noqa: S608
                f'AS SELECT * FROM "{Event._meta.db_table}" WITH NO DATA'
            )
            cursor.execute(f'TRUNCATE "{NEW_EVENTS}"')
            # The file's ids so far (duplicates), with the row that had each first.
            self.ids = f"import_{self.job.pk}_ids"
            cursor.execute(
                f'CREATE TEMPORARY TABLE "{self.ids}" '
                '(external_id text PRIMARY KEY, "row" integer NOT NULL) ON COMMIT DROP'
            )
        self.background = Background()
        return self

    def __exit__(self, *exc) -> None:
        self.background.close()

    @property
    def busy(self) -> bool:
        """Whether the background still moves rows (then read on instead of waiting)."""
        return self.background.busy

    def flush(self) -> None:
        """Wait for the statements in the background; call it before the connection is
        used otherwise."""
        self.background.wait()

    def finish(self) -> None:
        """Everything read: the last rows to their tables, the new events to the rollups,
        and the transaction's settings back to what the rest of it expects."""
        self.flush()
        self.background.run(
            [
                *self._moves(),
                *((f"SELECT {adder}()", []) for adder in ROLLUP_ADDERS),
                *(
                    [("SELECT tracker_refresh_related_text(%s::bigint[])", [self.related_stale])]
                    if self.related_stale
                    else []
                ),
                (f'TRUNCATE "{NEW_EVENTS}"', []),
                ("SELECT set_config('tracker.import_rollups', '', true)", []),
                ("SET CONSTRAINTS ALL DEFERRED", []),
            ]
        )
        self.flush()

    def move(self) -> None:
        """The rows staged so far to their tables, in the background (see `write`)."""
        self.background.run(self._moves())

    def _seen_before(self, external_ids: list[str]) -> dict[str, int]:
        """Which of these ids earlier rows of the file had, and the row of each. Kept in a
        table of the transaction (with its index), not in memory: a million rows' ids would
        be this process's largest object."""
        if not external_ids:
            return {}
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT external_id, "row" FROM "{self.ids}" WHERE external_id = ANY(%s)',  # noqa: S608
                [external_ids],
            )
            return dict(cursor.fetchall())

    def _copy_seen(self, new_ids: dict[str, int]) -> None:
        if new_ids:
            copy_rows(ImportIssue, ["external_id", "row"], new_ids.items(), table=self.ids)

    def _moves(self, models: Sequence[type[Model]] = STAGED) -> list[tuple[str, list]]:
        """The staged rows of these models to their tables."""
        return [statement for model in models for statement in self._move(model)]

    def _copy(self, model: type[Model], rows: list[dict[str, Any]], *, table: str = "") -> None:
        """COPY plain rows (dicts by attribute name) into the model's table, or the named
        one; columns missing from the first row are left to the table's defaults."""
        if not rows:
            return
        _, columns, attnames, _ = self._tables[model]
        pairs = [(c, a) for c, a in zip(columns, attnames, strict=True) if a in rows[0]]
        values = [[row[a] for _, a in pairs] for row in rows]
        if model is Event:
            names = [a for _, a in pairs]
            at = names.index("location")
            arrays = [names.index(a) for a in ("grievances", "police_responses", "auto_coded")]
            for row in values:
                row[at] = point_text(row[at])
                for i in arrays:
                    row[i] = array_text(row[i])
        copy_rows(model, [c for c, _ in pairs], values, table=table)

    def _stage(self, model: type[Model], rows: list[dict[str, Any]]) -> None:
        """Rows to the model's staging table; moved by `_move`."""
        self._copy(model, rows, table=self.stage[model])

    def _move(self, model: type[Model]) -> list[tuple[str, list]]:
        """The statements that move the staged rows of a model into its table, with a
        history row each ("+", the job's user and reason), and empty the staging table."""
        table, columns, _, history_table = self._tables[model]
        stage = self.stage[model]
        names = ", ".join(f'"{c}"' for c in columns if c != "id" or history_table)
        statements = [
            (f'INSERT INTO "{table}" ({names}) SELECT {names} FROM "{stage}"', []),  # noqa: S608
        ]
        if history_table is None:
            return [*statements, (f'TRUNCATE "{stage}"', [])]
        if model is Event:  # gathered for the rollups, added at the end
            statements.append(
                (f'INSERT INTO "{NEW_EVENTS}" SELECT * FROM "{stage}"', [])  # noqa: S608
            )
        history, tracked, _ = history_table
        tracked_names = ", ".join(f'"{c}"' for c in tracked)
        history_names = tracked_names + (
            ", history_date, history_type, history_user_id, history_change_reason"
        )
        user_id = self.actor.pk if self.actor is not None else None
        return [
            *statements,
            (
                f'INSERT INTO "{history}" ({history_names}) '  # noqa: S608 - our own names
                f'SELECT {tracked_names}, %s, %s, %s, %s FROM "{stage}"',
                [timezone.now(), "+", user_id, self.reason],
            ),
            (f'TRUNCATE "{stage}"', []),
        ]

    @property
    def rows_done(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """What the job did, in the active language (the uploader's)."""
        text = (
            gettext(
                "%(created)s created, %(updated)s updated, %(unchanged)s unchanged, "
                "%(skipped)s skipped, %(failed)s failed"
            )
            % self.counts
        )
        text += "; " + (
            gettext(
                "placed by name %(name)s, by coordinates only %(point)s, not placed %(unplaced)s"
            )
            % self.places
        )
        if self.unplaced_names:
            names = [f"{name} ×{n}" for name, n in self.unplaced_names.most_common(UNPLACED_SHOWN)]
            more = len(self.unplaced_names) - UNPLACED_SHOWN
            if more > 0:
                names.append(gettext("%(n)s more in the report") % {"n": more})
            text += " (" + ", ".join(names) + ")"
        if self.conflicts:
            text += "; " + (
                gettext(
                    "%(n)s rows kept a moderator's correction over the file's value "
                    "(listed in the report)"
                )
                % {"n": self.conflicts}
            )
        return text + "."

    def store_counts(self) -> None:
        job = self.job
        job.rows_done = self.rows_done
        job.rows_total = max(job.rows_total, job.rows_done)
        job.rows_created = self.counts["created"]
        job.rows_updated = self.counts["updated"]
        job.rows_unchanged = self.counts["unchanged"]
        job.rows_skipped = self.counts["skipped"]
        job.rows_failed = self.counts["failed"]
        job.rows_placed_by_name = self.places["name"]
        job.rows_placed_by_point = self.places["point"]
        job.rows_unplaced = self.places["unplaced"]
        job.rows_conflicts = self.conflicts

    # --- one batch ------------------------------------------------------------------------

    def write(self, batch: Iterable[tuple[int, Record | RowProblem]]) -> None:
        """Stage one batch; `move` then sends what was staged to its tables."""
        self.flush()  # the previous move, done while this batch was read
        issues: list[dict[str, Any]] = []
        records: list[tuple[int, Record]] = []
        batch = list(batch)
        seen = self._seen_before(
            [
                text
                for _, item in batch
                if isinstance(item, Record)
                for text in (item.external_id, *item.other_external_ids)
            ]
        )
        new_ids: dict[str, int] = {}
        for number, item in batch:
            if isinstance(item, RowProblem):
                issues.append(self._issue(number, item))
                continue
            first = seen.get(item.external_id)
            if first is not None:
                issues.append(
                    self._issue(
                        number,
                        RowProblem(
                            gettext("Duplicate id %(id)s: row %(row)s has the same id.")
                            % {"id": item.external_id, "row": first},
                            column=item.columns.get("id", "id"),
                            value=item.external_id,
                        ),
                    )
                )
                continue
            seen[item.external_id] = new_ids[item.external_id] = number
            # An event's other ids are this file's too: a later row with one of them is a
            # duplicate, and an id an earlier row holds is not given twice.
            item.other_external_ids = [x for x in item.other_external_ids if x not in seen]
            for other in item.other_external_ids:
                seen[other] = new_ids[other] = number
            records.append((number, item))
        self._copy_seen(new_ids)

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
                event = self._new_event(number, record, issues)
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

        self._update(to_update, issues)
        self._refresh_unchanged(to_refresh)
        self._create(to_create, issues)
        self._copy(ImportIssue, issues)

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
        return _issue_row(self.job, number, kind, problem.column, problem.value, problem.reason)

    def _placed(self, number: int, record: Record, issues: list) -> None:
        """Count how the row's event was placed; one whose place name the gazetteer does not
        know is noted in the report (with no name, there is nothing to add to it)."""
        how = record.placed if record.fields.get("city") is not None else ""
        self.places[how or "unplaced"] += 1
        name = record.place_name.strip()
        if not how and name:
            self.unplaced_names[name] += 1
            issues.append(
                _issue_row(
                    self.job, number, ImportIssue.Kind.UNPLACED,
                    record.columns.get("city", "city"), name,
                    gettext("Not in the gazetteer: imported without a city (add the place to the "
                      "gazetteer, then run relink_places)."),
                )
            )  # fmt: skip

    def _existing_ids(self, external_ids: list[str]) -> dict[str, ExternalId]:
        pairs = [ExternalId.parse(text) for text in external_ids]
        return {f"{ext.scheme}:{ext.value}": ext for ext in _external_ids_stored(pairs)}

    def _apply(self, event: Event, record: Record, fields: dict[str, Any] | None = None) -> None:
        for name, value in (record.fields if fields is None else fields).items():
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

    def _sources_for(self, event_id: int, record: Record) -> list[dict[str, Any]]:
        # Plain rows, not model instances: 200,000 Source() calls cost seconds.
        sources, urls = [], set()
        for data in record.sources:
            url = (data.get("url") or "")[:1000]
            title = (data.get("title") or "")[:500]
            if (url and url in urls) or not (url or title):
                continue
            urls.add(url)
            sources.append({
                "event_id": event_id,
                "url": url,
                "title": title,
                "publisher": (data.get("publisher") or "")[:200],
                "published_on": data.get("published_on"),
                "language": (data.get("language") or "")[:10],
            })  # fmt: skip
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

    def _attach(self, pairs: list[tuple[Any, Record]], *, texts: bool = True) -> dict[int, str]:
        """Sources and organizers of new or updated events (an updated one's old ones are
        gone), staged and linked; moved by the caller. Returns each event's related text
        (with `texts`; updated events have theirs refreshed in SQL at the end): its
        sources' titles and publishers and its organizers' names, as
        tracker_event_related_text() (migration 0016) writes them."""
        links, sources, related = [], [], {}
        for event, record in pairs:
            event_id = event["id"] if isinstance(event, dict) else event.pk
            organizations = []
            if record.organizers:
                organizations = list(dict.fromkeys(self._organizations(record.organizers)))
                for organization in organizations:
                    links.append({"event_id": event_id, "organization_id": organization.pk})
            own = self._sources_for(event_id, record)
            sources += own
            if not texts:
                continue
            related[event_id] = " ".join(
                [
                    *(" ".join(p for p in (s["title"], s["publisher"]) if p) for s in own),
                    *(
                        " ".join(p for p in (o.name, o.name_ru) if p)
                        for o in sorted(organizations, key=lambda o: o.pk)
                    ),
                ]
            )
        _give_ids(Source, sources)
        self._stage(Source, sources)
        self._stage(Event.organizers.through, links)
        return related

    def _new_event(self, number: int, record: Record, issues: list) -> dict[str, Any] | None:
        """The column values of a new event (by field name, with `city_id` too), or None
        when the row is not valid (then it is in `issues`)."""
        status = record.status or self.status
        if status == Event.Status.PUBLISHED and not record.sources:
            # An event needs a source to be published; without one a moderator decides.
            status = Event.Status.PENDING
        values = dict(self._event_defaults)
        values.update(record.fields)
        values["status"] = status
        if status == Event.Status.PUBLISHED and record.status is None:
            values["reviewed_by"] = self.actor
        values["auto_coded"] = list(record.auto_coded)
        city = values["city"]
        if city is not None:
            values["country"] = values["country"] or city.country
            values["admin1"] = values["admin1"] or city.admin1
            if values["location"] is None:
                values["location"] = city.location
                values["geo_precision"] = Event.GeoPrecision.CITY
        if values["location"] is not None and values["geo_precision"] is None:
            values["geo_precision"] = Event.GeoPrecision.EXACT  # as Event.clean() does
        if not certainly_valid(values, list(record.fields), today=self.today):
            # The model decides, and says why not (its messages are the users' language).
            event = self._build_event(number, record, issues)
            if event is None:
                return None
            values = {f.name: getattr(event, f.name) for f in Event._meta.concrete_fields}
        values["city_id"] = values["city"].pk if values["city"] is not None else None
        reviewer = values["reviewed_by"]
        values["reviewed_by_id"] = reviewer.pk if reviewer is not None else None
        values["submitted_by_id"] = None
        if reviewer is not None:
            values["reviewed_at"] = self.now
        values["created_at"] = values["updated_at"] = self.now
        return values

    def _create(self, items: list[tuple[int, Record, dict[str, Any]]], issues: list) -> None:
        """New events, their sources and external ids to the staging tables."""
        if not items:
            return
        self.now = timezone.now()
        for (_, _, event), pk in zip(items, reserve_ids(Event, len(items)), strict=True):
            event["id"] = pk
        pairs = [(event, record) for _, record, event in items]
        external_ids = []
        for number, record, event in items:
            scheme, value = ExternalId.parse(record.external_id)
            external_ids.append({
                "event_id": event["id"], "scheme": scheme, "value": value,
                "version": record.version[:40], "fingerprint": record.fingerprint,
                "imported": orjson.dumps(snapshot(record)).decode(),
            })  # fmt: skip
            self._placed(number, record, issues)
        external_ids += self._other_external_ids(pairs)
        _give_ids(ExternalId, external_ids)
        texts = self._attach(pairs)
        for event, _ in pairs:
            event[RELATED_TEXT] = texts[event["id"]]
        self._stage(Event, [event for event, _ in pairs])
        self._stage(ExternalId, external_ids)
        self.counts["created"] += len(items)

    def _other_external_ids(
        self, pairs: list[tuple[dict[str, Any], Record]]
    ) -> list[dict[str, Any]]:
        wanted = {}
        for event, record in pairs:
            for text in record.other_external_ids:
                scheme, value = ExternalId.parse(text)
                wanted[(scheme, value)] = event["id"]
        if not wanted:
            return []
        taken = {(ext.scheme, ext.value) for ext in _external_ids_stored(list(wanted))}
        return [
            {"event_id": event_id, "scheme": scheme, "value": value, "version": "",
             "fingerprint": "", "imported": "{}"}
            for (scheme, value), event_id in wanted.items()
            if (scheme, value) not in taken
        ]  # fmt: skip

    def _imported_before(self, exts: list[ExternalId]) -> dict[int, dict[str, Any]]:
        """What the file said last about each event (by external id): the stored snapshot,
        else, for an event imported before snapshots were kept, its last history row
        written by an import (a later row is somebody's edit)."""
        before = {ext.pk: ext.imported for ext in exts}
        legacy = {ext.event_id: ext.pk for ext in exts if not ext.imported}
        if legacy:
            rows = (
                Event.history.model.objects.filter(
                    id__in=list(legacy), history_change_reason__startswith="import job "
                )
                .order_by("id", "-history_date", "-history_id")
                .distinct("id")
            )
            for row in rows:
                before[legacy[row.id]] = {
                    name: _snap(row.city_id if name == "city" else getattr(row, name))
                    for name in SNAPSHOT_FIELDS
                }
        return before

    def _corrections_kept(
        self, number: int, record: Record, event: Event, before: dict[str, Any], issues: list
    ) -> dict[str, Any]:
        """The fields of the row to write to its event. A field the file did not change
        since it was imported last is left as the event has it (perhaps corrected); one that
        both the file and a moderator changed keeps the moderator's value, and the report
        lists the conflict (the earlier value, the moderator's and the file's)."""
        fields = {}
        conflict = False
        for name, value in record.fields.items():
            if name not in before:
                fields[name] = value  # nothing known of it: the file's value
                continue
            new, old = _snap(value), before[name]
            if new == old:
                continue
            current = _snap(event.city_id if name == "city" else getattr(event, name))
            if current in (old, new):
                fields[name] = value
                continue
            conflict = True
            issues.append(
                _issue_row(
                    self.job, number, ImportIssue.Kind.CONFLICT,
                    record.columns.get(name, name), _shown(new),
                    gettext("A moderator corrected %(field)s since the last import; the correction "
                      "was kept. Take the file's value on the event's page if it is right.")
                    % {"field": name},
                    event_id=event.pk, previous_value=_shown(old), kept_value=_shown(current),
                )
            )  # fmt: skip
        self.conflicts += conflict
        return fields

    def _update(self, items: list[tuple[int, Record, ExternalId]], issues: list) -> None:
        if not items:
            return
        # Locked, so that an edit made meanwhile waits for the import (and the other way round)
        # and the version raised below is the stored one plus one: an If-Match check made
        # with the version read before the import then sees the change.
        events = Event.objects.select_for_update().in_bulk([ext.event_id for _, _, ext in items])
        before = self._imported_before([ext for _, _, ext in items])
        now = timezone.now()
        changed: list[tuple[Event, Record, ExternalId]] = []
        for number, record, ext in items:
            event = events[ext.event_id]
            fields = self._corrections_kept(number, record, event, before[ext.pk], issues)
            self._apply(event, record, fields)
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
            ext.imported = snapshot(record)
            changed.append((event, record, ext))
            self._placed(number, record, issues)
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
        self._attach([(event, record) for event, record, _ in changed], texts=False)
        self.related_stale += [event.pk for event in updated]
        exts = [ext for _, _, ext in changed]
        ExternalId.objects.bulk_update(exts, ["version", "fingerprint", "imported"], batch_size=500)
        self._history(exts, "~")
        self.counts["updated"] += len(changed)


REPORT_HEADER = ("row", "column", "value", "reason", "kind")
# A conflict names the event and the two values the file's value met.
CONFLICT_HEADER = ("event", "previous_value", "kept_value")


def report_rows(*, job: ImportJob):
    """The job's row-level report as CSV rows, header first; streamed from the database."""
    yield REPORT_HEADER + CONFLICT_HEADER
    issues = job.issues.order_by("row", "id").values_list(
        *REPORT_HEADER, "event_id", "previous_value", "kept_value"
    )
    yield from issues.iterator(chunk_size=2000)
