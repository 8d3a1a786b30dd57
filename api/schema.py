"""What the OpenAPI schema adds to drf-spectacular's view inspection: the error responses every
operation can give, in the one error body of api.exceptions, and the schema-only serializer
of an event as GET /events/{id}/ returns it.

The error statuses follow from how DRF and this project's middleware treat a request, not from
a list kept by hand per view: any view that authenticates answers a bad token with 401, any
throttled one answers 429, every view answers 503 while PostgreSQL is down, and so on.
schemathesis (tests/reliability/test_schemathesis.py) checks that no other status appears.
"""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_gis import GeoFeatureModelSerializerExtension
from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly

from api.filtering import EventFilterBackend
from api.permissions import EventAccess
from api.serializers.events import EventSerializer
from tracker.models import EventStatus
from tracker.query import EventFilterSet

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Permissions under which anyone, signed in or not, may read (GET) what a view shows.
PUBLIC_READ = (AllowAny, IsAuthenticatedOrReadOnly, EventAccess)


class ErrorSerializer(serializers.Serializer):
    """The body of every error of the API (api.exceptions)."""

    detail = serializers.CharField(help_text="What went wrong and what to do, in a sentence.")
    code = serializers.CharField(
        help_text='A stable slug: "invalid", "not_authenticated", "permission_denied", '
        '"not_found", "throttled", "conflict", "precondition_failed", '
        '"service_unavailable", ...'
    )
    errors = serializers.DictField(
        required=False,
        child=serializers.JSONField(),
        help_text="For invalid input (400): the messages per field or query parameter, "
        'e.g. {"in_bbox": ["..."]}; "non_field_errors" for the request as a whole.',
    )
    retry_after_seconds = serializers.IntegerField(
        required=False, help_text="For 429: when to try again (also in Retry-After)."
    )


class EventDetailSerializer(EventSerializer):
    """An event as GET /events/{id}/ returns it. A published event has EventSerializer's
    fields, for everyone. A pending or rejected one is visible to the contributor who
    submitted it and to moderators only, and adds `status`, `review_note` and
    `reviewed_at` (so those three are not always present)."""

    status = serializers.ChoiceField(
        choices=EventStatus.choices,
        required=False,
        help_text="Only for events that are not published.",
    )
    review_note = serializers.CharField(
        required=False, help_text="Only for events that are not published."
    )
    reviewed_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Only for events that are not published."
    )

    class Meta(EventSerializer.Meta):
        fields = [*EventSerializer.Meta.fields, "status", "review_note", "reviewed_at"]
        read_only_fields = EventSerializer.Meta.fields


class EventFeatureExtension(GeoFeatureModelSerializerExtension):
    """An event as a GeoJSON Feature, as api.serializers.events writes it: `geometry` is null
    for an event placed by country or region only (RFC 7946 allows an unlocated Feature), the
    Feature carries the event's `id`, and every member is always present."""

    target_class = "api.serializers.events.EventFeatureSerializer"
    priority = 1

    def map_serializer(self, auto_schema, direction):
        schema = super().map_serializer(auto_schema, direction)
        properties = schema["properties"]
        properties["geometry"] = {**properties["geometry"], "nullable": True}
        properties["id"] = {"type": "integer", "readOnly": True}
        schema["required"] = ["type", "id", "geometry", "properties"]
        event_fields = properties["properties"]
        event_fields["required"] = sorted(event_fields["properties"])
        return schema


ERROR_DESCRIPTIONS = {
    400: "Invalid input: a query parameter or the request body (see `errors`).",
    401: "Not signed in, or a wrong token: send `Authorization: Token <key>`.",
    403: "Signed in, but this role may not do this (or the CSRF check of a session failed).",
    404: "No such resource, or not visible to you.",
    406: "An unknown `?format=`, or an Accept header this operation cannot satisfy.",
    413: "The request body is too large.",
    415: "The request body's Content-Type is not accepted here.",
    429: "Too many requests (or login attempts): wait for Retry-After seconds.",
    503: "PostgreSQL (or the task queue a write needs) is unavailable: retry after "
    "Retry-After seconds.",
}
EVENT_FILTERS_400 = (
    "Invalid input: a filter's value, an unknown query parameter, or a single-valued one "
    "given twice (see `errors`; for an unknown parameter the message lists the known ones)."
)
RETRY_AFTER_HEADER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
}


class LayoutExportSchemaExtension(OpenApiViewExtension):
    """The layout exports read the event filters of /api/v1/events/ (tracker.query) without
    a filter backend; for the schema they get one, so their filters are documented."""

    target_class = "api.imports.views.LayoutExportView"

    def view_replacement(self):
        class LayoutExport(self.target_class):
            filter_backends = [EventFilterBackend]
            filterset_class = EventFilterSet
            query_params_of_view = ("format",)

            def get_queryset(self):
                from tracker.models import Event

                return Event.objects.published()

        return LayoutExport


class TrackerAutoSchema(AutoSchema):
    def uses_event_filters(self) -> bool:
        """A GET of a whole selection of events (not of one event by its id)."""
        view = self.view
        return (
            self.method == "GET"
            and getattr(view, "filterset_class", None) is EventFilterSet
            and "{id}" not in self.path  # drf-spectacular's name for a lookup by pk
        )

    def get_filter_backends(self):
        # The trends answer one object, not a list, so drf-spectacular would leave out the
        # filters: every view over a selection of events documents them. An action on one
        # event (its history, a list) filters nothing.
        if self.uses_event_filters():
            return getattr(self.view, "filter_backends", [])
        if getattr(self.view, "filterset_class", None) is EventFilterSet:
            return []
        return super().get_filter_backends()

    def is_public_read(self) -> bool:
        """Anyone may call this (read) operation, signed in or not."""
        permissions = [type(p) for p in self.view.get_permissions()]
        if all(p is AllowAny for p in permissions):  # also no permission classes at all
            return True
        return self.method in SAFE_METHODS and all(p in PUBLIC_READ for p in permissions)

    def get_auth(self):
        auths = super().get_auth()
        # `{}`: no credentials needed. drf-spectacular adds it for AllowAny and
        # IsAuthenticatedOrReadOnly only, not for EventAccess or an empty list.
        if self.is_public_read() and {} not in auths:
            auths.append({})
        return auths

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        error_ref = self.resolve_serializer(ErrorSerializer, "response").ref
        for code in self._error_codes():
            existing = responses.get(str(code))
            if existing is None:
                description = ERROR_DESCRIPTIONS[code]
                if code == 400 and self.uses_event_filters():
                    description = EVENT_FILTERS_400
                responses[str(code)] = {
                    "description": description,
                    "content": {"application/json": {"schema": error_ref}},
                    **({"headers": RETRY_AFTER_HEADER} if code in (429, 503) else {}),
                }
            else:
                # A view that named the status but gave no body shape gets the error body.
                for media in existing.get("content", {}).values():
                    if media.get("schema", {}).get("type") == "object" and not media["schema"].get(
                        "properties"
                    ):
                        media["schema"] = error_ref
        return responses

    def _error_codes(self) -> list[int]:
        view, method = self.view, self.method
        has_body = method in ("POST", "PUT", "PATCH")
        has_query = any(p.get("in") == "query" for p in self._get_parameters())
        codes = [406, 503]
        if has_body or has_query:
            codes.append(400)
        if view.get_authenticators():
            codes.append(401)
        if not self.is_public_read():
            codes.append(403)
        if "{" in self.path:
            codes.append(404)
        if has_body:
            codes += [413, 415]
        if view.get_throttles():
            codes.append(429)
        return sorted(codes)
