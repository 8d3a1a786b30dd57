"""/dashboard/ and its CSVs: the counts of tracker.selectors.event_counts over the event
filters of tracker.query, per period, as tables and charts."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from pages.forms import page_filters
from tracker import csv_safety, taxonomy
from tracker.selectors import (
    COUNT_METRICS,
    TrendGroup,
    TrendInterval,
    axis_periods,
    city_names,
    event_counts,
    period_label,
)

DASHBOARD_PARAMS = ("interval",)


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def dashboard_tables(filterset, *, interval: str = TrendInterval.YEAR) -> dict[str, Any]:
    """Every number of the dashboard for a valid filter set."""
    filters = filterset.form.cleaned_data
    found = {row["period"]: row for row in event_counts(filterset=filterset, interval=interval)}
    periods = sorted(set(axis_periods(filters=filters, interval=interval)) | set(found))
    zero = dict.fromkeys(COUNT_METRICS, 0)
    totals = []
    for period in periods:
        row = found.get(period, zero)
        totals.append(
            {
                "period": period_label(period, interval),
                "year": period_label(period, interval),
                **{metric: row[metric] for metric in COUNT_METRICS},
                "share_with_arrests": _share(row["events_with_arrests"], row["events"]),
                "share_with_force": _share(row["events_with_force"], row["events"]),
            }
        )
    labels = [row["period"] for row in totals]

    def by_vocabulary(by: str, terms):
        counts: dict[tuple[str, str], int] = {}
        for row in event_counts(filterset=filterset, interval=interval, by=by):
            counts[(period_label(row["period"], interval), row["group"])] = row["events"]
        shown = [t for t in terms if any((label, t.slug) in counts for label in labels)]
        rows = [
            {"year": label, "counts": [counts.get((label, t.slug), 0) for t in shown]}
            for label in labels
        ]
        return shown, rows

    grievances, grievance_rows = by_vocabulary(TrendGroup.GRIEVANCE, taxonomy.GRIEVANCES)
    responses, police_rows = by_vocabulary(TrendGroup.POLICE_RESPONSE, taxonomy.POLICE_RESPONSES)
    per_city: dict[int, int] = {}
    for row in event_counts(filterset=filterset, interval=TrendInterval.YEAR, by=TrendGroup.CITY):
        if row["group"] is not None:
            per_city[row["group"]] = per_city.get(row["group"], 0) + row["events"]
    top = sorted(per_city.items(), key=lambda item: (-item[1], item[0]))[:10]
    names = city_names(pk for pk, _ in top)
    return {
        "years": labels,
        "totals": totals,
        "grievances": grievances,
        "grievance_rows": grievance_rows,
        "responses": responses,
        "police_rows": police_rows,
        "cities": [{"name": names[pk].label(), "events": events} for pk, events in top],
    }


EMPTY_TABLES = {
    "years": [],
    "totals": [],
    "grievances": [],
    "grievance_rows": [],
    "responses": [],
    "police_rows": [],
    "cities": [],
}


def _interval(request) -> str | None:
    interval = request.GET.get("interval") or TrendInterval.YEAR
    return interval if interval in (TrendInterval.YEAR, TrendInterval.MONTH) else None


@require_safe
def dashboard(request):
    filterset, form, valid = page_filters(request, extra_params=DASHBOARD_PARAMS)
    interval = _interval(request)
    valid = valid and interval is not None
    # Bad filters get their messages next to the fields and no numbers, never numbers of a
    # different (unfiltered) selection.
    tables = dashboard_tables(filterset, interval=interval) if valid else EMPTY_TABLES
    chart_data = {
        "years": tables["years"],
        "totals": tables["totals"],
        "grievances": [
            {
                "slug": t.slug,
                "label": t.label(),
                "counts": [row["counts"][i] for row in tables["grievance_rows"]],
            }
            for i, t in enumerate(tables["grievances"])
        ],
        "responses": [
            {
                "slug": t.slug,
                "label": t.label(),
                "counts": [row["counts"][i] for row in tables["police_rows"]],
            }
            for i, t in enumerate(tables["responses"])
        ],
        "cities": tables["cities"],
        "labels": {
            "events": _("Events"),
            "arrests": _("People arrested"),
            "shareArrests": _("Share of events with arrests (per cent)"),
            "shareForce": _("Share of events with use of force (per cent)"),
        },
    }
    return render(
        request,
        "tracker/dashboard.html",
        {"form": form, "chart_data": chart_data, "query": request.GET.urlencode(), **tables},
        status=200 if valid else 400,
    )


DASHBOARD_CSV = ("totals", "grievances", "police", "cities")


@require_safe
def dashboard_csv(request, chart: str):
    if chart not in DASHBOARD_CSV:
        raise Http404(_("No such chart."))
    filterset, _form, valid = page_filters(request, extra_params=DASHBOARD_PARAMS)
    interval = _interval(request)
    if not valid or interval is None:
        messages = [
            f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
            for name, errors in filterset.errors.items()
        ] or [_("Unknown interval.")]
        return HttpResponse(
            "; ".join(messages), status=400, content_type="text/plain; charset=utf-8"
        )
    tables = dashboard_tables(filterset, interval=interval)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="protest-events-{chart}.csv"'
    writer = csv_safety.writer(response)
    if chart == "totals":
        keys = [
            "year",
            "events",
            "arrests",
            "events_with_arrests",
            "events_with_force",
            "share_with_arrests",
            "share_with_force",
        ]
        writer.writerow(keys)
        for row in tables["totals"]:
            writer.writerow([row[key] for key in keys])
    elif chart in ("grievances", "police"):
        terms = tables["grievances" if chart == "grievances" else "responses"]
        rows = tables["grievance_rows" if chart == "grievances" else "police_rows"]
        writer.writerow(["year", *[t.slug for t in terms]])
        for row in rows:
            writer.writerow([row["year"], *row["counts"]])
    else:
        writer.writerow(["city", "events"])
        for row in tables["cities"]:
            writer.writerow([row["name"], row["events"]])
    return response
