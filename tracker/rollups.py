"""Trends read from the rollup tables of migration 0008, exactly, or not at all.

The tables hold counts of published events per month and place (tracker_rollup_place),
per month, place and grievance or police-response slug (tracker_rollup_term, and
tracker_rollup_term_region without the city), and per month, place and the event's set
of grievances and/or police responses as an integer bitmask (the set tables: gset, rset,
their *_region variants with admin1, and grset with both sets; tracker_rollup_sets lists
the sets that occur). PostgreSQL triggers on tracker_event keep them in step in the same
transaction as every write (see the migration), so they are never stale.

`rollup_counts` answers a filter from them only when a sum of cells equals the plain
GROUP BY over tracker_event, and returns None otherwise (the caller then runs the raw
query). What it answers:

- no category filter: any date range, countries, regions, cities; by= anything;
- one grievance, or one police response (the term cells of that slug): any place filter;
  by= none, country, admin1, city;
- anything else on categories ("any of several" grievances or responses, a grievance and
  a response together, by=grievance or by=police_response beside a category filter),
  from the smallest set table that has every column the query needs: grievances only
  (filter, by=grievance) from gset, police responses only from rset, both from grset;
  with an admin1 filter or by=admin1 from the *_region variants (one vocabulary only);
- several categories with a city filter, by=city, or both vocabularies with admin1 (a set
  table per city would be as large as the events): from the all-of cells of migration
  0017, an inclusion-exclusion sum over the subsets of the filter's categories, when the
  filter names at most ALLOF_MAX_TERMS of them (not by=grievance/police_response there).

"Any of several" is not a sum of the per-slug cells (an event with two of them would count
twice); a set table holds each event exactly once, so `mask & wanted <> 0` sums exactly.
The cells are read by their index: the sets that match come from tracker_rollup_sets
(a few hundred rows), then `mask = ANY(those)`, and the backfill wrote each set's cells
together. A by=grievance/police_response read counts an event once under each slug of its
set, as unnest() does unless an array repeats a slug (or holds one the masks do not know):
tracker_rollup_sets marks such sets (bit 31), and while one exists in the by= vocabulary
those reads return None.

Coarser cells (migration 0011) hold the same sums with fewer rows: every table above per
year (and grset_all_year over every country), and place and term cells per month by
country alone. interval=year over whole years reads the year tables; a month read with no
region or city (filter or grouping) reads the country tables.

Dates: whole months come from the cells; a range that starts or ends inside a month gets
that part of the month from tracker_event, an index-only scan of the covering index by
date (migration 0010), summed with the cells in the same statement.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterable
from contextlib import nullcontext

from django.db import connection, transaction

INTERVALS = ("year", "quarter", "month")
GROUPS = (None, "grievance", "police_response", "city", "country", "admin1")
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
# The filter keys answered here; any other with a value sends the caller to the raw query.
KNOWN_FILTERS = {
    "date_after",
    "date_before",
    "year",
    "country",
    "admin1",
    "city",
    "grievance",
    "police_response",
}
FORCE = ("force", "lethal")  # tracker.taxonomy.FORCE_RESPONSES, as in migration 0008
# Bit i of the set tables' masks is the i-th slug (migration 0008's mask functions; a test
# holds these equal to them and to tracker.taxonomy).
GRIEVANCE_BITS = (
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
POLICE_RESPONSE_BITS = (
    "none",
    "monitored",
    "blocked",
    "dispersed",
    "kettled",
    "detained",
    "force",
    "lethal",
)

# The all-of cells (migration 0017): subsets of at most this many categories, grievance
# bits first, police-response bits from bit 11 on (tests hold these equal to it).
ALLOF_MAX_TERMS = 4
ALLOF_POLICE_SHIFT = 11

# The same measures over tracker_event rows `e` (for the partial months).
_RAW_MEASURES = """
    count(*) AS events,
    coalesce(sum(e.arrests), 0) AS arrests,
    count(*) FILTER (WHERE e.arrests > 0) AS events_with_arrests,
    count(*) FILTER (WHERE e.police_responses && %s::varchar[]) AS events_with_force,
    coalesce(sum(e.injuries), 0) AS injuries,
    coalesce(sum(e.deaths), 0) AS deaths,
    coalesce(sum(e.participants_low), 0) AS participants_low,
    coalesce(sum(e.participants_high), 0) AS participants_high,
    count(*) FILTER (WHERE e.participants_low IS NOT NULL OR e.participants_high IS NOT NULL)
        AS events_with_participants"""


def _empty(value) -> bool:
    return value is None or value == "" or (isinstance(value, Iterable) and not value)


def _as_list(value) -> list:
    if _empty(value):
        return []
    if isinstance(value, str | int) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _month_end(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _next_month(day: dt.date) -> dt.date:
    return _month_end(day) + dt.timedelta(days=1)


def _date_range(filters: dict) -> tuple[dt.date | None, dt.date | None]:
    """The first and last day asked for (None: open), from date_after/before and year."""
    low, high = filters.get("date_after"), filters.get("date_before")
    if isinstance(low, dt.datetime):
        low = low.date()
    if isinstance(high, dt.datetime):
        high = high.date()
    year = filters.get("year")
    if not _empty(year):
        year = int(year)
        first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
        low = first if low is None else max(low, first)
        high = last if high is None else min(high, last)
    return low, high


class _Query:
    """WHERE conditions and their parameters, built from fixed SQL and values only."""

    def __init__(self):
        self.where: list[str] = []
        self.params: list = []

    def add(self, condition: str, *params) -> None:
        self.where.append(condition)
        self.params.extend(params)

    def sql(self) -> str:
        return " AND ".join(self.where) or "TRUE"


def _place_conditions(query: _Query, alias: str, countries, regions, cities) -> None:
    if countries:
        query.add(f"{alias}.country = ANY(%s)", countries)
    if regions:
        # As the API's admin1 filter (iexact): UPPER on both sides.
        query.add(f"upper({alias}.admin1) = ANY(%s)", [region.upper() for region in regions])
    if cities:
        query.add(f"{alias}.city_id = ANY(%s)", cities)


def _named(sql: str, by: str | None, city_names: bool) -> str:
    """`sql` (rows of period, city id, *MEASURES) with the city's name for its id, in the
    order of the names: the API's order, so that its rows need no sorting in Python."""
    if by != "city" or not city_names:
        return sql
    columns = ", ".join(("period", "grp", *MEASURES))
    measures = ", ".join(f"q.{measure}" for measure in MEASURES)
    return (
        f"SELECT q.period, c.name, {measures} FROM ({sql}) AS q({columns}) "  # noqa: S608
        "LEFT JOIN tracker_city c ON c.id = q.grp "
        'ORDER BY q.period, q.grp IS NULL, c.name COLLATE "C", q.grp'
    )


