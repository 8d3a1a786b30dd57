"""/api/v1/events/ and /api/v1/submissions/: thin views over the selectors and services."""

from __future__ import annotations

import re

from django.db.models.functions import Coalesce
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ParseError, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from api.exceptions import Conflict, PreconditionFailed
from api.filtering import EventFilterBackend
from api.pagination import EventCursorPagination
from api.parsers import LimitedJSONParser
from api.permissions import CanReadHistory, EventAccess, IsModerator
from api.renderers import CSVRenderer, GeoJSONRenderer, JSONRenderer
from api.schema import EventDetailSerializer
from api.serializers.events import (
    EventConflictErrorSerializer,
    EventFeatureCollectionSerializer,
    EventFeatureSerializer,
    EventHistoryEntrySerializer,
    EventInputSerializer,
    EventReviewSerializer,
    EventSerializer,
    EventSubmissionSerializer,
    event_row_feature,
    event_row_representation,
)
from imports.exports import event_csv_blocks
from tracker.models import Event
from tracker.query import EventFilterSet
from tracker.search import with_rank
from tracker.selectors import (
    event_history,
    event_rows,
    event_submissions,
    event_visible_to,
    event_with_related,
)
from tracker.services.events import (
    EventAlreadyReviewed,
    EventChanged,
    event_create,
    event_review,
    event_update,
)


class EventOrderingFilter(OrderingFilter):
    """`ordering=date|-date|arrests|-arrests|updated_at|-updated_at|search_rank|-search_rank`
    (default -date; `-search_rank` puts the best matches of `q` first).

    The id is always the second key, so equal dates page in a stable order. Events whose
    arrests were not reported sort as fewer than zero, because a cursor cannot point at NULL.
    """

    ordering_fields = ["date", "arrests", "updated_at", "search_rank"]
    columns = {
        "date": "date",
        "arrests": "arrests_sort",
        "updated_at": "updated_at",
        "search_rank": "search_rank",
    }
    default = ("-date", "-id")

    def get_ordering(self, request, queryset, view):
        raw = request.query_params.get(self.ordering_param)
        if not raw:
            return self.default
        term = raw.strip()
        name = term.removeprefix("-")
        if name not in self.columns:
            raise ValidationError(
                {
                    self.ordering_param: [
                        f"Cannot order by {raw!r}. Use one of: "
                        + ", ".join(f"{n}, -{n}" for n in self.ordering_fields)
                        + "."
                    ]
                }
            )
        sign = "-" if term.startswith("-") else ""
        return (f"{sign}{self.columns[name]}", f"{sign}id")

    def filter_queryset(self, request, queryset, view):
        ordering = self.get_ordering(request, queryset, view)
        if ordering[0].lstrip("-") == "arrests_sort":
            queryset = queryset.annotate(arrests_sort=Coalesce("arrests", -1))
        elif ordering[0].lstrip("-") == "search_rank":
            queryset = with_rank(queryset, request.query_params.get("q") or "")
        return queryset.order_by(*ordering)


def events_csv_response(queryset, filename: str = "events.csv") -> StreamingHttpResponse:
    # PostgreSQL writes the rows (imports.exports): a million events stream in 1.6 times
    # the time of COPY itself (benchmark_export), in constant memory.
    response = StreamingHttpResponse(
        event_csv_blocks(queryset), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "geojson", "csv"],
    description="json (default), geojson (FeatureCollection; also Accept: application/geo+json)"
    " or csv (every matching event in one streamed file, not paged).",
)


# An event's entity tag names its stored version: "<id>-<version>", a strong tag as RFC 9110
# asks for If-Match, one per format (the JSON one bare, "-geojson" and "-csv" appended for
# the others), all of them raised by every write. Which format a client read does not matter
# for If-Match: each names a version.
ETAG_SUFFIXES = {"json": "", "geojson": "-geojson", "csv": "-csv"}
_ENTITY_TAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
_IF_MATCH = re.compile(rf"{_ENTITY_TAG}(?:[ \t]*,[ \t]*{_ENTITY_TAG})*")
_EVENT_TAG = re.compile(r'"(\d+)-(\d+)(?:-geojson|-csv)?"')


def event_etag(event: Event, output: str = "json") -> str:
    return f'"{event.pk}-{event.version}{ETAG_SUFFIXES.get(output, "")}"'


