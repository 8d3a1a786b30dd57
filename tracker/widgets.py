from django.contrib.gis.forms.widgets import OSMWidget


class OfflineOSMWidget(OSMWidget):
    """Django's OpenStreetMap point widget with OpenLayers served from our own static files
    (vendored from npm at set-up) instead of a CDN, so the admin works offline and under the
    Content-Security-Policy."""

    class Media:
        css = {"all": ["vendor/ol/ol.css", "gis/css/ol3.css"]}
        js = ["vendor/ol/ol.js", "gis/js/OLMapWidget.js"]

    @property
    def media(self):
        from django.forms import Media

        return Media(css=self.Media.css, js=self.Media.js)