# Rows per chunk of a streamed read (see _fetch).
STREAM_ROWS = 1024


def _fetch(
    sql: str, params: list, work_mem: str | None = None, build: Callable | None = None
) -> list:
    """The rows of `sql`; with `work_mem`, that much memory for its sorts and hash tables
    (transaction-local, so to the end of the caller's transaction if there is one).

    With `build` (a function of a list of rows that returns a list), the rows arrive in
    chunks of STREAM_ROWS while PostgreSQL is still sending the rest, and the result is
    build's lists joined: on two cores the caller's work on thousands of rows overlaps
    the server's aggregation and output instead of following them."""
    with transaction.atomic() if work_mem else nullcontext(), connection.cursor() as cursor:
        if work_mem:
            cursor.execute("SELECT set_config('work_mem', %s, true)", [work_mem])
        if build is None:
            cursor.execute(sql, params)
            return cursor.fetchall()
        built: list = []
        chunk: list = []
        # Django's cursor has no stream(): the driver's own, its errors as Django's.
        with connection.wrap_database_errors:
            for row in cursor.cursor.stream(sql, params, size=STREAM_ROWS):
                chunk.append(row)
                if len(chunk) == STREAM_ROWS:
                    built += build(chunk)
                    chunk = []
        if chunk:
            built += build(chunk)
        return built


def rollup_counts(*, filters: dict, interval: str, by: str | None) -> list[dict] | None:
    """Trend rows for `filters` per `interval` (and per `by` group) from the rollup tables,
    or None when they cannot answer it exactly. See the module docstring.

    Rows: {"period": first day of the period, ["group": key,] and the MEASURES as ints},
    ordered by period, then group (None last). Groups without events are left out.
    """
    rows = rollup_rows(filters=filters, interval=interval, by=by)
    if rows is None:
        return None
    keys = ("period", "group", *MEASURES) if by is not None else ("period", *MEASURES)
    return [dict(zip(keys, row, strict=True)) for row in rows]


