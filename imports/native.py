"""This tracker's own exports read back: the API's CSV (`?format=csv`) and GeoJSON
(`?format=geojson`), so that an export imported into another instance (or this one, after a
loss) gives the same events.

An event is recognised by its first external id; one without any (entered by hand here) is
given "tracker:<id>" from the exporting instance, so that importing the file again finds it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import IO, Any

from django.contrib.gis.geos import Point
from django.utils.translation import gettext, gettext_lazy

from imports.base import (
    ASCII_INTEGER,
    Context,
    FileRejected,
    Importer,
    Record,
    RowProblem,
    check_external_id,
    check_source_url,
    has_nul,
    nul_problem,
    parse_date,
    parse_int,
    parse_point,
    split_list,
)
from tracker.csv_safety import csv_text_value

TEXT_FIELDS = ("title", "description", "country", "admin1", "location_detail", "date_precision")
COUNT_FIELDS = ("arrests", "injuries", "deaths", "participants_low", "participants_high")


def _text(value: Any) -> str:
    text = "" if value is None else str(value)
    # The CSV export guards a cell that a spreadsheet would run as a formula with "'".
    return csv_text_value(text)


class NativeImporter(Importer):
    format = "native"
    label = gettext_lazy("tracker CSV or GeoJSON")
    required_columns = ("title", "date", "country", "grievances")

    def _is_geojson(self, fh: IO[bytes]) -> bool:
        fh.seek(0)
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        fh.seek(0)
        return head.startswith(b"{")

    def _features(self, fh: IO[bytes]) -> list[dict]:
        fh.seek(0)
        try:
            data = json.loads(fh.read().decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise FileRejected(
                gettext(
                    "The file is not UTF-8 text (byte 0x%(byte)s at position %(position)s). "
                    "Save it as UTF-8 and upload it again."
                )
                % {"byte": f"{exc.object[exc.start]:02x}", "position": exc.start}
            ) from None
        except json.JSONDecodeError as exc:
            raise FileRejected(
                gettext("This is not valid GeoJSON: %(error)s.") % {"error": exc}
            ) from None
        except RecursionError:
            raise FileRejected(gettext("This GeoJSON nests lists or objects too deeply.")) from None
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise FileRejected(gettext("A GeoJSON import must be a FeatureCollection of events."))
        features = data.get("features")
        if not isinstance(features, list):
            raise FileRejected(gettext('The FeatureCollection has no "features" list.'))
        return features

    def check(self, fh: IO[bytes]) -> int:
        if self._is_geojson(fh):
            return len(self._features(fh))
        return super().check(fh)

    def rows(self, fh: IO[bytes]) -> Iterator[tuple[int, dict]]:
        if not self._is_geojson(fh):
            yield from super().rows(fh)
            return
        for number, feature in enumerate(self._features(fh), start=1):
            properties = feature.get("properties") if isinstance(feature, dict) else None
            if not isinstance(properties, dict):
                yield number, {"__problem__": gettext("A feature without properties.")}
                continue
            row = dict(properties)
            geometry = feature.get("geometry") or {}
            coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
            if geometry and (geometry.get("type") != "Point" or not isinstance(coordinates, list)):
                problem = gettext("The geometry of an event must be a Point.")
                yield number, {"__problem__": problem}
                continue
            if coordinates:
                row["longitude"], row["latitude"] = [*coordinates, None, None][:2]
            row["__geojson__"] = True
            yield number, row

    def records(self, fh: IO[bytes], context: Context) -> Iterator[tuple[int, Record | RowProblem]]:
        if not self._is_geojson(fh):
            yield from super().records(fh, context)
            return
        for number, row in self.rows(fh):
            if "__problem__" in row:
                yield number, RowProblem(row["__problem__"], column="geometry")
                continue
            if has_nul(row):
                yield number, nul_problem(row)
                continue
            try:
                yield number, self.parse(row, context)
            except RowProblem as problem:
                yield number, problem

    def _list(self, row: dict, column: str) -> list:
        value = row.get(column)
        if isinstance(value, list):
            return value
        return split_list(_text(value), ";")

    def _sources(self, row: dict) -> list[dict]:
        if row.get("__geojson__"):
            sources = row.get("sources") or []
            if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
                raise RowProblem(
                    gettext("%(column)s must be a list of objects.") % {"column": "sources"},
                    column="sources",
                )
            out = []
            for source in sources:
                item = {k: _text(source.get(k)) for k in ("url", "title", "publisher", "language")}
                check_source_url(item["url"], column="sources")
                published = source.get("published_on")
                try:
                    item["published_on"] = dt.date.fromisoformat(published) if published else None
                except (TypeError, ValueError):
                    raise RowProblem(
                        gettext("%(key)s is not a date.") % {"key": "published_on"},
                        column="sources",
                        value=published,
                    ) from None
                out.append(item)
            return out
        urls = [check_source_url(u, column="source_urls") for u in self._list(row, "source_urls")]
        titles = self._list(row, "source_titles")
        if len(urls) == len(titles):
            return [{"url": u, "title": t} for u, t in zip(urls, titles, strict=True)]
        return [{"url": u} for u in urls] + [{"title": t} for t in titles]

    def _number(self, row: dict, column: str) -> int | None:
        value = row.get(column)
        if value is None:
            return None
        # GeoJSON numbers too: a bool, a negative or a 40-digit number is no count.
        return parse_int({column: _text(value)}, column)

    def parse(self, row: dict[str, Any], context: Context) -> Record:
        plain = {k: _text(v) for k, v in row.items() if k and not isinstance(v, list | dict)}
        external_ids = [
            check_external_id(str(x), column="external_ids")
            for x in self._list(row, "external_ids")
        ]
        if not external_ids:
            if not plain.get("id"):
                raise RowProblem(
                    gettext("A row needs an id or an external id to be recognised on a re-import."),
                    column="id",
                )
            external_ids = [check_external_id(f"tracker:{plain['id']}", column="id")]
        point = parse_point(plain, "latitude", "longitude") if "latitude" in plain else None
        country = plain.get("country", "").upper()
        city = None
        city_id = plain.get("city_id", "").strip()
        if city_id and not (ASCII_INTEGER.fullmatch(city_id) and len(city_id) <= 18):
            # Not str.isdigit(): it is true for "²", which int() refuses.
            raise RowProblem(
                gettext("%(column)s must be a whole number.") % {"column": "city_id"},
                column="city_id",
                value=city_id,
            )
        if city_id:
            # Ids of another instance may differ; the city's name below decides then.
            city = context.gazetteer.cities.get(int(city_id))
        if city is None and plain.get("city"):
            city = context.gazetteer.lookup(plain["city"], country=country or None)
            if city is None:
                raise RowProblem(
                    gettext("Unknown city: not in the gazetteer."),
                    column="city",
                    value=plain["city"],
                )
        fields: dict[str, Any] = {name: plain.get(name, "") for name in TEXT_FIELDS}
        fields["date_precision"] = fields["date_precision"] or "day"
        fields.update(
            date=parse_date(plain, "date"),
            end_date=parse_date(plain, "end_date", required=False),
            city=city,
            location=point if isinstance(point, Point) else None,
            geo_precision=self._number(row, "geo_precision"),
            grievances=[str(g) for g in self._list(row, "grievances")],
            police_responses=[str(p) for p in self._list(row, "police_responses")],
            **{name: self._number(row, name) for name in COUNT_FIELDS},
        )
        return Record(
            external_id=external_ids[0],
            other_external_ids=external_ids[1:],
            fields=fields,
            sources=self._sources(row),
            organizers=[str(o) for o in self._list(row, "organizers")],
            # The file names its city (by id or name); else it has none to place.
            placed="name" if city is not None else "",
            place_name=plain.get("city", ""),
            columns={
                "location": "longitude",
                "id": "external_ids" if self._list(row, "external_ids") else "id",
            },
        )
