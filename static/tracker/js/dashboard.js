// The dashboard's charts, drawn with Chart.js from the numbers the server put in the page
// (the same numbers as the tables and the CSV downloads next to each chart).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var rootStyle = getComputedStyle(document.documentElement);
  function colour(kind, slug) {
    return rootStyle.getPropertyValue("--" + kind + "-" + slug).trim() || "#555";
  }
  Chart.defaults.font.family = rootStyle.fontFamily;
  Chart.defaults.color = "#1b1f23";
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.animation = false;
  var years = data.years.map(String);

  function stacked(id, kind, series) {
    new Chart(document.getElementById(id), {
      type: "bar",
      data: {
        labels: years,
        datasets: series.map(function (s) {
          return {
            label: s.label,
            data: s.counts,
            backgroundColor: colour(kind, s.slug),
            borderColor: "#333",
            borderWidth: 0.5,
          };
        }),
      },
      options: {
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }
  stacked("chart-grievances", "grievance", data.grievances);
  stacked("chart-police", "police", data.responses);

  new Chart(document.getElementById("chart-arrests"), {
    type: "bar",
    data: {
      labels: years,
      datasets: [
        {
          label: data.labels.arrests,
          data: data.totals.map(function (r) { return r.arrests; }),
          backgroundColor: "#8c1d04",
        },
      ],
    },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
  });

  new Chart(document.getElementById("chart-share"), {
    type: "line",
    data: {
      labels: years,
      datasets: [
        {
          label: data.labels.shareArrests,
          data: data.totals.map(function (r) { return r.share_with_arrests; }),
          borderColor: "#0b5cad",
          backgroundColor: "#0b5cad",
        },
        {
          label: data.labels.shareForce,
          data: data.totals.map(function (r) { return r.share_with_force; }),
          borderColor: "#a4161a",
          backgroundColor: "#a4161a",
          borderDash: [6, 4],
        },
      ],
    },
    options: {
      scales: { y: { beginAtZero: true, max: 100, ticks: { callback: function (v) { return v + " %"; } } } },
      plugins: { legend: { position: "bottom", labels: { usePointStyle: true } } },
    },
  });

  new Chart(document.getElementById("chart-cities"), {
    type: "bar",
    data: {
      labels: data.cities.map(function (c) { return c.name; }),
      datasets: [
        {
          label: data.labels.events,
          data: data.cities.map(function (c) { return c.events; }),
          backgroundColor: "#4e79a7",
        },
      ],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true } } },
  });
  document.body.dataset.charts = "ready";
})();
