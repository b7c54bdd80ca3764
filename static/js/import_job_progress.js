// Live progress of an import job: polls the job's JSON endpoint every 2 s; once the job has finished, loads the
// page again, which then shows the summary (patient data is rendered by the server, never sent to this script).
// Our own few lines, no library. Text goes in through textContent only, never as HTML.
(function () {
  "use strict";
  var section = document.getElementById("job-progress");
  if (!section || section.dataset.finished === "true") {
    return;
  }
  var BADGES = {
    queued: "text-bg-secondary", running: "text-bg-info", succeeded: "text-bg-success", failed: "text-bg-danger"
  };
  var field = function (name) { return section.querySelector('[data-field="' + name + '"]'); };

  function show(data) {
    var percent = Math.round(data.progress * 100);
    var bar = field("bar");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.firstElementChild.style.width = percent + "%";
    bar.firstElementChild.textContent = percent + " %";
    ["files_done", "files_total", "resources_done", "step"].forEach(function (name) {
      field(name).textContent = String(data[name]);
    });
    var status = field("status_display");
    status.textContent = data.status_display;
    status.className = "badge " + (BADGES[data.status] || "text-bg-secondary");
  }

  function poll() {
    fetch(section.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        show(data);
        if (data.finished) { window.location.reload(); } else { window.setTimeout(poll, 2000); }
      })
      .catch(function () {
        field("live").textContent = "Live updates stopped; reload the page to see the latest progress.";
      });
  }

  window.setTimeout(poll, 2000);
})();
