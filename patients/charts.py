"""A patient's charts as inline SVG drawn on the server (the trends, the radar): no JavaScript, every text escaped."""

from __future__ import annotations

import datetime
import math
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


# --- the radar of a patient's latest key results -------------------------------------------------------------

RADAR_WIDTH, RADAR_HEIGHT = 560, 470
RADAR_CX, RADAR_CY, RADAR_R = 280, 222, 158
PATIENT_COLOR, FLAGGED_COLOR, MEDIAN_COLOR, BAND_COLOR = "#0d6efd", "#dc3545", "#6c757d", "#198754"


@dataclass(frozen=True)
class Spoke:
    """One lab of the radar: its value placed on the patient's own reference range (0 low limit, 1 high limit)."""

    label: str
    position: float
    text: str  # what hovering the point says: the value, its unit and the range
    flagged: bool
    median_position: float | None = None
    median_text: str = ""


def _radar_xy(index: int, count: int, radius: float) -> tuple[float, float]:
    """Spoke `index` of `count`, clockwise from the top, at `radius` from the centre."""
    angle = math.pi / 2 - 2 * math.pi * index / count
    return RADAR_CX + radius * math.cos(angle), RADAR_CY - radius * math.sin(angle)


def _ring_path(radii: list[float | None]) -> str:
    """A closed path through one point per spoke; a spoke without a value breaks the ring there."""
    points = [None if r is None else _radar_xy(i, len(radii), r) for i, r in enumerate(radii)]
    if all(point is not None for point in points):
        return "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points) + " Z"
    commands, drawing = [], False
    for point in [*points, points[0]]:
        if point is None:
            drawing = False
            continue
        commands.append(f"{'L' if drawing else 'M'}{point[0]:.1f},{point[1]:.1f}")
        drawing = True
    return " ".join(commands)


def _legend(with_medians: bool) -> list[str]:
    y = RADAR_HEIGHT - 14
    entries = [
        f'<rect x="0" y="{y - 9}" width="18" height="10" fill="{BAND_COLOR}" fill-opacity="0.15" '
        f'stroke="{BAND_COLOR}"/><text x="24" y="{y}">Reference range</text>',
        f'<line x1="0" y1="{y - 4}" x2="18" y2="{y - 4}" stroke="{PATIENT_COLOR}" stroke-width="2"/>'
        f'<circle cx="9" cy="{y - 4}" r="4" fill="{PATIENT_COLOR}"/><text x="24" y="{y}">This patient</text>',
        f'<circle cx="9" cy="{y - 4}" r="4" fill="{FLAGGED_COLOR}"/><text x="24" y="{y}">Flagged result</text>',
    ]
    if with_medians:
        entries.append(
            f'<line x1="0" y1="{y - 4}" x2="18" y2="{y - 4}" stroke="{MEDIAN_COLOR}" stroke-dasharray="4 3"/>'
            f'<text x="24" y="{y}">Clinic median</text>'
        )
    width = 132
    left = (RADAR_WIDTH - width * len(entries)) / 2
    return [
        f'<g class="radar-legend" transform="translate({left + i * width:.0f},0)">{entry}</g>'
        for i, entry in enumerate(entries)
    ]


def radar_svg(
    *, title: str, description: str, spokes: list[Spoke], radial_range: tuple[float, float], with_medians: bool
) -> SafeString:
    """The patient's latest key results on their reference ranges, against the clinic's medians when known.

    Positions beyond `radial_range` are drawn at its edge (each point's `data-position` is where it is drawn, its
    title the real value). No JavaScript: the patient page loads no chart library for it.
    """
    if len(spokes) < 3:
        raise ValueError("A radar needs at least three spokes.")
    low_edge, high_edge = radial_range
    count = len(spokes)

    def clipped(position: float) -> float:
        return min(max(position, low_edge), high_edge)

    def radius(position: float) -> float:
        return RADAR_R * (clipped(position) - low_edge) / (high_edge - low_edge)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="radar-chart" viewBox="0 0 {RADAR_WIDTH} {RADAR_HEIGHT}" '
        'role="img" aria-labelledby="radar-title radar-desc">',
        f'<title id="radar-title">{escape(title)}</title><desc id="radar-desc">{escape(description)}</desc>',
        f'<text x="0" y="18" class="radar-heading">{escape(title)}</text>',
        f'<circle class="radar-grid" cx="{RADAR_CX}" cy="{RADAR_CY}" r="{RADAR_R}"/>',
    ]
    for i, spoke in enumerate(spokes):
        x, y = _radar_xy(i, count, RADAR_R)
        parts.append(f'<line class="radar-grid" x1="{RADAR_CX}" y1="{RADAR_CY}" x2="{x:.1f}" y2="{y:.1f}"/>')
        lx, ly = _radar_xy(i, count, RADAR_R + 14)
        anchor = "middle" if abs(lx - RADAR_CX) < 4 else ("start" if lx > RADAR_CX else "end")
        parts.append(
            f'<text class="radar-label" x="{lx:.1f}" y="{ly + 4:.1f}" text-anchor="{anchor}">'
            f"{escape(spoke.label)}</text>"
        )
    low_ring, high_ring = radius(0.0), radius(1.0)
    parts.append(
        f'<path class="radar-band" fill-rule="evenodd" d="{_ring_path([high_ring] * count)} '
        f'{_ring_path([low_ring] * count)}"><title>Reference range</title></path>'
    )
    # The ring labels sit between the first two spokes, where they cover no lab's name.
    for position, name in ((0.0, "low limit"), (1.0, "high limit")):
        angle = math.pi / 2 - math.pi / count
        x, y = RADAR_CX + radius(position) * math.cos(angle), RADAR_CY - radius(position) * math.sin(angle)
        parts.append(f'<text class="radar-ring" x="{x + 3:.1f}" y="{y - 3:.1f}">{name}</text>')
    if with_medians:
        medians = [None if s.median_position is None else radius(s.median_position) for s in spokes]
        parts.append(f'<path class="radar-median" d="{_ring_path(medians)}"/>')
        for i, spoke in enumerate(spokes):
            if spoke.median_position is not None:
                x, y = _radar_xy(i, count, radius(spoke.median_position))
                parts.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{MEDIAN_COLOR}" '
                    f'data-median="{escape(spoke.label)}">'
                    f"<title>Clinic median · {escape(spoke.median_text)}</title></circle>"
                )
    parts.append(f'<path class="radar-patient" d="{_ring_path([radius(s.position) for s in spokes])}"/>')
    for i, spoke in enumerate(spokes):
        x, y = _radar_xy(i, count, radius(spoke.position))
        color = FLAGGED_COLOR if spoke.flagged else PATIENT_COLOR
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{color}" data-lab="{escape(spoke.label)}" '
            f'data-position="{clipped(spoke.position):g}"><title>{escape(spoke.text)}</title></circle>'
        )
    parts.extend(_legend(with_medians))
    parts.append("</svg>")
    # Safe: numbers are formatted here, and every text went through escape() above.
    return mark_safe("".join(parts))  # noqa: S308
