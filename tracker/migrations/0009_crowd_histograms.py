# ruff: noqa: S608 - every identifier and value in the SQL below is a constant of this file
"""Histograms of the crowd estimates of published events, per month, kept in step with
tracker_event by triggers in the same transaction as every write (as the rollups of
migration 0008), so that the dashboard's medians need not sort the events themselves.
tracker.crowd reads them.

A median is not a sum of cells' medians, but it is a function of the histogram: how many
events reported each value. The histograms of months (and countries) add up, so the
median of any set of whole months and countries is exact from these cells.

Tables (cell key -> cells at the 1,000,000 benchmark events, 5 countries, 84 months):
  tracker_crowd_low        month, country, value      78 k   (participants_low)
  tracker_crowd_high       month, country, value     146 k   (participants_high)
  tracker_crowd_low_all    month, value               16 k   (every country: the
  tracker_crowd_high_all   month, value               40 k    unfiltered dashboard)
`events` is how many published events of the cell reported that value; an event without
the estimate (NULL) is in no cell of that side. Cells with no events are deleted.
Region and city variants would hold 184 k / 440 k cells for the low side alone, more
than the events of most filters by place; those filters read the events.
"""

from django.db import migrations

SIDES = {"low": "participants_low", "high": "participants_high"}
# (table, column of tracker_event, key columns with their types)
TABLES = {
    **{
        f"tracker_crowd_{side}": (
            column,
            (
                ("month", "date NOT NULL"),
                ("country", "varchar(2) NOT NULL"),
                ("value", "integer NOT NULL"),
            ),
        )
        for side, column in SIDES.items()
    },
    **{
        f"tracker_crowd_{side}_all": (
            column,
            (("month", "date NOT NULL"), ("value", "integer NOT NULL")),
        )
        for side, column in SIDES.items()
    },
}


def _create(table: str, keys) -> list[str]:
    key_names = ", ".join(name for name, _ in keys)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in keys)
    return [
        # Room on each page for the new version of an updated cell (a HOT update: no index
        # covers `events`).
        f"CREATE TABLE {table} (\n    {columns},\n    events integer NOT NULL\n) "
        f"WITH (fillfactor = 80)",
        # The upserts' conflict target, and the readers' order (month, [country,] value).
        f"CREATE UNIQUE INDEX {table}_cell ON {table} ({key_names})",
    ]


def _delta(column: str, keys) -> str:
    """The signed change of each cell (keys) of the histogram of `column`, from `src`."""
    names = [name for name, _ in keys]
    select = ", ".join(f"s.{column} AS value" if name == "value" else f"s.{name}" for name in names)
    numbers = ", ".join(str(number) for number in range(1, len(names) + 1))
    return (
        f"SELECT {select}, sum(s.sign)::int AS events FROM src s "
        f"WHERE s.{column} IS NOT NULL GROUP BY {numbers}"
    )


def _upsert(table: str, column: str, keys) -> str:
    key_names = ", ".join(name for name, _ in keys)
    return (
        f"INSERT INTO {table} ({key_names}, events)\n"
        f"    SELECT {key_names}, events FROM ({_delta(column, keys)}) d\n"
        # Deltas that cancel out (an edit of the title, a re-save) write nothing; the rest
        # in key order, so that two writers lock shared cells in one order.
        f"    WHERE events <> 0\n"
        f"    ORDER BY {key_names}\n"
        f"    ON CONFLICT ({key_names}) DO UPDATE SET events = {table}.events + excluded.events\n"
        f"    RETURNING ctid, events"
    )


def _apply(source: str) -> str:
    """PL/pgSQL: add the signed rows of `source` (sign, and tracker_event's columns) to
    every histogram, in one statement (the transition table is read once), then delete
    the cells brought to zero by TID."""
    source_rows = (
        "SELECT s.sign, date_trunc('month', s.date::timestamp)::date AS month, s.country, "
        f"s.participants_low, s.participants_high FROM ({source}) s "
        "WHERE s.participants_low IS NOT NULL OR s.participants_high IS NOT NULL"
    )
    names = {table: f"u{number}" for number, table in enumerate(TABLES)}
    ctes = [f"src AS MATERIALIZED ({source_rows})"]
    for table, (column, keys) in TABLES.items():
        ctes.append(f"{names[table]} AS ({_upsert(table, column, keys)})")
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

# The backfill, with tracker_event locked against writes so that no event is missed or
# counted twice; the cells in key order. The all-country cells are sums of the others.
BACKFILL = [
    "LOCK TABLE tracker_event IN SHARE MODE",
    *(
        f"INSERT INTO tracker_crowd_{side} (month, country, value, events) "
        f"SELECT date_trunc('month', e.date::timestamp)::date, e.country, e.{column}, count(*) "
        f"FROM tracker_event e WHERE e.status = 'published' AND e.{column} IS NOT NULL "
        f"GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        for side, column in SIDES.items()
    ),
    *(
        f"INSERT INTO tracker_crowd_{side}_all (month, value, events) "
        f"SELECT month, value, sum(events) FROM tracker_crowd_{side} GROUP BY 1, 2 ORDER BY 1, 2"
        for side in SIDES
    ),
    *(f"ANALYZE {table}" for table in TABLES),
]

FORWARD = [
    *(statement for table, (_, keys) in TABLES.items() for statement in _create(table, keys)),
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
]


class Migration(migrations.Migration):
    dependencies = [("tracker", "0008_rollups")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
