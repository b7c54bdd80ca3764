// Draws each plotly chart of the page from the figure the server wrote beside its box (a JSON data element,
// clinic/charts.py), in the house template the page carries once (#plotly-template). Loaded with defer after
// plotly.min.js: it runs once the page is parsed, in order after plotly, so neither holds up the page's first
// paint and no inline script is needed.
(function () {
  "use strict";

  // A picker's button that shows one run of traces names it ({"visible": {"traces": [start, stop]}}, stop
  // excluded; clinic/charts.py TRACES): its list of every trace's visibility is built here, and the traces start as
  // the menu's active button shows them.
  function expandPickers(figure) {
    (figure.layout.updatemenus || []).forEach(function (menu) {
      (menu.buttons || []).forEach(function (button, index) {
        var change = button.args && button.args[0];
        var run = change && change.visible && change.visible.traces;
        if (!Array.isArray(run)) {
          return;
        }
        change.visible = figure.data.map(function (trace, i) {
          return i >= run[0] && i < run[1];
        });
        if (index === (menu.active || 0)) {
          figure.data.forEach(function (trace, i) {
            trace.visible = change.visible[i];
          });
        }
      });
    });
  }

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
    expandPickers(figure);
    Plotly.newPlot(box, figure.data, figure.layout, figure.config);
  });
})();