def rollup_rows(
    *,
    filters: dict,
    interval: str,
    by: str | None,
    build: Callable | None = None,
    city_names: bool = False,
) -> list | None:
    """rollup_counts' rows as tuples (period, [group,] *MEASURES): a by=city answer has
    thousands, and the API builds its own dicts from them, with `build` (a function of a
    list of rows that returns a list) while they arrive (see _fetch). With `city_names`,
    a by=city row holds the city's name instead of its id, and the rows are ordered by
    period, then name in code point order (two cities of one name by id, no city last)."""
    if interval not in INTERVALS or by not in GROUPS:
        return None
    if any(key not in KNOWN_FILTERS and not _empty(value) for key, value in filters.items()):
        return None
    countries = [str(code).upper() for code in _as_list(filters.get("country"))]
    regions = [str(region) for region in _as_list(filters.get("admin1"))]
    cities = [int(getattr(city, "pk", city)) for city in _as_list(filters.get("city"))]
    grievances = sorted({str(slug) for slug in _as_list(filters.get("grievance"))})
    responses = sorted({str(slug) for slug in _as_list(filters.get("police_response"))})
    low, high = _date_range(filters)
    if low is not None and high is not None and low > high:
        return []

    # Whole years per year: the year cells of migration 0011.
    yearly = (
        interval == "year"
        and (low is None or (low.month, low.day) == (1, 1))
        and (high is None or (high.month, high.day) == (12, 31))
    )
    plan = _plan(by, countries, regions, cities, grievances, responses, yearly=yearly)
    if plan is None:
        return None
    grouped = by is not None

    # Whole months from the cells, the partial first and last month from the events.
    first_full = None if low is None else (low if low.day == 1 else _next_month(low))
    last_full = None if high is None else (high if high == _month_end(high) else None)
    if high is not None and last_full is None:
        last_full = _month_start(high) - dt.timedelta(days=1)  # end of the month before
    partial: list[tuple[dt.date, dt.date]] = []
    if first_full is not None and last_full is not None and first_full > last_full:
        partial.append((low, high))  # inside one month (or two partial ones)
        first_full = last_full = None
        whole = False
    else:
        whole = True
        if low is not None and low.day != 1:
            partial.append((low, _month_end(low)))
        if high is not None and high != _month_end(high):
            partial.append((_month_start(high), high))

    # A by-slug read over a broad set filter sorts or hashes 100 k cells: 4 MB (the
    # default) spills them to disk.
    work_mem = "32MB" if getattr(plan, "by_slug", False) else None
    parts = []
    if whole:
        parts.append(plan(interval, first_full, last_full))
        if not partial:  # in order already, and every cell has events
            sql, params = parts[0]
            return _fetch(_named(sql, by, city_names), params, work_mem, build)
    for start, end in partial:
        parts.append(
            _raw_sql(interval, by, start, end, countries, regions, cities, grievances, responses)
        )
    # The cells' whole months and the events' partial ones summed in one statement, in the
    # order of the whole-month reads (groups in code point order, no group last).
    names = ", ".join(("period", "grp", *MEASURES) if grouped else ("period", *MEASURES))
    order = "1" if not grouped else ("1, 2" if by == "city" else '1, grp COLLATE "C"')
    params = [value for _, part_params in parts for value in part_params]
    if interval == "month":
        # Each part has its own months (the whole ones, the first, the last), and none
        # holds a row without events: nothing to add up, only to put in order.
        sql = (
            f"SELECT * FROM ({' UNION ALL '.join(f'({text})' for text, _ in parts)}) "  # noqa: S608
            f"AS u({names}) ORDER BY {order}"
        )
        return _fetch(_named(sql, by, city_names), params, work_mem, build)
    sql = (
        f"SELECT {'period, grp' if grouped else 'period'}, "  # noqa: S608
        # The parts' columns are all bigint: float8 sums (see _sum), exact as ints.
        + ", ".join(f"sum({measure}::float8)::bigint" for measure in MEASURES)
        + " FROM ("
        + " UNION ALL ".join(f"({text})" for text, _ in parts)
        + f") AS u({names}) GROUP BY {'1, 2' if grouped else '1'} "
        f"HAVING sum(events) <> 0 ORDER BY {order}"
    )
    return _fetch(_named(sql, by, city_names), params, work_mem, build)


