# ruff: noqa: S608 - every identifier and value in the SQL below is a constant of this file
"""Histograms of the crowd estimates of published events, per month, kept in step with
tracker_event by triggers in the same transaction as every write (as the rollups of
migration 0008), so that the dashboard's medians need not sort the events themselves.
tracker.crowd reads them.

A median is not a sum of cells' medians, but it is a function of the histogram: how many
events reported each value. The histograms of months (and countries) add up, so the
median of any set of whole months and countries is exact from these cells.

Two levels, so that a reader does not walk every value of every month: the bucket
tables count the events per bucket of values (tracker_crowd_bucket(): the value itself
below 16, then 8 buckets an octave; non-decreasing in the value), which finds the one or
two buckets that hold the middle positions of a period; only those buckets' values are
then read from the value tables (their `bucket` column and index).

Tables (cell key -> cells at the 1,000,000 benchmark events, 5 countries, 84 months):
  tracker_crowd_low               country, month, value    78 k  (bucket column, index)
  tracker_crowd_high              country, month, value   146 k
  tracker_crowd_low_all           month, value             16 k  (every country)
  tracker_crowd_high_all          month, value             40 k
  tracker_crowd_low_bucket        country, month, bucket   17 k
  tracker_crowd_high_bucket       country, month, bucket   15 k
  tracker_crowd_low_bucket_all    month, bucket           3.4 k
  tracker_crowd_high_bucket_all   month, bucket           3.7 k
`events` is how many published events of the cell reported that value (or a value of
that bucket); an event without the estimate (NULL) is in no cell of that side. Cells with
no events are deleted. Region and city variants would hold 184 k / 440 k value cells for
the low side alone; those filters read the events.
"""

from django.db import migrations

SIDES = {"low": "participants_low", "high": "participants_high"}
MONTH = ("month", "date NOT NULL")
COUNTRY = ("country", "varchar(2) NOT NULL")
VALUE = ("value", "integer NOT NULL")
BUCKET = ("bucket", "integer NOT NULL")
# table -> (side, columns with their types, the cell key, the readers' index or None)
TABLES = {}
for _side in SIDES:
    TABLES[f"tracker_crowd_{_side}"] = (
        _side,
        (MONTH, COUNTRY, VALUE, BUCKET),
        ("country", "month", "value"),
        "(bucket, country, month)",
    )
    TABLES[f"tracker_crowd_{_side}_all"] = (
        _side,
        (MONTH, VALUE, BUCKET),
        ("month", "value"),
        "(bucket, month)",
    )
    TABLES[f"tracker_crowd_{_side}_bucket"] = (
        _side,
        (MONTH, COUNTRY, BUCKET),
        ("country", "month", "bucket"),
        None,
    )
    TABLES[f"tracker_crowd_{_side}_bucket_all"] = (
        _side,
        (MONTH, BUCKET),
        ("month", "bucket"),
        None,
    )

# The bucket of a value: the value itself below 16, above it the power of two and the next
# three bits (8 buckets an octave: 100 and 103 share one, 96..103). Non-decreasing in the
# value, so the events of a bucket are all above those of the buckets before it.
BUCKET_FUNCTION = """
CREATE FUNCTION tracker_crowd_bucket(v integer) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN v < 16 THEN v
                ELSE (32 - position(B'1' IN v::bit(32))) * 8
                     + ((v >> (29 - position(B'1' IN v::bit(32)))) & 7)
           END
$$"""


def _create(table: str, columns, key, read) -> list[str]:
    definitions = ",\n    ".join(f"{name} {kind}" for name, kind in columns)
    statements = [
        # Room on each page for the new version of an updated cell (a HOT update: no index
        # covers `events`).
        f"CREATE TABLE {table} (\n    {definitions},\n    events integer NOT NULL\n) "
        "WITH (fillfactor = 80)",
        # The upserts' conflict target, and the readers' order (month, [country,] value).
        f"CREATE UNIQUE INDEX {table}_cell ON {table} ({', '.join(key)})",
    ]
    if read:
        statements.append(f"CREATE INDEX {table}_read ON {table} {read}")
    return statements


def _delta(side: str, columns) -> str:
    """The signed change of each cell of a histogram of `side`, from the rows of `src`."""
    names = [name for name, _ in columns]
    expressions = {"value": f"s.{side} AS value", "bucket": f"s.{side}_bucket AS bucket"}
    select = ", ".join(expressions.get(name, f"s.{name}") for name in names)
    numbers = ", ".join(str(number) for number in range(1, len(names) + 1))
    return (
        f"SELECT {select}, sum(s.sign)::int AS events FROM src s "
        f"WHERE s.{side} IS NOT NULL GROUP BY {numbers}"
    )


def _upsert(table: str) -> str:
    side, columns, key, _ = TABLES[table]
    names = ", ".join(name for name, _ in columns)
    key_names = ", ".join(key)
    return (
        f"INSERT INTO {table} ({names}, events)\n"
        f"    SELECT {names}, events FROM ({_delta(side, columns)}) d\n"
        # Deltas that cancel out (an edit of the title, a re-save) write nothing; the rest
        # in key order, so that two writers lock shared cells in one order.
        "    WHERE events <> 0\n"
        f"    ORDER BY {key_names}\n"
        f"    ON CONFLICT ({key_names}) DO UPDATE SET events = {table}.events + excluded.events\n"
        "    RETURNING ctid, events"
    )


