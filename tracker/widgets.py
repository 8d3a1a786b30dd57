from django.conf import settings
from django.contrib.gis.forms.widgets import OSMWidget
from django.forms import Media
from django.templatetags.static import static


class OfflineOSMWidget(OSMWidget):
    """Django's point widget with OpenLayers served from our own static files (vendored from
    npm at set-up) instead of a CDN, no inline script, and an offline base map, so that the
    admin works without internet and under the Content-Security-Policy."""

    template_name = "gis/tracker-openlayers.html"

    @property
    def media(self):
        return Media(
            css={"all": ["vendor/ol/ol.css", "gis/css/ol3.css"]},
            js=["vendor/ol/ol.js", "gis/js/OLMapWidget.js", "tracker/admin-map.js"],
        )

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["map_options_id"] = f"{context['id']}_map_options"
        context["map_options"] = {
            "geom_name": context["geom_type"],
            "id": context["id"],
            "map_id": f"{context['id']}_map",
            "map_srid": context["map_srid"],
            "name": context["name"],
            "module": context["module"],
            "default_lon": self.attrs["default_lon"],
            "default_lat": self.attrs["default_lat"],
            "default_zoom": self.attrs["default_zoom"],
            "tile_url": settings.MAP_TILE_URL,
            "outlines_url": static("vendor/world-atlas/countries-50m.json"),
        }
        return context
