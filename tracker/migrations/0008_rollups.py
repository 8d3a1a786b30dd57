# ruff: noqa: S608 - every identifier and value in the SQL below is a constant of this file
"""Rollup tables for the trends: counts of published events per month and place (and per
grievance / police response, and per set of them), kept in step with tracker_event by
triggers in the same transaction as every write, so an answer read from them is never
stale. tracker.rollups reads them; see its docstring for what each answers.

Every table holds the same measures for its cell:
  events, arrests (sum), events_with_arrests (arrests > 0), events_with_force
  (police_responses && FORCE, tracker.taxonomy.FORCE_RESPONSES), injuries, deaths,
  participants_low, participants_high (sums; NULL counts 0), events_with_participants
  (participants_low or participants_high given).
and a month column (the first day of the month): years and quarters are sums of months.

Tables (cell key -> how many cells at the 1,000,000 benchmark events):
  tracker_rollup_place        month, country, admin1, city_id                    25 k
  tracker_rollup_term         vocabulary, slug, month, country, admin1, city_id, 420 k
                              mult
  tracker_rollup_term_region  vocabulary, slug, month, country, admin1, mult      35 k
  tracker_rollup_gset         gmask, month, country                               81 k
  tracker_rollup_gset_region  gmask, month, country, admin1                      185 k
  tracker_rollup_rset         rmask, month, country                               13 k
  tracker_rollup_rset_region  rmask, month, country, admin1                       47 k
  tracker_rollup_grset        gmask, rmask, month, country                       365 k
  tracker_rollup_sets         vocabulary ('g': gmask, 'p': rmask), mask          0.3 k
In the term tables an event counts once under each distinct slug of its grievances
(vocabulary 'g') or police responses ('p'); `mult` is how often the slug occurs in the
event's array (1 unless an array repeats a slug), so that a filter (`&&`, an event once)
sums `events` and a by= grouping (unnest, once per occurrence) sums `events * mult`.

The set tables key on the event's grievances (gmask) and/or police responses (rmask) as
integer bitmasks: bit i is the i-th slug of GRIEVANCE_SLUGS / POLICE_RESPONSE_SLUGS below
(equal to tracker.taxonomy's, a test holds them so; int4 leaves room for 31 slugs). An
event is in exactly one cell of each, so "any of several slugs" (`mask & wanted <> 0`)
and "a grievance and a police response together" sum to the exact count. Bit 31 (the
sign: the mask is negative) marks an array that a mask cannot tell exactly - a slug
repeated or not in the list - so that a by=grievance/police_response read, which counts
an event once per occurrence, knows to leave those to the raw query. tracker_rollup_sets
lists the masks that occur (231 grievance and 30 police-response sets at 1M events): the
reader takes the ones that match a filter from it and reads their cells by the cell index,
not the whole set table.
"""

from django.db import migrations

FORCE = "'{force,lethal}'::varchar[]"  # tracker.taxonomy.FORCE_RESPONSES (a test holds them equal)

# The bit order of the masks: tracker.taxonomy.GRIEVANCE_SLUGS / POLICE_RESPONSE_SLUGS when
# this migration was written (a test holds them equal). A slug added to the taxonomy needs
# a migration that replaces the two mask functions and recomputes the set tables.
GRIEVANCE_SLUGS = (
    "political",
    "human_rights",
    "welfare",
    "labor",
    "land",
    "property",
    "justice",
    "china",
    "covid",
    "environment",
    "other",
)
POLICE_RESPONSE_SLUGS = (
    "none",
    "monitored",
    "blocked",
    "dispersed",
    "kettled",
    "detained",
    "force",
    "lethal",
)
ODD = "(-2147483648)::integer"  # bit 31: a repeated or unknown slug


def _mask_function(name: str, slugs: tuple[str, ...]) -> str:
    known = "'{" + ",".join(slugs) + "}'::varchar[]"
    return f"""
CREATE FUNCTION {name}(slugs varchar[]) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(bit_or(coalesce(1 << (array_position({known}, s) - 1), {ODD})), 0)
           | CASE WHEN count(*) > count(DISTINCT s) THEN {ODD} ELSE 0 END
      FROM unnest(slugs) AS s
$$"""


MASK_FUNCTIONS = {
    "tracker_grievance_mask": GRIEVANCE_SLUGS,
    "tracker_police_mask": POLICE_RESPONSE_SLUGS,
}

