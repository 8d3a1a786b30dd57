// The offline basemap: country outlines from world-atlas (Natural Earth), drawn as a vector
// layer, so the maps work with no tile server. A raster tile server named by the
// MAP_TILE_URL setting is added on top when configured.
(function () {
  "use strict";
  var cache = {};

  function loadAtlas(url) {
    if (!cache[url]) {
      cache[url] = fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok) throw new Error("basemap " + response.status);
        return response.json();
      });
    }
    return cache[url];
  }

  window.TrackerBasemap = {
    add: function (map, container) {
      var tileUrl = container.dataset.tileUrl;
      map.attributionControl.addAttribution("Natural Earth");
      var pane = map.createPane("basemap");
      pane.style.zIndex = 200;
      var ready = loadAtlas(container.dataset.atlas).then(function (topology) {
        var countries = topojson.feature(topology, topology.objects.countries);
        L.geoJSON(countries, {
          pane: "basemap",
          interactive: false,
          style: { color: "#7d8790", weight: 1, fillColor: "#f4f1ea", fillOpacity: 1 },
        }).addTo(map);
      });
      if (tileUrl) {
        L.tileLayer(tileUrl, { maxZoom: 18, attribution: "" }).addTo(map);
      }
      return ready;
    },
  };
})();
