"""Every error of the API is JSON: {"detail": a sentence, "code": a slug, "errors": {...}}.

The handler also turns the exceptions that Django and the services raise for bad input
(ValidationError, RequestDataTooBig, IntegrityError of a constraint) into 4xx answers;
anything else is logged and answered with a JSON 500, never an HTML page.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from api.parsers import RequestTooLarge
from api.renderers import JSONRenderer
from tracker.outage import RETRY_AFTER_SECONDS, is_outage, log_outage, outage_detail

logger = logging.getLogger("api")


def _flatten(errors, prefix: str = "") -> list[str]:
    lines: list[str] = []
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = "" if key == "non_field_errors" else str(key)
            lines += _flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    elif isinstance(errors, list):
        for item in errors:
            lines += _flatten(item, prefix)
    else:
        lines.append(f"{prefix}: {errors}" if prefix else str(errors))
    return lines


class PreconditionFailed(exceptions.APIException):
    """If-Match names a version of the resource that is no longer the stored one."""

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The resource has changed since you read it. Read it again."
    default_code = "precondition_failed"


class Conflict(exceptions.APIException):
    """The request contradicts the stored state (an event another moderator reviewed)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class ServiceUnavailable(exceptions.APIException):
    """PostgreSQL (or the broker, where a request needs it at once) is down: 503 with
    Retry-After, as config.middleware answers for the views that are not DRF's."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A service the API needs is unavailable. Try again shortly."
    default_code = "service_unavailable"


def api_exception_handler(exc, context):
    if is_outage(exc):
        request = context.get("request")
        log_outage(request.path if request is not None else "API", exc)
        exc = ServiceUnavailable(outage_detail(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=as_serializer_error(exc))
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, IntegrityError):
        # The services validate first, so this is a race or a rule only the database
        # knows (two writers adding the same external id, for example).
        exc = exceptions.ValidationError(
            {"non_field_errors": ["The change conflicts with data already stored."]}
        )

    response = drf_exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.exception("Unhandled error in %s", type(view).__name__ if view else "API")
        set_rollback()
        response = Response(
            {"detail": "Internal server error. It has been logged.", "code": "server_error"},
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    else:
        response.data = _error_body(exc, response.data)
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)

    request = context.get("request")
    if request is not None:
        # Errors are JSON even when CSV or GeoJSON was asked for.
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = "application/json"
    return response


def _error_body(exc, data) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        errors = data if isinstance(data, dict) else {"non_field_errors": data}
        lines = _flatten(errors)
        return {
            "detail": "Invalid input: " + "; ".join(lines),
            "code": "invalid",
            "errors": errors,
        }
    detail = data.get("detail", data) if isinstance(data, dict) else data
    code = getattr(getattr(exc, "detail", None), "code", None) or getattr(
        exc, "default_code", "error"
    )
    body = {"detail": str(detail), "code": str(code)}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        body["retry_after_seconds"] = int(exc.wait)
    return body


def json_not_found(request, exception=None):
    """404 as JSON under /api/ (also the catch-all of api.urls); Django's page elsewhere."""
    if not request.path.startswith("/api/"):
        return defaults.page_not_found(request, exception)
    return JsonResponse(
        {"detail": f"No API endpoint at {request.path}.", "code": "not_found"}, status=404
    )


def json_server_error(request):
    """500 as JSON under /api/, for a root URLconf's handler500; Django's page elsewhere."""
    if not request.path.startswith("/api/"):
        return defaults.server_error(request)
    return JsonResponse(
        {"detail": "Internal server error. It has been logged.", "code": "server_error"},
        status=500,
    )
