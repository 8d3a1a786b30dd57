"""The fast path of an import's new rows: plain values instead of model instances, a cheap
test that a row is certainly valid, and a second thread that moves staged rows.

At 100,000 rows an `Event()` and its `full_clean()` cost more than PostgreSQL's whole work
for the row, so a new event is a dict of column values. `certainly_valid` passes only rows
that every check of the model (field validators, `Event.clean`, the table's CHECK
constraints) would pass; any other row goes the slow way, through `full_clean`, which stays
the one authority on what is valid and says why not in the user's language.

`Background` runs the statements that move staged batches into the real tables (their
indexes, foreign keys and history rows) in a second thread on the job's own connection, in
the same transaction, so that PostgreSQL writes them while Python reads and maps the next
batches from the file. (The rollups are added once, at the job's end: migration 0015.)
"""

from __future__ import annotations

import datetime as dt
import queue
import re
import threading
from collections.abc import Sequence
from typing import Any

from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import Model
from psycopg import sql

from tracker import taxonomy
from tracker.models import City, Event

MAX_INT = 2_147_483_647
_GRIEVANCES = frozenset(taxonomy.GRIEVANCE_SLUGS)
_POLICE = frozenset(taxonomy.POLICE_RESPONSE_SLUGS)
_DATE_PRECISIONS = frozenset(Event.DatePrecision.values)
_GEO_PRECISIONS = frozenset(Event.GeoPrecision.values)
_STATUSES = frozenset(Event.Status.values)
_COUNTS = ("arrests", "injuries", "deaths", "participants_low", "participants_high")
_TEXT_MAX = {"title": 300, "admin1": 120, "location_detail": 200}
# The fields an importer may give that the quick test knows; any other sends the row to
# full_clean.
KNOWN_FIELDS = frozenset(
    {"title", "description", "date", "end_date", "date_precision", "country", "admin1", "city"}
    | {"location_detail", "location", "geo_precision", "grievances", "police_responses"}
    | {"is_generated", *_COUNTS}
)


def _count_ok(value: Any) -> bool:
    return value is None or (type(value) is int and 0 <= value <= MAX_INT)


def certainly_valid(values: dict[str, Any], given: Sequence[str], *, today: dt.date) -> bool:
    """True if the event's values pass the model's validation for sure; False means "ask
    full_clean" (it may still pass). `given` are the fields the file gave, the only ones
    full_clean checks, as in ImportWriter._validate; Event.clean's checks apply to all."""
    for name in given:
        if name not in KNOWN_FIELDS:
            return False
    if "title" in given:
        title = values["title"]
        if not isinstance(title, str) or not title or len(title) > _TEXT_MAX["title"]:
            return False
    for name in ("admin1", "location_detail"):
        if name in given:
            text = values[name]
            if not isinstance(text, str) or len(text) > _TEXT_MAX[name]:
                return False
    if "description" in given and not isinstance(values["description"], str):
        return False
    date, end_date = values["date"], values["end_date"]
    if "date" in given and not (type(date) is dt.date and date <= today):
        return False
    if end_date is not None and not (
        type(end_date) is dt.date and end_date <= today and (date is None or end_date >= date)
    ):
        return False
    if "date_precision" in given and values["date_precision"] not in _DATE_PRECISIONS:
        return False
    country = values["country"]
    if "country" in given and not (
        isinstance(country, str) and len(country) == 2 and country.isascii()
        and country.isalpha() and country.isupper()
    ):  # fmt: skip
        return False
    city = values["city"]
    if city is not None and not (isinstance(city, City) and city.country == country):
        return False
    location = values["location"]
    if location is not None:
        if not isinstance(location, Point):
            return False
        x, y = lonlat(location)
        if not (-180 <= x <= 180 and -90 <= y <= 90):
            return False
    if values["geo_precision"] is not None and values["geo_precision"] not in _GEO_PRECISIONS:
        return False
    grievances = values["grievances"]
    if "grievances" in given and not (
        isinstance(grievances, list) and grievances and _GRIEVANCES.issuperset(grievances)
    ):
        return False
    police = values["police_responses"]
    if "police_responses" in given and not (
        isinstance(police, list) and _POLICE.issuperset(police)
    ):
        return False
    for name in _COUNTS:
        if name in given and not _count_ok(values[name]):
            return False
    low, high = values["participants_low"], values["participants_high"]
    if low is not None and high is not None and low > high:
        return False
    if "is_generated" in given and type(values["is_generated"]) is not bool:
        return False
    return values["status"] in _STATUSES


