"""HTML pages: map, dashboard, event page, submission, review queue (and /healthz).

Views translate the request and pick a template; event filters come from tracker.query,
reads from tracker.selectors, writes go through tracker.services.events."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from csp.decorators import csp_replace
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_http_methods, require_safe

from pages.forms import (
    EventForm,
    ReviewForm,
    SourceFormSet,
    event_form_differences,
    page_filters,
)
from tracker import selectors, taxonomy
from tracker.health import health_report
from tracker.history import is_moderator
from tracker.models import City, Event
from tracker.selectors import city_search, published_date_range
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


MAP_PARAMS = ("colour",)
# The most cities the basemap may label (the largest first); a few kB of JSON per thousand.
PLACE_LABELS_MAX = 1000


def _place_labels() -> list[list]:
    """The gazetteer's cities for the basemap's labels: [name in the page's language, lat,
    lng, population], largest first (the map labels more of them the closer it zooms)."""
    language = (get_language() or "en")[:2]  # as City.label
    rows = City.objects.order_by("-population", "name").values_list(
        "name", "name_ru", "name_kk", "location", "population"
    )[:PLACE_LABELS_MAX]
    return [
        [
            City.label_of(name, name_ru, name_kk, language),
            round(point.y, 4),
            round(point.x, 4),
            population,
        ]
        for name, name_ru, name_kk, point, population in rows
    ]


def _map_context(request, *, embed: bool = False) -> tuple[dict, bool]:
    """What the map page and the embedded map share: the filters of the query (through the
    one query layer, so both refuse what the API refuses) and the map's configuration."""
    _filterset, form, valid = page_filters(request, extra_params=MAP_PARAMS)
    bounds = published_date_range()
    this_year = timezone.localdate().year
    first_year, last_year = (bounds[0].year, bounds[1].year) if bounds else (this_year,) * 2
    context = {
        "form": form,
        "first_year": first_year,
        "last_year": last_year,
        "tile_url": settings.MAP_TILE_URL,
        # The list of the same selection (the map's own parameters left out).
        "list_query": urlencode(
            [(k, v) for k in request.GET if k not in MAP_PARAMS for v in request.GET.getlist(k)]
        ),
        "map_config": {
            "api": "/api/v1/events/",
            "eventUrl": reverse("event-detail", args=[0]),
            "grievances": _terms(taxonomy.GRIEVANCES),
            "policeResponses": _terms(taxonomy.POLICE_RESPONSES),
            "firstYear": first_year,
            "lastYear": last_year,
            "valid": valid,
            "embed": embed,
            "places": _place_labels(),
        },
    }
    return context, valid


@require_safe
def map_page(request):
    context, valid = _map_context(request)
    return render(request, "tracker/map.html", context, status=200 if valid else 400)


def _frameable_by_partners(view):
    """Let the origins of EMBED_ALLOWED_ORIGINS (and the site itself) frame `view`: CSP
    frame-ancestors names them, and X-Frame-Options (which cannot name several origins) is
    left out. With no origin listed the view is refused to frames like every other page
    (frame-ancestors 'none', X-Frame-Options DENY). Read per request, so the setting is the
    one in force (and tests may override it)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        origins = list(settings.EMBED_ALLOWED_ORIGINS)
        if not origins:
            return view(request, *args, **kwargs)
        framed = csp_replace({"frame-ancestors": ["'self'", *origins]})(view)
        return xframe_options_exempt(framed)(request, *args, **kwargs)

    return wrapped


@_frameable_by_partners
@require_safe
def embed_map(request):
    """/embed/?<filters>: the live map alone, for a partner's page to frame. The filters
    come from the query (unknown or bad ones are a 400, as on the map page); a link opens
    the same selection in the tracker."""
    context, valid = _map_context(request, embed=True)
    query = request.GET.urlencode()
    context["tracker_url"] = reverse("map") + (f"?{query}" if query else "")
    return render(request, "tracker/embed.html", context, status=200 if valid else 400)


def _can_see(user, event: Event) -> bool:
    if event.status == Event.Status.PUBLISHED:
        return True
    if is_moderator(user):
        return True
    return user.is_authenticated and event.submitted_by_id == user.pk


@require_safe
def event_detail(request, pk: int):
    try:
        event = selectors.event_with_sources(pk=pk)
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
            "history": selectors.event_history_summary(event=event),
            "point": [event.location.x, event.location.y] if event.location else None,
            "tile_url": settings.MAP_TILE_URL,
            # The list of the same selection (the map's own parameters left out).
            "list_query": urlencode(
                [(k, v) for k in request.GET if k not in MAP_PARAMS for v in request.GET.getlist(k)]
            ),
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
        {"events": selectors.my_submissions(user=request.user)},
    )


def _moderator_required(request) -> None:
    if not is_moderator(request.user):
        raise PermissionDenied(_("Only moderators review submissions."))


@login_required
@require_safe
def review_queue(request):
    _moderator_required(request)
    return render(request, "tracker/review_queue.html", {"events": selectors.review_queue()})


def _event_or_404(pk: int) -> Event:
    try:
        return selectors.event_with_sources(pk=pk)
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
            "duplicates": selectors.likely_duplicates(event=event),
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
            # The list of the same selection (the map's own parameters left out).
            "list_query": urlencode(
                [(k, v) for k in request.GET if k not in MAP_PARAMS for v in request.GET.getlist(k)]
            ),
            # Where the event is now (also when only its city places it), for the map.
            "point": [event.location.x, event.location.y] if event.location else None,
        },
        status=400 if request.method == "POST" else 200,
    )
