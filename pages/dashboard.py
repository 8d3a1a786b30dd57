"""/dashboard/ and its CSVs: the numbers of tracker.selectors.event_counts (and
crowd_medians) over the event filters of tracker.query, per period, as charts, tables and
CSV files built from one description of each chart, so the three always agree.

The page's own parameters, beside the filters:
- `interval`: year (default), quarter, month, or week for a date range of at most a year;
- `compare`: city, admin1 or country: up to six of them side by side, those selected in the
  matching filter or else the six with the most events.

A handful of event_counts calls per page (each answered from the rollups), never one per
group or per period: the page stays fast at a million events.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import formats, timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from pages.forms import page_filters
from tracker import csv_safety, taxonomy
from tracker.query import EventFilterSet
from tracker.selectors import (
    COUNT_METRICS,
    IntervalTooLong,
    TrendGroup,
    TrendInterval,
    axis_periods,
    check_interval,
    city_names,
    crowd_medians,
    event_counts,
    period_after,
    period_label,
)

DASHBOARD_PARAMS = ("interval", "compare")
INTERVALS = (TrendInterval.YEAR, TrendInterval.QUARTER, TrendInterval.MONTH, TrendInterval.WEEK)
COMPARES = (TrendGroup.CITY, TrendGroup.ADMIN1, TrendGroup.COUNTRY)
MAX_COMPARED = 6
MIN_EVENTS_FOR_SHARE = 10  # shares from fewer events are marked as unreliable
TOP_CITIES = 10
TOP_REGIONS = 20
PER_PEOPLE = 100_000


def interval_names() -> dict[str, str]:
    return {
        TrendInterval.YEAR: _("Year"),
        TrendInterval.QUARTER: _("Quarter"),
        TrendInterval.MONTH: _("Month"),
        TrendInterval.WEEK: _("Week"),
    }


def compare_names() -> dict[str, str]:
    return {
        TrendGroup.CITY: _("Cities"),
        TrendGroup.ADMIN1: _("Regions"),
        TrendGroup.COUNTRY: _("Countries"),
    }


def page_heading(interval: str) -> str:
    return {
        TrendInterval.YEAR: _("Yearly trends"),
        TrendInterval.QUARTER: _("Quarterly trends"),
        TrendInterval.MONTH: _("Monthly trends"),
        TrendInterval.WEEK: _("Weekly trends"),
    }[interval]


@dataclasses.dataclass
class Series:
    """One column of a chart's table and CSV; drawn unless `shown` is false."""

    key: str  # the CSV column
    label: str
    values: list
    swatch: str = "series-1"  # a CSS custom property of .dashboard-layout (the palette)
    dash: bool = False
    shown: bool = True  # False: in the table and CSV only


