// Live progress of a prediction batch: polls the batch's JSON endpoint every 2 s until it has finished.
// Our own few lines, no library. Text goes in through textContent only, never as HTML.
(function () {
  "use strict";
  var section = document.getElementById("batch-progress");
  if (!section || section.dataset.finished === "true") {
    return;
  }
  var BADGES = {
    queued: "text-bg-secondary", running: "text-bg-info", succeeded: "text-bg-success",
    partial: "text-bg-warning", failed: "text-bg-danger"
  };
  var field = function (name) { return document.querySelector('[data-field="' + name + '"]'); };

  function duration(seconds) {
    if (seconds === null) { return "—"; }
    return seconds < 120 ? seconds.toFixed(1) + " s" : (seconds / 60).toFixed(1) + " min";
  }

  function show(data) {
    var percent = Math.round(data.progress * 100);
    var bar = field("bar");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.firstElementChild.style.width = percent + "%";
    bar.firstElementChild.textContent = percent + " %";
    ["done", "total", "failed", "chunks_finished", "chunks_total"].forEach(function (name) {
      field(name).textContent = String(data[name]);
    });
    var status = field("status_display");
    status.textContent = data.status_display;
    status.className = "badge " + (BADGES[data.status] || "text-bg-secondary");
    field("seconds").textContent = duration(data.seconds);
    var list = field("failed_chunks");
    list.replaceChildren.apply(list, data.failed_chunks.map(function (chunk) {
      var item = document.createElement("li");
      var name = document.createElement("strong");
      var error = document.createElement("span");
      item.className = "list-group-item";
      name.textContent = "Chunk " + chunk.index;
      error.className = "text-danger";
      error.textContent = chunk.error;
      item.append(name, ": ", error);
      return item;
    }));
    list.closest("section").hidden = data.failed_chunks.length === 0;
    if (data.finished) {
      bar.firstElementChild.classList.remove("progress-bar-striped", "progress-bar-animated");
      field("live").hidden = true;
    }
  }

  function poll() {
    fetch(section.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        show(data);
        if (!data.finished) { window.setTimeout(poll, 2000); }
      })
      .catch(function () {
        field("live").textContent = "Live updates stopped; reload the page to see the latest progress.";
      });
  }

  window.setTimeout(poll, 2000);
})();