# The measures that the cells hold as bigint (the rest are integer counts). PostgreSQL sums
# bigint into numeric, a third of a by=city read's time; they are summed as float8
# instead, which is exact for integers below 2**53 (a million events of int4 values each
# stay below 2**51), and handed back as bigint.
_BIGINT_MEASURES = {"arrests", "injuries", "deaths", "participants_low", "participants_high"}


def _sum(expression: str, measure: str) -> str:
    if measure in _BIGINT_MEASURES:
        return f"sum(({expression})::float8)::bigint"
    return f"sum({expression})::bigint"


def _sums(weight: str = "", alias: str = "r") -> str:
    # bigint, not numeric: the driver then hands back ints instead of Decimals to convert.
    return ", ".join(
        f"{_sum(f'{alias}.{measure}{weight}', measure)} AS {measure}" for measure in MEASURES
    )


def _plan(by, countries, regions, cities, grievances, responses, *, yearly=False):
    """A function (interval, first month, last month) -> (sql, params) over the one rollup
    table that answers this filter exactly, or None. With `yearly` (interval=year over
    whole years) the cells are read from their year tables; months without a region or a
    city from the cells by country alone."""
    year_tables = {
        "tracker_rollup_place": "tracker_rollup_place_year",
        "tracker_rollup_term": "tracker_rollup_term_year",
        "tracker_rollup_term_region": "tracker_rollup_term_region_year",
        "tracker_rollup_gset": "tracker_rollup_gset_year",
        "tracker_rollup_gset_region": "tracker_rollup_gset_region_year",
        "tracker_rollup_rset": "tracker_rollup_rset_year",
        "tracker_rollup_rset_region": "tracker_rollup_rset_region_year",
        # Without a country filter or grouping, the cells over every country: a third.
        "tracker_rollup_grset": "tracker_rollup_grset_year"
        if countries or by == "country"
        else "tracker_rollup_grset_all_year",
        "tracker_rollup_allof": "tracker_rollup_allof_year",
    }

    # Months without a region or city (filter or grouping): the cells by country alone.
    country_tables = {
        "tracker_rollup_place": "tracker_rollup_place_country",
        "tracker_rollup_term_region": "tracker_rollup_term_country",
    }
    by_country_only = not regions and not cities and by not in ("admin1", "city")

    def period_table(table: str) -> tuple[str, str]:
        """The coarsest table that answers for `table` (migration 0011's year and country
        cells), and its period column."""
        if yearly and table in year_tables:
            return year_tables[table], "year"
        if by_country_only and table in country_tables:
            return country_tables[table], "month"
        return table, "month"

    place_group = {"city": "r.city_id", "country": "r.country", "admin1": "r.admin1"}

    def months(query: _Query, first, last, column="month") -> None:
        if first is not None:
            query.add(f"r.{column} >= %s", first)
        if last is not None:
            query.add(f"r.{column} <= %s", last)

    def build(table, where, params, group, weight="", join="", signed=False):
        """`signed`: the cells carry signs (the all-of cells), so a group can sum to no
        events, and is then left out as the raw query leaves it out."""
        table, period = period_table(table)
        having = f" HAVING sum(r.events{weight}) <> 0" if signed else ""
        outer_having = " HAVING sum(m.events) <> 0" if signed else ""

        def sql(interval, first, last):
            query = _Query()
            if where:
                query.add(where, *params)
            _place_conditions(query, "r", countries, regions, cities)
            months(query, first, last, period)
            group_select = f", {group} AS grp" if group else ""
            if interval == period:  # the cells' own periods: one grouping
                text_order = f', {group} COLLATE "C"' if group and group != "r.city_id" else ""
                text = (
                    f"SELECT r.{period} AS period{group_select}, {_sums(weight)} "  # noqa: S608
                    f"FROM {table} r {join} WHERE {query.sql()} "
                    f"GROUP BY 1{', 2' if group else ''}{having} ORDER BY 1"
                    + (text_order or (", 2" if group else ""))
                )
                return text, query.params
            # Summed per month first, the few month rows then per period: date_trunc once
            # a month instead of once a cell.
            if group == "r.city_id":  # hundreds of cities: summing per month gains nothing
                text = (
                    f"SELECT date_trunc(%s, r.{period}::timestamp)::date AS period, "  # noqa: S608
                    f"r.city_id, {_sums(weight)} FROM {table} r {join} "
                    f"WHERE {query.sql()} GROUP BY 1, 2{having} ORDER BY 1, 2"
                )
                return text, [interval, *query.params]
            text_order = ', m.grp COLLATE "C"' if group else ""
            text = (
                f"SELECT date_trunc(%s, m.{period}::timestamp)::date AS period"  # noqa: S608
                f"{', m.grp' if group else ''}, {_sums(alias='m')} FROM ("
                f"SELECT r.{period}{group_select}, {_sums(weight)} "
                f"FROM {table} r {join} WHERE {query.sql()} "
                f"GROUP BY 1{', 2' if group else ''}"
                f") m GROUP BY 1{', 2' if group else ''}{outer_having} "
                # Code point order, as Python sorts the rows merged with partial months.
                f"ORDER BY 1{text_order}"
            )
            return text, [interval, *query.params]

        return sql

    by_term = by in ("grievance", "police_response")
    vocabulary = {"grievance": "g", "police_response": "p"}.get(by)
    if not grievances and not responses:
        if not by_term:
            return build("tracker_rollup_place", "", [], place_group.get(by))
        # Each event once per occurrence of each slug, as unnest() in the raw query.
        table = "tracker_rollup_term" if cities else "tracker_rollup_term_region"
        return build(table, "r.vocabulary = %s", [vocabulary], "r.slug", weight=" * r.mult")
    single = (len(grievances) == 1 and not responses) or (len(responses) == 1 and not grievances)
    if single and not by_term:
        slug_vocabulary, slug = ("g", grievances[0]) if grievances else ("p", responses[0])
        table = "tracker_rollup_term" if cities or by == "city" else "tracker_rollup_term_region"
        return build(
            table,
            "r.vocabulary = %s AND r.slug = %s",
            [slug_vocabulary, slug],
            place_group.get(by),
        )

    # Sets of slugs: the set tables, which know the country and (the region variants) the
    # region, not the city. The smallest table that knows every column the query needs.
    gmask, rmask = _mask(grievances, GRIEVANCE_BITS), _mask(responses, POLICE_RESPONSE_BITS)
    if gmask is None or rmask is None:  # a slug the masks do not know
        return None
    needs_g = bool(grievances) or by == "grievance"
    needs_r = bool(responses) or by == "police_response"
    regional = bool(regions) or by == "admin1"
    if (cities or by == "city" or (regional and needs_g and needs_r)) and not by_term:
        terms = _allof_terms(gmask, rmask)
        if terms is None:
            return None
        # any(G) and any(R): the sum of the all-of cells of the subsets of G and R
        # (migration 0017), which hold their measures times (-1)^|subset|; any(G) alone:
        # minus that sum.
        return build(
            "tracker_rollup_allof",
            "r.cmask = ANY(%s::integer[])",
            [terms],
            place_group.get(by),
            weight="" if gmask and rmask else " * -1",
            signed=True,
        )
    if cities or by == "city":
        return None
    if needs_g and needs_r:
        if regional:
            return None
        table = "tracker_rollup_grset"
    elif needs_g:
        table = "tracker_rollup_gset_region" if regional else "tracker_rollup_gset"
    else:
        table = "tracker_rollup_rset_region" if regional else "tracker_rollup_rset"
    # The sets that occur and match the filter (all of a vocabulary the filter leaves open
    # but for the empty set, mask 0, which counts under no slug); whether one of them
    # cannot be counted by slug (bit 31).
    [(g_sets, r_sets, g_odd, r_odd)] = _fetch(
        "SELECT coalesce(array_agg(mask) FILTER (WHERE vocabulary = 'g' AND mask & %s <> 0), "
        "'{}'), coalesce(array_agg(mask) FILTER (WHERE vocabulary = 'p' AND mask & %s <> 0), "
        "'{}'), coalesce(bool_or(mask < 0) FILTER (WHERE vocabulary = 'g'), false), "
        "coalesce(bool_or(mask < 0) FILTER (WHERE vocabulary = 'p'), false) "
        "FROM tracker_rollup_sets",
        [gmask or -1, rmask or -1],
    )
    if (by == "grievance" and g_odd) or (by == "police_response" and r_odd):
        return None
    conditions, params = [], []
    if needs_g:
        conditions.append("r.gmask = ANY(%s::integer[])")
        params.append(g_sets)
    if needs_r:
        conditions.append("r.rmask = ANY(%s::integer[])")
        params.append(r_sets)
    where = " AND ".join(conditions)
    if not by_term:
        return build(table, where, params, place_group.get(by))

    # By slug: an event counts once under each slug of its set (no set repeats one, or
    # holds one the masks do not know: checked above).
    if by == "grievance":
        column, bits = "gmask", GRIEVANCE_BITS
    else:
        column, bits = "rmask", POLICE_RESPONSE_BITS

    read, period = period_table(table)

    def by_slug(interval, first, last):
        query = _Query()
        query.add(where, *params)
        _place_conditions(query, "r", countries, regions, cities)
        months(query, first, last, period)
        # Summed per period and set first (a few hundred sets: a small hash table), then
        # each set's sums go to every slug whose bit it has.
        text = (
            f"SELECT m.period, b.slug, {_sums(alias='m')} FROM ("  # noqa: S608
            f"SELECT date_trunc(%s, r.{period}::timestamp)::date AS period, r.{column} AS mask, "
            f"{_sums()} FROM {read} r WHERE {query.sql()} GROUP BY 1, 2) m "
            f"JOIN unnest(%s::integer[], %s::varchar[]) AS b(bit, slug) ON m.mask & b.bit <> 0 "
            f'GROUP BY 1, 2 ORDER BY 1, b.slug COLLATE "C"'
        )
        bit_values = [1 << number for number in range(len(bits))]
        return text, [interval, *query.params, bit_values, list(bits)]

    by_slug.by_slug = True
    return by_slug


