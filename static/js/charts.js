// Draws each plotly chart of the page from the figure the server wrote beside its box (a JSON data element,
// clinic/charts.py). Loaded with defer after plotly.min.js: it runs once the page is parsed, in order after
// plotly, so neither holds up the page's first paint and no inline script is needed.
(function () {
  "use strict";
  document.querySelectorAll("script[data-plotly-figure]").forEach(function (source) {
    var box = document.getElementById(source.dataset.plotlyFigure);
    if (!box) {
      return;
    }
    var figure = JSON.parse(source.textContent);
    Plotly.newPlot(box, figure.data, figure.layout, figure.config);
  });
})();
