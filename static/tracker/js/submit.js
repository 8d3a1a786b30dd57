// The submit form: suggestions for the city (any name variant, from the gazetteer) and a map
// click that fills latitude and longitude. Both only help: the form works without them.
(function () {
  "use strict";
  var container = document.getElementById("pick-map");
  var form = document.getElementById("event-form");
  var lat = form.elements.latitude;
  var lon = form.elements.longitude;
  var cityInput = form.elements.city_name;
  var countryInput = form.elements.country;
  var datalist = document.getElementById("city-suggestions");
  var known = {};

  var map = L.map(container, { minZoom: 2, maxZoom: 16 }).setView([48.2, 67.5], 4);
  TrackerBasemap.add(map, container);
  var marker = null;
  function place(latlng, zoom) {
    if (marker) marker.setLatLng(latlng);
    else marker = L.circleMarker(latlng, { radius: 8, color: "#1f1f1f", weight: 2, fillColor: "#e15759", fillOpacity: 0.9 }).addTo(map);
    if (zoom) map.setView(latlng, zoom);
  }
  map.on("click", function (event) {
    lat.value = event.latlng.lat.toFixed(5);
    lon.value = event.latlng.lng.toFixed(5);
    place(event.latlng);
  });
  function fromInputs() {
    var y = parseFloat(lat.value);
    var x = parseFloat(lon.value);
    if (!isNaN(x) && !isNaN(y) && Math.abs(y) <= 90 && Math.abs(x) <= 180) place([y, x], 7);
  }
  var typing = null;
  [lat, lon].forEach(function (input) {
    input.addEventListener("input", function () {
      clearTimeout(typing);
      typing = setTimeout(fromInputs, 300);
    });
  });
  fromInputs();
  var current = document.getElementById("event-point");
  if (!marker && current) {
    var point = JSON.parse(current.textContent);
    place([point[1], point[0]], 7);
  }

  var timer = null;
  cityInput.addEventListener("input", function () {
    clearTimeout(timer);
    var query = cityInput.value.trim();
    if (known[query]) {
      var city = known[query];
      if (!countryInput.value) countryInput.value = city.country;
      return;
    }
    if (query.length < 2) return;
    timer = setTimeout(function () {
      fetch(container.dataset.suggestUrl + "?q=" + encodeURIComponent(query), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : { results: [] }; })
        .then(function (data) {
          datalist.textContent = "";
          data.results.forEach(function (city) {
            var option = document.createElement("option");
            option.value = city.label;
            option.label = city.label + " (" + city.country + ")";
            known[city.label] = city;
            datalist.appendChild(option);
          });
        });
    }, 200);
  });
})();