def _apply(source: str) -> str:
    """PL/pgSQL: add the signed rows of `source` (sign, and tracker_event's columns) to
    every histogram, in one statement (the transition table is read once), then delete
    the cells brought to zero by TID."""
    sides = ", ".join(
        f"s.{column} AS {side}, tracker_crowd_bucket(s.{column}) AS {side}_bucket"
        for side, column in SIDES.items()
    )
    source_rows = (
        f"SELECT s.sign, date_trunc('month', s.date::timestamp)::date AS month, s.country, "
        f"{sides} FROM ({source}) s "
        "WHERE s.participants_low IS NOT NULL OR s.participants_high IS NOT NULL"
    )
    names = {table: f"u{number}" for number, table in enumerate(TABLES)}
    ctes = [f"src AS MATERIALIZED ({source_rows})"]
    for table in TABLES:
        ctes.append(f"{names[table]} AS ({_upsert(table)})")
    collect = ", ".join(
        f"(SELECT array_agg(ctid) FROM {names[table]} WHERE events = 0)" for table in TABLES
    )
    variables = ", ".join(f"zero{number}" for number in range(len(TABLES)))
    statements = [f"WITH {', '.join(ctes)}\n    SELECT {collect} INTO {variables}"]
    for number, table in enumerate(TABLES):
        statements.append(
            f"IF zero{number} IS NOT NULL THEN DELETE FROM {table} WHERE ctid = ANY(zero{number}); END IF"
        )
    return ";\n    ".join(statements)


PUBLISHED_NEW = "SELECT 1 AS sign, n.* FROM new_rows n WHERE n.status = 'published'"
PUBLISHED_OLD = "SELECT -1 AS sign, o.* FROM old_rows o WHERE o.status = 'published'"
_VARIABLES = "\n    ".join(f"zero{number} tid[];" for number in range(len(TABLES)))


def _function(name: str, source: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    {_VARIABLES}
BEGIN
    {_apply(source)};
    RETURN NULL;
END;
$$"""


# Statement-level with transition tables, as the rollups (see migration 0008 for why): an
# import's thousands of rows touch each cell once. An UPDATE subtracts the old published
# rows and adds the new ones, so edits of an estimate, of the date or the country, and
# status changes all net out per cell.
FUNCTIONS = {
    "tracker_crowd_on_insert": PUBLISHED_NEW,
    "tracker_crowd_on_update": f"{PUBLISHED_NEW} UNION ALL {PUBLISHED_OLD}",
    "tracker_crowd_on_delete": PUBLISHED_OLD,
}
TRUNCATE_FUNCTION = f"""
CREATE FUNCTION tracker_crowd_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE {", ".join(TABLES)};
    RETURN NULL;
END;
$$"""
TRIGGERS = [
    "CREATE TRIGGER tracker_crowd_insert AFTER INSERT ON tracker_event "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_crowd_on_insert()",
    "CREATE TRIGGER tracker_crowd_update AFTER UPDATE ON tracker_event "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_crowd_on_update()",
    "CREATE TRIGGER tracker_crowd_delete AFTER DELETE ON tracker_event "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_crowd_on_delete()",
    "CREATE TRIGGER tracker_crowd_truncate AFTER TRUNCATE ON tracker_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION tracker_crowd_on_truncate()",
]

# The backfill: the same statements over today's events, in a DO block (its variables),
# with tracker_event locked against writes so that no event is missed or counted twice.
BACKFILL = [
    "LOCK TABLE tracker_event IN SHARE MODE",
    f"""DO $$
DECLARE
    {_VARIABLES}
BEGIN
    {_apply("SELECT 1 AS sign, e.* FROM tracker_event e WHERE e.status = 'published'")};
END;
$$""",
    *(f"ANALYZE {table}" for table in TABLES),
]

FORWARD = [
    BUCKET_FUNCTION,
    *(
        statement
        for table, (_, columns, key, read) in TABLES.items()
        for statement in _create(table, columns, key, read)
    ),
    *(_function(name, source) for name, source in FUNCTIONS.items()),
    TRUNCATE_FUNCTION,
    *TRIGGERS,
    *BACKFILL,
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS tracker_crowd_insert ON tracker_event",
    "DROP TRIGGER IF EXISTS tracker_crowd_update ON tracker_event",
    "DROP TRIGGER IF EXISTS tracker_crowd_delete ON tracker_event",
    "DROP TRIGGER IF EXISTS tracker_crowd_truncate ON tracker_event",
    *(f"DROP FUNCTION IF EXISTS {name}()" for name in (*FUNCTIONS, "tracker_crowd_on_truncate")),
    *(f"DROP TABLE IF EXISTS {table}" for table in TABLES),
    "DROP FUNCTION IF EXISTS tracker_crowd_bucket(integer)",
]


class Migration(migrations.Migration):
    dependencies = [("tracker", "0008_rollups")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