@dataclasses.dataclass
class Chart:
    """A chart, its table view and its CSV: the same rows for all three."""

    key: str  # CSV name and element ids
    title: str
    kind: str  # "bar", "line" or "hbar" (horizontal bars)
    row_key: str  # the CSV's first column: the interval's name, or "city", "admin1"
    row_label: str
    rows: list[str]
    series: list[Series]
    x_title: str
    y_title: str
    stacked: bool = False
    percent: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)
    partial: list[bool] = dataclasses.field(default_factory=list)  # a period not over yet
    thin: list[bool] = dataclasses.field(default_factory=list)  # shares of < 10 events
    body: str = ""  # the table view's rows as HTML (table_body), set by the page

    def csv_header(self) -> list[str]:
        return [self.row_key, *(s.key for s in self.series)]

    def csv_rows(self) -> list[list]:
        return [[row, *(s.values[i] for s in self.series)] for i, row in enumerate(self.rows)]

    def table(self) -> list[dict[str, Any]]:
        return [
            {
                "label": row,
                "partial": bool(self.partial and self.partial[i]),
                "thin": bool(self.thin and self.thin[i]),
                "cells": [(s.key, s.values[i]) for s in self.series],
            }
            for i, row in enumerate(self.rows)
        ]

    def table_body(self, *, year_rows: bool) -> str:
        """The table view's rows as HTML, built here rather than by a template loop: at
        interval=month the page's tables hold some 15,000 cells, and a template renders
        those in about 300 ms. The same markup and the same localized numbers as
        `{{ value }}` in a template; `year_rows` adds data-year (the yearly tables)."""
        partial_title = escape(_("not over yet"))
        thin_title = escape(_("fewer than %(n)s events") % {"n": MIN_EVENTS_FOR_SHARE})
        keys = [escape(s.key) for s in self.series]
        separator = escape(formats.get_format("DECIMAL_SEPARATOR"))
        lines = []
        for i, row in enumerate(self.rows):
            label = escape(row)
            thin = bool(self.thin and self.thin[i])
            head = label
            if self.partial and self.partial[i]:
                head += f'<span title="{partial_title}">*</span>'
            if thin:
                head += f'<span title="{thin_title}">†</span>'
            cells = "".join(
                f'<td data-key="{key}">{_cell(s.values[i], separator)}</td>'
                for key, s in zip(keys, self.series, strict=True)
            )
            lines.append(
                f'<tr data-period="{label}"'
                + (f' data-year="{label}"' if year_rows else "")
                + (' class="thin"' if thin else "")
                + f'><th scope="row">{head}</th>{cells}</tr>'
            )
        return mark_safe("\n".join(lines))  # every text in it is escaped above

    def spec(self) -> dict[str, Any]:
        """What dashboard.js draws (Chart.js on the page, SVG for the download)."""
        marks = []
        for i, row in enumerate(self.rows):
            mark = row
            if self.partial and self.partial[i]:
                mark += "*"
            if self.thin and self.thin[i]:
                mark += "†"
            marks.append(mark)
        return {
            "key": self.key,
            "title": self.title,
            "kind": self.kind,
            "stacked": self.stacked,
            "percent": self.percent,
            "labels": marks,
            "xTitle": self.x_title,
            "yTitle": self.y_title,
            "thin": [bool(t) for t in self.thin] if self.thin else [],
            "series": [
                {"label": s.label, "data": s.values, "swatch": s.swatch, "dash": s.dash}
                for s in self.series
                if s.shown
            ],
        }


def _cell(value, decimal_separator: str) -> str:
    """A table cell's text: "—" for no value, numbers localized as `{{ value }}` in a
    template (the settings use no thousand separator): an int as it is, a float with the
    language's decimal separator."""
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and "e" not in (text := repr(value)):
        return text.replace(".", decimal_separator)
    return escape(formats.localize(value))


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _sum_by_group(rows) -> dict[Any, int]:
    """Events of each group over all periods (from event_counts rows)."""
    total: dict[Any, int] = {}
    for row in rows:
        total[row["group"]] = total.get(row["group"], 0) + row["events"]
    return total


def _top(totals: dict[Any, int], count: int) -> list[Any]:
    return [key for key, _n in sorted(totals.items(), key=lambda kv: (-kv[1], str(kv[0])))][:count]


class CompareError(ValueError):
    pass


def _compared_keys(kind: str, filters: dict, rows: list[dict]) -> list[Any]:
    """The compared groups: those chosen in the matching filter, or the top six."""
    chosen = filters.get({"city": "city", "admin1": "admin1", "country": "country"}[kind]) or []
    if len(chosen) > MAX_COMPARED:
        raise CompareError(
            _("Compare at most %(max)d at a time: %(count)d are selected in the %(filter)s filter.")
            % {
                "max": MAX_COMPARED,
                "count": len(chosen),
                "filter": {"city": _("City"), "admin1": _("Region"), "country": _("Country")}[kind],
            }
        )
    totals = _sum_by_group(rows)
    if not chosen:
        return _top({k: n for k, n in totals.items() if k not in (None, "")}, MAX_COMPARED)
    if kind == TrendGroup.ADMIN1:
        # The filter is case-insensitive: show each region as the data spells it.
        spelled = {str(key).lower(): key for key in totals if key}
        return [spelled.get(name.lower(), name) for name in chosen]
    return list(chosen)


def _narrowed(filterset, kind: str, keys: list[Any]):
    """`filterset` with its city, admin1 or country filter set to `keys`: the same events
    of those places (the keys came from counts under the same filters)."""
    data = QueryDict(mutable=True)
    for name, value in (filterset.data or {}).items():
        if name != kind:
            data.setlist(
                name,
                filterset.data.getlist(name) if hasattr(filterset.data, "getlist") else [value],
            )
    data.setlist(kind, [str(key) for key in keys])
    narrowed = EventFilterSet(
        data=data, queryset=filterset.queryset, extra_params=filterset.extra_params
    )
    if not narrowed.is_valid():  # the keys are the tracker's own: a bug, not bad input
        raise ValueError(narrowed.errors)
    return narrowed


