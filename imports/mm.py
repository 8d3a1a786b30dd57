"""Mass Mobilization (Clark & Regan) files: one row per protest, coded demands and state
responses. Rows with protest = 0 (a country-year without protests) are skipped."""

from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext, gettext_lazy

from imports import keywords
from imports.base import (
    Context,
    Countries,
    Importer,
    Record,
    RowProblem,
    RowSkipped,
    cell,
    check_external_id,
    parse_int,
    source_from_text,
    split_list,
    stable_key,
)
from tracker import taxonomy

PARTICIPANTS_CATEGORY: dict[str, tuple[int | None, int | None]] = {
    "50-99": (50, 99),
    "100-999": (100, 999),
    "1000-1999": (1000, 1999),
    "2000-4999": (2000, 4999),
    "5000-10000": (5000, 10000),
    ">10000": (10001, None),
}


class MassMobilizationImporter(Importer):
    format = "mm"
    label = gettext_lazy("Mass Mobilization")
    required_columns = ("country", "startday", "startmonth", "startyear", "location")

    def _date(self, row: dict, prefix: str, *, required: bool) -> dt.date | None:
        parts = [parse_int(row, f"{prefix}{p}") for p in ("year", "month", "day")]
        if all(p is None for p in parts) and not required:
            return None
        try:
            return dt.date(*parts)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise RowProblem(
                gettext("%(year)s/%(month)s/%(day)s do not make a date.")
                % {"year": f"{prefix}year", "month": f"{prefix}month", "day": f"{prefix}day"},
                column=f"{prefix}day",
                value="-".join(str(p) for p in parts),
            ) from None

    def parse(self, row: dict[str, str], context: Context) -> Record:
        if cell(row, "protest") == "0":
            raise RowSkipped(
                gettext("%(column)s = 0: a country-year without protests, not an event.")
                % {"column": "protest"},
                column="protest",
                value="0",
            )
        start = self._date(row, "start", required=True)
        end = self._date(row, "end", required=False)
        if end is not None and end < start:
            raise RowProblem(
                gettext("The end date is before the start date."),
                column="endday",
                value=end.isoformat(),
            )
        country = Countries.code(cell(row, "country"))
        if not country:
            raise RowProblem(
                gettext("Unknown country."), column="country", value=cell(row, "country")
            )
        location = cell(row, "location")
        city = None
        for name in [location, *split_list(location, ",;/")]:
            city = context.gazetteer.lookup(name, country=country)
            if city:
                break
        notes = (row.get("notes") or "").strip()
        auto_coded: list[str] = []

        grievances: list[str] = []
        for i in range(1, 5):
            demand = cell(row, f"protesterdemand{i}").lower()
            if demand and demand not in taxonomy.MM_PROTESTER_DEMAND:
                raise RowProblem(
                    gettext("Unknown protester demand."),
                    column=f"protesterdemand{i}",
                    value=demand,
                )
            grievances += taxonomy.MM_PROTESTER_DEMAND.get(demand, ())
        if not grievances:
            grievances = keywords.grievances_from_text(notes) or ["other"]
            auto_coded.append("grievances")
        police: list[str] = []
        for i in range(1, 8):
            response = cell(row, f"stateresponse{i}").lower()
            if response and response not in taxonomy.MM_STATE_RESPONSE:
                raise RowProblem(
                    gettext("Unknown state response."),
                    column=f"stateresponse{i}",
                    value=response,
                )
            police += taxonomy.MM_STATE_RESPONSE.get(response, ())

        low, high = PARTICIPANTS_CATEGORY.get(cell(row, "participants_category"), (None, None))
        if low is None and high is None:
            low, high = keywords.crowd_size_from_phrase(cell(row, "participants"))
            if low is not None or high is not None:
                auto_coded += ["participants_low", "participants_high"]
        arrests = keywords.arrests_from_text(notes)
        if arrests is not None:
            auto_coded.append("arrests")

        identity = cell(row, "protesteridentity")
        key = cell(row, "id") or stable_key(country, start.isoformat(), location, identity)
        description = notes if not identity else f"{notes}\n\nProtesters: {identity}".strip()
        return Record(
            external_id=check_external_id(f"mm:{key}", column="id"),
            fields={
                "title": f"Protest in {city.name if city else location}"[:300],
                "description": description,
                "date": start,
                "end_date": end if end and end != start else None,
                "country": country,
                "city": city,
                "location_detail": location[:200] if city is None else "",
                "grievances": sorted(set(grievances), key=taxonomy.GRIEVANCE_SLUGS.index),
                "police_responses": sorted(set(police), key=taxonomy.severity),
                "arrests": arrests,
                "participants_low": low,
                "participants_high": high,
            },
            sources=[source_from_text(s) for s in split_list(cell(row, "sources"), ";")],
            auto_coded=auto_coded,
            placed="name" if city is not None else "",
            place_name=location,
            columns={
                "date": "startday",
                "end_date": "endday",
                "city": "location",
                "grievances": "protesterdemand1",
                "participants_low": "participants",
            },
        )
