# ruff: noqa: S608 - every identifier and value in the SQL below is a constant of a migration
"""Cells of "events with all of these categories", by city, for the filters with several
grievances and/or police responses that the set tables of 0008 and 0011 cannot answer: by
city, in a city, or in a region with both vocabularies.

A set table keyed by city would be as large as the events (each event its own set, once a
city and a month split them). These cells key on a subset instead: an event counts once in
the cell of every non-empty subset of its categories with at most MAX_TERMS members, so
that "any of G and any of R" is an alternating sum over the subsets of G and R
(inclusion-exclusion):

    any(G) and any(R) = sum over non-empty S in G, T in R of (-1)^(|S|+|T|) all(S + T)
    any(G)            = sum over non-empty S in G of (-1)^(|S|+1) all(S)

A cell holds the measures of the events with all of its subset S times (-1)^|S| (so
"events" is negative for a subset of odd size), which makes the first sum a plain sum of
cells and the second its negation. A filter naming at most MAX_TERMS categories needs
only subsets of that size, all of them here, so the sum is exact; tracker.rollups reads them for such filters and leaves longer
ones to the events. The subset is one integer, `cmask`: the grievance bits of 0008 in bits
0-10 and the police-response bits in 11-18 (an unknown slug, which no filter can name,
has no bit; a repeated one counts once, as `&&` does).

Tables (cell key -> cells at the 1,000,000 benchmark events):
  tracker_rollup_allof       cmask, month, country, admin1, city_id
  tracker_rollup_allof_year  cmask, year, country, admin1, city_id
The cells of one subset lead (a read takes the few subsets of a filter: 3 for two
grievances and one response, times the places and months). Statement triggers keep them
in step in the same transaction as every write, as 0011's; an import adds its events once
at its end (tracker_rollup_allof_add_imported, as 0015).
"""

import importlib

from django.db import migrations

month = importlib.import_module("tracker.migrations.0008_rollups")
year = importlib.import_module("tracker.migrations.0011_coarse_rollups")
imports = importlib.import_module("tracker.migrations.0015_import_rollups_once")

MAX_TERMS = 4  # tracker.rollups.ALLOF_MAX_TERMS (a test holds them equal)
POLICE_SHIFT = 11  # len(GRIEVANCE_SLUGS): the first police-response bit of a cmask
CMASK = ("cmask", "integer NOT NULL")
CITY = ("city_id", "integer")
TABLES = {
    "tracker_rollup_allof": (CMASK, month.MONTH, month.COUNTRY, month.ADMIN1, CITY),
    "tracker_rollup_allof_year": (CMASK, year.YEAR, month.COUNTRY, month.ADMIN1, CITY),
}
assert len(month.GRIEVANCE_SLUGS) == POLICE_SHIFT
assert POLICE_SHIFT + len(month.POLICE_RESPONSE_SLUGS) <= 31

# Every non-empty subset of the bits of `m` with at most MAX_TERMS (= 4) of them, and its
# sign (-1)^(its size).
_BITS = POLICE_SHIFT + len(month.POLICE_RESPONSE_SLUGS)
SUBSETS_FUNCTION = f"""
CREATE FUNCTION tracker_allof_subsets(m integer, OUT cmask integer, OUT sign integer)
RETURNS SETOF record LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH b AS MATERIALIZED (
        SELECT i, 1 << i AS v FROM generate_series(0, {_BITS - 1}) AS i WHERE m & (1 << i) <> 0)
    SELECT b1.v, -1 FROM b b1
    UNION ALL SELECT b1.v | b2.v, 1 FROM b b1 JOIN b b2 ON b2.i > b1.i
    UNION ALL SELECT b1.v | b2.v | b3.v, -1 FROM b b1 JOIN b b2 ON b2.i > b1.i
        JOIN b b3 ON b3.i > b2.i
    UNION ALL SELECT b1.v | b2.v | b3.v | b4.v, 1 FROM b b1 JOIN b b2 ON b2.i > b1.i
        JOIN b b3 ON b3.i > b2.i JOIN b b4 ON b4.i > b3.i
$$"""
assert MAX_TERMS == 4  # the function above lists subsets of 1 to 4 bits

# The event's categories as one mask (bit 31 of 0008's masks, "repeated or unknown", off).
EVENT_CMASK = (
    "((tracker_grievance_mask(s.grievances) & 2147483647) | "
    f"((tracker_police_mask(s.police_responses) & 2147483647) << {POLICE_SHIFT}))"
)


