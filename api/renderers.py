"""Formats of the event endpoints besides JSON."""

from __future__ import annotations

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer


class GeoJSONRenderer(JSONRenderer):
    """`?format=geojson` or `Accept: application/geo+json` (RFC 7946)."""

    media_type = "application/geo+json"
    format = "geojson"


class CSVRenderer(JSONRenderer):
    """`?format=csv`. The view streams the rows itself (see api.views.events); this class
    exists for content negotiation, and renders anything else (errors) as JSON."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"


class FormatNegotiation(DefaultContentNegotiation):
    """`?format=` decides on its own; Accept decides only without it.

    DRF answers an unknown `?format=` with a bare 404 (here a 406 that names the formats),
    and refuses a known one whose media type the Accept header lacks; GDAL, for one, asks
    for `?format=geojson` with an Accept header that names plain JSON types only.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        format_query_param = self.settings.URL_FORMAT_OVERRIDE
        chosen = format_suffix or request.query_params.get(format_query_param)
        if chosen:
            renderer = self.filter_renderers(renderers, chosen)[0]
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)

    def filter_renderers(self, renderers, format):
        offered = [renderer.format for renderer in renderers]
        matching = [renderer for renderer in renderers if renderer.format == format]
        if not matching:
            raise NotAcceptable(
                f"Unknown format {format!r}: this endpoint offers {', '.join(offered)}."
            )
        return matching
