# ruff: noqa: S608 - every identifier in the SQL below is a constant of this migration
"""Crowd medians with a category or city filter, read by small index-only scans.

A median is not a sum of cells, so the histograms of 0009 answer only filters of whole
months and countries; with a grievance, a police response or a city the medians are
sorted from the events. At a million events "Kazakhstan, labor or land" read 345,000
entries of the (country, date) covering index of 0010 and compared two arrays on each
(110 ms). Two stored columns hold the events' category masks of 0008 (bit i: the i-th
slug; bit 31 for a repeated or unknown one, so the bits of the known slugs stay exact for
"any of"), and three partial indexes hold only the events that report a crowd, with the
masks instead of the arrays: by date, by country and date, by city and date.
tracker.crowd reads them (crowd_medians_from_events).

The columns are not model fields (as the search document of 0016): PostgreSQL computes
them on every write, and no statement of the application names them.
"""

from django.db import migrations

CROWD = "status = 'published' AND (participants_low IS NOT NULL OR participants_high IS NOT NULL)"
MEASURES = "grievance_bits, response_bits, participants_low, participants_high"
INDEXES = {
    "event_pub_crowd_date_idx": f"(date) INCLUDE (country, city_id, {MEASURES})",
    "event_pub_crowd_country_idx": f"(country, date) INCLUDE (city_id, {MEASURES})",
    "event_pub_crowd_city_idx": f"(city_id, date) INCLUDE (country, {MEASURES})",
}

FORWARD = [
    "ALTER TABLE tracker_event "
    "ADD COLUMN grievance_bits integer "
    "GENERATED ALWAYS AS (tracker_grievance_mask(grievances)) STORED, "
    "ADD COLUMN response_bits integer "
    "GENERATED ALWAYS AS (tracker_police_mask(police_responses)) STORED",
    *(
        f"CREATE INDEX {name} ON tracker_event {columns} WHERE {CROWD}"
        for name, columns in INDEXES.items()
    ),
    "ANALYZE tracker_event",
]
BACKWARD = [
    *(f"DROP INDEX IF EXISTS {name}" for name in INDEXES),
    "ALTER TABLE tracker_event DROP COLUMN IF EXISTS grievance_bits, "
    "DROP COLUMN IF EXISTS response_bits",
]


class Migration(migrations.Migration):
    dependencies = [("tracker", "0017_allof_rollups")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
