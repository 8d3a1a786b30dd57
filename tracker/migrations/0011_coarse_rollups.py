# ruff: noqa: S608 - every identifier and value in the SQL below is a constant of a migration
"""Coarser cells beside migration 0008's: the same measures per year (the API's default
interval, the dashboard's first view), and per month by country alone (the filters that
name no region or city), so that those answers sum thousands of cells, not tens of
thousands. Kept in step with tracker_event by statement triggers of their own, in the same
transaction as every write, as the cells of 0008; tracker.rollups reads the coarsest table
that answers a filter exactly.

Tables (cell key -> cells at the 1,000,000 benchmark events; `year` is its first day):
  tracker_rollup_place_year        year, country, admin1, city_id                  2.1 k
  tracker_rollup_term_year         vocabulary, slug, year, country, admin1,
                                   city_id, mult                                    39 k
  tracker_rollup_term_region_year  vocabulary, slug, year, country, admin1, mult   2.9 k
  tracker_rollup_gset_year         gmask, year, country                              8 k
  tracker_rollup_gset_region_year  gmask, year, country, admin1                     32 k
  tracker_rollup_rset_year         rmask, year, country                              1 k
  tracker_rollup_rset_region_year  rmask, year, country, admin1                    4.6 k
  tracker_rollup_grset_year        gmask, rmask, year, country                     109 k
  tracker_rollup_grset_all_year    gmask, rmask, year (every country)               39 k
  tracker_rollup_place_country     month, country                                  0.4 k
  tracker_rollup_term_country      vocabulary, slug, month, country, mult            8 k
A by=city answer per year sums 2.1 k cells instead of 25 k month cells; "any of two
grievances" per police response 17 k set cells instead of 106 k; the dashboard's monthly
totals 420 cells instead of 25 k.
"""

import importlib

from django.db import migrations

month_rollups = importlib.import_module("tracker.migrations.0008_rollups")

YEAR = ("year", "date NOT NULL")
MONTH = month_rollups.MONTH
COUNTRY, ADMIN1 = month_rollups.COUNTRY, month_rollups.ADMIN1
GMASK, RMASK = month_rollups.GMASK, month_rollups.RMASK
CITY = ("city_id", "integer")
VOCABULARY = ("vocabulary", '"char" NOT NULL')
SLUG = ("slug", "varchar(20) NOT NULL")
MULT = ("mult", "integer NOT NULL")
# The month tables of migration 0008 at year grain (and the set cells of both vocabularies
# over every country, for the filters that name no country), then months by country.
TABLES = {
    "tracker_rollup_place_year": (YEAR, COUNTRY, ADMIN1, CITY),
    "tracker_rollup_term_year": (VOCABULARY, SLUG, YEAR, COUNTRY, ADMIN1, CITY, MULT),
    "tracker_rollup_term_region_year": (VOCABULARY, SLUG, YEAR, COUNTRY, ADMIN1, MULT),
    "tracker_rollup_gset_year": (GMASK, YEAR, COUNTRY),
    "tracker_rollup_gset_region_year": (GMASK, YEAR, COUNTRY, ADMIN1),
    "tracker_rollup_rset_year": (RMASK, YEAR, COUNTRY),
    "tracker_rollup_rset_region_year": (RMASK, YEAR, COUNTRY, ADMIN1),
    "tracker_rollup_grset_year": (GMASK, RMASK, YEAR, COUNTRY),
    "tracker_rollup_grset_all_year": (GMASK, RMASK, YEAR),
    # Months by country alone, for the filters that name no region or city.
    "tracker_rollup_place_country": (MONTH, COUNTRY),
    "tracker_rollup_term_country": (VOCABULARY, SLUG, MONTH, COUNTRY, MULT),
}
# Read paths besides the cell keys, as in migration 0008.
INDEXES = {
    "tracker_rollup_term_year": ["(city_id, year)"],
    "tracker_rollup_gset_region_year": ["(upper(admin1), year)"],
    "tracker_rollup_rset_region_year": ["(upper(admin1), year)"],
}
SIGNED = month_rollups.SIGNED