def _apply(source: str) -> str:
    """PL/pgSQL: add the signed rows of `source` to both tables in one statement, then
    delete the cells left with no events (as 0008's and 0011's)."""
    keys = ", ".join(name for name, _ in TABLES["tracker_rollup_allof_year"])
    sums = ", ".join(f"sum({m})::{month.MEASURE_TYPES[m]} AS {m}" for m in month.MEASURES)
    sources = {
        "tracker_rollup_allof": "SELECT * FROM allof_delta",
        "tracker_rollup_allof_year": (
            f"SELECT cmask, date_trunc('year', month)::date AS year, country, admin1, city_id, "
            f"{sums} FROM allof_delta GROUP BY {keys}"
        ),
    }
    ctes = [
        f"src AS MATERIALIZED (SELECT s.*, date_trunc('month', s.date)::date AS month, "
        f"{EVENT_CMASK} AS emask FROM ({source}) s)",
        # Each event's row once per subset, its sign times the subset's: the cells hold
        # (-1)^|S| times the measures of the events with all of S.
        "allof_delta AS MATERIALIZED ("
        "SELECT s.cmask, s.month, s.country, s.admin1, s.city_id, "
        f"{month.SIGNED} FROM (SELECT x.cmask, s.month, s.country, s.admin1, s.city_id, "
        "s.sign * x.sign AS sign, s.arrests, s.injuries, s.deaths, s.participants_low, "
        "s.participants_high, s.police_responses FROM src s "
        "CROSS JOIN LATERAL tracker_allof_subsets(s.emask) AS x) s GROUP BY 1, 2, 3, 4, 5)",
    ]
    names = {table: f"u{number}" for number, table in enumerate(TABLES)}
    for table, table_keys in TABLES.items():
        ctes.append(f"{names[table]} AS ({month._upsert(table, table_keys, sources[table])})")
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


def _function(name: str, source: str, *, guarded: bool = False) -> str:
    body = _body(source)
    if guarded:  # an import adds its events at its end (migration 0015)
        body = body.replace("\nBEGIN\n", f"\nBEGIN\n    {imports.GUARD}\n", 1)
    return f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}\n$$"


FUNCTIONS = [
    _function("tracker_rollup_allof_on_insert", month.PUBLISHED_NEW, guarded=True),
    _function(
        "tracker_rollup_allof_on_update", f"{month.PUBLISHED_NEW} UNION ALL {month.PUBLISHED_OLD}"
    ),
    _function("tracker_rollup_allof_on_delete", month.PUBLISHED_OLD),
    imports._adder(_function("tracker_rollup_allof_add_imported", imports.IMPORTED)),
    "CREATE FUNCTION tracker_rollup_allof_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$"
    f"\nBEGIN\n    TRUNCATE {', '.join(TABLES)};\n    RETURN NULL;\nEND;\n$$",
]
TRIGGERS = [
    "CREATE TRIGGER tracker_rollup_allof_insert AFTER INSERT ON tracker_event "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_rollup_allof_on_insert()",
    "CREATE TRIGGER tracker_rollup_allof_update AFTER UPDATE ON tracker_event "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_rollup_allof_on_update()",
    "CREATE TRIGGER tracker_rollup_allof_delete AFTER DELETE ON tracker_event "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_rollup_allof_on_delete()",
    "CREATE TRIGGER tracker_rollup_allof_truncate AFTER TRUNCATE ON tracker_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION tracker_rollup_allof_on_truncate()",
]

FORWARD = [
    SUBSETS_FUNCTION,
    *(statement for table, keys in TABLES.items() for statement in year._create(table, keys)),
    *FUNCTIONS,
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
        f"DROP TRIGGER IF EXISTS tracker_rollup_allof_{kind} ON tracker_event"
        for kind in ("insert", "update", "delete", "truncate")
    ),
    *(
        f"DROP FUNCTION IF EXISTS tracker_rollup_allof_{name}()"
        for name in ("on_insert", "on_update", "on_delete", "on_truncate", "add_imported")
    ),
    *(f"DROP TABLE IF EXISTS {table}" for table in TABLES),
    "DROP FUNCTION IF EXISTS tracker_allof_subsets(integer)",
]


class Migration(migrations.Migration):
    dependencies = [("tracker", "0016_search")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