def _allof_terms(gmask: int, rmask: int) -> list[int] | None:
    """The all-of subsets (cmask, migration 0017) whose signed cells sum to "any of gmask
    [and any of rmask]": every non-empty subset of each given mask, combined; None when the
    filter names more than ALLOF_MAX_TERMS categories (the cells hold no larger subsets)."""
    g_bits = [1 << i for i in range(len(GRIEVANCE_BITS)) if gmask & (1 << i)]
    r_bits = [
        1 << (ALLOF_POLICE_SHIFT + i) for i in range(len(POLICE_RESPONSE_BITS)) if rmask & (1 << i)
    ]
    if len(g_bits) + len(r_bits) > ALLOF_MAX_TERMS:
        return None

    def subsets(bits: list[int]) -> list[int]:
        masks = [0]
        for bit in bits:
            masks += [mask | bit for mask in masks]
        return masks[1:]  # the non-empty ones

    g_sets, r_sets = subsets(g_bits) or [0], subsets(r_bits) or [0]
    return sorted(g | r for g in g_sets for r in r_sets)


def _mask(slugs: list[str], bits: tuple[str, ...]) -> int | None:
    """The bitmask of `slugs` in the set tables, or None if one has no bit."""
    mask = 0
    for slug in slugs:
        if slug not in bits:
            return None
        mask |= 1 << bits.index(slug)
    return mask


