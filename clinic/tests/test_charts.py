"""A chart's HTML: the figure plotly.js draws, in the house style, with nothing unescaped."""

import json
import re

import plotly.graph_objects as go
from django.template import engines
from django.templatetags.static import static

from clinic.charts import PALETTE, Chart


def _drawn(html: str) -> tuple[list, dict]:
    """The data and layout static/js/charts.js hands to Plotly.newPlot: the chart's JSON data element."""
    figure = json.loads(re.search(r'<script type="application/json" data-plotly-figure="[^"]+">(.*?)</script>', html,
                                  re.DOTALL).group(1))  # fmt: skip
    return figure["data"], figure["layout"]


def test_the_drawn_layout_keeps_the_charts_own_settings_under_the_house_style():
    figure = go.Figure(go.Bar(x=["a", "b"], y=[1, 2], name="counts"))
    figure.update_layout(legend={"orientation": "h"}, font={"color": "#333"}, xaxis_title="Month")

    data, layout = _drawn(Chart(key="k", title="Results per month", figure=figure, columns=[], rows=[]).html)

    assert data[0]["y"] == [1, 2]
    assert layout["title"]["text"] == "Results per month"
    assert layout["legend"] == {"orientation": "h"}
    assert layout["xaxis"]["title"]["text"] == "Month"
    assert layout["font"]["color"] == "#333"  # merged key by key, not replaced
    assert layout["font"]["size"] == 12
    assert layout["colorway"] == PALETTE
    assert "template" not in layout  # the page carries it once for all its charts


def test_the_page_carries_the_house_template_once_for_every_chart():
    html = engines["django"].from_string('{% include "includes/plotly.html" %}').render({})

    template = json.loads(re.search(r'<script type="application/json" id="plotly-template">(.*?)</script>', html,
                                    re.DOTALL).group(1))  # fmt: skip
    assert template["layout"]["plot_bgcolor"] == "white"  # plotly_white
    assert re.findall(r"<script src=[^>]*>", html) == [
        f'<script src="{static("plotly/plotly.min.js")}" defer>',  # the bundle, then the drawing: both deferred
        f'<script src="{static("js/charts.js")}" defer>',
    ]


def test_text_in_a_chart_cannot_close_its_script():
    figure = go.Figure(go.Bar(x=["</script><img src=x onerror=alert(1)>"], y=[1]))

    html = Chart(key="k", title="</script>", figure=figure, columns=[], rows=[]).html

    assert html.count("</script>") == 1  # the chart's own
    assert "<img" not in html


def test_a_figure_built_as_plain_data_is_what_plotly_builds_from_the_same_calls():
    """`Figure` skips plotly's checking, not its meaning: the same calls give plotly's own figure (less the default
    template plotly adds, which the page never sends): an axis named after update_layout added it is named too."""
    from clinic.charts import Figure, axes, colorscale, no_data

    def draw(figure):
        figure.add_bar(x=["Jan", "Feb"], y=[3, 4], name="n", marker={"color": PALETTE[0]})
        figure.add_heatmap(z=[[1, None]], colorscale=colorscale("RdBu_r") if isinstance(figure, Figure) else "RdBu_r")
        figure.update_layout(legend={"orientation": "h"}, xaxis={"tickformat": "%b"}, yaxis2={"overlaying": "y"})
        no_data(axes(figure, "Month", "Results"), "Nothing yet", hide_axes=True)
        figure.update_layout(legend={"y": -0.2})
        return figure.to_dict()

    plain, plotly = draw(Figure()), draw(go.Figure())
    plotly["layout"].pop("template")

    assert plain == plotly
    assert plain["layout"]["yaxis2"]["title"] == {"text": "Results"}
    assert plain["layout"]["legend"] == {"orientation": "h", "y": -0.2}
