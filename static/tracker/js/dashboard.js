// The dashboard's charts. The server describes each chart once (pages/dashboard.py:
// labels, series, axis titles, all translated); the same description gives the table and
// the CSV on the server, the Chart.js chart here, and the SVG download, drawn below from
// the same numbers. Colours are the custom properties of .dashboard-layout in site.css
// (Paul Tol's muted scheme and Okabe-Ito: colour-blind safe), so the filter swatches and
// the charts agree.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var root = document.querySelector(".dashboard-layout") || document.documentElement;
  var style = getComputedStyle(root);
  var FONT = getComputedStyle(document.body).fontFamily || "sans-serif";
  var TEXT = "#1b1f23";
  var GRID = "#d9dee3";
  var POINTS = ["circle", "rect", "triangle", "rectRot", "crossRot", "star"];

  function colour(swatch) {
    return style.getPropertyValue("--" + swatch).trim() || "#555555";
  }

  Chart.defaults.font.family = FONT;
  Chart.defaults.color = TEXT;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false;

  // A PNG of a transparent canvas is unreadable on a dark viewer: paint it white first.
  var whiteBackground = {
    id: "whiteBackground",
    beforeDraw: function (chart) {
      var ctx = chart.ctx;
      ctx.save();
      ctx.globalCompositeOperation = "destination-over";
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, chart.width, chart.height);
      ctx.restore();
    },
  };

  function percentTick(value) {
    return value + " %";
  }

  function draw(spec) {
    var canvas = document.getElementById("chart-" + spec.key);
    if (!canvas) return null;
    var horizontal = spec.kind === "hbar";
    var line = spec.kind === "line";
    var datasets = spec.series.map(function (s, i) {
      var c = colour(s.swatch);
      var set = { label: s.label, data: s.data, borderColor: c, backgroundColor: c };
      if (line) {
        set.borderWidth = 2;
        set.borderDash = s.dash ? [6, 4] : [];
        set.pointStyle = POINTS[i % POINTS.length];
        set.pointRadius = spec.labels.length > 60 ? 2 : 4;
        set.pointBackgroundColor = s.data.map(function (_v, k) {
          return spec.thin[k] ? "#ffffff" : c; // hollow: a share of fewer than 10 events
        });
        set.spanGaps = false;
      } else {
        set.borderColor = "#ffffff";
        set.borderWidth = spec.stacked ? 0.5 : 0;
      }
      return set;
    });
    var valueAxis = {
      beginAtZero: true,
      stacked: spec.stacked,
      title: { display: true, text: horizontal ? spec.xTitle : spec.yTitle },
      grid: { color: GRID },
    };
    if (spec.percent) valueAxis.ticks = { callback: percentTick };
    var categoryAxis = {
      stacked: spec.stacked,
      title: { display: true, text: horizontal ? spec.yTitle : spec.xTitle },
      grid: { display: false },
      ticks: { autoSkip: true, maxRotation: 60, minRotation: 0 },
    };
    var scales = horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis };
    return new Chart(canvas, {
      type: line ? "line" : "bar",
      data: { labels: spec.labels, datasets: datasets },
      options: {
        indexAxis: horizontal ? "y" : "x",
        scales: scales,
        interaction: { mode: "nearest", axis: horizontal ? "y" : "x", intersect: false },
        plugins: {
          legend: {
            display: spec.series.length > 1,
            position: "bottom",
            labels: { usePointStyle: line, boxWidth: 14 },
          },
          tooltip: spec.percent
            ? {
                callbacks: {
                  label: function (item) {
                    return item.dataset.label + ": " + item.formattedValue + " %";
                  },
                },
              }
            : {},
        },
      },
      plugins: [whiteBackground],
    });
  }

  // --- SVG, drawn from the same description -----------------------------------------

  function esc(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;");
  }

  function niceMax(max) {
    if (!(max > 0)) return { max: 1, step: 1 };
    var raw = max / 5;
    var magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 2.5, 5, 10].map(function (f) { return f * magnitude; }).find(function (s) {
      return s >= raw;
    });
    return { max: Math.ceil(max / step) * step, step: step };
  }

  function textWidth(text, size) {
    return String(text).length * size * 0.56;
  }

  function fmt(value) {
    return Math.abs(value) >= 1000 ? value.toLocaleString() : String(+value.toFixed(2));
  }

  function svgOf(spec) {
    var W = 960;
    var horizontal = spec.kind === "hbar";
    var line = spec.kind === "line";
    var n = spec.labels.length;
    var series = spec.series;
    // The legend: items laid out in rows under the plot.
    var legend = [];
    var lx = 60;
    var ly = 0;
    if (series.length > 1) {
      series.forEach(function (s) {
        var w = 26 + textWidth(s.label, 12) + 18;
        if (lx + w > W - 20) { lx = 60; ly += 20; }
        legend.push({ x: lx, row: ly, s: s });
        lx += w;
      });
    }
    var legendHeight = legend.length ? ly + 28 : 0;
    var labelSpace = horizontal
      ? Math.min(260, Math.max.apply(null, spec.labels.map(function (l) { return textWidth(l, 12); }).concat([30])) + 12)
      : 0;
    var rotate = !horizontal && n > 8;
    var bottomLabels = horizontal ? 22 : rotate ? 64 : 24;
    var H = horizontal ? Math.max(320, 60 + n * 26 + bottomLabels + 40 + legendHeight) : 480;
    var m = { top: 48, left: horizontal ? 40 + labelSpace : 84, right: 24, bottom: bottomLabels + 36 + legendHeight };
    var pw = W - m.left - m.right;
    var ph = H - m.top - m.bottom;
    var max = 0;
    for (var k = 0; k < n; k++) {
      var sum = 0;
      series.forEach(function (s) {
        var v = s.data[k];
        if (v === null || v === undefined) return;
        if (spec.stacked) sum += v; else max = Math.max(max, v);
      });
      max = Math.max(max, sum);
    }
    var scale = niceMax(max);
    var out = [];
    out.push('<svg xmlns="http://www.w3.org/2000/svg" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '" font-family="' + esc(FONT) + '" font-size="12" fill="' + TEXT + '">');
    out.push('<rect width="100%" height="100%" fill="#ffffff"/>');
    out.push('<text x="' + W / 2 + '" y="24" text-anchor="middle" font-size="16" font-weight="bold">' + esc(spec.title) + "</text>");
    function val(v) { return (v / scale.max) * (horizontal ? pw : ph); }
    // Value axis: grid lines and ticks.
    for (var t = 0; t <= scale.max + 1e-9; t += scale.step) {
      var label = fmt(t) + (spec.percent ? " %" : "");
      if (horizontal) {
        var x = m.left + val(t);
        out.push('<line x1="' + x + '" y1="' + m.top + '" x2="' + x + '" y2="' + (m.top + ph) + '" stroke="' + GRID + '"/>');
        out.push('<text x="' + x + '" y="' + (m.top + ph + 16) + '" text-anchor="middle">' + esc(label) + "</text>");
      } else {
        var y = m.top + ph - val(t);
        out.push('<line x1="' + m.left + '" y1="' + y + '" x2="' + (m.left + pw) + '" y2="' + y + '" stroke="' + GRID + '"/>');
        out.push('<text x="' + (m.left - 8) + '" y="' + (y + 4) + '" text-anchor="end">' + esc(label) + "</text>");
      }
    }
    // Category axis labels (thinned out when there are many).
    var band = (horizontal ? ph : pw) / Math.max(n, 1);
    var every = horizontal ? 1 : Math.max(1, Math.ceil(n / (rotate ? 40 : 12)));
    spec.labels.forEach(function (l, i) {
      if (i % every) return;
      var c = band * (i + 0.5);
      if (horizontal) {
        out.push('<text x="' + (m.left - 8) + '" y="' + (m.top + c + 4) + '" text-anchor="end">' + esc(l) + "</text>");
      } else if (rotate) {
        var xx = m.left + c;
        var yy = m.top + ph + 14;
        out.push('<text x="' + xx + '" y="' + yy + '" text-anchor="end" transform="rotate(-50 ' + xx + " " + yy + ')">' + esc(l) + "</text>");
      } else {
        out.push('<text x="' + (m.left + c) + '" y="' + (m.top + ph + 18) + '" text-anchor="middle">' + esc(l) + "</text>");
      }
    });
    // Axis lines and titles.
    out.push('<line x1="' + m.left + '" y1="' + (m.top + ph) + '" x2="' + (m.left + pw) + '" y2="' + (m.top + ph) + '" stroke="' + TEXT + '"/>');
    out.push('<line x1="' + m.left + '" y1="' + m.top + '" x2="' + m.left + '" y2="' + (m.top + ph) + '" stroke="' + TEXT + '"/>');
    var xTitleY = m.top + ph + bottomLabels + 22;
    out.push('<text x="' + (m.left + pw / 2) + '" y="' + xTitleY + '" text-anchor="middle" font-weight="bold">' + esc(spec.xTitle) + "</text>");
    var yx = 18;
    var yy2 = m.top + ph / 2;
    out.push('<text x="' + yx + '" y="' + yy2 + '" text-anchor="middle" font-weight="bold" transform="rotate(-90 ' + yx + " " + yy2 + ')">' + esc(spec.yTitle) + "</text>");
    // The data.
    if (line) {
      series.forEach(function (s) {
        var c = colour(s.swatch);
        var path = "";
        var pen = false;
        s.data.forEach(function (v, i) {
          if (v === null || v === undefined) { pen = false; return; }
          var px = m.left + band * (i + 0.5);
          var py = m.top + ph - val(v);
          path += (pen ? " L" : " M") + px.toFixed(1) + " " + py.toFixed(1);
          pen = true;
        });
        if (path) {
          out.push('<path d="' + path.trim() + '" fill="none" stroke="' + c + '" stroke-width="2"' + (s.dash ? ' stroke-dasharray="6 4"' : "") + "/>");
        }
        s.data.forEach(function (v, i) {
          if (v === null || v === undefined) return;
          var px = m.left + band * (i + 0.5);
          var py = m.top + ph - val(v);
          var hollow = spec.thin[i];
          out.push('<circle cx="' + px.toFixed(1) + '" cy="' + py.toFixed(1) + '" r="' + (n > 60 ? 2 : 3.5) + '" fill="' + (hollow ? "#ffffff" : c) + '" stroke="' + c + '" stroke-width="1.5"><title>' + esc(s.label + " " + spec.labels[i] + ": " + v + (spec.percent ? " %" : "")) + "</title></circle>");
        });
      });
    } else {
      var groups = spec.stacked ? 1 : series.length;
      var inner = band * 0.8;
      var barW = inner / groups;
      var offsets = new Array(n).fill(0);
      series.forEach(function (s, si) {
        var c = colour(s.swatch);
        s.data.forEach(function (v, i) {
          if (!v) return;
          var start = band * i + band * 0.1 + (spec.stacked ? 0 : barW * si);
          var len = val(v);
          var base = spec.stacked ? val(offsets[i]) : 0;
          var r = horizontal
            ? { x: m.left + base, y: m.top + start, w: len, h: barW }
            : { x: m.left + start, y: m.top + ph - base - len, w: barW, h: len };
          out.push('<rect x="' + r.x.toFixed(1) + '" y="' + r.y.toFixed(1) + '" width="' + r.w.toFixed(1) + '" height="' + r.h.toFixed(1) + '" fill="' + c + '"' + (spec.stacked ? ' stroke="#ffffff" stroke-width="0.5"' : "") + "><title>" + esc(s.label + " " + spec.labels[i] + ": " + v) + "</title></rect>");
          if (spec.stacked) offsets[i] += v;
        });
      });
    }
    // The legend.
    var legendTop = H - legendHeight + 6;
    legend.forEach(function (item) {
      var y = legendTop + item.row;
      var c = colour(item.s.swatch);
      if (line) {
        out.push('<line x1="' + item.x + '" y1="' + (y + 6) + '" x2="' + (item.x + 20) + '" y2="' + (y + 6) + '" stroke="' + c + '" stroke-width="2"' + (item.s.dash ? ' stroke-dasharray="6 4"' : "") + "/>");
      } else {
        out.push('<rect x="' + item.x + '" y="' + y + '" width="16" height="12" fill="' + c + '"/>');
      }
      out.push('<text x="' + (item.x + 26) + '" y="' + (y + 10) + '">' + esc(item.s.label) + "</text>");
    });
    out.push("</svg>");
    return out.join("\n");
  }

  function save(blob, name) {
    var url = URL.createObjectURL(blob);
    var a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  var specs = {};
  var charts = {};
  data.charts.forEach(function (spec) {
    specs[spec.key] = spec;
    charts[spec.key] = draw(spec);
  });

  var query = new URLSearchParams(window.location.search);
  var stem = "protest-events-" + (query.get("interval") || "year") + "-";
  document.querySelectorAll(".js-download").forEach(function (button) {
    var key = button.dataset.chart;
    if (!charts[key]) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      if (button.dataset.format === "png") {
        charts[key].canvas.toBlob(function (blob) { save(blob, stem + key + ".png"); }, "image/png");
      } else {
        save(new Blob([svgOf(specs[key])], { type: "image/svg+xml" }), stem + key + ".svg");
      }
    });
  });
  document.body.dataset.charts = "ready";
})();
