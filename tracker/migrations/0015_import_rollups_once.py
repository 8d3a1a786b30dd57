"""An import adds its events to the rollups once, at its end, instead of per statement.

The rollup triggers (0008 month cells, 0009 crowd histograms, 0011 year cells) cost per cell
a statement touches, not per row: 0.7 s for 2,000 events, 4.7 s for 90,000. An import
writes its new events batch by batch (so that PostgreSQL's index work overlaps with the
reading of the file), which would pay that price for every batch. So the INSERT triggers
now step aside while the transaction's `tracker.import_rollups` setting is `deferred` (set
with SET LOCAL by the import, never by anything else), and three functions add the events
gathered in the session's temporary table `tracker_import_new_events` to the same cells, in
one pass each, as the triggers would have for one statement of all of them. The import calls
them before its transaction commits; a rolled-back import leaves nothing to add.

UPDATE and DELETE triggers are unchanged.
"""

import importlib

from django.db import migrations

month = importlib.import_module("tracker.migrations.0008_rollups")
crowd = importlib.import_module("tracker.migrations.0009_crowd_histograms")
year = importlib.import_module("tracker.migrations.0011_coarse_rollups")

GUARD = "IF current_setting('tracker.import_rollups', true) = 'deferred' THEN RETURN NULL; END IF;"
IMPORTED = (
    "SELECT 1 AS sign, n.* FROM pg_temp.tracker_import_new_events n WHERE n.status = 'published'"
)


def _year_function(name: str, source: str) -> str:
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${year._body(source)}\n$$"
    )


def _replace(sql: str) -> str:
    return sql.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def _guarded(sql: str) -> str:
    return _replace(sql).replace("\nBEGIN\n", f"\nBEGIN\n    {GUARD}\n", 1)


def _adder(sql: str) -> str:
    """A trigger function's body as a plain function over the imported events."""
    return sql.replace("RETURNS trigger", "RETURNS void", 1).replace("RETURN NULL;", "RETURN;")


TRIGGER_FUNCTIONS = {
    "tracker_rollup_on_insert": month._function("tracker_rollup_on_insert", month.PUBLISHED_NEW),
    "tracker_crowd_on_insert": crowd._function("tracker_crowd_on_insert", crowd.PUBLISHED_NEW),
    "tracker_rollup_year_on_insert": _year_function(
        "tracker_rollup_year_on_insert", month.PUBLISHED_NEW
    ),
}
ADDERS = {
    "tracker_rollup_add_imported": month._function("tracker_rollup_add_imported", IMPORTED),
    "tracker_crowd_add_imported": crowd._function("tracker_crowd_add_imported", IMPORTED),
    "tracker_rollup_year_add_imported": _year_function(
        "tracker_rollup_year_add_imported", IMPORTED
    ),
}

FORWARD = [
    *(_guarded(sql) for sql in TRIGGER_FUNCTIONS.values()),
    *(_adder(sql) for sql in ADDERS.values()),
]
BACKWARD = [
    *(_replace(sql) for sql in TRIGGER_FUNCTIONS.values()),
    *(f"DROP FUNCTION IF EXISTS {name}()" for name in ADDERS),
]


class Migration(migrations.Migration):
    dependencies = [("tracker", "0014_import_placement_corrections_language")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
