// The offline basemap: country outlines from world-atlas (Natural Earth), drawn as a vector
// layer, so the maps work with no tile server, and the gazetteer's city names as labels in
// the page's language (options.places, from the server: [name, lat, lng, population],
// largest first). A raster tile server named by the MAP_TILE_URL setting is added on top
// when configured.
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

  // The smallest population labelled at a zoom: the largest cities when zoomed out, more
  // and smaller ones closer in.
  function minPopulation(zoom) {
    if (zoom <= 3) return 1000000;
    if (zoom === 4) return 500000;
    if (zoom === 5) return 200000;
    if (zoom === 6) return 100000;
    if (zoom === 7) return 40000;
    return 0;
  }

  // Labels are part of the background: their own pane under the markers, ignored by the
  // pointer (pointer-events: none, so a click there reaches the marker or the map), never
  // focused (no tabindex), and hidden from screen readers (the markers name their events and
  // places already).
  function addPlaceLabels(map, places) {
    var pane = map.createPane("place-labels");
    pane.style.zIndex = 450;
    pane.style.pointerEvents = "none";
    pane.setAttribute("aria-hidden", "true");
    var layer = L.layerGroup().addTo(map);
    function label(place) {
      var text = document.createElement("span");
      text.textContent = place[0];
      return L.marker([place[1], place[2]], {
        pane: "place-labels",
        interactive: false,
        keyboard: false,
        icon: L.divIcon({ className: "place-label", html: text, iconSize: null }),
      });
    }
    function draw() {
      layer.clearLayers();
      var zoom = Math.round(map.getZoom());
      var least = minPopulation(zoom);
      var bounds = map.getBounds().pad(0.2);
      var taken = [];  // the boxes of the labels placed so far, in pixels
      for (var i = 0; i < places.length; i++) {
        var place = places[i];
        if (place[3] < least) break;  // largest first: the rest are smaller still
        var latlng = L.latLng(place[1], place[2]);
        if (!bounds.contains(latlng)) continue;
        // Largest first, a label that would overlap one already placed is left out.
        var point = map.latLngToLayerPoint(latlng);
        var box = { x: point.x + 22, y: point.y - 9, w: 7.5 * place[0].length + 8, h: 18 };
        var clash = taken.some(function (other) {
          return box.x < other.x + other.w && other.x < box.x + box.w && box.y < other.y + other.h && other.y < box.y + box.h;
        });
        if (clash) continue;
        taken.push(box);
        layer.addLayer(label(place));
      }
    }
    map.on("moveend", draw);
    map.whenReady(draw);
  }

  window.TrackerBasemap = {
    add: function (map, container, options) {
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
      if (options && options.places && options.places.length) addPlaceLabels(map, options.places);
      return ready;
    },
  };
})();