def if_match_versions(request, event: Event) -> frozenset[int] | None:
    """The versions of `event` that the request's If-Match accepts; None when any will do
    (no header, or `*`: the event exists, get_object found it). Weak tags (W/"...") never
    match under RFC 9110's strong comparison, nor do tags of other events; a header that
    is not a list of entity tags is a 400."""
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    raw = raw.strip(" \t")
    if raw == "*":
        return None
    if not _IF_MATCH.fullmatch(raw):
        raise ParseError(
            'If-Match must be * or the ETag of your last read, quotes included (If-Match: "12-3").'
        )
    versions = set()
    for tag in re.findall(_ENTITY_TAG, raw):
        match = _EVENT_TAG.fullmatch(tag)
        if match and int(match[1]) == event.pk:
            versions.add(int(match[2]))
    return frozenset(versions)


def _precondition_failed(current: Event) -> PreconditionFailed:
    return PreconditionFailed(
        f"Event {current.pk} has changed since you read it: its ETag is now "
        f"{event_etag(current)} and If-Match named none of its current tags (weak W/ tags "
        f"never match). GET it again, re-apply your change and send the new ETag."
    )


IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description='The ETag of your last read of the event (for example "12-3"): the write is '
    "made only if the event is still at that version, otherwise 412. Without it (or with *) "
    "the fields you send are written on the current event and the others are kept.",
)
ETAG_HEADER = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    response=[200, 201],
    description='The event\'s version as a strong entity tag, "<id>-<version>" ("-geojson" or '
    '"-csv" appended for those formats). Send it back in If-Match to write only if nobody '
    "changed the event since.",
)
PRECONDITION_FAILED_RESPONSE = OpenApiResponse(
    EventConflictErrorSerializer,
    description="If-Match names a version that is no longer the stored one: read it again.",
)


