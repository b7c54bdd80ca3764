"""Small inline SVG trend charts, drawn on the server: no JavaScript, every text node escaped."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from patients.clinical import Range

WIDTH, HEIGHT = 420, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 28, 34
FLAG_COLORS = {"LL": "#dc3545", "HH": "#dc3545", "L": "#d39e00", "H": "#d39e00", "N": "#198754"}
NO_RANGE_COLOR = "#6c757d"


@dataclass(frozen=True)
class Point:
    at: datetime.datetime
    value: float
    flag: str


def _bounds(values: list[float], band: Range | None) -> tuple[float, float]:
    """The value axis spans the data and the finite edges of the reference band, with a margin."""
    band_edges = (band.low, band.high) if band else ()
    edges = [*values, *(edge for edge in band_edges if edge is not None)]
    low, high = min(edges), max(edges)
    margin = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    return low - margin, high + margin


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def trend_svg(
    *, title: str, unit: str, points: list[Point], band: Range | None, decimals: int = 1, description: str = ""
) -> SafeString:
    """A line chart of one analyte over time, the reference band shaded, each point colored by its flag."""
    if len(points) < 2:
        raise ValueError("A trend needs at least two values.")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    y_min, y_max = _bounds([p.value for p in points], band)
    t_min, t_max = points[0].at.timestamp(), points[-1].at.timestamp()
    t_span = (t_max - t_min) or 1.0

    def x(point: Point) -> float:
        if t_max == t_min:  # every value taken at one time: spread them evenly
            return LEFT + plot_w * points.index(point) / (len(points) - 1)
        return LEFT + plot_w * (point.at.timestamp() - t_min) / t_span

    def y(value: float) -> float:
        return TOP + plot_h * (y_max - value) / (y_max - y_min)

    label = escape(f"{title} ({unit})")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend-chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="Trend of {label}">',
        f"<title>Trend of {label}</title>",
    ]
    if description:
        parts.append(f"<desc>{escape(description)}</desc>")
    parts.append(f'<text x="{LEFT}" y="16" class="trend-title">{label}</text>')
    if band is not None and (band.low is not None or band.high is not None):
        top = y(band.high) if band.high is not None else TOP
        bottom = y(band.low) if band.low is not None else TOP + plot_h
        parts.append(
            f'<rect class="trend-band" x="{LEFT}" y="{top:.1f}" width="{plot_w}" height="{max(bottom - top, 0):.1f}">'
            "<title>Reference range</title></rect>"
        )
    parts.append(
        f'<line class="trend-axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}"/>'
        f'<line class="trend-axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>'
    )
    for tick in (y_min, (y_min + y_max) / 2, y_max):
        parts.append(
            f'<text class="trend-tick" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">'
            f"{_number(tick, decimals)}</text>"
        )
    first, last = points[0].at, points[-1].at
    parts.append(
        f'<text class="trend-tick" x="{LEFT}" y="{HEIGHT - 12}" text-anchor="start">{first:%Y-%m-%d}</text>'
        f'<text class="trend-tick" x="{LEFT + plot_w}" y="{HEIGHT - 12}" text-anchor="end">{last:%Y-%m-%d}</text>'
    )
    path = " ".join(f"{x(p):.1f},{y(p.value):.1f}" for p in points)
    parts.append(f'<polyline class="trend-line" points="{path}"/>')
    for point in points:
        color = FLAG_COLORS.get(point.flag, NO_RANGE_COLOR)
        tooltip = escape(f"{point.at:%Y-%m-%d %H:%M}: {_number(point.value, decimals)} {unit} {point.flag}".strip())
        parts.append(
            f'<circle cx="{x(point):.1f}" cy="{y(point.value):.1f}" r="4" fill="{color}" '
            f'data-flag="{escape(point.flag)}"><title>{tooltip}</title></circle>'
        )
    parts.append("</svg>")
    # Safe: numbers and dates are formatted here, and every other text went through escape() above.
    return mark_safe("".join(parts))  # noqa: S308