def _create(table: str, keys) -> list[str]:
    key_names = ", ".join(name for name, _ in keys)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in keys)
    statements = [
        f"CREATE TABLE {table} (\n    {columns},\n{month_rollups.MEASURE_COLUMNS}\n) "
        "WITH (fillfactor = 80)",
        f"CREATE UNIQUE INDEX {table}_cell ON {table} ({key_names}) NULLS NOT DISTINCT",
    ]
    for number, columns in enumerate(INDEXES.get(table, [])):
        statements.append(f"CREATE INDEX {table}_read{number} ON {table} {columns}")
    return statements


def _apply(source: str) -> str:
    """PL/pgSQL: add the signed rows of `source` to every year table in one statement,
    then delete the cells left with no events (as migration 0008's _apply)."""
    sources = {}
    for table, keys in TABLES.items():
        names = [name for name, _ in keys]
        if names[0] == "vocabulary":
            continue
        columns = ", ".join(f"s.{name}" for name in names)
        numbers = ", ".join(str(number) for number in range(1, len(names) + 1))
        sources[table] = f"SELECT {columns}, {SIGNED} FROM src s GROUP BY {numbers}"
    sources["tracker_rollup_term_year"] = "SELECT * FROM term_delta"
    sources["tracker_rollup_term_country"] = (
        f"SELECT t.vocabulary, t.slug, s.month, s.country, t.mult, {SIGNED} "
        f"FROM src s {month_rollups.TERMS} GROUP BY 1, 2, 3, 4, 5"
    )
    # The region term cells are sums of the city term cells (fewer rows to group).
    term_keys = ", ".join(name for name, _ in TABLES["tracker_rollup_term_region_year"])
    sums = ", ".join(
        f"sum({m})::{month_rollups.MEASURE_TYPES[m]} AS {m}" for m in month_rollups.MEASURES
    )
    sources["tracker_rollup_term_region_year"] = (
        f"SELECT {term_keys}, {sums} FROM term_delta GROUP BY {term_keys}"
    )
    ctes = [
        "src AS MATERIALIZED (SELECT s.*, date_trunc('year', s.date)::date AS year, "
        "date_trunc('month', s.date)::date AS month, "
        "tracker_grievance_mask(s.grievances) AS gmask, "
        f"tracker_police_mask(s.police_responses) AS rmask FROM ({source}) s)",
        "term_delta AS MATERIALIZED ("
        "SELECT t.vocabulary, t.slug, s.year, s.country, s.admin1, s.city_id, t.mult, "
        f"{SIGNED} FROM src s {month_rollups.TERMS} GROUP BY 1, 2, 3, 4, 5, 6, 7)",
    ]
    names = {table: f"u{number}" for number, table in enumerate(TABLES)}
    for table, keys in TABLES.items():
        upsert = month_rollups._upsert(table, keys, sources[table])
        ctes.append(f"{names[table]} AS ({upsert})")
    collect = ", ".join(
        f"(SELECT array_agg(ctid) FROM {names[table]} WHERE events = 0)" for table in TABLES
    )
    variables = ", ".join(f"zero{number}" for number in range(len(TABLES)))
    statements = [f"WITH {', '.join(ctes)}\n    SELECT {collect} INTO {variables}"]
    for number, table in enumerate(TABLES):
        statements.append(
            f"IF zero{number} IS NOT NULL THEN "
            f"DELETE FROM {table} WHERE ctid = ANY(zero{number}); END IF"
        )
    return ";\n    ".join(statements)


def _body(source: str) -> str:
    variables = "\n    ".join(f"zero{number} tid[];" for number in range(len(TABLES)))
    return f"""
DECLARE
    {variables}
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