MEASURE_TYPES = {
    "events": "integer",
    "arrests": "bigint",
    "events_with_arrests": "integer",
    "events_with_force": "integer",
    "injuries": "bigint",
    "deaths": "bigint",
    "participants_low": "bigint",
    "participants_high": "bigint",
    "events_with_participants": "integer",
}
MEASURES = tuple(MEASURE_TYPES)
MEASURE_COLUMNS = ",\n".join(f"    {name} {kind} NOT NULL" for name, kind in MEASURE_TYPES.items())

MONTH = ("month", "date NOT NULL")
COUNTRY = ("country", "varchar(2) NOT NULL")
ADMIN1 = ("admin1", "varchar(120) NOT NULL")
GMASK = ("gmask", "integer NOT NULL")
RMASK = ("rmask", "integer NOT NULL")
# (table, key columns with their types). The backfill writes in key order, so the cells
# of the leading key (a month, or a slug in the term tables) share pages.
TABLES = {
    "tracker_rollup_place": (MONTH, COUNTRY, ADMIN1, ("city_id", "integer")),
    "tracker_rollup_term": (
        ("vocabulary", '"char" NOT NULL'),
        ("slug", "varchar(20) NOT NULL"),
        MONTH,
        COUNTRY,
        ADMIN1,
        ("city_id", "integer"),
        ("mult", "integer NOT NULL"),
    ),
    "tracker_rollup_term_region": (
        ("vocabulary", '"char" NOT NULL'),
        ("slug", "varchar(20) NOT NULL"),
        MONTH,
        COUNTRY,
        ADMIN1,
        ("mult", "integer NOT NULL"),
    ),
    # The set tables lead with the mask: the backfill writes them in key order, so the
    # cells of one set share pages, and a read of the sets that match a filter (their
    # masks listed from tracker_rollup_sets, `mask = ANY(...)`) reads only their pages.
    "tracker_rollup_gset": (GMASK, MONTH, COUNTRY),
    "tracker_rollup_gset_region": (GMASK, MONTH, COUNTRY, ADMIN1),
    "tracker_rollup_rset": (RMASK, MONTH, COUNTRY),
    "tracker_rollup_rset_region": (RMASK, MONTH, COUNTRY, ADMIN1),
    "tracker_rollup_grset": (GMASK, RMASK, MONTH, COUNTRY),
    # Every set there is (vocabulary 'g' or 'p', its mask), over all months and places.
    "tracker_rollup_sets": (("vocabulary", '"char" NOT NULL'), ("mask", "integer NOT NULL")),
}
# Read paths besides the cell keys (which lead with the month, or the slug in the term
# tables). The admin1 filter compares upper() of both sides, hence the expression.
INDEXES = {
    "tracker_rollup_place": [],
    "tracker_rollup_term": ["(city_id, month)"],
    "tracker_rollup_term_region": [],
    "tracker_rollup_gset": [],
    "tracker_rollup_gset_region": ["(upper(admin1), month)"],
    "tracker_rollup_rset": [],
    "tracker_rollup_rset_region": ["(upper(admin1), month)"],
    "tracker_rollup_grset": [],
    "tracker_rollup_sets": [],
}


def _create(table: str, keys) -> list[str]:
    key_names = ", ".join(name for name, _ in keys)
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in keys)
    statements = [
        # Room on each page for the new version of an updated cell: no index covers a
        # measure, so an upsert is a HOT update that writes no index entry.
        f"CREATE TABLE {table} (\n    {columns},\n{MEASURE_COLUMNS}\n) WITH (fillfactor = 80)",
        # The upserts' conflict target; city_id NULL (no city) is one cell, not many.
        f"CREATE UNIQUE INDEX {table}_cell ON {table} ({key_names}) NULLS NOT DISTINCT",
    ]
    for number, columns in enumerate(INDEXES[table]):
        statements.append(f"CREATE INDEX {table}_read{number} ON {table} {columns}")
    return statements


def _upsert(table: str, keys, source: str) -> str:
    """INSERT the signed deltas of `source` (a query with the key columns and the
    measures) into `table`, adding them to cells already there; returns the ctid of each
    cell it has brought to zero events."""
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
        f"    ON CONFLICT ({key_names}) DO UPDATE SET {added}\n"
        f"    RETURNING ctid, events"
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


