from drf_spectacular.views import SpectacularSwaggerSplitView


class SwaggerUIView(SpectacularSwaggerSplitView):
    """Swagger UI from the sidecar files, with no inline script or style (strict CSP)."""

    template_name = "api/swagger_ui.html"
