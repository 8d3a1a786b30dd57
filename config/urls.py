from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from api.views.docs import SwaggerUIView
from pages import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerUIView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("api.urls")),
    path("review/imports/", include("pages.import_urls")),
    path("", include("pages.urls")),
]

# JSON for /api/ paths, Django's pages elsewhere.
handler404 = "api.exceptions.json_not_found"
handler500 = "api.exceptions.json_server_error"
