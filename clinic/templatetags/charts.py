"""Template tags of the plotly charts (clinic/charts.py)."""

from django import template
from django.utils.safestring import SafeString

from clinic.charts import plotly_template_json

register = template.Library()


@register.simple_tag
def plotly_template() -> SafeString:
    """The charts' shared house template, written once in the page (includes/plotly.html)."""
    return plotly_template_json()