def dashboard_charts(
    filterset, *, interval: str = TrendInterval.YEAR, compare: str | None = None
) -> dict[str, Chart]:
    """Every chart of the dashboard for a valid filter set, in page order."""
    filters = filterset.form.cleaned_data
    period_name = interval_names()[interval]
    totals_found = {
        row["period"]: row for row in event_counts(filterset=filterset, interval=interval)
    }
    periods = sorted(set(axis_periods(filters=filters, interval=interval)) | set(totals_found))
    index = {period: i for i, period in enumerate(periods)}
    labels = [period_label(period, interval) for period in periods]
    today = timezone.localdate()
    partial = [period <= today < period_after(period, interval) for period in periods]
    zero = dict.fromkeys(COUNT_METRICS, 0)
    totals = [totals_found.get(period, zero) for period in periods]
    events = [row["events"] for row in totals]
    thin = [0 < n < MIN_EVENTS_FOR_SHARE for n in events]
    medians = crowd_medians(filterset=filterset, interval=interval)

    def column(metric: str) -> list:
        return [row[metric] for row in totals]

    def period_chart(key, title, kind, series, y_title, **extra) -> Chart:
        return Chart(
            key=key,
            title=title,
            kind=kind,
            row_key=interval,
            row_label=period_name,
            rows=labels,
            series=series,
            x_title=period_name,
            y_title=y_title,
            partial=partial,
            **extra,
        )

    def events_column(shown=False) -> Series:
        return Series("events", _("Events"), events, "series-1", shown=shown)

    several = _(
        "One event can have several grievances or police responses, so the shares of one "
        "period can add up to more than 100 %."
    )
    thin_note = _(
        "† Fewer than %(n)d events in the period: its shares are unreliable (greyed in the "
        "tables, hollow points in the charts)."
    ) % {"n": MIN_EVENTS_FOR_SHARE}

    charts: dict[str, Chart] = {}
    charts["totals"] = period_chart(
        "totals",
        _("Events, arrests, use of force"),
        "bar",
        [
            events_column(shown=True),
            Series("arrests", _("People arrested"), column("arrests"), shown=False),
            Series(
                "events_with_arrests",
                _("Events with arrests"),
                column("events_with_arrests"),
                shown=False,
            ),
            Series(
                "events_with_force",
                _("Events with use of force"),
                column("events_with_force"),
                shown=False,
            ),
            Series(
                "share_with_arrests",
                _("Share with arrests (per cent)"),
                [_share(r["events_with_arrests"], r["events"]) for r in totals],
                shown=False,
            ),
            Series(
                "share_with_force",
                _("Share with force (per cent)"),
                [_share(r["events_with_force"], r["events"]) for r in totals],
                shown=False,
            ),
        ],
        _("Events"),
    )

    def by_vocabulary(by: str, terms, prefix: str):
        counts: dict[str, list[int]] = {}
        for row in event_counts(filterset=filterset, interval=interval, by=by):
            i = index.get(row["period"])
            if i is not None:
                counts.setdefault(row["group"], [0] * len(periods))[i] = row["events"]
        shown = [t for t in terms if t.slug in counts]
        count_series = [
            Series(t.slug, t.label(), counts[t.slug], f"{prefix}-{t.slug}") for t in shown
        ]
        share_series = [
            Series(
                t.slug,
                t.label(),
                [_share(n, events[i]) for i, n in enumerate(counts[t.slug])],
                f"{prefix}-{t.slug}",
                dash=k % 2 == 1,
            )
            for k, t in enumerate(shown)
        ]
        return count_series, share_series

    grievance_counts, grievance_shares = by_vocabulary(
        TrendGroup.GRIEVANCE, taxonomy.GRIEVANCES, "grievance"
    )
    police_counts, police_shares = by_vocabulary(
        TrendGroup.POLICE_RESPONSE, taxonomy.POLICE_RESPONSES, "police"
    )
    charts["grievance-shares"] = period_chart(
        "grievance-shares",
        _("Grievances: per cent of the period's events"),
        "line",
        [*grievance_shares, events_column()],
        _("Per cent of events"),
        percent=True,
        thin=thin,
        notes=[several, thin_note],
    )
    charts["grievances"] = period_chart(
        "grievances",
        _("Grievance mentions (stacked; not a count of events)"),
        "bar",
        grievance_counts,
        _("Mentions: events with the grievance"),
        stacked=True,
        notes=[
            _(
                "An event with several grievances counts once for each, so a bar's height "
                "is the number of mentions, not of events; the events are in the first chart."
            )
        ],
    )
    charts["police-shares"] = period_chart(
        "police-shares",
        _("Police response: per cent of the period's events"),
        "line",
        [*police_shares, events_column()],
        _("Per cent of events"),
        percent=True,
        thin=thin,
        notes=[several, thin_note],
    )
    charts["police"] = period_chart(
        "police",
        _("Police response mentions (stacked; not a count of events)"),
        "bar",
        police_counts,
        _("Mentions: events with the response"),
        stacked=True,
        notes=[
            _(
                "An event with several police responses counts once for each, so a bar's "
                "height is the number of mentions, not of events."
            )
        ],
    )
    charts["arrests"] = period_chart(
        "arrests",
        _("People arrested"),
        "bar",
        [
            Series("arrests", _("People arrested"), column("arrests"), "series-2"),
            Series(
                "events_with_arrests",
                _("Events with arrests"),
                column("events_with_arrests"),
                shown=False,
            ),
        ],
        _("People"),
    )
    charts["share"] = period_chart(
        "share",
        _("Share of events with arrests and with use of force"),
        "line",
        [
            Series(
                "share_with_arrests",
                _("Share with arrests (per cent)"),
                [_share(r["events_with_arrests"], r["events"]) for r in totals],
                "series-1",
            ),
            Series(
                "share_with_force",
                _("Share with force (per cent)"),
                [_share(r["events_with_force"], r["events"]) for r in totals],
                "series-2",
                dash=True,
            ),
            events_column(),
        ],
        _("Per cent of events"),
        percent=True,
        thin=thin,
        notes=[thin_note],
    )
    charts["crowd"] = period_chart(
        "crowd",
        _("Crowd size: sum of the estimates"),
        "line",
        [
            Series("participants_low", _("Low estimate"), column("participants_low"), "series-1"),
            Series(
                "participants_high",
                _("High estimate"),
                column("participants_high"),
                "series-2",
                dash=True,
            ),
            Series(
                "events_with_participants",
                _("Events with a crowd estimate"),
                column("events_with_participants"),
                shown=False,
            ),
        ],
        _("Participants"),
        notes=[_("Only events that report a crowd size count; many do not.")],
    )

    def median(period, key):
        value = medians.get(period, {}).get(key)
        return None if value is None else round(value, 1)

    charts["crowd-median"] = period_chart(
        "crowd-median",
        _("Crowd size: median per event"),
        "line",
        [
            Series(
                "median_low",
                _("Median low estimate"),
                [median(p, "median_low") for p in periods],
                "series-1",
            ),
            Series(
                "median_high",
                _("Median high estimate"),
                [median(p, "median_high") for p in periods],
                "series-2",
                dash=True,
            ),
            Series(
                "events_with_participants",
                _("Events with a crowd estimate"),
                column("events_with_participants"),
                shown=False,
            ),
        ],
        _("Participants"),
        notes=[_("Over the events that report a crowd size; empty where none does.")],
    )
    charts["harm"] = period_chart(
        "harm",
        _("Injuries and deaths"),
        "bar",
        [
            Series("injuries", _("Injuries"), column("injuries"), "series-3"),
            Series("deaths", _("Deaths"), column("deaths"), "series-6"),
        ],
        _("People"),
    )

    # Places: the top lists sum yearly counts (a few thousand rows at a million events,
    # where per-month counts of every city are tens of thousands); the comparison then
    # counts only the compared places at the page's interval.
    yearly = TrendInterval.YEAR
    city_rows = event_counts(filterset=filterset, interval=yearly, by=TrendGroup.CITY)
    region_rows = event_counts(filterset=filterset, interval=yearly, by=TrendGroup.ADMIN1)
    per_city = {k: n for k, n in _sum_by_group(city_rows).items() if k is not None}
    top_cities = _top(per_city, TOP_CITIES)
    per_region = _sum_by_group(region_rows)
    top_regions = _top(per_region, TOP_REGIONS)
    yearly_rows = {TrendGroup.CITY: city_rows, TrendGroup.ADMIN1: region_rows}
    compare_rows: dict[str, list[dict]] = {}
    compared: list[Any] = []
    if compare:
        rows = yearly_rows.get(compare)
        if rows is None:
            rows = event_counts(filterset=filterset, interval=yearly, by=compare)
        compared = _compared_keys(compare, filters, rows)
        if interval == yearly or not compared:
            compare_rows[compare] = rows
        else:
            compare_rows[compare] = event_counts(
                filterset=_narrowed(filterset, compare, compared), interval=interval, by=compare
            )
    cities = city_names(set(top_cities) | (set(compared) if compare == TrendGroup.CITY else set()))
    charts["cities"] = Chart(
        key="cities",
        title=_("Top cities"),
        kind="hbar",
        row_key="city",
        row_label=_("City"),
        rows=[cities[pk].label() for pk in top_cities],
        series=[Series("events", _("Events"), [per_city[pk] for pk in top_cities])],
        x_title=_("Events"),
        y_title=_("City"),
    )
    no_region = _("(no region given)")
    charts["regions"] = Chart(
        key="regions",
        title=_("Regions"),
        kind="hbar",
        row_key="admin1",
        row_label=_("Region"),
        rows=[key or no_region for key in top_regions],
        series=[Series("events", _("Events"), [per_region[key] for key in top_regions])],
        x_title=_("Events"),
        y_title=_("Region"),
        notes=[_("At most %(n)d regions, those with the most events.") % {"n": TOP_REGIONS}]
        if len(per_region) > TOP_REGIONS
        else [],
    )

    if compare:
        grid: dict[Any, list[int]] = {key: [0] * len(periods) for key in compared}
        for row in compare_rows[compare]:
            i = index.get(row["period"])
            key = row["group"]
            if compare == TrendGroup.ADMIN1:
                key = next((k for k in compared if str(k).lower() == str(key).lower()), key)
            if i is not None and key in grid:
                grid[key][i] += row["events"]

        def name(key) -> str:
            if compare == TrendGroup.CITY:
                city = cities.get(key)
                return city.label() if city else str(key)
            return str(key) if key else no_region

        def column_key(key) -> str:
            if compare == TrendGroup.CITY:
                city = cities.get(key)
                return f"{city.name} ({key})" if city else str(key)
            return str(key)

        what = compare_names()[compare]
        notes = [
            {
                TrendGroup.CITY: _(
                    "The cities selected in the City filter (up to six), or else the six "
                    "with the most events."
                ),
                TrendGroup.ADMIN1: _(
                    "The regions selected in the Region filter (up to six), or else the six "
                    "with the most events."
                ),
                TrendGroup.COUNTRY: _(
                    "The countries selected in the Country filter (up to six), or else the "
                    "six with the most events."
                ),
            }[compare]
        ]
        if compare != TrendGroup.CITY:
            notes.append(
                _(
                    "The gazetteer has no population for regions and countries: counts "
                    "only, no rate per 100,000 people."
                )
            )
        charts["compare"] = period_chart(
            "compare",
            _("%(what)s compared: events") % {"what": what},
            "line",
            [
                Series(column_key(key), name(key), grid[key], f"series-{k + 1}", dash=k % 2 == 1)
                for k, key in enumerate(compared)
            ],
            _("Events"),
            notes=notes,
        )
        if compare == TrendGroup.CITY:
            known = [key for key in compared if key in cities and cities[key].population]
            unknown = [name(key) for key in compared if key not in known]
            rate_notes = [_("Events per 100,000 people of the city's population in the gazetteer.")]
            if unknown:
                rate_notes.append(
                    _("Population unknown (no rate): %(cities)s.") % {"cities": ", ".join(unknown)}
                )
            charts["compare-rate"] = period_chart(
                "compare-rate",
                _("Cities compared: events per 100,000 people"),
                "line",
                [
                    Series(
                        column_key(key),
                        name(key),
                        [round(PER_PEOPLE * n / cities[key].population, 2) for n in grid[key]],
                        f"series-{compared.index(key) + 1}",
                        dash=compared.index(key) % 2 == 1,
                    )
                    for key in known
                ],
                _("Per 100,000 people"),
                notes=rate_notes,
            )
    return charts


