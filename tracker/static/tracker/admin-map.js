// Starts Django's OpenLayers MapWidget for every map in an admin form. Options come from
// a JSON script element (no inline script). The base map is drawn from the country
// outlines vendored from npm (world-atlas), so it needs no tile server; a raster tile URL
// can be given with the MAP_TILE_URL setting.
"use strict";
(function () {
  function baseLayer(options) {
    if (options.tile_url) {
      return new ol.layer.Tile({ source: new ol.source.XYZ({ url: options.tile_url }) });
    }
    return new ol.layer.Vector({
      source: new ol.source.Vector({
        url: options.outlines_url,
        format: new ol.format.TopoJSON({ layers: ["countries"] }),
        overlaps: false,
      }),
      style: new ol.style.Style({
        fill: new ol.style.Fill({ color: "#eef0ea" }),
        stroke: new ol.style.Stroke({ color: "#8a8f85", width: 1 }),
      }),
    });
  }

  function start() {
    document.querySelectorAll('script[type="application/json"][id$="_map_options"]').forEach(function (element) {
      const options = JSON.parse(element.textContent);
      options.base_layer = baseLayer(options);
      window[options.module] = new MapWidget(options);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
