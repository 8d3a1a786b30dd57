"""Parsing a large file in a second process while this one validates and writes.

Reading, mapping and keyword rules take about half the time of an import, and they need
neither the database nor anything but the file and the gazetteer, so a child process does
them for the next batches while the parent writes the current one with COPY, using the
second core. Opt-in (settings.IMPORT_PARALLEL_MIN_ROWS): measured on the shared 2-core
machine it was slower (75 s against 54 s for 100,000 rows), the pickling of records costing
more than the second core gave while other work kept it busy; on more cores it can pay.

The child is spawned, not forked: a fork would copy this process's database and Redis
connections and whatever threads (a Celery worker's) hold. It sets Django up, receives
the gazetteer pickled, and sends records back pickled; model instances and GEOS points
travel as ids and coordinates and are rebuilt here against the same gazetteer.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue as queue_module
from collections.abc import Iterator
from pathlib import Path

from django.contrib.gis.geos import Point
from django.utils import translation

from imports.base import Gazetteer, Importer, Record, RowProblem
from imports.parsing_process import END, ERROR, produce

QUEUE_BATCHES = 4


def _restore(item: Record | RowProblem, gazetteer: Gazetteer) -> Record | RowProblem:
    if isinstance(item, Record):
        city_id = item.fields.get("city")
        if city_id is not None:
            item.fields["city"] = gazetteer.cities[city_id]
        point = item.fields.get("location")
        if point is not None:
            item.fields["location"] = Point(point[0], point[1], srid=point[2] or 4326)
    return item


def parsed_batches(
    importer: Importer, path: Path, gazetteer: Gazetteer, *, batch_size: int
) -> Iterator[list[tuple[int, Record | RowProblem]]] | None:
    """Batches parsed by a child process, or None when no child can be started here (for
    instance inside a daemonic process); the caller then parses in-process."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue(maxsize=QUEUE_BATCHES)
    child = context.Process(
        target=produce,
        # The job's language too: the child writes the row reasons.
        args=(
            importer.format,
            str(path),
            pickle.dumps(gazetteer),
            out,
            batch_size,
            translation.get_language(),
        ),
        daemon=True,
    )
    try:
        child.start()
    except (AssertionError, OSError):
        out.close()
        return None
    return _receive(child, out, gazetteer)


def _receive(child, out, gazetteer: Gazetteer) -> Iterator[list[tuple[int, Record | RowProblem]]]:
    try:
        while True:
            try:
                batch = out.get(timeout=5)
            except queue_module.Empty:
                if not child.is_alive():
                    raise RuntimeError("The parsing process stopped unexpectedly.") from None
                continue
            if batch == END:
                return
            if isinstance(batch, tuple) and batch[0] == ERROR:
                raise RuntimeError(f"Parsing failed: {batch[1]}")
            yield [(number, _restore(item, gazetteer)) for number, item in batch]
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=10)
        out.close()
        out.join_thread()
