"""REST API v1, mounted at /api/v1/."""

from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.routers import SimpleRouter

from api.exceptions import json_not_found
from api.views.events import EventViewSet, SubmissionListView
from api.views.meta import CityDetailView, CityListView, TaxonomyView, TokenView
from api.views.removed import RemovedEventListView
from api.views.stats import TrendsView

app_name = "api"

router = SimpleRouter()
router.register("events", EventViewSet, basename="event")

urlpatterns = [
    # Before the router's events/{id}/, which would take "removed" for an id.
    path("events/removed/", RemovedEventListView.as_view(), name="event-removed"),
    *router.urls,
    path("submissions/", SubmissionListView.as_view(), name="submission-list"),
    path("stats/trends/", TrendsView.as_view(), name="trends"),
    path("taxonomy/", TaxonomyView.as_view(), name="taxonomy"),
    path("cities/", CityListView.as_view(), name="city-list"),
    path("cities/<int:pk>/", CityDetailView.as_view(), name="city-detail"),
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("", include("api.imports.urls")),
    # Last: any other path under /api/v1/ answers with a JSON 404, not the HTML page. It
    # changes nothing, so it needs no CSRF token: without the exemption a POST to an unknown
    # path got Django's HTML 403 "CSRF verification failed" (found by schemathesis).
    re_path(r"^.*/$", csrf_exempt(json_not_found), name="not-found"),
]
