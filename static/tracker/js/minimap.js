// The small map of one event's place on its page.
(function () {
  "use strict";
  var container = document.getElementById("mini-map");
  var point = JSON.parse(document.getElementById("event-point").textContent);
  var map = L.map(container, { minZoom: 2, maxZoom: 16, scrollWheelZoom: false, keyboard: false }).setView([point[1], point[0]], 6);
  TrackerBasemap.add(map, container);
  L.circleMarker([point[1], point[0]], {
    radius: 8,
    color: "#1f1f1f",
    weight: 2,
    fillColor: "#e15759",
    fillOpacity: 0.9,
  }).addTo(map);
})();
