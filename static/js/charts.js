// Draws each plotly chart of the page from the figure the server wrote beside its box (a JSON data element,
// clinic/charts.py), in the house template the page carries once (#plotly-template). Loaded with defer after
// plotly.min.js: it runs once the page is parsed, in order after plotly, so neither holds up the page's first
// paint and no inline script is needed.
(function () {
  "use strict";
  var shared = document.getElementById("plotly-template");
  var template = shared ? JSON.parse(shared.textContent) : undefined;
  document.querySelectorAll("script[data-plotly-figure]").forEach(function (source) {
    var box = document.getElementById(source.dataset.plotlyFigure);
    if (!box) {
      return;
    }
    var figure = JSON.parse(source.textContent);
    if (template && !figure.layout.template) {
      figure.layout.template = template;
    }
    Plotly.newPlot(box, figure.data, figure.layout, figure.config);
  });
})();
