"""/api/v1/events/ and /api/v1/submissions/: thin views over the selectors and services."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models.functions import Coalesce
from django.http import StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api.filters import EventFilterSet
from api.pagination import EventCursorPagination
from api.parsers import LimitedJSONParser
from api.permissions import CanReadHistory, EventAccess, IsModerator
from api.renderers import CSVRenderer, GeoJSONRenderer
from api.serializers.events import (
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
from tracker.models import Event
from tracker.selectors import (
    event_history,
    event_rows,
    event_submissions,
    event_visible_to,
    event_with_related,
)
from tracker.services.events import event_create, event_review, event_update


class EventOrderingFilter(OrderingFilter):
    """`ordering=date|-date|arrests|-arrests|updated_at|-updated_at` (default -date).

    The id is always the second key, so equal dates page in a stable order. Events whose
    arrests were not reported sort as fewer than zero, because a cursor cannot point at NULL.
    """

    ordering_fields = ["date", "arrests", "updated_at"]
    columns = {"date": "date", "arrests": "arrests_sort", "updated_at": "updated_at"}
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
        return queryset.order_by(*ordering)


CSV_COLUMNS = [
    "id",
    "title",
    "date",
    "end_date",
    "date_precision",
    "country",
    "admin1",
    "city",
    "city_id",
    "location_detail",
    "longitude",
    "latitude",
    "geo_precision",
    "grievances",
    "police_responses",
    "arrests",
    "injuries",
    "deaths",
    "participants_low",
    "participants_high",
    "organizers",
    "source_urls",
    "source_titles",
    "external_ids",
    "description",
    "updated_at",
]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    if value is None:
        return ""
    text = str(value)
    # A spreadsheet would run a text cell that starts like a formula.
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _csv_row(row: dict) -> list[str]:
    """A row of tracker.selectors.event_rows as a CSV line's cells."""
    sources = row["sources"]
    values = {
        **row,
        "date": row["date"].isoformat(),
        "end_date": row["end_date"].isoformat() if row["end_date"] else None,
        "grievances": ";".join(row["grievances"]),
        "police_responses": ";".join(row["police_responses"]),
        "organizers": ";".join(row["organizers"]),
        "source_urls": ";".join(s["url"] for s in sources if s["url"]),
        "source_titles": ";".join(s["title"] for s in sources if s["title"]),
        "external_ids": ";".join(row["external_ids"]),
        "updated_at": row["updated_at"].isoformat(),
    }
    return [_cell(values[column]) for column in CSV_COLUMNS]


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_CHUNK = 1000


def _csv_lines(queryset) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    # The ids stream from a server-side cursor in the queryset's order; each chunk's fields
    # and related rows then come from one query (event_rows), five times the rows per
    # second of instances with three prefetches each, so that a year of a million-event
    # database streams well inside a worker's timeout.
    chunk: list[int] = []
    for pk in queryset.values_list("id", flat=True).iterator(chunk_size=CSV_CHUNK):
        chunk.append(pk)
        if len(chunk) == CSV_CHUNK:
            yield from (writer.writerow(_csv_row(row)) for row in event_rows(ids=chunk))
            chunk = []
    if chunk:
        yield from (writer.writerow(_csv_row(row)) for row in event_rows(ids=chunk))


def events_csv_response(queryset, filename: str = "events.csv") -> StreamingHttpResponse:
    response = StreamingHttpResponse(_csv_lines(queryset), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "geojson", "csv"],
    description="json (default), geojson (FeatureCollection; also Accept: application/geo+json)"
    " or csv (every matching event in one streamed file, not paged).",
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

    filter_backends = [DjangoFilterBackend, EventOrderingFilter]
    filterset_class = EventFilterSet
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
        parameters=[FORMAT_PARAMETER],
        responses={
            200: EventSubmissionSerializer,
            (200, "application/geo+json"): EventFeatureSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
        },
    )
    def retrieve(self, request, *args, **kwargs):
        event = self.get_object()
        output = request.accepted_renderer.format
        if output == "csv":
            return events_csv_response(Event.objects.filter(pk=event.pk), f"event-{event.pk}.csv")
        if output == "geojson":
            return Response(EventFeatureSerializer(event).data)
        return Response(self._output_serializer(event).data)

    @extend_schema(request=EventInputSerializer, responses={201: EventSubmissionSerializer})
    def create(self, request, *args, **kwargs):
        serializer = EventInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = event_create(
            **serializer.service_arguments(), submitted_by=request.user, actor=request.user
        )
        return Response(
            EventSubmissionSerializer(self._fresh(event)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=EventInputSerializer, responses={200: EventSubmissionSerializer})
    def partial_update(self, request, *args, **kwargs):
        event = self.get_object()
        serializer = EventInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        event = event_update(event=event, actor=request.user, **serializer.service_arguments())
        return Response(EventSubmissionSerializer(self._fresh(event)).data)

    def update(self, request, *args, **kwargs):  # PUT is not offered; PATCH is
        return self.http_method_not_allowed(request, *args, **kwargs)

    @extend_schema(request=EventReviewSerializer, responses={200: EventSubmissionSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsModerator])
    def review(self, request, pk=None):
        """Publish (needs at least one source) or reject with a reason."""
        event = self.get_object()
        serializer = EventReviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = event_review(
            event=event,
            moderator=request.user,
            decision=serializer.validated_data["decision"],
            note=serializer.validated_data.get("note", ""),
        )
        return Response(EventSubmissionSerializer(self._fresh(event)).data)

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
