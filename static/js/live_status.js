// Progress shown without reloading the page (a timed reload fails WCAG 2.2.1): polls the JSON address in the
// element's data-live-status every few seconds and writes what it says into that element, an aria-live region, so
// screen readers announce it. Once the work has finished it offers a link to the page again, now with the results.
// Our own few lines, no library; text goes in through textContent only, never as HTML.
(function () {
  "use strict";
  var region = document.querySelector("[data-live-status]");
  if (!region) {
    return;
  }
  var every = Number(region.dataset.pollSeconds || "5") * 1000;

  function describe(data) {
    if (data.message) { return data.message; }
    return data.status_display + " (" + Math.round(data.progress * 100) + " % done).";
  }

  function finish(text) {
    var link = document.createElement("a");
    link.href = window.location.href;
    link.textContent = region.dataset.doneLabel || "Show the results";
    region.replaceChildren(text + " ", link);
    document.querySelectorAll("[data-live-hide-when-done]").forEach(function (element) { element.hidden = true; });
  }

  function poll() {
    fetch(region.dataset.liveStatus, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        if (data.finished) {
          finish(describe(data));
          return;
        }
        region.textContent = describe(data);
        window.setTimeout(poll, every);
      })
      .catch(function () {
        region.textContent = "Live updates stopped; reload the page to see the latest progress.";
      });
  }

  window.setTimeout(poll, every);
})();