def lonlat(point: Point) -> tuple[float, float]:
    """A point's coordinates, kept on it after the first read (GEOS calls are dear)."""
    coords = getattr(point, "_lonlat", None)
    if coords is None:
        coords = point._lonlat = point.coords
    return coords


def point_text(point: Point | None) -> str | None:
    """EWKT for COPY, from the coordinates (one GEOS call fewer than `.wkt`, and the
    coordinates written with all their digits)."""
    if point is None:
        return None
    text = getattr(point, "_copy_ewkt", None)
    if text is None:
        x, y = lonlat(point)
        text = f"SRID={point.srid or 4326};POINT({x!r} {y!r})"
        point._copy_ewkt = text
    return text


_SLUG = re.compile(r"[a-z_]*")


def array_text(values: list[str]) -> list[str] | str:
    """A list of slugs as PostgreSQL's array text ("{labor,land}"), which COPY takes as it
    is, three times cheaper than psycopg's list dumper; any other list goes to psycopg."""
    if all(_SLUG.fullmatch(v) and v for v in values):
        return "{" + ",".join(values) + "}"
    return values


def table_columns(model: type[Model]) -> tuple[str, list[str], list[str]]:
    """The table, its columns and the attribute name of each (in the same order)."""
    fields = model._meta.concrete_fields
    return model._meta.db_table, [f.column for f in fields], [f.attname for f in fields]


def _inline(cursor, statements: list[tuple[str, Sequence[Any]]]) -> str:
    """The statements as one text, their parameters as SQL literals (psycopg's quoting)."""
    texts = []
    for statement, params in statements:
        if params:
            literals = [sql.Literal(p).as_string(cursor) for p in params]
            statement = statement.replace("%%", "\x00") % tuple(literals)
            statement = statement.replace("\x00", "%")
        texts.append(statement)
    return ";\n".join(texts)


class Background:
    """SQL statements run one after another by a second thread on this thread's database
    connection (the same transaction), while this thread goes on with Python work that
    needs no database. `wait()` returns when all sent so far are done and raises their
    error; call it before using the connection otherwise.

    Only whole statements go to the thread (INSERT ... SELECT from a staging table): it
    waits for PostgreSQL in one call, without the interpreter lock, so that the two threads
    do not trade the lock back and forth row by row, as a COPY fed from a thread would."""

    def __init__(self):
        connection.ensure_connection()
        self._connection = connection.connection  # psycopg's own, in the job's transaction
        self._jobs: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="import-sql", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    with self._connection.cursor() as cursor:
                        # One round trip for the whole list (the simple query protocol
                        # takes several statements when there are no parameters): each
                        # return from PostgreSQL costs this thread a wait for the
                        # interpreter lock while the other thread parses.
                        cursor.execute(_inline(cursor, job))
            except BaseException as exc:  # handed to the job's thread by wait()
                self._error = exc
            finally:
                self._jobs.task_done()

    def run(self, statements: list[tuple[str, Sequence[Any]]]) -> None:
        if statements:
            self._jobs.put(statements)

    @property
    def busy(self) -> bool:
        return self._jobs.unfinished_tasks > 0

    def wait(self) -> None:
        self._jobs.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        """Stop the thread; statements sent and not waited for are dropped."""
        if self._error is None:
            self._error = RuntimeError("closed")  # what is still queued is skipped
        self._jobs.put(None)
        self._thread.join(timeout=600)
