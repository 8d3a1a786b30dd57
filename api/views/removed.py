"""/api/v1/events/removed/: the events that left the public record, for incremental sync.

A script that syncs with `/api/v1/events/?updated_since=` never sees an event that stopped
being published. This feed lists each departure (withdrawn, rejected, archived or deleted
after publication; merged once merging exists), oldest first, from rows that PostgreSQL
triggers write whoever changes the event (tracker.models.EventRemoval, migration 0020).
"""

from __future__ import annotations

import binascii
import datetime as dt
from base64 import b64decode, b64encode
from urllib.parse import parse_qs, urlencode

from django import forms
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

# The schema's extensions first (as api.views.stats does).
import api.schema  # noqa: F401
from api.pagination import EventCursorPagination
from api.serializers.removed import EventRemovalSerializer
from tracker.models import EventRemoval
from tracker.query import MomentField


class RemovalCursorPagination(EventCursorPagination):
    """Oldest first, by (removed_at, id): a keyset cursor on both, so that the many removals
    of one transaction (they share its time) page exactly, at any depth, both ways. The
    page size, its 400s and the links' shape are the events list's."""

    ordering = ("removed_at", "id")

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.base_url = request.build_absolute_uri()
        size = self.page_size = self.get_page_size(request)
        cursor = self.decode_cursor(request)
        reverse = cursor is not None and cursor[2]
        if cursor is None:
            rows = queryset.order_by("removed_at", "id")
        elif reverse:
            moment, pk, _ = cursor
            rows = queryset.filter(
                Q(removed_at__lt=moment) | Q(removed_at=moment, id__lt=pk)
            ).order_by("-removed_at", "-id")
        else:
            moment, pk, _ = cursor
            rows = queryset.filter(
                Q(removed_at__gt=moment) | Q(removed_at=moment, id__gt=pk)
            ).order_by("removed_at", "id")
        rows = list(rows[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        if reverse:
            rows.reverse()
        # Coming back from a page, that page is still there; going on, the one we came from.
        self.has_next = more if not reverse else True
        self.has_previous = more if reverse else cursor is not None
        self.page = rows
        return rows

    def _link(self, row, *, reverse: bool) -> str:
        fields = {"t": row.removed_at.astimezone(dt.UTC).isoformat(), "i": str(row.pk)}
        if reverse:
            fields["r"] = "1"
        token = b64encode(urlencode(fields).encode("ascii")).decode("ascii")
        return replace_query_param(self.base_url, self.cursor_query_param, token)

    def get_next_link(self):
        if not (self.has_next and self.page):
            return None
        return self._link(self.page[-1], reverse=False)

    def get_previous_link(self):
        if not (self.has_previous and self.page):
            return None
        return self._link(self.page[0], reverse=True)

    def decode_cursor(self, request):
        """(moment, id, reverse) of the `cursor` parameter; None without one; else a 400."""
        token = request.query_params.get(self.cursor_query_param)
        if token is None:
            return None
        try:
            fields = parse_qs(b64decode(token.encode("ascii"), validate=True).decode("ascii"))
            moment = dt.datetime.fromisoformat(fields["t"][0])
            if moment.tzinfo is None:
                raise ValueError("naive")
            moment = moment.astimezone(dt.UTC)
            return moment, int(fields["i"][0]), fields.get("r", ["0"])[0] == "1"
        except (ValueError, KeyError, UnicodeError, OverflowError, binascii.Error):
            raise ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None


class RemovedQueryForm(forms.Form):
    since = MomentField(
        required=False,
        error_messages={
            "invalid": "since needs an ISO 8601 moment, e.g. 2021-01-01T00:00:00Z or "
            "2021-01-01T06:00:00+06:00."
        },
    )


KNOWN_PARAMETERS = ("since", "cursor", "page_size", "format")


def removed_since(request):
    """The removals the query asks for, or the 400: an invalid `since`, an unknown
    parameter (the message lists the known ones), one given twice with different values."""
    params = request.query_params
    errors: dict[str, list[str]] = {}
    for name in sorted(set(params) - set(KNOWN_PARAMETERS)):
        errors.setdefault("non_field_errors", []).append(
            f"Unknown parameter {name!r}. Known parameters: {', '.join(sorted(KNOWN_PARAMETERS))}."
        )
    for name in KNOWN_PARAMETERS:
        if len(set(params.getlist(name))) > 1:
            errors.setdefault(name, []).append(
                f"{name} was given more than once with different values."
            )
    form = RemovedQueryForm(data={"since": params.get("since")})
    if not form.is_valid():
        for name, problems in form.errors.as_data().items():
            for problem in problems:
                text = " ".join(problem.messages)
                if problem.code == "invalid":
                    text += f" (got {params.get(name)!r})"
                errors.setdefault(name, []).append(text)
    if errors:
        raise ValidationError(errors)
    removals = EventRemoval.objects.all()
    since = form.cleaned_data["since"]
    if since is not None:
        removals = removals.filter(removed_at__gte=since)
    return removals


@extend_schema(
    tags=["events"],
    parameters=[
        OpenApiParameter(
            "since",
            OpenApiTypes.DATETIME,
            description="Removals at or after this moment (ISO 8601, inclusive). Without it, "
            "every removal. Ask with a few minutes of overlap before your last sync: a "
            "removal's time is when its transaction started, and it commits later.",
        )
    ],
)
class RemovedEventListView(ListAPIView):
    """The ids of events that left the public record: withdrawn (back to pending or
    draft), rejected or archived after they were published, or deleted while published;
    `merged` (with `merged_into`) is reserved for merging, which does not exist yet. Each
    row has its kind and time; oldest first, in cursor pages.

    For a script that syncs with `/api/v1/events/?updated_since=`: delete these ids from
    your copy first, then apply the updated events of the same moment (an event published
    again after its removal comes back with a newer `updated_at`). Events that were never
    published do not appear. An event can appear more than once (removed, published
    again, removed again): treat the feed idempotently.
    """

    permission_classes = [AllowAny]
    serializer_class = EventRemovalSerializer
    pagination_class = RemovalCursorPagination
    filter_backends: list = []

    def get_queryset(self):
        return EventRemoval.objects.all()

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(removed_since(request))
        data = EventRemovalSerializer(page, many=True).data
        return Response({**self.paginator.get_page_links(), "results": data})
