"""HTML pages: map, dashboard, event page, submission, review queue (and /healthz).

Views translate the request and pick a template; reads come from tracker.page_selectors and
tracker.selectors, writes go through tracker.services.events."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from pages.forms import (
    EventFilterForm,
    EventForm,
    ReviewForm,
    SourceFormSet,
    event_form_differences,
)
from tracker import csv_safety, page_selectors, taxonomy
from tracker.health import health_report
from tracker.history import is_moderator
from tracker.models import Event
from tracker.selectors import city_search
from tracker.services.events import (
    EventAlreadyReviewed,
    EventChanged,
    event_create,
    event_review,
    event_update,
)


@never_cache
@require_safe
def healthz(request):
    healthy, report = health_report()
    return JsonResponse(report, status=200 if healthy else 503)


def _terms(terms: tuple[taxonomy.Term, ...]) -> list[dict[str, str]]:
    return [{"slug": t.slug, "label": t.label()} for t in terms]


def _filter_form(request) -> EventFilterForm:
    return EventFilterForm(request.GET or None, countries=page_selectors.filter_countries())


def _filters(form: EventFilterForm) -> page_selectors.EventFilters:
    if form.is_bound and form.is_valid():
        return page_selectors.EventFilters.from_cleaned(form.cleaned_data)
    return page_selectors.EventFilters()


@require_safe
def map_page(request):
    form = _filter_form(request)
    invalid = form.is_bound and not form.is_valid()
    first_year, last_year = page_selectors.event_year_range()
    return render(
        request,
        "tracker/map.html",
        {
            "form": form,
            "first_year": first_year,
            "last_year": last_year,
            "tile_url": settings.MAP_TILE_URL,
            "map_config": {
                "api": "/api/v1/events/",
                "eventUrl": reverse("event-detail", args=[0]),
                "grievances": _terms(taxonomy.GRIEVANCES),
                "policeResponses": _terms(taxonomy.POLICE_RESPONSES),
                "firstYear": first_year,
                "lastYear": last_year,
            },
        },
        status=400 if invalid else 200,
    )


def _dashboard_tables(filters: page_selectors.EventFilters | None) -> dict[str, Any]:
    if filters is None:
        return {
            "years": [],
            "totals": [],
            "grievances": [],
            "grievance_rows": [],
            "responses": [],
            "police_rows": [],
            "cities": [],
        }
    totals = page_selectors.yearly_totals(filters=filters)
    years = [row["year"] for row in totals]
    by_grievance = page_selectors.yearly_by_vocabulary(filters=filters, field="grievances")
    by_police = page_selectors.yearly_by_vocabulary(filters=filters, field="police_responses")
    grievances = [
        t for t in taxonomy.GRIEVANCES if any(t.slug in by_grievance.get(y, {}) for y in years)
    ]
    responses = [
        t for t in taxonomy.POLICE_RESPONSES if any(t.slug in by_police.get(y, {}) for y in years)
    ]
    cities = page_selectors.top_cities(filters=filters)
    return {
        "years": years,
        "totals": totals,
        "grievances": grievances,
        "grievance_rows": [
            {"year": y, "counts": [by_grievance.get(y, {}).get(t.slug, 0) for t in grievances]}
            for y in years
        ],
        "responses": responses,
        "police_rows": [
            {"year": y, "counts": [by_police.get(y, {}).get(t.slug, 0) for t in responses]}
            for y in years
        ],
        "cities": [{"name": row["city"].label(), "events": row["events"]} for row in cities],
    }


@require_safe
def dashboard(request):
    form = _filter_form(request)
    invalid = form.is_bound and not form.is_valid()
    # Bad filters get their messages next to the fields and no numbers, never numbers of a
    # different (unfiltered) selection.
    tables = _dashboard_tables(None if invalid else _filters(form))
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
    query = request.GET.urlencode()
    return render(
        request,
        "tracker/dashboard.html",
        {"form": form, "chart_data": chart_data, "query": query, **tables},
        status=400 if invalid else 200,
    )


DASHBOARD_CSV = ("totals", "grievances", "police", "cities")


@require_safe
def dashboard_csv(request, chart: str):
    if chart not in DASHBOARD_CSV:
        raise Http404(_("No such chart."))
    form = _filter_form(request)
    if form.is_bound and not form.is_valid():
        return HttpResponse(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    tables = _dashboard_tables(_filters(form))
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


def _can_see(user, event: Event) -> bool:
    if event.status == Event.Status.PUBLISHED:
        return True
    if is_moderator(user):
        return True
    return user.is_authenticated and event.submitted_by_id == user.pk


@require_safe
def event_detail(request, pk: int):
    try:
        event = page_selectors.event_with_sources(pk=pk)
    except Event.DoesNotExist:
        raise Http404(_("No such event.")) from None
    if not _can_see(request.user, event):
        raise Http404(_("No such event."))
    return render(
        request,
        "tracker/event_detail.html",
        {
            "event": event,
            "grievances": [taxonomy.term(s).label() for s in event.grievances],
            "police_responses": [taxonomy.term(s).label() for s in event.police_responses],
            "history": page_selectors.event_history_summary(event=event),
            "point": [event.location.x, event.location.y] if event.location else None,
            "tile_url": settings.MAP_TILE_URL,
            "is_moderator": is_moderator(request.user),
        },
    )


@require_safe
def city_suggestions(request):
    """Autocomplete of the submit form: cities whose name in any language starts with q."""
    query = request.GET.get("q", "")[:60]
    return JsonResponse(
        {
            "results": [
                {"id": city.pk, "name": city.name, "label": city.label(), "country": city.country}
                for city in city_search(query, limit=10)
            ]
        }
    )


def _save_event(request, form: EventForm, sources: SourceFormSet, event: Event | None):
    """Create (or update) through the services; their errors go next to the fields.

    An update of an event changed since the form was shown raises EventChanged."""
    try:
        if event is None:
            return event_create(
                fields=form.event_fields(),
                sources=sources.sources(),
                organizers=form.organizer_names(),
                submitted_by=request.user,
                actor=request.user,
            )
        return event_update(
            event=event,
            actor=request.user,
            fields=form.event_fields(),
            sources=sources.sources(),
            organizers=form.organizer_names(),
            reason="edited in review",
            expected_versions=form.expected_versions(),
        )
    except ValidationError as error:
        form.add_service_errors(error)
        return None


@login_required
@permission_required("tracker.add_event", raise_exception=True)
@require_http_methods(["GET", "POST"])
def submit(request):
    form = EventForm(request.POST or None)
    sources = SourceFormSet(request.POST or None, prefix="sources")
    if request.method == "POST" and (form.is_valid() & sources.is_valid()):
        event = _save_event(request, form, sources, None)
        if event is not None:
            messages.success(
                request,
                _("Thank you. “%(title)s” is waiting for review.") % {"title": event.title},
            )
            return redirect("my-submissions")
    return render(
        request,
        "tracker/submit.html",
        {"form": form, "sources": sources, "tile_url": settings.MAP_TILE_URL},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_safe
def my_submissions(request):
    return render(
        request,
        "tracker/my_submissions.html",
        {"events": page_selectors.my_submissions(user=request.user)},
    )


def _moderator_required(request) -> None:
    if not is_moderator(request.user):
        raise PermissionDenied(_("Only moderators review submissions."))


@login_required
@require_safe
def review_queue(request):
    _moderator_required(request)
    return render(request, "tracker/review_queue.html", {"events": page_selectors.review_queue()})


def _event_or_404(pk: int) -> Event:
    try:
        return page_selectors.event_with_sources(pk=pk)
    except Event.DoesNotExist:
        raise Http404(_("No such event.")) from None


def _already_reviewed_message(event: Event) -> str:
    """What a moderator reads when another one decided first; it names nobody."""
    when = (
        formats.date_format(timezone.localtime(event.reviewed_at), "Y-m-d H:i T")
        if event.reviewed_at
        else ""
    )
    if event.status == Event.Status.PUBLISHED:
        text = _("This submission was already published by a moderator at %(time)s.")
    elif event.status == Event.Status.REJECTED:
        text = _("This submission was already rejected by a moderator at %(time)s.")
    else:
        text = _("Only pending submissions are reviewed; this one is %(status)s.")
    return (
        text % {"time": when, "status": event.get_status_display()}
        + " "
        + _("Your decision was not recorded.")
    )


@login_required
@require_http_methods(["GET", "POST"])
def review_event(request, pk: int):
    _moderator_required(request)
    event = _event_or_404(pk)
    form = ReviewForm(request.POST or None, initial={"version": event.version})
    conflict = None
    if request.method == "POST" and form.is_valid():
        try:
            event_review(
                event=event,
                moderator=request.user,
                decision=form.cleaned_data["decision"],
                note=form.cleaned_data["note"] or "",
                expected_versions=form.expected_versions(),
            )
        except EventAlreadyReviewed as reviewed:
            conflict = _already_reviewed_message(reviewed.current)
        except EventChanged:
            conflict = _(
                "This submission was changed while you were reading it. Check it again below, "
                "then record your decision."
            )
        except Event.DoesNotExist:
            raise Http404(_("No such event.")) from None
        except ValidationError as error:
            for field, errors in getattr(error, "error_dict", {None: [error]}).items():
                for item in errors:
                    form.add_error(field if field in form.fields else None, item.messages)
        else:
            if form.cleaned_data["decision"] == "publish":
                messages.success(request, _("Published: %(title)s") % {"title": event.title})
            else:
                messages.success(request, _("Rejected: %(title)s") % {"title": event.title})
            return redirect("review-queue")
    if conflict:
        # Show the event as it is now, with a form for its current version.
        event = _event_or_404(pk)
        form = ReviewForm(initial={"version": event.version})
    return render(
        request,
        "tracker/review_event.html",
        {
            "event": event,
            "form": form,
            "conflict": conflict,
            "grievances": [taxonomy.term(s).label() for s in event.grievances],
            "police_responses": [taxonomy.term(s).label() for s in event.police_responses],
            "duplicates": page_selectors.likely_duplicates(event=event),
        },
        status=409 if conflict else 400 if request.method == "POST" else 200,
    )


def _edit_conflict(request, form: EventForm, sources: SourceFormSet, pk: int):
    """Nothing was saved: the moderator's values next to the stored ones, and a way to
    apply theirs over the current version."""
    current = _event_or_404(pk)
    resubmit = [
        (name, values)
        for name, values in request.POST.lists()
        if name not in ("csrfmiddlewaretoken", "version")
    ]
    return render(
        request,
        "tracker/conflict.html",
        {
            "event": current,
            "differences": event_form_differences(form, sources.sources(), current),
            "resubmit": resubmit,
        },
        status=409,
    )


@login_required
@require_http_methods(["GET", "POST"])
def review_edit(request, pk: int):
    _moderator_required(request)
    event = _event_or_404(pk)
    if request.method == "POST":
        form = EventForm(request.POST)
        sources = SourceFormSet(request.POST, prefix="sources")
        # Both validated (no short-circuit), so every error shows at once.
        valid = form.is_valid() & sources.is_valid()
        if valid:
            try:
                saved = _save_event(request, form, sources, event)
            except EventChanged:
                return _edit_conflict(request, form, sources, pk)
            except Event.DoesNotExist:
                raise Http404(_("No such event.")) from None
            if saved is not None:
                messages.success(request, _("Saved: %(title)s") % {"title": saved.title})
                return redirect("review-event", pk=event.pk)
    else:
        form = EventForm(initial=EventForm.initial_from(event))
        sources = SourceFormSet(
            prefix="sources",
            initial=[
                {
                    "url": s.url,
                    "title": s.title,
                    "publisher": s.publisher,
                    "published_on": s.published_on,
                }
                for s in event.sources.all()
            ],
        )
    return render(
        request,
        "tracker/submit.html",
        {
            "form": form,
            "sources": sources,
            "event": event,
            "tile_url": settings.MAP_TILE_URL,
            # Where the event is now (also when only its city places it), for the map.
            "point": [event.location.x, event.location.y] if event.location else None,
        },
        status=400 if request.method == "POST" else 200,
    )
