# ruff: noqa: S608 - every identifier and value in the SQL below is a constant of this file
"""Rollup tables for the trends: counts of published events per month and place (and per
grievance / police response, and per combination of both), kept in step with
tracker_event by triggers in the same transaction as every write, so an answer read from
them is never stale. tracker.rollups reads them; see its docstring for what each answers.

Every table holds the same measures for its cell:
  events, arrests (sum), events_with_arrests (arrests > 0), events_with_force
  (police_responses && FORCE, tracker.taxonomy.FORCE_RESPONSES), injuries, deaths,
  participants_low, participants_high (sums; NULL counts 0), events_with_participants
  (participants_low or participants_high given).
and a month column (the first day of the month): years and quarters are sums of months.

Tables (cell key -> about how many cells at 1,000,000 benchmark events):
  tracker_rollup_place       month, country, admin1, city_id                     ~25 k
  tracker_rollup_term        month, country, admin1, city_id, vocabulary, slug,  ~420 k
                             mult
  tracker_rollup_term_region month, country, admin1, vocabulary, slug, mult      ~35 k
  tracker_rollup_combo       month, country, grievances, police_responses        ~365 k
In the term tables an event counts once under each distinct slug of its grievances
(vocabulary 'g') or police responses ('p'); `mult` is how often the slug occurs in the
event's array (1 unless an array repeats a slug), so that a filter (`&&`, an event once)
sums `events` and a by= grouping (unnest, once per occurrence) sums `events * mult`.
The combo table keys on the two arrays as stored, so it answers "any of several slugs"
and "grievance and police response together" exactly (an event is in exactly one cell).
"""

from django.db import migrations

FORCE = "'{force,lethal}'::varchar[]"  # tracker.taxonomy.FORCE_RESPONSES (a test holds them equal)

MEASURE_COLUMNS = """
    events integer NOT NULL,
    arrests bigint NOT NULL,
    events_with_arrests integer NOT NULL,
    events_with_force integer NOT NULL,
    injuries bigint NOT NULL,
    deaths bigint NOT NULL,
    participants_low bigint NOT NULL,
    participants_high bigint NOT NULL,
    events_with_participants integer NOT NULL
"""
MEASURES = (
    "events",
    "arrests",
    "events_with_arrests",
    "events_with_force",
    "injuries",
    "deaths",
    "participants_low",
    "participants_high",
    "events_with_participants",
)

# (table, key columns with their types)
TABLES = {
    "tracker_rollup_place": (
        ("month", "date NOT NULL"),
        ("country", "varchar(2) NOT NULL"),
        ("admin1", "varchar(120) NOT NULL"),
        ("city_id", "integer"),
    ),
    # Slug first: the backfill writes in key order, so one slug's cells share pages.
    "tracker_rollup_term": (
        ("vocabulary", '"char" NOT NULL'),
        ("slug", "varchar(20) NOT NULL"),
        ("month", "date NOT NULL"),
        ("country", "varchar(2) NOT NULL"),
        ("admin1", "varchar(120) NOT NULL"),
        ("city_id", "integer"),
        ("mult", "integer NOT NULL"),
    ),
    "tracker_rollup_term_region": (
        ("vocabulary", '"char" NOT NULL'),
        ("slug", "varchar(20) NOT NULL"),
        ("month", "date NOT NULL"),
        ("country", "varchar(2) NOT NULL"),
        ("admin1", "varchar(120) NOT NULL"),
        ("mult", "integer NOT NULL"),
    ),
    "tracker_rollup_combo": (
        ("month", "date NOT NULL"),
        ("country", "varchar(2) NOT NULL"),
        ("grievances", "varchar(20)[] NOT NULL"),
        ("police_responses", "varchar(20)[] NOT NULL"),
    ),
}
# Read paths besides the cell keys (which lead with the slug in the term tables).
INDEXES = {
    "tracker_rollup_place": ["(month)"],
    "tracker_rollup_term": ["(city_id, month)"],  # (vocabulary, slug, month): the cell key
    "tracker_rollup_term_region": [],
    "tracker_rollup_combo": ["(month)", "(country, month)"],
}


