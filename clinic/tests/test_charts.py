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
