from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser


class RequestTooLarge(APIException):
    status_code = 413
    default_code = "request_too_large"

    def __init__(self, limit: int | None = None):
        limit = limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(
            f"The request body is larger than {limit:,} bytes, the most this endpoint accepts."
        )


class LimitedJSONParser(JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE.

    DRF reads the body from the raw stream, past Django's size check (which only guards
    `request.body` and form parsing), so the limit is applied here before anything is read.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if limit is not None and request is not None:
            meta = request.META
            try:
                length = int(meta.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestTooLarge(limit)
            if stream is not None:
                body = stream.read(limit + 1)
                if len(body) > limit:
                    raise RequestTooLarge(limit)
                import io

                stream = io.BytesIO(body)
        return super().parse(stream, media_type, parser_context)