def _create(table: str, keys) -> list[str]:
    key_names = ", ".join(name for name, _ in keys)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in keys)
    statements = [
        f"CREATE TABLE {table} (\n    {columns},\n{MEASURE_COLUMNS})",
        # The upserts' conflict target; city_id NULL (no city) is one cell, not many.
        f"CREATE UNIQUE INDEX {table}_cell ON {table} ({key_names}) NULLS NOT DISTINCT",
        # The few cells an upsert has just brought to zero events, deleted right after.
        f"CREATE INDEX {table}_empty ON {table} (month) WHERE events = 0",
    ]
    for number, columns in enumerate(INDEXES[table]):
        statements.append(f"CREATE INDEX {table}_read{number} ON {table} {columns}")
    return statements


def _upsert(table: str, keys, source: str) -> str:
    """INSERT the signed deltas of `source` (a query with the key columns and the
    measures) into `table`, adding them to cells already there."""
    key_names = ", ".join(name for name, _ in keys)
    measures = ", ".join(MEASURES)
    added = ", ".join(f"{m} = {table}.{m} + excluded.{m}" for m in MEASURES)
    return (
        f"INSERT INTO {table} ({key_names}, {measures})\n"
        f"    SELECT {key_names}, {measures} FROM ({source}) d\n"
        # A cell whose deltas all cancel out (an edit of the title, a re-save) is not
        # written; the rest in key order, so two writers lock shared cells in one order.
        f"    WHERE ({measures}) <> ({', '.join('0' for _ in MEASURES)})\n"
        f"    ORDER BY {key_names}\n"
        f"    ON CONFLICT ({key_names}) DO UPDATE SET {added}"
    )


# The signed measures of one source row (`sign` is +1 for a new row, -1 for an old one).
SIGNED = f"""
    sum(sign)::int AS events,
    sum(sign * coalesce(arrests, 0))::bigint AS arrests,
    coalesce(sum(sign) FILTER (WHERE arrests > 0), 0)::int AS events_with_arrests,
    coalesce(sum(sign) FILTER (WHERE police_responses && {FORCE}), 0)::int
        AS events_with_force,
    sum(sign * coalesce(injuries, 0))::bigint AS injuries,
    sum(sign * coalesce(deaths, 0))::bigint AS deaths,
    sum(sign * coalesce(participants_low, 0))::bigint AS participants_low,
    sum(sign * coalesce(participants_high, 0))::bigint AS participants_high,
    coalesce(sum(sign) FILTER (
        WHERE participants_low IS NOT NULL OR participants_high IS NOT NULL), 0)::int
        AS events_with_participants"""
# One row per distinct slug of an event, with how often it occurs in the array.
TERMS = """
    CROSS JOIN LATERAL (
        SELECT 'g'::"char" AS vocabulary, t.slug, count(*)::int AS mult
          FROM unnest(s.grievances) AS t(slug) GROUP BY t.slug
        UNION ALL
        SELECT 'p'::"char", t.slug, count(*)::int
          FROM unnest(s.police_responses) AS t(slug) GROUP BY t.slug
    ) AS t"""


def _apply_statements(source: str) -> list[str]:
    """The statements that add the signed rows of `source` (sign, and the columns of
    tracker_event) to every rollup table, then drop the cells left with no events."""
    month = "date_trunc('month', s.date)::date AS month"
    place = (
        f"SELECT {month}, s.country, s.admin1, s.city_id, {SIGNED} "
        f"FROM ({source}) s GROUP BY 1, 2, 3, 4"
    )
    term = (
        f"SELECT t.vocabulary, t.slug, {month}, s.country, s.admin1, s.city_id, t.mult, "
        f"{SIGNED} FROM ({source}) s {TERMS} GROUP BY 1, 2, 3, 4, 5, 6, 7"
    )
    region = (
        f"SELECT t.vocabulary, t.slug, {month}, s.country, s.admin1, t.mult, "
        f"{SIGNED} FROM ({source}) s {TERMS} GROUP BY 1, 2, 3, 4, 5, 6"
    )
    combo = (
        f"SELECT {month}, s.country, s.grievances, s.police_responses, {SIGNED} "
        f"FROM ({source}) s GROUP BY 1, 2, 3, 4"
    )
    sources = {
        "tracker_rollup_place": place,
        "tracker_rollup_term": term,
        "tracker_rollup_term_region": region,
        "tracker_rollup_combo": combo,
    }
    statements = [_upsert(table, TABLES[table], sources[table]) for table in TABLES]
    statements += [f"DELETE FROM {table} WHERE events = 0" for table in TABLES]
    return statements


