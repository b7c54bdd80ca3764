"""Charts for the dashboards: plotly figures rendered as HTML fragments, each with the data behind it as CSV.

plotly's JavaScript comes from the installed wheel (`plotly/package_data/plotly.min.js`, served as the static
file `plotly/plotly.min.js`, see STATICFILES_DIRS); nothing is fetched from a CDN. Pages that show plotly charts
include `includes/plotly.html` (both scripts deferred: the 4.8 MB bundle never holds up the page's first paint);
each chart is its figure as JSON data, drawn by static/js/charts.js once the page is parsed. No inline script runs.
A page that shows only server-drawn charts (`SvgChart`: the patient page) loads no plotly at all.
Every chart has a title and axis titles in words a clinician uses, and its aggregated data can be downloaded
as CSV with `?download=<key>` on the same page. Aggregates are computed on the server: a chart's data never
holds names, MRNs or other identifiers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify
from plotly.io.json import to_json_plotly

from clinic.csvutils import csv_response
from mltraining.ml.labels import HEALTHY, LABELS

PALETTE = ["#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#6c757d", "#d63384"]
RISK_COLORS = {"low": "#198754", "moderate": "#fd7e14", "high": "#dc3545"}
# One colour per model class on every chart (dashboards of patients and of models alike).
CLASS_COLORS = {
    HEALTHY: "#6c757d",
    **{key: color for (key, _, _), color in zip(LABELS, [*PALETTE[:6], PALETTE[7]], strict=True)},
}
# As django.utils.html.json_script: no text in a figure can close its <script> element or open another.
_JSON_SCRIPT_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}
_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
# A picker's button that shows one run of traces says so as {"visible": {TRACES: [start, stop]}} (indexes, stop
# excluded), not as a list of every trace's visibility, which grows with traces x buttons (12 KB on the population
# dashboard): static/js/charts.js builds the list in the browser and shows the active button's traces.
TRACES = "traces"
# The trace types and layout parts the product's charts draw: the house template sent to the browser keeps only
# their defaults (the full plotly_white template also styles 3D scenes, maps, polar and ternary axes, ~4 KB).
_TEMPLATE_TRACES = {"bar", "box", "heatmap", "scatter"}
_TEMPLATE_LAYOUT_UNUSED = {"geo", "polar", "scene", "ternary"}


@dataclass
class Chart:
    key: str  # slug: the DOM id is chart-<key>, the CSV download is ?download=<key>
    title: str
    figure: go.Figure | Figure | dict[str, Any]  # a plotly figure, or the same as plain data where building one is slow
    columns: Sequence[str]  # header of the CSV
    rows: Sequence[Sequence[Any]]  # the aggregated data drawn, one row per point or bar
    caption: str = ""
    height: int = 360
    meta: dict[str, Any] = field(default_factory=dict)

    def plotly_figure(self) -> dict[str, Any]:
        """The figure as plotly.js draws it: the chart's own figure in the house style, with its title.

        The style goes in as plain data: plotly validates every property it is given, which for the template
        alone cost ~60 ms per chart; the figure itself was validated as it was built.
        """
        figure = dict(self.figure) if isinstance(self.figure, dict) else self.figure.to_dict()
        figure["layout"] = _merged(figure.get("layout", {}), {
            "title": {"text": self.title, "x": 0, "xanchor": "left", "font": {"size": 15}},
            "template": _template(),
            "height": self.height,
            "margin": {"l": 60, "r": 20, "t": 50, "b": 55},
            "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12},
            "colorway": PALETTE,
        })  # fmt: skip
        return figure

    @property
    def html(self) -> SafeString:
        """The chart's box and its figure as JSON data beside it, which static/js/charts.js hands to plotly.js.

        The house template (7 KB) is left out: the page carries it once (`plotly_template_json`), not once a chart.
        """
        figure = self.plotly_figure()
        layout = {key: value for key, value in figure["layout"].items() if key != "template"}
        data = to_json_plotly({"data": figure.get("data", []), "layout": layout, "config": _CONFIG})
        div_id = f"chart-{self.key}"
        return format_html(
            '<div style="height:{}px; width:100%;"><div id="{}" class="plotly-graph-div" style="height:100%; '
            'width:100%;"></div></div><script type="application/json" data-plotly-figure="{}">{}</script>',
            self.height, div_id, div_id, mark_safe(data.translate(_JSON_SCRIPT_ESCAPES)),  # noqa: S308 (escaped)
        )  # fmt: skip


@dataclass
class SvgChart:
    """A chart drawn on the server as inline SVG, shown and downloaded as a `Chart` is: a page that shows only
    these loads no chart library (the patient page's radar, see patients/charts.py)."""

    key: str
    title: str
    svg: SafeString
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""
    table: Sequence[Sequence[str]] = ()  # the numbers as the chart shows them, one row a point: its text alternative

    @property
    def html(self) -> SafeString:
        return self.svg


@functools.cache
def _template() -> dict[str, Any]:
    """plotly_white, less the defaults of trace types and layout parts no chart here draws."""
    template = pio.templates["plotly_white"].to_plotly_json()
    return {
        "data": {kind: value for kind, value in template["data"].items() if kind in _TEMPLATE_TRACES},
        "layout": {key: value for key, value in template["layout"].items() if key not in _TEMPLATE_LAYOUT_UNUSED},
    }


def plotly_template_json() -> SafeString:
    """The house template as a JSON data element, once per page: static/js/charts.js gives it to every chart."""
    data = to_json_plotly(_template()).translate(_JSON_SCRIPT_ESCAPES)
    return format_html('<script type="application/json" id="plotly-template">{}</script>', mark_safe(data))  # noqa: S308


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` updated by `changes`, nested dictionaries key by key (as plotly's update_layout does)."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


class Figure:
    """A plotly figure as plain data, built with the few calls the charts make on `go.Figure` (`add_bar`,
    `update_layout`, ...; nested properties as dictionaries, not plotly's `marker_color=` spelling), but without
    plotly checking every property as it is set.

    That checking was most of the cost of a clinic's population dashboard, which a worker computes for every clinic
    each night (bench/clinic_network.py). What it caught, a misspelt property or a value of the wrong kind, is
    caught in the tests instead: they give every chart of the dashboards to plotly (`go.Figure(chart.figure)`).
    """

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}

    def add_trace(self, kind: str, **properties: Any) -> Figure:
        self.data.append({**properties, "type": kind})
        return self

    def add_bar(self, **properties: Any) -> Figure:
        return self.add_trace("bar", **properties)

    def add_scatter(self, **properties: Any) -> Figure:
        return self.add_trace("scatter", **properties)

    def add_heatmap(self, **properties: Any) -> Figure:
        return self.add_trace("heatmap", **properties)

    def add_annotation(self, **properties: Any) -> Figure:
        self.layout.setdefault("annotations", []).append(properties)
        return self

    def update_layout(self, **properties: Any) -> Figure:
        self.layout = _merged(self.layout, properties)
        return self

    def update_xaxes(self, **properties: Any) -> Figure:
        return self._update_axes("x", properties)

    def update_yaxes(self, **properties: Any) -> Figure:
        return self._update_axes("y", properties)

    def _update_axes(self, letter: str, properties: dict[str, Any]) -> Figure:
        """The first axis of that letter and every other the layout has so far (xaxis2, ...), as plotly does."""
        others = [name for name in self.layout if re.fullmatch(rf"{letter}axis\d+", name)]
        return self.update_layout(**dict.fromkeys([f"{letter}axis", *others], properties))

    def to_dict(self) -> dict[str, Any]:
        return {"data": list(self.data), "layout": dict(self.layout)}


@functools.cache
def colorscale(name: str) -> list[list[Any]]:
    """A named plotly colour scale ("RdBu_r") as the list of [position, colour] that plotly.js draws."""
    return go.Heatmap(colorscale=name).to_plotly_json()["colorscale"]


def axes(figure: go.Figure | Figure, x: str, y: str) -> go.Figure | Figure:
    """Name both axes (every chart has them in words)."""
    figure.update_xaxes(title={"text": x})
    figure.update_yaxes(title={"text": y})
    return figure


def no_data(figure: go.Figure | Figure, message: str, *, hide_axes: bool = False) -> go.Figure | Figure:
    """Write `message` across an empty chart (and hide its empty axes if asked)."""
    figure.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                          font={"size": 14, "color": "#6c757d"})  # fmt: skip
    if hide_axes:
        figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
        figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    return figure


def download(request: HttpRequest, charts: Sequence[Chart | SvgChart], prefix: str) -> HttpResponse | None:
    """The CSV of the chart named by ?download=<key>, or None when the page itself is asked for."""
    key = request.GET.get("download")
    if not key:
        return None
    for chart in charts:
        if chart.key == key:
            return csv_response(f"{slugify(prefix)}-{chart.key}.csv", list(chart.columns), chart.rows)
    return HttpResponse(f"No chart named {key!r} on this page.", status=404, content_type="text/plain")
