// The report's "Print" button opens the browser's print dialog (print.css lays the page out for paper).
// A file of its own, not an inline handler: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
})();