PUBLISHED_NEW = "SELECT 1 AS sign, n.* FROM new_rows n WHERE n.status = 'published'"
PUBLISHED_OLD = "SELECT -1 AS sign, o.* FROM old_rows o WHERE o.status = 'published'"


def _function(name: str, source: str) -> str:
    body = ";\n    ".join(_apply_statements(source))
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {body};
    RETURN NULL;
END;
$$"""


# Why statement-level triggers with transition tables: an import COPYs or bulk-inserts
# thousands of events in one statement, and a moderator's bulk action updates many at
# once. A row-level trigger would upsert every rollup cell once per row (thousands of
# small writes, each contending on the same hot cells); a statement-level trigger sees
# all rows of the statement at once (REFERENCING ... TABLE), sums them per cell and
# writes each touched cell once. An UPDATE subtracts the old published rows and adds the
# new ones, so status changes (publish, reject, unpublish), edits that move an event to
# another month, place or category, and merges all net out per cell. PostgreSQL 15 allows
# transition tables only on triggers for a single event, hence three triggers.
FUNCTIONS = {
    "tracker_rollup_on_insert": PUBLISHED_NEW,
    "tracker_rollup_on_update": f"{PUBLISHED_NEW} UNION ALL {PUBLISHED_OLD}",
    "tracker_rollup_on_delete": PUBLISHED_OLD,
}
TRUNCATE_FUNCTION = f"""
CREATE FUNCTION tracker_rollup_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE {", ".join(TABLES)};
    RETURN NULL;
END;
$$"""
TRIGGERS = [
    "CREATE TRIGGER tracker_rollup_insert AFTER INSERT ON tracker_event "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_rollup_on_insert()",
    "CREATE TRIGGER tracker_rollup_update AFTER UPDATE ON tracker_event "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_rollup_on_update()",
    "CREATE TRIGGER tracker_rollup_delete AFTER DELETE ON tracker_event "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION tracker_rollup_on_delete()",
    "CREATE TRIGGER tracker_rollup_truncate AFTER TRUNCATE ON tracker_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION tracker_rollup_on_truncate()",
]

# The backfill: the same statements over today's events. The table is locked against
# writes first so that no event written meanwhile is missed or counted twice.
BACKFILL = [
    "LOCK TABLE tracker_event IN SHARE MODE",
    *_apply_statements("SELECT 1 AS sign, e.* FROM tracker_event e WHERE e.status = 'published'"),
    *(f"ANALYZE {table}" for table in TABLES),
]

FORWARD = [
    *(statement for table, keys in TABLES.items() for statement in _create(table, keys)),
    *(_function(name, source) for name, source in FUNCTIONS.items()),
    TRUNCATE_FUNCTION,
    *TRIGGERS,
    *BACKFILL,
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS tracker_rollup_insert ON tracker_event",
    "DROP TRIGGER IF EXISTS tracker_rollup_update ON tracker_event",
    "DROP TRIGGER IF EXISTS tracker_rollup_delete ON tracker_event",
    "DROP TRIGGER IF EXISTS tracker_rollup_truncate ON tracker_event",
    *(f"DROP FUNCTION IF EXISTS {name}()" for name in (*FUNCTIONS, "tracker_rollup_on_truncate")),
    *(f"DROP TABLE IF EXISTS {table}" for table in TABLES),
]


class Migration(migrations.Migration):
    dependencies = [("tracker", "0007_history_reasons_without_file_names")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