def _apply(source: str) -> str:
    """The PL/pgSQL that adds the signed rows of `source` (sign, and the columns of
    tracker_event) to every rollup table, then drops the cells left with no events.

    One statement upserts every table (one data-modifying CTE each), so the transition
    table is read and the masks are computed once; it collects the ctids of the cells it
    brought to zero, which the DELETEs then remove by TID (no index on `events`, which
    would make every upsert a non-HOT update)."""
    source_rows = (
        f"SELECT s.*, date_trunc('month', s.date)::date AS month, "
        f"tracker_grievance_mask(s.grievances) AS gmask, "
        f"tracker_police_mask(s.police_responses) AS rmask FROM ({source}) s"
    )
    place = (
        f"SELECT s.month, s.country, s.admin1, s.city_id, {SIGNED} FROM src s GROUP BY 1, 2, 3, 4"
    )
    term = (
        f"SELECT t.vocabulary, t.slug, s.month, s.country, s.admin1, s.city_id, t.mult, "
        f"{SIGNED} FROM src s {TERMS} GROUP BY 1, 2, 3, 4, 5, 6, 7"
    )
    sets = (
        f"SELECT 'g'::\"char\" AS vocabulary, s.gmask AS mask, {SIGNED} FROM src s GROUP BY 1, 2 "
        f"UNION ALL SELECT 'p'::\"char\", s.rmask, {SIGNED} FROM src s GROUP BY 1, 2"
    )
    sources = {
        "tracker_rollup_place": place,
        "tracker_rollup_term": term,
        "tracker_rollup_sets": sets,
    }
    for table, keys in TABLES.items():
        if table not in sources:
            names = [name for name, _ in keys]
            if names[0] == "vocabulary":  # the region term table: the term cells' sums
                continue
            columns = ", ".join(f"s.{name}" for name in names)
            numbers = ", ".join(str(number) for number in range(1, len(names) + 1))
            sources[table] = f"SELECT {columns}, {SIGNED} FROM src s GROUP BY {numbers}"
    # The region term cells are sums of the city term cells (fewer rows to group).
    term_keys = ", ".join(name for name, _ in TABLES["tracker_rollup_term_region"])
    sums = ", ".join(f"sum({m})::{MEASURE_TYPES[m]} AS {m}" for m in MEASURES)
    sources["tracker_rollup_term_region"] = (
        f"SELECT {term_keys}, {sums} FROM term_delta GROUP BY {term_keys}"
    )
    ctes = [f"src AS MATERIALIZED ({source_rows})", f"term_delta AS MATERIALIZED ({term})"]
    sources["tracker_rollup_term"] = "SELECT * FROM term_delta"
    names = {table: f"u{number}" for number, table in enumerate(TABLES)}
    for table, keys in TABLES.items():
        ctes.append(f"{names[table]} AS ({_upsert(table, keys, sources[table])})")
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


PUBLISHED_NEW = "SELECT 1 AS sign, n.* FROM new_rows n WHERE n.status = 'published'"
PUBLISHED_OLD = "SELECT -1 AS sign, o.* FROM old_rows o WHERE o.status = 'published'"


def _function(name: str, source: str) -> str:
    variables = "\n    ".join(f"zero{number} tid[];" for number in range(len(TABLES)))
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    {variables}
BEGIN
    {_apply(source)};
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

# The backfill: the same statements over today's events, in a DO block (its variables).
# The table is locked against writes first so that no event written meanwhile is missed
# or counted twice.
_ZERO_VARIABLES = "\n    ".join(f"zero{number} tid[];" for number in range(len(TABLES)))
BACKFILL = [
    "LOCK TABLE tracker_event IN SHARE MODE",
    f"""DO $$
DECLARE
    {_ZERO_VARIABLES}
BEGIN
    {_apply("SELECT 1 AS sign, e.* FROM tracker_event e WHERE e.status = 'published'")};
END;
$$""",
    *(f"ANALYZE {table}" for table in TABLES),
]

FORWARD = [
    *(_mask_function(name, slugs) for name, slugs in MASK_FUNCTIONS.items()),
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
    # The tables of earlier drafts of this migration, on databases that applied one.
    "DROP TABLE IF EXISTS tracker_rollup_combo",
    *(f"DROP FUNCTION IF EXISTS {name}(varchar[])" for name in MASK_FUNCTIONS),
]


class Migration(migrations.Migration):
    dependencies = [("tracker", "0007_history_reasons_without_file_names")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
