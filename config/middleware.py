"""An outage of PostgreSQL (or of the broker, where a request needs it at once) answers
503 with Retry-After, never 500: JSON under /api/, a plain page elsewhere.

Django turns an exception into a response at every middleware layer, so one place cannot
catch them all: process_exception takes those of the views (the common case: the first
query, or the lazy request.user, fails), and a got_request_exception receiver marks the
request when one escapes another middleware (a session saved at the end of the request),
whose 500 __call__ then replaces. DRF views answer through api.exceptions instead; a
streamed response, whose queries run only after it left, is preceded by a connection check.
"""

from __future__ import annotations

import logging
import sys

from django.core.signals import got_request_exception
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import FileResponse, HttpResponse, JsonResponse
from django.template import loader
from django.utils import translation

from tracker.outage import (
    OUTAGE_ERRORS,
    RETRY_AFTER_SECONDS,
    is_outage,
    log_outage,
    outage_detail,
)

logger = logging.getLogger("tracker.outage")


def service_unavailable(request, exc: BaseException) -> HttpResponse:
    log_outage(request.path, exc)
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"detail": outage_detail(exc), "code": "service_unavailable"}, status=503
        )
    else:
        # No request context: the context processors would ask the database for the user.
        with translation.override(translation.get_language_from_request(request)):
            html = loader.get_template("503.html").render({})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _database_unreachable() -> BaseException | None:
    conn = connections[DEFAULT_DB_ALIAS]
    try:
        if conn.connection is not None and not conn.is_usable():
            conn.close()
        conn.ensure_connection()
    except OUTAGE_ERRORS as exc:
        return exc
    return None


def _remember_outage(sender, request=None, **kwargs):
    exc = sys.exc_info()[1]
    if request is not None and is_outage(exc):
        request._outage_error = exc


got_request_exception.connect(_remember_outage, dispatch_uid="config.middleware.outage")


class ServiceUnavailableMiddleware:
    """Listed before the session and auth middleware, so that it sees their failures."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        exc = getattr(request, "_outage_error", None)
        if exc is not None and response.status_code >= 500:
            return service_unavailable(request, exc)
        if response.streaming and not isinstance(response, FileResponse):
            # A streamed export runs its first query after the 200 and its headers are
            # sent; with the database down the client would get a cut-off file instead.
            exc = _database_unreachable()
            if exc is not None:
                if hasattr(response, "close"):
                    response.close()
                return service_unavailable(request, exc)
        return response

    def process_exception(self, request, exception):
        if is_outage(exception):
            return service_unavailable(request, exception)
        return None
