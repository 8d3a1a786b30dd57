// The events map: published events from the REST API as GeoJSON, clustered with
// Supercluster, coloured by grievance or police response; the filter panel and the URL hold
// the same state, so a view can be shared by its link (zoom and position in its fragment,
// #map=ZOOM/LAT/LNG). Events at one spot open as a list; clusters and points are focusable,
// and Enter does what a click does. Events without a point are counted and linked to.
// The embedded map (/embed/, config.embed) has no filter panel nor toolbar: its filters are
// its query's, its links open the tracker in a new tab.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("map-config").textContent);
  var container = document.getElementById("map");
  var form = document.getElementById("filters");
  var statusEl = document.getElementById("map-status");
  var colourSelect = document.getElementById("colour-by");
  var legendEl = document.getElementById("legend");
  var exportLink = document.getElementById("export-link");
  var listLink = document.getElementById("list-link");
  var noPlaceLink = document.getElementById("no-place-link");
  var embedLink = document.getElementById("embed-open");
  var embed = config.embed === true;
  var labels = {};
  document
    .getElementById("popup-labels")
    .content.querySelectorAll("[data-key]")
    .forEach(function (el) {
      labels[el.dataset.key] = el.textContent;
    });
  var termLabels = {};
  config.grievances.concat(config.policeResponses).forEach(function (t) {
    termLabels[t.slug] = t.label;
  });
  var severity = config.policeResponses.map(function (t) {
    return t.slug;
  });
  var rootStyle = getComputedStyle(document.documentElement);
  function colour(kind, slug) {
    return rootStyle.getPropertyValue("--" + kind + "-" + slug).trim() || "#555";
  }

  var map = L.map(container, { minZoom: 2, maxZoom: 16, worldCopyJump: true });

  // ---- zoom and position <-> URL fragment ----------------------------------------------------
  // `#map=ZOOM/LAT/LNG`, as OpenStreetMap has it: in the fragment, not the query, since the
  // pages refuse query parameters that are not filters, and the server never needs it. It
  // is restored on load, reload, back/forward (hashchange), and after a language switch
  // (the language form's `next` carries it); the last view of this tab is kept too, so the
  // list's link back to the map (which carries only the filters) finds it again.
  var VIEW_KEY = "tracker.map.view";
  var viewHash = "";
  function parseView(text) {
    var match = /^#?map=(\d{1,2})\/(-?\d{1,2}(?:\.\d+)?)\/(-?\d{1,3}(?:\.\d+)?)$/.exec(text || "");
    if (!match) return null;
    var zoom = +match[1];
    var lat = +match[2];
    var lng = +match[3];
    if (zoom < map.getMinZoom() || zoom > map.getMaxZoom() || Math.abs(lat) > 85.06 || Math.abs(lng) > 180) return null;
    return { zoom: zoom, center: L.latLng(lat, lng) };
  }
  function formatView() {
    var zoom = map.getZoom();
    var center = map.wrapLatLng(map.getCenter());
    // Enough decimals for a pixel at this zoom (about 0.1 km at zoom 5, 1 m at 16).
    var decimals = Math.max(2, Math.ceil(zoom * Math.LN2 / Math.LN10) + 1);
    return "map=" + zoom + "/" + center.lat.toFixed(decimals) + "/" + center.lng.toFixed(decimals);
  }
  function storedView() {
    if (embed) return null;  // a partner's frame keeps its own view, not this tab's
    try {
      return window.sessionStorage.getItem(VIEW_KEY);
    } catch (error) {
      return null;  // storage refused (privacy settings): the fragment still works
    }
  }
  function keepView() {
    var view = formatView();
    viewHash = "#" + view;
    container.dataset.view = view;
    if (!embed) {
      try {
        window.sessionStorage.setItem(VIEW_KEY, view);
      } catch (error) {
        // as above
      }
    }
    if (location.hash !== viewHash) history.replaceState(history.state, "", location.pathname + location.search + viewHash);
    languageNext();
    if (embedLink) embedLink.hash = viewHash;
  }
  // The language form posts `next` to Django's set_language, which redirects there: the
  // address as it is now (filters changed since the page was served, the fragment).
  var nextField = document.querySelector(".lang-form input[name=next]");
  function languageNext() {
    if (nextField) nextField.value = location.pathname + location.search + location.hash;
  }
  var initial = parseView(location.hash) || parseView(storedView());
  if (initial) {
    map.setView(initial.center, initial.zoom);
    keepView();
  } else {
    map.setView([48.2, 67.5], 5);
    container.dataset.view = formatView();
  }
  map.on("moveend", keepView);
  window.addEventListener("hashchange", function () {
    var view = parseView(location.hash);
    if (!view) return;  // another fragment (the skip link's #main): the view stays
    if (location.hash.slice(1) === formatView()) return;
    map.setView(view.center, view.zoom);
  });

  TrackerBasemap.add(map, container, { places: config.places });
  // Supercluster indexes the points once per load (100,000 in about a second here); each
  // move or zoom then draws only the clusters and points in view.
  var layer = L.layerGroup().addTo(map);
  var index = null;
  var features = [];
  var request = 0;

  // ---- filters <-> URL --------------------------------------------------------------------
  // Every field of the panel is a filter of the API (tracker.query); several values are
  // joined with commas, except organizers, whose names can hold commas (repeated instead).
  function filterParams() {
    if (!form) {
      // The embedded map: the query's filters, as the server checked them.
      var query = new URLSearchParams(location.search);
      query.delete("colour");
      return query;
    }
    var params = new URLSearchParams();
    var data = new FormData(form);
    var names = [];
    data.forEach(function (value, name) {
      if (names.indexOf(name) < 0) names.push(name);
    });
    names.forEach(function (name) {
      var values = data.getAll(name).map(function (v) { return String(v).trim(); })
        .filter(function (v) { return v; });
      if (!values.length) return;
      if (name === "organizer") values.forEach(function (v) { params.append(name, v); });
      else params.set(name, values.join(","));
    });
    return params;
  }

  function colourBy() {
    if (colourSelect) return colourSelect.value;
    return new URLSearchParams(location.search).get("colour") === "police" ? "police" : "grievance";
  }

  function syncUrl(params) {
    if (!form) return;  // the embedded map's address is its query, as given
    var shown = new URLSearchParams(params);
    if (colourBy() !== "grievance") shown.set("colour", colourBy());
    var query = shown.toString();
    history.replaceState(null, "", (query ? "?" + query : location.pathname) + viewHash);
    languageNext();
    var exportParams = new URLSearchParams(params);
    exportParams.set("format", "csv");
    exportLink.href = config.api + "?" + exportParams.toString();
    var listQuery = params.toString();
    listLink.href = listLink.pathname + (listQuery ? "?" + listQuery : "");
  }

  // ---- year slider ---------------------------------------------------------------------------
  var yearFrom = document.getElementById("year-from");
  var yearTo = document.getElementById("year-to");
  var dateAfter = form && form.elements.date_after;
  var dateBefore = form && form.elements.date_before;
  var yearField = form && form.elements.year;
  function showYears() {
    document.getElementById("year-from-value").textContent = yearFrom.value;
    document.getElementById("year-to-value").textContent = yearTo.value;
  }
  function yearsFromDates() {
    if (dateAfter.value) yearFrom.value = dateAfter.value.slice(0, 4);
    if (dateBefore.value) yearTo.value = dateBefore.value.slice(0, 4);
    // year= narrows the range further (the filters combine), so the slider shows it.
    if (yearField && yearField.value) {
      yearFrom.value = Math.max(+yearFrom.value, +yearField.value);
      yearTo.value = Math.min(+yearTo.value, +yearField.value);
    }
    showYears();
  }
  function datesFromYears(moved) {
    if (yearField) yearField.value = "";  // the slider now says which years
    if (+yearFrom.value > +yearTo.value) {
      if (moved === yearFrom) yearTo.value = yearFrom.value;
      else yearFrom.value = yearTo.value;
    }
    dateAfter.value = +yearFrom.value > config.firstYear ? yearFrom.value + "-01-01" : "";
    dateBefore.value = +yearTo.value < config.lastYear ? yearTo.value + "-12-31" : "";
    showYears();
  }
  (yearFrom && yearTo ? [yearFrom, yearTo] : []).forEach(function (slider) {
    slider.addEventListener("input", function () {
      datesFromYears(slider);
    });
    slider.addEventListener("change", function () {
      datesFromYears(slider);
      reload();
    });
  });
  if (yearFrom && yearTo) yearsFromDates();

  // ---- data -------------------------------------------------------------------------------
  function fetchAll(url, collected, token) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/geo+json, application/json" } })
      .then(function (response) {
        if (response.ok) return response.json();
        // The API explains a refused filter in "detail"; show it rather than a bare failure.
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (body) {
            var error = new Error("HTTP " + response.status);
            error.detail = response.status < 500 && body && body.detail;
            throw error;
          });
      })
      .then(function (page) {
        if (token !== request) return null;
        collected.push.apply(collected, page.features || []);
        var next = page.next || (page.links && page.links.next);
        return next ? fetchAll(next, collected, token) : collected;
      });
  }

  function reload() {
    var params = filterParams();
    syncUrl(params);
    params.set("format", "geojson");
    params.set("page_size", "1000");
    var token = ++request;
    container.dataset.state = "loading";
    container.setAttribute("aria-busy", "true");
    statusEl.textContent = statusEl.dataset.loading;
    fetchAll(config.api + "?" + params.toString(), [], token)
      .then(function (loaded) {
        if (loaded === null) return;
        features = loaded;
        // Events placed only at region or country level have no point: they come in the
        // same answer without a geometry, so drawn + missing is the API's count for these
        // filters, and the missing ones are a link to their list away.
        var drawn = draw();
        var missing = features.length - drawn;
        statusEl.textContent = missing
          ? statusEl.dataset.splitTemplate.replace("{total}", features.length)
              .replace("{shown}", drawn).replace("{missing}", missing)
          : statusEl.dataset.countTemplate.replace("{count}", drawn);
        showNoPlace(missing);
        container.dataset.count = String(drawn);
        container.dataset.missing = String(missing);
        container.dataset.state = "ready";
        container.removeAttribute("aria-busy");
      })
      .catch(function (error) {
        if (token !== request) return;
        statusEl.textContent = error.detail ? String(error.detail) : statusEl.dataset.error;
        showNoPlace(0);
        container.dataset.state = "error";
        container.removeAttribute("aria-busy");

      });
  }

  // The list of the events of these filters that have no point (has_location=false).
  function showNoPlace(missing) {
    if (!noPlaceLink) return;
    noPlaceLink.hidden = !missing;
    if (!missing) return;
    var params = filterParams();
    params.set("has_location", "false");
    noPlaceLink.href = listLink.pathname + "?" + params.toString();
    noPlaceLink.textContent = noPlaceLink.dataset.template.replace("{count}", missing);
  }

  // ---- drawing ------------------------------------------------------------------------------
  function worstResponse(responses) {
    var worst = null;
    (responses || []).forEach(function (slug) {
      if (worst === null || severity.indexOf(slug) > severity.indexOf(worst)) worst = slug;
    });
    return worst;
  }
  function markerCategory(props) {
    if (colourBy() === "police") {
      return "police-" + (worstResponse(props.police_responses) || "unknown");
    }
    return "grievance-" + ((props.grievances || [])[0] || "other");
  }
  var colours = {};
  function categoryColour(category) {
    if (!colours[category]) {
      var dash = category.indexOf("-");
      colours[category] = colour(category.slice(0, dash), category.slice(dash + 1));
    }
    return colours[category];
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (className) node.className = className;
    return node;
  }
  // In a partner's frame the tracker's pages open in a new tab (they refuse to be framed).
  function outward(link) {
    if (!embed) return;
    link.target = "_blank";
    link.rel = "noopener";
  }
  function placeText(props) {
    return [props.location_detail, props.city, props.admin1, props.country]
      .filter(function (part, index, parts) {
        // "Almaty, Almaty": the city of Almaty is also a region of its own.
        return part && parts.indexOf(part) === index;
      })
      .join(", ");
  }
  function participantsText(props) {
    var low = props.participants_low;
    var high = props.participants_high;
    if (low == null && high == null) return labels.notReported;
    if (low == null || high == null || low === high) return String(low == null ? high : low);
    return low + "–" + high;
  }
  function popupContent(feature) {
    var props = feature.properties || {};
    var id = props.id != null ? props.id : feature.id;
    var root = el("div", null, "popup");
    root.appendChild(el("h3", props.title || ""));
    var list = el("dl");
    function row(label, value) {
      list.appendChild(el("dt", label));
      list.appendChild(el("dd", value));
    }
    row(labels.date, props.end_date && props.end_date !== props.date ? props.date + " – " + props.end_date : props.date);
    row(labels.place, placeText(props));
    row(labels.grievances, (props.grievances || []).map(function (s) { return termLabels[s] || s; }).join(", "));
    row(
      labels.police,
      props.police_responses && props.police_responses.length
        ? props.police_responses.map(function (s) { return termLabels[s] || s; }).join(", ")
        : labels.notReported
    );
    row(labels.arrests, props.arrests == null ? labels.notReported : String(props.arrests));
    row(labels.participants, participantsText(props));
    root.appendChild(list);
    var sources = props.sources || [];
    if (sources.length) {
      root.appendChild(el("h4", labels.sources));
      var ul = el("ul", null, "sources");
      sources.forEach(function (source) {
        var li = el("li");
        var text = source.title || source.publisher || source.url;
        if (source.url && /^https?:\/\//i.test(source.url)) {
          var a = el("a", text);
          a.href = source.url;
          a.rel = "noopener noreferrer";
          a.target = "_blank";
          li.appendChild(a);
        } else {
          li.textContent = text;
        }
        if (source.publisher && source.title) li.appendChild(document.createTextNode(" — " + source.publisher));
        ul.appendChild(li);
      });
      root.appendChild(ul);
    }
    var link = el("a", labels.details, "more");
    link.href = config.eventUrl.replace("/0/", "/" + id + "/");
    outward(link);
    root.appendChild(link);
    return root;
  }

  function sumCategories(total, props) {
    Object.keys(props).forEach(function (key) {
      if (key.indexOf("grievance-") === 0 || key.indexOf("police-") === 0) {
        total[key] = (total[key] || 0) + props[key];
      }
    });
  }
  function topCategory(props) {
    var top = null;
    Object.keys(props).forEach(function (key) {
      if ((key.indexOf("grievance-") === 0 || key.indexOf("police-") === 0) && (top === null || props[key] > props[top])) top = key;
    });
    return top;
  }

  function draw() {
    var points = [];
    features.forEach(function (feature) {
      if (!feature.geometry || feature.geometry.type !== "Point") return;
      feature.properties = feature.properties || {};
      feature.properties._category = markerCategory(feature.properties);
      points.push(feature);
    });
    index = new Supercluster({
      radius: 50,
      // Up to the map's own deepest zoom: events at one spot stay one cluster there, and
      // that cluster opens their list (stackedPopup) instead of hiding all but the top one.
      maxZoom: map.getMaxZoom(),
      // Per-category counts travel up the clusters, so a cluster shows its main category.
      map: function (props) {
        var counts = {};
        counts[props._category] = 1;
        return counts;
      },
      reduce: sumCategories,
    }).load(points);
    render();
    drawLegend();
    return points.length;
  }

  // ---- events at one spot -------------------------------------------------------------------
  // A cluster that no zoom can split (its events share a spot, or the map is at its deepest
  // zoom) opens a list of its events, newest first, a page at a time; each opens its record.
  var STACK_PAGE = 10;
  var stackPopup = null;
  function termText(slugs) {
    return (slugs || []).map(function (s) { return termLabels[s] || s; }).join(", ");
  }
  function stackedList(leaves, start) {
    var root = el("div", null, "popup stacked");
    root.appendChild(el("h3", labels.stackedTitle.replace("{count}", leaves.length)));
    var list = el("ol", null, "stacked-events");
    list.start = start + 1;
    leaves.slice(start, start + STACK_PAGE).forEach(function (leaf) {
      var props = leaf.properties;
      var id = props.id != null ? props.id : leaf.id;
      var li = el("li");
      li.appendChild(el("span", props.date, "stacked-date"));
      li.appendChild(document.createTextNode(" "));
      var link = el("a", props.title || labels.details);
      link.href = config.eventUrl.replace("/0/", "/" + id + "/");
      outward(link);
      li.appendChild(link);
      var facts = [termText(props.grievances)];
      facts.push(labels.arrests + ": " + (props.arrests == null ? labels.notReported : props.arrests));
      li.appendChild(el("span", facts.filter(Boolean).join(" · "), "stacked-facts"));
      list.appendChild(li);
    });
    root.appendChild(list);
    var nav = el("p", null, "stacked-pages");
    var last = Math.min(start + STACK_PAGE, leaves.length);
    nav.appendChild(el("span", labels.stackedRange.replace("{from}", start + 1).replace("{to}", last).replace("{count}", leaves.length)));
    function pager(text, to, enabled) {
      var button = el("button", text, "button secondary");
      button.type = "button";
      button.disabled = !enabled;
      button.addEventListener("click", function () {
        // The new page replaces this one once the click is done: Leaflet tells a click in
        // a popup from one on the map (which closes the popup) by the clicked element's
        // ancestors, which a detached button no longer has. Focus then stays on the same
        // button of the new page (or its first event once the end is reached), and the
        // key that pressed it, done by then, cannot press the newly focused element too.
        var place = Array.prototype.indexOf.call(root.querySelectorAll("button"), button);
        setTimeout(function () {
          var next = stackedList(leaves, to);
          root.replaceWith(next);
          if (stackPopup) stackPopup.update();
          var same = next.querySelectorAll("button")[place];
          var target = same && !same.disabled ? same : next.querySelector("a");
          if (target) target.focus();
        }, 0);
      });
      return button;
    }
    nav.appendChild(pager(labels.previous, Math.max(0, start - STACK_PAGE), start > 0));
    nav.appendChild(pager(labels.next, start + STACK_PAGE, last < leaves.length));
    root.appendChild(nav);
    return root;
  }
  function stackedPopup(clusterId, latlng) {
    var leaves = index.getLeaves(clusterId, Infinity).slice().sort(function (a, b) {
      var x = a.properties.date || "";
      var y = b.properties.date || "";
      return x < y ? 1 : x > y ? -1 : (b.properties.id || 0) - (a.properties.id || 0);
    });
    var wrapper = el("div");
    wrapper.appendChild(stackedList(leaves, 0));
    stackPopup = L.popup({ maxWidth: 360, maxHeight: 420 }).setLatLng(latlng).setContent(wrapper).openOn(map);
    var first = wrapper.querySelector("a");
    if (first) first.focus();
  }

  function clusterMarker(item, latlng) {
    var props = item.properties;
    var count = props.point_count;
    var size = count < 10 ? "small" : count < 100 ? "medium" : "large";
    var split = index.getClusterExpansionZoom(props.cluster_id);
    var stacked = split > map.getMaxZoom() || map.getZoom() >= map.getMaxZoom();
    var marker = L.marker(latlng, {
      icon: L.divIcon({
        html: "<div><span>" + props.point_count_abbreviated + "</span></div>",
        className:
          "marker-cluster marker-cluster-" + size + " cluster-" + topCategory(props) +
          (stacked ? " marker-stacked" : ""),
        iconSize: L.point(40, 40),
      }),
      // The name a screen reader says (Leaflet makes it a focusable button).
      title: (stacked ? labels.stacked : labels.cluster).replace("{count}", count),
      keyboard: true,
    });
    function open() {
      if (stacked) stackedPopup(props.cluster_id, latlng);
      else map.setView(latlng, Math.min(split, map.getMaxZoom()));
    }
    marker.on("click", open);
    // Leaflet answers Enter only on markers with a popup of their own: a cluster does on
    // Enter and Space what it does on a click.
    marker.on("add", function () {
      marker.getElement().addEventListener("keydown", function (event) {
        if (event.key !== "Enter" && event.key !== " ") return;
        event.preventDefault();
        open();
      });
    });
    return marker;
  }

  function pointMarker(feature, latlng) {
    var props = feature.properties;
    // A focusable marker (Tab reaches it, Enter opens its popup), named by its event.
    var marker = L.marker(latlng, {
      icon: L.divIcon({
        html: "",
        className: "event-marker",
        iconSize: L.point(16, 16),
      }),
      title: [props.title, props.date].filter(Boolean).join(", "),
      keyboard: true,
    });
    marker.on("add", function () {
      var node = marker.getElement();
      if (node) node.style.background = categoryColour(props._category);
    });
    marker.bindPopup(function () {
      return popupContent(feature);
    }, { maxWidth: 320 });
    return marker;
  }

  function render() {
    if (!index) return;
    var bounds = map.getBounds();
    var zoom = Math.round(map.getZoom());
    var items = index.getClusters([bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()], zoom);
    layer.clearLayers();
    items.forEach(function (item) {
      var c = item.geometry.coordinates;
      var latlng = [c[1], c[0]];
      layer.addLayer(item.properties.cluster ? clusterMarker(item, latlng) : pointMarker(item, latlng));
    });
  }
  map.on("moveend", render);

  function drawLegend() {
    legendEl.textContent = "";
    var police = colourBy() === "police";
    legendEl.appendChild(el("p", police ? labels.legendPolice : labels.legendGrievance, "legend-title"));
    var ul = el("ul");
    var terms = police ? config.policeResponses : config.grievances;
    terms.forEach(function (term) {
      var li = el("li");
      var swatch = el("span", null, "swatch swatch-" + (police ? "police" : "grievance") + "-" + term.slug);
      swatch.setAttribute("aria-hidden", "true");
      li.appendChild(swatch);
      li.appendChild(document.createTextNode(term.label));
      ul.appendChild(li);
    });
    if (police) {
      var li = el("li");
      var swatch = el("span", null, "swatch swatch-police-unknown");
      swatch.setAttribute("aria-hidden", "true");
      li.appendChild(swatch);
      li.appendChild(document.createTextNode(labels.unknown));
      ul.appendChild(li);
    }
    legendEl.appendChild(ul);
  }

  // ---- wiring -------------------------------------------------------------------------------
  var pending = null;
  if (form) form.addEventListener("submit", function (event) {
    event.preventDefault();
    reload();
  });
  if (form) form.addEventListener("change", function (event) {
    if (event.target === yearFrom || event.target === yearTo) return;
    if (event.target === dateAfter || event.target === dateBefore || event.target === yearField) {
      yearsFromDates();
    }
    clearTimeout(pending);
    pending = setTimeout(reload, 250);
  });
  if (colourSelect) {
    colourSelect.value = new URLSearchParams(location.search).get("colour") === "police" ? "police" : "grievance";
    colourSelect.addEventListener("change", function () {
      syncUrl(filterParams());
      draw();
    });
  }
  // Invalid filters: their messages are in the panel, and no map of another selection.
  if (config.valid !== false) reload();
})();
