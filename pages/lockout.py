"""What django-axes asks of the project: the client's address and the lockout answer.

One policy covers the page login, the admin login and the API token endpoint (see the AXES_
settings). A locked-out client gets 429 with Retry-After: a page in the site's style and
language, or the API's JSON error body under /api/.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def client_address(request: HttpRequest) -> str | None:
    """The address the API throttles count too (DRF's NUM_PROXIES rule), so that behind a
    proxy the lockout does not fall on the proxy, and without one X-Forwarded-For (which the
    client writes itself) cannot dodge it."""
    remote_addr = request.META.get("REMOTE_ADDR")
    num_proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if num_proxies <= 0 or not forwarded:
        return remote_addr
    addresses = [a.strip() for a in forwarded.split(",")]
    return addresses[-min(num_proxies, len(addresses))] or remote_addr


def cool_off_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def lockout_message(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return ngettext(
        "Too many failed login attempts for this account or from this address. Logging in "
        "is blocked for %(minutes)d minute; wait, then try again.",
        "Too many failed login attempts for this account or from this address. Logging in "
        "is blocked for %(minutes)d minutes; wait, then try again.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(
    request: HttpRequest, original_response=None, credentials=None
) -> HttpResponse:
    # Every attempt during the lockout starts the cool-off again
    # (AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT), so the whole period is what is left.
    seconds = cool_off_seconds()
    status = settings.AXES_HTTP_RESPONSE_CODE
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {
                "detail": lockout_message(seconds),
                "code": "locked_out",
                "retry_after_seconds": seconds,
            },
            status=status,
        )
    else:
        response = render(
            request,
            "registration/lockout.html",
            {"message": lockout_message(seconds), "title": _("Login blocked for a while")},
            status=status,
        )
    response["Retry-After"] = str(seconds)
    return response
