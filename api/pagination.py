"""Cursor pagination for the event lists: stable under inserts, cheap at any depth."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination

MAX_PAGE_SIZE = 1000


class EventCursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    # The ordering filter of the view replaces this; ids break ties between equal dates.
    ordering = ("-date", "-id")
    invalid_cursor_message = (
        "Malformed cursor: use the `next` or `previous` link of a page as it is."
    )

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        f"page_size must be a whole number from 1 to {self.max_page_size} "
                        f"(got {raw!r})."
                    ]
                }
            )
        return size

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except Exception as exc:  # DRF answers a bad cursor with 404; it is a bad request.
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from exc

    def paginate_queryset(self, queryset, request, view=None):
        # A cursor decodes to any string; when it does not fit the ordering column (a date
        # that is not a date) the database layer rejects it, and that is the client's error.
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, TypeError) as exc:
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]}) from exc

    def get_page_links(self) -> dict:
        return {"next": self.get_next_link(), "previous": self.get_previous_link()}

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }
