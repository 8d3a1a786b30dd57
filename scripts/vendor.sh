#!/usr/bin/env bash
# Copy the browser libraries from node_modules (declared in package.json, pinned by
# package-lock.json) into static/vendor/, which is not committed. No CDN anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
copy() {  # copy SRC DEST (relative to node_modules/ and static/vendor/)
  mkdir -p "static/vendor/$(dirname "$2")"
  cp -f "node_modules/$1" "static/vendor/$2"
}
copy ol/dist/ol.js ol/ol.js
copy ol/dist/ol.js.map ol/ol.js.map
copy ol/ol.css ol/ol.css
# Pages: Leaflet + Supercluster (map), Chart.js (dashboard), world-atlas country outlines
# with topojson-client (the offline basemap: no tile server is needed).
copy leaflet/dist/leaflet.js leaflet/leaflet.js
copy leaflet/dist/leaflet.js.map leaflet/leaflet.js.map
copy leaflet/dist/leaflet.css leaflet/leaflet.css
for image in node_modules/leaflet/dist/images/*.png; do
  copy "leaflet/dist/images/$(basename "$image")" "leaflet/images/$(basename "$image")"
done
copy supercluster/dist/supercluster.min.js supercluster/supercluster.min.js
# The source maps too: the manifest storage of collectstatic follows sourceMappingURL.
copy chart.js/dist/chart.umd.js chartjs/chart.umd.js
copy chart.js/dist/chart.umd.js.map chartjs/chart.umd.js.map
copy topojson-client/dist/topojson-client.min.js topojson/topojson-client.min.js
copy world-atlas/countries-50m.json world-atlas/countries-50m.json
