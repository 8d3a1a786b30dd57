"""Crowd Counting Consortium files: one row per event, sources in source_1 ... source_n.

CCC has no event id of its own, so the external id "ccc:<key>" is a hash of the date,
place and title (or the file's `id` column when there is one). Arrests, injuries and crowd
size are coded by CCC; only text in place of a number is read by the keyword rules.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext, gettext_lazy

from imports import keywords
from imports.base import (
    Context,
    Countries,
    Importer,
    Record,
    RowProblem,
    cell,
    check_external_id,
    parse_date,
    parse_int,
    parse_point,
    source_from_text,
    split_list,
    stable_key,
)
from tracker import taxonomy

SOURCE_COLUMN = re.compile(r"^source_?\d+$")


class CccImporter(Importer):
    format = "ccc"
    label = gettext_lazy("Crowd Counting Consortium")
    required_columns = ("date", "locality", "state")

    def _count(self, row: dict, column: str, auto_coded: list[str], field: str) -> int | None:
        text = cell(row, column)
        if not text or text.lower() in {"na", ".", "unspecified", "unknown"}:
            return None
        if re.fullmatch(r"\d+(\.0+)?", text.replace(",", "")):
            return parse_int(row, column)
        number = keywords.arrests_from_text(text) if field == "arrests" else None
        if number is None:
            low, _high = keywords.crowd_size_from_phrase(text)
            number = low
        if number is None:
            raise RowProblem(
                gettext("%(column)s must be a number.") % {"column": column},
                column=column,
                value=text,
            )
        auto_coded.append(field)
        return number

    def parse(self, row: dict[str, str], context: Context) -> Record:
        date = parse_date(row, "date")
        locality, state = cell(row, "locality"), cell(row, "state")
        country = Countries.code(cell(row, "country")) if cell(row, "country") else "US"
        if not country:
            raise RowProblem(
                gettext("Unknown country."), column="country", value=cell(row, "country")
            )
        point = parse_point(row, "lat", "lon") if "lat" in row and "lon" in row else None
        city, placed = context.gazetteer.place_how(locality, point, country=country)
        auto_coded: list[str] = []
        claims = (row.get("claims") or "").strip()

        arrests = self._count(row, "arrests", auto_coded, "arrests")
        injuries = [
            self._count(row, column, auto_coded, "injuries")
            for column in ("injuries_crowd", "injuries_police")
        ]
        injuries_total = None if all(i is None for i in injuries) else sum(i or 0 for i in injuries)
        low = parse_int(row, "size_low") if cell(row, "size_low") else None
        high = parse_int(row, "size_high") if cell(row, "size_high") else None
        if low is None and high is None:
            low, high = keywords.crowd_size_from_phrase(cell(row, "participants"))
            if low is not None or high is not None:
                auto_coded += ["participants_low", "participants_high"]
        if low is not None and high is not None and low > high:
            raise RowProblem(
                gettext("%(low)s is larger than %(high)s.")
                % {"low": "size_low", "high": "size_high"},
                column="size_low",
                value=f"{low} > {high}",
            )

        police: list[str] = []
        for measure in split_list(cell(row, "police_measures").lower(), ";,"):
            police += taxonomy.CCC_POLICE_MEASURES.get(measure, ())
        if cell(row, "chemical_agents") in {"1", "yes", "true"}:
            police += taxonomy.CCC_CHEMICAL_AGENTS_RESPONSE
        if arrests:
            police += taxonomy.CCC_POLICE_MEASURES["arrests"]
        grievances = keywords.grievances_from_text(claims) or ["other"]
        auto_coded.append("grievances")

        sources = [
            source_from_text(cell(row, column))
            for column in row
            if column and SOURCE_COLUMN.match(column) and cell(row, column)
        ]
        event_type = cell(row, "type") or "Protest"
        title = cell(row, "title") or f"{event_type.capitalize()} in {locality or state}"
        key = cell(row, "id") or stable_key(
            date.isoformat(), locality, state, cell(row, "location_detail"), title
        )
        return Record(
            external_id=check_external_id(f"ccc:{key}", column="id"),
            fields={
                "title": title[:300],
                "description": claims,
                "date": date,
                "country": country,
                "admin1": state[:120],
                "city": city,
                "location_detail": (
                    cell(row, "location_detail") or (locality if city is None else "")
                )[:200],
                "location": point,
                "geo_precision": 1 if point is not None else None,
                "grievances": grievances,
                "police_responses": sorted(set(police), key=taxonomy.severity),
                "arrests": arrests,
                "injuries": injuries_total,
                "participants_low": low,
                "participants_high": high,
            },
            sources=sources,
            organizers=split_list(cell(row, "organizations"), ";"),
            auto_coded=sorted(set(auto_coded), key=auto_coded.index),
            placed=placed,
            place_name=locality,
            columns={
                "location": "lat",
                "city": "locality",
                "admin1": "state",
                "injuries": "injuries_crowd",
                "participants_low": "size_low",
                "participants_high": "size_high",
                "description": "claims",
            },
        )
