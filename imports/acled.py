"""ACLED exports (acleddata.com "Data Export Tool" CSV), one row per event.

Only event_type "Protests" and "Riots" are taken; other rows are skipped with the reason.
The external id is "acled:<event_id_cnty>" and ACLED's `timestamp` is the record's version:
a re-import updates an event only when the row's timestamp is newer.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext

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
    parse_date,
    parse_int,
    parse_point,
    source_from_text,
    split_list,
)
from tracker import taxonomy

COLUMNS = (
    "event_id_cnty", "event_date", "year", "time_precision", "disorder_type", "event_type",
    "sub_event_type", "actor1", "assoc_actor_1", "inter1", "actor2", "assoc_actor_2", "inter2",
    "interaction", "civilian_targeting", "iso", "region", "country", "admin1", "admin2",
    "admin3", "location", "latitude", "longitude", "geo_precision", "source", "source_scale",
    "notes", "fatalities", "tags", "timestamp",
)  # fmt: skip
PROTEST_EVENT_TYPES = {"protests", "riots"}


class AcledImporter(Importer):
    format = "acled"
    label = "ACLED"
    required_columns = (
        "event_id_cnty", "event_date", "event_type", "sub_event_type", "country",
        "location", "latitude", "longitude",
    )  # fmt: skip

    def parse(self, row: dict[str, str], context: Context) -> Record:
        event_id = cell(row, "event_id_cnty")
        if not event_id:
            raise RowProblem(
                gettext("%(column)s is required.") % {"column": "event_id_cnty"},
                column="event_id_cnty",
            )
        external_id = check_external_id(f"acled:{event_id}", column="event_id_cnty")
        timestamp = cell(row, "timestamp")
        if timestamp and not re.fullmatch(r"[0-9]{1,40}", timestamp):
            # ACLED's version of the record, compared as a number with the stored one.
            raise RowProblem(
                gettext("%(column)s must be a whole number (seconds since 1970).")
                % {"column": "timestamp"},
                column="timestamp",
                value=timestamp,
            )
        event_type = cell(row, "event_type")
        if event_type.lower() not in PROTEST_EVENT_TYPES:
            raise RowSkipped(
                gettext(
                    '%(column)s "%(value)s" is not a protest event (only Protests and Riots '
                    "are imported)."
                )
                % {"column": "event_type", "value": event_type},
                column="event_type",
                value=event_type,
            )
        sub_event_type = cell(row, "sub_event_type")
        if sub_event_type.lower() not in taxonomy.ACLED_SUB_EVENT_TYPE:
            raise RowProblem(
                gettext("Unknown %(column)s for %(event_type)s. Known: %(known)s.")
                % {
                    "column": "sub_event_type",
                    "event_type": event_type,
                    "known": ", ".join(sorted(taxonomy.ACLED_SUB_EVENT_TYPE)),
                },
                column="sub_event_type",
                value=sub_event_type,
            )
        date = parse_date(row, "event_date")
        country = Countries.code(cell(row, "iso")) if cell(row, "iso") else None
        country = country or Countries.code(cell(row, "country"))
        if not country:
            raise RowProblem(
                gettext("Unknown country."), column="country", value=cell(row, "country")
            )
        point = parse_point(row, "latitude", "longitude")
        location = cell(row, "location")
        city, placed = context.gazetteer.place_how(location, point, country=country)
        geo_precision = parse_int(row, "geo_precision") if "geo_precision" in row else None
        if geo_precision is not None and geo_precision not in (1, 2, 3):
            raise RowProblem(
                gettext("%(column)s must be 1, 2 or 3.") % {"column": "geo_precision"},
                column="geo_precision",
                value=geo_precision,
            )
        time_precision = parse_int(row, "time_precision") if "time_precision" in row else None
        notes = (row.get("notes") or "").strip()
        tags = cell(row, "tags")
        auto_coded: list[str] = []

        police = list(taxonomy.ACLED_SUB_EVENT_TYPE[sub_event_type.lower()])
        arrests = keywords.arrests_from_text(notes)
        if arrests is not None:
            auto_coded.append("arrests")
        extra_police = set(keywords.police_responses_from_text(notes, arrests=arrests)) - set(
            police
        )
        if extra_police:
            police += sorted(extra_police)
            auto_coded.append("police_responses")
        low, high = keywords.crowd_size_from_text(tags)
        if low is None and high is None:
            low, high = keywords.crowd_size_from_text(notes)
        if low is not None or high is not None:
            auto_coded += ["participants_low", "participants_high"]
        grievances = keywords.grievances_from_text(notes) or ["other"]
        auto_coded.append("grievances")

        organizers = [
            name for name in split_list(cell(row, "assoc_actor_1"), ";")
            if not name.lower().startswith(("protesters", "rioters"))
        ]  # fmt: skip
        sources = [
            source_from_text(name, publisher=name[:200])
            for name in split_list(cell(row, "source"), ";")
        ]
        place = location if city is None or location.lower() != city.name.lower() else ""
        where = location or cell(row, "admin1") or cell(row, "country")
        fields = {
            "title": f"{sub_event_type} in {where}"[:300],
            "description": notes,
            "date": date,
            "date_precision": {2: "week", 3: "month"}.get(time_precision, "day"),
            "country": country,
            "admin1": cell(row, "admin1")[:120],
            "city": city,
            "location_detail": place[:200] if city is None else "",
            "location": point,
            "geo_precision": geo_precision if point is not None else None,
            "grievances": grievances,
            "police_responses": police,
            "arrests": arrests,
            "deaths": parse_int(row, "fatalities") if "fatalities" in row else None,
            "participants_low": low,
            "participants_high": high,
        }
        return Record(
            external_id=external_id,
            fields=fields,
            sources=sources,
            organizers=organizers,
            auto_coded=auto_coded,
            version=timestamp,
            placed=placed,
            place_name=location,
            columns={
                "id": "event_id_cnty",
                "date": "event_date",
                "location": "latitude",
                "deaths": "fatalities",
                "arrests": "notes",
                "participants_low": "tags",
                "participants_high": "tags",
                "grievances": "notes",
                "police_responses": "sub_event_type",
                "city": "location",
                "location_detail": "location",
            },
        )