@extend_schema(tags=["events"])
class EventViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Published events; contributors' submissions; moderators' edits and reviews."""

    filter_backends = [EventFilterBackend, EventOrderingFilter]
    filterset_class = EventFilterSet
    query_params_of_view = ("cursor", "page_size", "ordering", "format")
    pagination_class = EventCursorPagination
    permission_classes = [EventAccess]
    parser_classes = [LimitedJSONParser]
    serializer_class = EventSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_renderers(self):
        if self.action in ("list", "retrieve"):
            return [JSONRenderer(), GeoJSONRenderer(), CSVRenderer()]
        return [JSONRenderer()]

    def get_queryset(self):
        if self.action == "list":
            # Only what filtering and the cursor need; event_rows builds the page itself.
            return Event.objects.published().only("id", "date", "arrests", "updated_at")
        return event_with_related(event_visible_to(self.request.user))

    def filter_queryset(self, queryset):
        # Query filters select from the list; they never hide a single event by id.
        if self.action != "list":
            return queryset
        return super().filter_queryset(queryset)

    def _output_serializer(self, event: Event):
        if event.status != Event.Status.PUBLISHED:
            return EventSubmissionSerializer(event, context=self.get_serializer_context())
        return EventSerializer(event, context=self.get_serializer_context())

    def _fresh(self, event: Event) -> Event:
        return event_with_related(Event.objects.filter(pk=event.pk)).get()

    def _event_response(self, event: Event, status_code: int = status.HTTP_200_OK) -> Response:
        """The event as a submission, read again after the write, with its ETag."""
        event = self._fresh(event)
        response = Response(EventSubmissionSerializer(event).data, status=status_code)
        response["ETag"] = event_etag(event)
        return response

    @extend_schema(
        parameters=[FORMAT_PARAMETER],
        responses={
            200: EventSerializer(many=True),
            (200, "application/geo+json"): EventFeatureCollectionSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        output = request.accepted_renderer.format
        if output == "csv":
            # Not paged, but a bad page_size is still an error rather than ignored silently.
            self.paginator.get_page_size(request)
            return events_csv_response(queryset)
        # The cursor needs the id and the ordering column only: plain tuples as dicts, no
        # model instances, no timestamps parsed for nothing (DRF reads dicts by key).
        ordering_column = queryset.query.order_by[0].lstrip("-")
        page = self.paginate_queryset(queryset.values("id", ordering_column))
        links = self.paginator.get_page_links()
        rows = event_rows(ids=[event["id"] for event in page])
        if output == "geojson":
            features = [event_row_feature(row) for row in rows]
            return Response({"type": "FeatureCollection", "features": features, **links})
        return Response({**links, "results": [event_row_representation(row) for row in rows]})

    @extend_schema(
        parameters=[FORMAT_PARAMETER, ETAG_HEADER],
        responses={
            # Published: EventSerializer's fields; pending or rejected (own or moderator):
            # also status and review (see api.schema.EventDetailSerializer).
            200: EventDetailSerializer,
            (200, "application/geo+json"): EventFeatureSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def retrieve(self, request, *args, **kwargs):
        event = self.get_object()
        output = request.accepted_renderer.format
        if output == "csv":
            response = events_csv_response(
                Event.objects.filter(pk=event.pk), f"event-{event.pk}.csv"
            )
        elif output == "geojson":
            response = Response(EventFeatureSerializer(event).data)
        else:
            response = Response(self._output_serializer(event).data)
        response["ETag"] = event_etag(event, output)
        return response

    @extend_schema(
        request=EventInputSerializer,
        parameters=[ETAG_HEADER],
        responses={201: EventSubmissionSerializer},
    )
    def create(self, request, *args, **kwargs):
        serializer = EventInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = event_create(
            **serializer.service_arguments(), submitted_by=request.user, actor=request.user
        )
        return self._event_response(event, status.HTTP_201_CREATED)

    @extend_schema(
        request=EventInputSerializer,
        parameters=[IF_MATCH_PARAMETER, ETAG_HEADER],
        responses={200: EventSubmissionSerializer, 412: PRECONDITION_FAILED_RESPONSE},
    )
    def partial_update(self, request, *args, **kwargs):
        """Change the fields sent, and only those; the status never changes here.

        A contributor edits only their own submission while it is pending (checked again on
        the stored event as it is written: one published meanwhile gets 403)."""
        event = self.get_object()
        expected_versions = if_match_versions(request, event)
        serializer = EventInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            event = event_update(
                event=event,
                actor=request.user,
                expected_versions=expected_versions,
                **serializer.service_arguments(),
            )
        except EventChanged as changed:
            raise _precondition_failed(changed.current) from None
        except Event.DoesNotExist:
            raise NotFound("The event was deleted meanwhile.") from None
        return self._event_response(event)

    def update(self, request, *args, **kwargs):  # PUT is not offered; PATCH is
        return self.http_method_not_allowed(request, *args, **kwargs)

    @extend_schema(
        request=EventReviewSerializer,
        parameters=[IF_MATCH_PARAMETER, ETAG_HEADER],
        responses={
            200: EventSubmissionSerializer,
            409: OpenApiResponse(
                EventConflictErrorSerializer,
                description="The event is no longer pending: another moderator reviewed it.",
            ),
            412: PRECONDITION_FAILED_RESPONSE,
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[IsModerator])
    def review(self, request, pk=None):
        """Publish (needs at least one source) or reject with a reason a pending event.

        Of two moderators deciding at once, one gets 200 and the other 409."""
        event = self.get_object()
        expected_versions = if_match_versions(request, event)
        serializer = EventReviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            event = event_review(
                event=event,
                moderator=request.user,
                decision=serializer.validated_data["decision"],
                note=serializer.validated_data.get("note", ""),
                expected_versions=expected_versions,
            )
        except EventAlreadyReviewed as reviewed:
            raise Conflict(str(reviewed), code="already_reviewed") from None
        except EventChanged as changed:
            raise _precondition_failed(changed.current) from None
        except Event.DoesNotExist:
            raise NotFound("The event was deleted meanwhile.") from None
        return self._event_response(event)

    @extend_schema(responses={200: EventHistoryEntrySerializer(many=True)})
    @action(
        detail=True, methods=["get"], permission_classes=[CanReadHistory], pagination_class=None
    )
    def history(self, request, pk=None):
        """Every change of the event, newest first (moderators only)."""
        event = self.get_object()
        entries = event_history(event=event)
        return Response(EventHistoryEntrySerializer(entries, many=True).data)


class SubmissionCursorPagination(EventCursorPagination):
    ordering = ("-created_at", "-id")


@extend_schema(tags=["events"], responses={200: EventSubmissionSerializer(many=True)})
class SubmissionListView(ListAPIView):
    """The signed-in user's own submissions in every status, with the moderator's note."""

    permission_classes = [IsAuthenticated]
    serializer_class = EventSubmissionSerializer
    pagination_class = SubmissionCursorPagination
    filter_backends: list = []

    def get_queryset(self):
        return event_with_related(event_submissions(user=self.request.user))

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        data = EventSubmissionSerializer(page, many=True).data
        return Response({**self.paginator.get_page_links(), "results": data})
