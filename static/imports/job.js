// Polls an import job's status while it runs, then reloads the page for the full report.
(function () {
  "use strict";
  var root = document.getElementById("import-job");
  if (!root || root.dataset.finished === "true") {
    return;
  }
  var progress = document.getElementById("import-progress");

  function show(job) {
    root.querySelector('[data-field="status"]').textContent = job.status;
    root.querySelector('[data-field="message"]').textContent = job.message;
    root.querySelector('[data-field="progress"]').textContent =
      job.progress.done + " / " + job.progress.total;
    progress.max = job.progress.total || 1;
    progress.value = job.progress.done;
    Object.keys(job.counts).forEach(function (name) {
      var cell = root.querySelector('[data-count="' + name + '"]');
      if (cell) {
        cell.textContent = job.counts[name];
      }
    });
  }

  function poll() {
    fetch(root.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : Promise.reject(response.status);
      })
      .then(function (job) {
        show(job);
        if (job.status === "succeeded" || job.status === "failed" || job.status === "cancelled") {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 5000);
      });
  }
  window.setTimeout(poll, 500);
})();