def _raw_sql(interval, by, start, end, countries, regions, cities, grievances, responses):
    """The plain GROUP BY over the published events from `start` to `end` (days)."""
    query = _Query()
    query.add("e.status = 'published'")
    query.add("e.date >= %s AND e.date <= %s", start, end)
    _place_conditions(query, "e", countries, regions, cities)
    # IS TRUE: the same rows, but not a condition the GIN indexes answer. The days here
    # lie inside a month (a few thousand events by the date index); ANDed with a GIN
    # bitmap of a broad slug (300 k events) the planner otherwise reads both.
    if grievances:
        query.add("(e.grievances && %s::varchar[]) IS TRUE", grievances)
    if responses:
        query.add("(e.police_responses && %s::varchar[]) IS TRUE", responses)
    join, group = "", None
    if by == "grievance":
        join, group = "CROSS JOIN LATERAL unnest(e.grievances) AS g(slug)", "g.slug"
    elif by == "police_response":
        join, group = "CROSS JOIN LATERAL unnest(e.police_responses) AS g(slug)", "g.slug"
    elif by is not None:
        group = {"city": "e.city_id", "country": "e.country", "admin1": "e.admin1"}[by]
    group_select = f", {group}" if group else ""
    sql = (
        f"SELECT date_trunc(%s, e.date::timestamp)::date AS period{group_select}, {_RAW_MEASURES} "  # noqa: S608
        f"FROM tracker_event e {join} WHERE {query.sql()} GROUP BY 1{', 2' if group else ''}"
    )
    return sql, [interval, list(FORCE), *query.params]
