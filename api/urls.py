"""REST API v1, mounted at /api/v1/."""

from django.urls import include, path

app_name = "api"
urlpatterns = [
    path("", include("api.imports.urls")),
]
