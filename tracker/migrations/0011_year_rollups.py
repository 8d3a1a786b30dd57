# ruff: noqa: S608 - every identifier and value in the SQL below is a constant of a migration
"""Year cells beside migration 0008's month cells, for the answers per year (the API's
default interval, the dashboard's first view): the same measures per year and place, and
per year, region and grievance or police-response slug. Kept in step with tracker_event
by triggers of their own, in the same transaction as every write, as the month cells.

Tables (cell key -> cells at the 1,000,000 benchmark events):
  tracker_rollup_place_year        year, country, admin1, city_id                 2.1 k
  tracker_rollup_term_region_year  vocabulary, slug, year, country, admin1, mult  3 k
(`year` is the first day of the year.) A by=city answer per year sums 2.1 k cells here
instead of 25 k month cells; the dashboard reads these five times a page.
"""

import importlib

from django.db import migrations

month_rollups = importlib.import_module("tracker.migrations.0008_rollups")

YEAR = ("year", "date NOT NULL")
COUNTRY, ADMIN1 = month_rollups.COUNTRY, month_rollups.ADMIN1
TABLES = {
    "tracker_rollup_place_year": (YEAR, COUNTRY, ADMIN1, ("city_id", "integer")),
    "tracker_rollup_term_region_year": (
        ("vocabulary", '"char" NOT NULL'),
        ("slug", "varchar(20) NOT NULL"),
        YEAR,
        COUNTRY,
        ADMIN1,
        ("mult", "integer NOT NULL"),
    ),
}
SIGNED = month_rollups.SIGNED


def _create(table: str, keys) -> list[str]:
    key_names = ", ".join(name for name, _ in keys)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in keys)
    return [
        f"CREATE TABLE {table} (\n    {columns},\n{month_rollups.MEASURE_COLUMNS}\n) "
        "WITH (fillfactor = 80)",
        f"CREATE UNIQUE INDEX {table}_cell ON {table} ({key_names}) NULLS NOT DISTINCT",
    ]


def _apply(source: str) -> str:
    """PL/pgSQL: add the signed rows of `source` to both year tables in one statement,
    then delete the cells left with no events (as migration 0008's _apply)."""
    sources = {
        "tracker_rollup_place_year": (
            f"SELECT s.year, s.country, s.admin1, s.city_id, {SIGNED} FROM src s "
            "GROUP BY 1, 2, 3, 4"
        ),
        "tracker_rollup_term_region_year": (
            f"SELECT t.vocabulary, t.slug, s.year, s.country, s.admin1, t.mult, {SIGNED} "
            f"FROM src s {month_rollups.TERMS} GROUP BY 1, 2, 3, 4, 5, 6"
        ),
    }
    ctes = [
        f"src AS MATERIALIZED (SELECT s.*, date_trunc('year', s.date)::date AS year "
        f"FROM ({source}) s)"
    ]
    names = {table: f"u{number}" for number, table in enumerate(TABLES)}
    for table, keys in TABLES.items():
        upsert = month_rollups._upsert(table, keys, sources[table])
        ctes.append(f"{names[table]} AS ({upsert})")
    collect = ", ".join(
        f"(SELECT array_agg(ctid) FROM {names[table]} WHERE events = 0)" for table in TABLES
    )
    statements = [f"WITH {', '.join(ctes)}\n    SELECT {collect} INTO zero0, zero1"]
    for number, table in enumerate(TABLES):
        statements.append(
            f"IF zero{number} IS NOT NULL THEN "
            f"DELETE FROM {table} WHERE ctid = ANY(zero{number}); END IF"
        )
    return ";\n    ".join(statements)


def _body(source: str) -> str:
    return f"""
DECLARE
    zero0 tid[];
    zero1 tid[];
BEGIN
    {_apply(source)};
    RETURN NULL;
END;"""


FUNCTIONS = {
    "tracker_rollup_year_on_insert": month_rollups.PUBLISHED_NEW,
    "tracker_rollup_year_on_update": (
        f"{month_rollups.PUBLISHED_NEW} UNION ALL {month_rollups.PUBLISHED_OLD}"
    ),
    "tracker_rollup_year_on_delete": month_rollups.PUBLISHED_OLD,
}
# Statement-level with transition tables, as migration 0008 explains.
TRIGGERS = [
    "CREATE TRIGGER tracker_rollup_year_insert AFTER INSERT ON tracker_event "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_rollup_year_on_insert()",
    "CREATE TRIGGER tracker_rollup_year_update AFTER UPDATE ON tracker_event "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_rollup_year_on_update()",
    "CREATE TRIGGER tracker_rollup_year_delete AFTER DELETE ON tracker_event "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_rollup_year_on_delete()",
    "CREATE TRIGGER tracker_rollup_year_truncate AFTER TRUNCATE ON tracker_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION tracker_rollup_year_on_truncate()",
]

FORWARD = [
    *(statement for table, keys in TABLES.items() for statement in _create(table, keys)),
    *(
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${_body(source)}\n$$"
        for name, source in FUNCTIONS.items()
    ),
    "CREATE FUNCTION tracker_rollup_year_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$"
    f"\nBEGIN\n    TRUNCATE {', '.join(TABLES)};\n    RETURN NULL;\nEND;\n$$",
    *TRIGGERS,
    # The backfill, with writes locked out so that no event is missed or counted twice.
    "LOCK TABLE tracker_event IN SHARE MODE",
    "DO $$"
    + _body("SELECT 1 AS sign, e.* FROM tracker_event e WHERE e.status = 'published'").replace(
        "RETURN NULL;", ""
    )
    + "\n$$",
    *(f"ANALYZE {table}" for table in TABLES),
]
BACKWARD = [
    *(
        f"DROP TRIGGER IF EXISTS tracker_rollup_year_{kind} ON tracker_event"
        for kind in ("insert", "update", "delete", "truncate")
    ),
    *(
        f"DROP FUNCTION IF EXISTS {name}()"
        for name in (*FUNCTIONS, "tracker_rollup_year_on_truncate")
    ),
    *(f"DROP TABLE IF EXISTS {table}" for table in TABLES),
]


class Migration(migrations.Migration):
    dependencies = [("tracker", "0010_event_count_indexes")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
