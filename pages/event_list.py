"""/events/: the published events as a list, with the filters and the search of the map,
the dashboard and the API (tracker.query), sorted, paged by cursor, and downloadable."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from django.db.models.functions import Coalesce
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_safe
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from api.pagination import EventCursorPagination
from pages.forms import page_filters
from pages.templatetags.tracker_pages import term_labels
from tracker.models import Event
from tracker.search import with_rank
from tracker.selectors import event_counts

PAGE_SIZE = 50
LIST_PARAMS = ("sort", "cursor")

# sort value -> (label, ordering, the annotation it orders by, if any)
SORTS = {
    "-date": (gettext_lazy("Newest first"), ("-date", "-id")),
    "date": (gettext_lazy("Oldest first"), ("date", "id")),
    "-arrests": (gettext_lazy("Most arrests"), ("-arrests_sort", "-id")),
    "-crowd": (gettext_lazy("Largest crowd"), ("-crowd_sort", "-id")),
    "-search_rank": (gettext_lazy("Best match"), ("-search_rank", "-id")),
}


class ListPagination(EventCursorPagination):
    page_size = PAGE_SIZE
    page_size_query_param = None  # the page's size is the page's


def _ordered(queryset, sort: str, text: str):
    if sort == "-arrests":
        # Unreported arrests sort below zero: a cursor cannot point at NULL.
        queryset = queryset.annotate(arrests_sort=Coalesce("arrests", -1))
    elif sort == "-crowd":
        queryset = queryset.annotate(
            crowd_sort=Coalesce("participants_high", "participants_low", -1)
        )
    elif sort == "-search_rank":
        queryset = with_rank(queryset, text)
    return queryset.order_by(*SORTS[sort][1])


def _page_link(path: str, url: str | None, filters: list[tuple[str, str]], sort: str) -> str | None:
    """The page's own link to the page a DRF link (absolute, its query re-encoded) points
    at: its cursor, with the filters as the request's decoded parameters give them."""
    if not url:
        return None
    cursor = parse_qs(urlsplit(url).query).get("cursor")
    params = [*filters, ("sort", sort)] + ([("cursor", cursor[0])] if cursor else [])
    return f"{path}?{urlencode(params)}"


def _total(filterset) -> int:
    """The count of the selection from the one aggregation (rollups when they answer), the
    same number the trends, the dashboard and the map give for these filters."""
    return sum(row["events"] for row in event_counts(filterset=filterset, interval="year"))


def _participants(event) -> str:
    low, high = event.participants_low, event.participants_high
    if low is None and high is None:
        return ""
    if high is None or low == high:
        return str(low)
    if low is None:
        return str(high)
    return f"{low}–{high}"


def _rows_html(rows) -> str:
    """The table's body, built here rather than by a template loop: at 50 rows of 7 cells
    the loop was two thirds of the page's time at a million events."""
    missing = format_html('<span class="help">{}</span>', "–")
    not_reported = format_html('<span class="help">{}</span>', _("not reported"))
    cells = []
    for event in rows:
        place = (
            event.city.label() if event.city is not None
            else event.location_detail or event.admin1 or event.country
        )  # fmt: skip
        crowd = _participants(event)
        day = event.date.isoformat()
        cells.append(
            format_html(
                '<tr>\n<td><time datetime="{}">{}</time></td>\n'
                '<td><a href="{}">{}</a></td>\n<td>{}</td>\n<td>{}</td>\n<td>{}</td>\n'
                '<td class="num">{}</td>\n<td class="num">{}</td>\n</tr>',
                day, day, reverse("event-detail", args=[event.pk]), event.title, place,
                term_labels(event.grievances),
                term_labels(event.police_responses) if event.police_responses else not_reported,
                missing if event.arrests is None else event.arrests,
                crowd or missing,
            )
        )  # fmt: skip
    return format_html_join("\n", "{}", ((cell,) for cell in cells))


@require_safe
def event_list(request):
    filterset, form, valid = page_filters(request, extra_params=LIST_PARAMS)
    text = (request.GET.get("q") or "").strip()
    sort = request.GET.get("sort") or ("-search_rank" if text else "-date")
    if sort not in SORTS:
        form.add_error(
            None,
            _("Unknown sort %(value)s: choose one of %(known)s.")
            % {"value": repr(sort), "known": ", ".join(SORTS)},
        )
        valid, sort = False, "-date"
    rows, total, links = [], None, {}
    filters = [
        (name, value)
        for name in request.GET
        if name not in LIST_PARAMS
        for value in request.GET.getlist(name)
        if value != ""
    ]
    if valid:
        queryset = _ordered(filterset.qs, sort, text)
        column = SORTS[sort][1][0].lstrip("-")
        paginator = ListPagination()
        paginator.ordering = SORTS[sort][1]
        try:
            page = paginator.paginate_queryset(queryset.values("id", column), Request(request))
        except ValidationError:
            form.add_error(None, _("This page link is broken: go back to the first page."))
            valid = False
        else:
            ids = [row["id"] for row in page]
            by_id = {
                event.pk: event
                for event in Event.objects.filter(pk__in=ids)
                .select_related("city")
                .only(
                    "id", "title", "date", "end_date", "date_precision", "country", "admin1",
                    "location_detail", "grievances", "police_responses", "arrests",
                    "participants_low", "participants_high", "city__name", "city__name_ru",
                    "city__name_kk",
                )
            }  # fmt: skip
            rows = [by_id[pk] for pk in ids if pk in by_id]
            total = _total(filterset)
            links = {
                "next": _page_link(request.path, paginator.get_next_link(), filters, sort),
                "previous": _page_link(request.path, paginator.get_previous_link(), filters, sort),
            }
    query = urlencode(filters)
    context = {
        "form": form,
        "rows": _rows_html(rows),
        "total": total,
        "links": links,
        "sort": sort,
        "sorts": [(key, label) for key, (label, _o) in SORTS.items()
                  if key != "-search_rank" or text],
        "query": query,
    }  # fmt: skip
    return render(request, "tracker/event_list.html", context, status=200 if valid else 400)
