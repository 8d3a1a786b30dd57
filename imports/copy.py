"""Insert rows with PostgreSQL COPY (psycopg 3), an order of magnitude faster than INSERT
for the 100,000-row files the importers handle.

Primary keys are drawn from the table's own sequence first, so that the caller can point
sources, external ids and history rows at the new events before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.gis.db.models import GeometryField
from django.db import connection
from django.db.models import DateField, Model


def reserve_ids(model: type[Model], count: int) -> list[int]:
    if count == 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [model._meta.db_table, model._meta.pk.column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def geometry_text(value) -> str | None:
    """A geometry as EWKT, which COPY's text input of a geometry column accepts. Kept on the
    object: an event's point is written twice (event and history row) and each GEOS call
    counts at 100,000 rows."""
    if value is None:
        return None
    text = getattr(value, "_copy_ewkt", None)
    if text is None:
        text = f"SRID={value.srid or 4326};{value.wkt}"
        value._copy_ewkt = text
    return text


def copy_rows(
    model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]], *, table: str = ""
) -> None:
    """COPY plain value tuples into the named columns of the model's table (or of another
    table of the same columns)."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in columns)
    statement = f"COPY {quote(table or model._meta.db_table)} ({names}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def copy_insert(model: type[Model], objs: Sequence[Any]) -> None:
    """COPY model instances (or plain objects with the same attributes); each gets a
    primary key if it has none yet.

    Values go to psycopg as they are (it adapts dates, lists, None); only geometries and the
    auto_now(_add) timestamps need the field's help.
    """
    if not objs:
        return
    pk_name = model._meta.pk.attname
    missing = [obj for obj in objs if getattr(obj, pk_name) is None]
    for obj, pk in zip(missing, reserve_ids(model, len(missing)), strict=True):
        setattr(obj, pk_name, pk)
    fields = model._meta.concrete_fields
    getters = []
    for f in fields:
        if isinstance(f, GeometryField):
            getters.append(lambda obj, name=f.attname: geometry_text(getattr(obj, name)))
        elif isinstance(f, DateField) and (f.auto_now or f.auto_now_add):
            getters.append(lambda obj, f=f: f.pre_save(obj, add=True))
        else:
            getters.append(lambda obj, name=f.attname: getattr(obj, name))
    copy_rows(model, [f.column for f in fields], ([get(obj) for get in getters] for obj in objs))
    for obj in objs:
        if isinstance(obj, Model):
            obj._state.adding = False
            obj._state.db = connection.alias