CHART_KEYS = (
    "totals",
    "grievance-shares",
    "grievances",
    "police-shares",
    "police",
    "arrests",
    "share",
    "crowd",
    "crowd-median",
    "harm",
    "cities",
    "regions",
    "compare",
    "compare-rate",
)


def _single(request, name: str) -> tuple[str | None, str | None]:
    """A page parameter's value and an error message (given twice differently, say)."""
    values = set(request.GET.getlist(name))
    if len(values) > 1:
        return None, _("%(name)s was given more than once with different values.") % {"name": name}
    return (values.pop() if values else None) or None, None


def dashboard_state(request):
    """(filterset, form, interval, compare, errors): the page's parameters checked."""
    filterset, form, valid = page_filters(request, extra_params=DASHBOARD_PARAMS)
    errors: list[str] = []
    interval, error = _single(request, "interval")
    if error:
        errors.append(error)
    interval = interval or TrendInterval.YEAR
    if interval not in INTERVALS:
        errors.append(
            _("Unknown period %(value)s: choose year, quarter, month or week.")
            % {"value": repr(interval)}
        )
        interval = TrendInterval.YEAR
    compare, error = _single(request, "compare")
    if error:
        errors.append(error)
    if compare is not None and compare not in COMPARES:
        errors.append(
            _("Unknown comparison %(value)s: choose city, admin1 (regions) or country.")
            % {"value": repr(compare)}
        )
        compare = None
    if valid and not errors:
        try:
            check_interval(filters=filterset.form.cleaned_data, interval=interval)
        except IntervalTooLong:
            errors.append(
                _(
                    "Weeks need a date range of at most a year: give a year, or From and To "
                    "dates at most a year apart, or choose another period."
                )
            )
    return filterset, form, valid, interval, compare, errors


