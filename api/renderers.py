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
    """DRF answers an unknown `?format=` with a bare 404; say what is offered instead."""

    def filter_renderers(self, renderers, format):
        offered = [renderer.format for renderer in renderers]
        matching = [renderer for renderer in renderers if renderer.format == format]
        if not matching:
            raise NotAcceptable(
                f"Unknown format {format!r}: this endpoint offers {', '.join(offered)}."
            )
        return matching
