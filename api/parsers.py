from __future__ import annotations

import io

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

# Deeper than any event needs (an event is 3 levels: body, sources, a source), far below
# the interpreter's recursion limit that a nested body would otherwise hit as a 500.
MAX_JSON_DEPTH = 32


class RequestTooLarge(APIException):
    status_code = 413
    default_code = "request_too_large"

    def __init__(self, limit: int | None = None):
        limit = limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(
            f"The request body is larger than {limit:,} bytes, the most this endpoint accepts."
        )


def _depth_exceeds(data, limit: int) -> bool:
    """Whether lists and objects nest deeper than `limit` (iterative: no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        if depth > limit:
            return True
        stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))
    return False


class LimitedJSONParser(JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE and MAX_JSON_DEPTH levels.

    DRF reads the body from the raw stream, past Django's size check (which only guards
    `request.body` and form parsing), so the limit is applied here before anything is read.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if limit is not None and length > limit:
                raise RequestTooLarge(limit)
        if stream is None:
            return super().parse(stream, media_type, parser_context)
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            raise RequestTooLarge(limit)
        message = (
            f"JSON parse error - the body nests lists or objects more than {MAX_JSON_DEPTH} "
            "levels deep."
        )
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            # The decoder recurses once per level: 100,000 nested lists end here, not in a 500.
            raise ParseError(message) from None
        brackets = body.count(b"[") + body.count(b"{")  # cheap: most bodies stop here
        if brackets > MAX_JSON_DEPTH and _depth_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(message)
        return data