def _build(filterset, form, valid, interval, compare, errors) -> dict[str, Chart] | None:
    """The charts, or None after putting every message in the filter panel."""
    if valid and not errors:
        try:
            return dashboard_charts(filterset, interval=interval, compare=compare)
        except CompareError as error:
            errors.append(str(error))
    for message in errors:
        form.add_error(None, message)
    return None


@require_safe
def dashboard(request):
    filterset, form, valid, interval, compare, errors = dashboard_state(request)
    charts = _build(filterset, form, valid, interval, compare, errors)
    ok = charts is not None
    charts = charts or {}
    query = request.GET.urlencode()
    totals = charts.get("totals")
    for chart in charts.values():
        chart.body = chart.table_body(year_rows=interval == "year" and chart.row_key == "year")
    context = {
        "form": form,
        "heading": page_heading(interval),
        "interval": interval,
        "compare": compare or "",
        "interval_choices": list(interval_names().items()),
        "compare_choices": list(compare_names().items()),
        "charts": [charts[key] for key in CHART_KEYS if key in charts],
        "chart_data": {"charts": [chart.spec() for chart in charts.values()]},
        "has_partial": bool(totals and any(totals.partial)),
        "query": query,
        "totals": [
            {"period": label, **{cell[0]: cell[1] for cell in row["cells"]}}
            for label, row in zip(totals.rows, totals.table(), strict=True)
        ]
        if totals
        else [],
        "min_events": MIN_EVENTS_FOR_SHARE,
    }
    return render(request, "tracker/dashboard.html", context, status=200 if ok else 400)


@require_safe
def dashboard_csv(request, chart: str):
    if chart not in CHART_KEYS:
        raise Http404(_("No such chart."))
    filterset, form, valid, interval, compare, errors = dashboard_state(request)
    charts = _build(filterset, form, valid, interval, compare, errors)
    if charts is not None and chart not in charts:
        form.add_error(
            None,
            _("This chart needs compare=city.")
            if chart == "compare-rate"
            else _("This chart needs compare=city, admin1 or country."),
        )
        charts = None
    if charts is None:
        messages = [
            f"{name}: {' '.join(errs)}" if name != "__all__" else " ".join(errs)
            for name, errs in form.errors.items()
        ]
        return HttpResponse(
            "; ".join(messages), status=400, content_type="text/plain; charset=utf-8"
        )
    table = charts[chart]
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = (
        f'attachment; filename="protest-events-{chart}-{interval}-{stamp}.csv"'
    )
    writer = csv_safety.writer(response)
    writer.writerow(table.csv_header())
    for row in table.csv_rows():
        writer.writerow(["" if value is None else value for value in row])
    return response
