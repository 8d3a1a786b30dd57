"""The body of the parsing process (see imports.parallel).

This module imports nothing of the project at the top: a spawned process unpickles its
target by importing this module before Django is set up.
"""

from __future__ import annotations

import pickle

END = "end"
ERROR = "error"


def portable(item):
    """A record with its city and point replaced by an id and coordinates (pickle-light)."""
    fields = getattr(item, "fields", None)
    if fields is not None:
        city = fields.get("city")
        if city is not None:
            fields["city"] = city.pk
        point = fields.get("location")
        if point is not None:
            fields["location"] = (point.x, point.y, point.srid)
    return item


def produce(
    format: str, path: str, gazetteer_pickle: bytes, out, batch_size: int, language: str | None
) -> None:
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.utils import translation

        translation.activate(language or settings.LANGUAGE_CODE)
        from imports.base import Context
        from imports.formats import importer_for

        importer = importer_for(format)
        gazetteer = pickle.loads(gazetteer_pickle)  # noqa: S301 - from our own parent process
        with open(path, "rb") as fh:
            batch = []
            for number, item in importer.records(fh, Context(gazetteer=gazetteer)):
                batch.append((number, portable(item)))
                if len(batch) >= batch_size:
                    out.put(batch)
                    batch = []
            out.put(batch)
        out.put(END)
    except BaseException as exc:  # reported to the parent, which fails the job
        out.put((ERROR, f"{type(exc).__name__}: {exc}"))
