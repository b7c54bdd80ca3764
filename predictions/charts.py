"""The explanation of one prediction as an inline SVG bar chart, drawn on the server: no JavaScript, every
text node escaped (feature labels and values come from stored JSON, so they are treated as untrusted).

One row per contribution, largest first as stored: the feature, its value with unit and where the value lies
against the patient's reference range, and a bar from a centre line. A bar to the right pushed the model
towards the predicted class, a bar to the left away from it; its length is relative to the largest one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from patients.catalog_data import unit_label

WIDTH = 640
LABEL_W = 270  # feature label and value, right-aligned against the bars
RIGHT = 16
TOP = 44  # the title and the direction legend
ROW_H = 34
BOTTOM = 28  # the axis label
TOWARDS_COLOR = "#c2410c"
AWAY_COLOR = "#1d4ed8"
MAX_LABEL = 40


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def value_text(item: Mapping[str, Any]) -> str:
    """The feature's value as a clinician reads it: "6.01 % · above range", "yes", "not recorded", or for a value
    too old for the model, when it was last measured ("none in the model's 2 years; last 2023-11-02")."""
    value = item.get("value")
    if value is None:
        text = item.get("absent") or "not recorded"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, int | float):
        unit = item.get("unit") or ""
        unit = unit_label(item.get("analyte") or "", unit)
        text = f"{_number(value)} {unit}".strip()
    else:
        text = str(value).replace("_", " ")
    reference = item.get("reference") or ""
    return f"{text} · {reference}" if reference else text


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def contributions_svg(*, contributions: Sequence[Mapping[str, Any]], predicted: str, method: str) -> SafeString:
    """Horizontal bars of the top contributions towards (right) or away from (left) the predicted class."""
    if not contributions:
        raise ValueError("An explanation chart needs at least one contribution.")
    plot_w = WIDTH - LABEL_W - RIGHT
    centre = LABEL_W + plot_w / 2
    height = TOP + ROW_H * len(contributions) + BOTTOM
    largest = max(abs(float(item.get("contribution") or 0)) for item in contributions) or 1.0
    target = escape(predicted)
    title = f"What moved the model towards or away from “{target}”"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="explanation-chart" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-label="{title}" font-family="system-ui, sans-serif" font-size="12">',
        f"<title>{title}</title>",
        "<desc>"
        + escape(
            "; ".join(
                f"{item.get('label', '')} {value_text(item)}: {item.get('direction', '')} {predicted}"
                for item in contributions
            )
            + f". {method}."
        )
        + "</desc>",
        f'<text x="0" y="16" font-weight="600" font-size="13" fill="currentColor">{title}</text>',
        f'<text x="{centre - 8:.1f}" y="36" text-anchor="end" fill="{AWAY_COLOR}">← away from it</text>',
        f'<text x="{centre + 8:.1f}" y="36" text-anchor="start" fill="{TOWARDS_COLOR}">towards it →</text>',
    ]
    for row, item in enumerate(contributions):
        size = float(item.get("contribution") or 0)
        y = TOP + row * ROW_H
        length = (plot_w / 2 - 4) * abs(size) / largest
        x = centre if size >= 0 else centre - length
        color = TOWARDS_COLOR if size >= 0 else AWAY_COLOR
        label = str(item.get("label") or item.get("feature") or "")
        value = escape(value_text(item))
        tooltip = escape(f"{item.get('label', '')}: {value_text(item)}; contribution {size:+.3f}")
        parts.append(
            f'<g class="explanation-row"><title>{tooltip}</title>'
            f'<text x="{LABEL_W - 10}" y="{y + 13}" text-anchor="end" fill="currentColor">{escape(_short(label))}'
            "</text>"
            f'<text x="{LABEL_W - 10}" y="{y + 27}" text-anchor="end" fill="#6c757d" font-size="11">{value}</text>'
            f'<rect x="{x:.1f}" y="{y + 6}" width="{max(length, 1):.1f}" height="{ROW_H - 14}" fill="{color}" '
            f'rx="2" data-direction="{"towards" if size >= 0 else "away"}"/></g>'
        )
    axis_y = TOP + ROW_H * len(contributions)
    parts.append(
        f'<line x1="{centre:.1f}" y1="{TOP - 2}" x2="{centre:.1f}" y2="{axis_y}" stroke="#6c757d" stroke-width="1"/>'
        f'<line x1="{LABEL_W}" y1="{axis_y}" x2="{WIDTH - RIGHT}" y2="{axis_y}" stroke="#dee2e6" stroke-width="1"/>'
        f'<text x="{WIDTH - RIGHT}" y="{axis_y + 18}" text-anchor="end" fill="#6c757d" font-size="11">'
        "Contribution to the model's score (bar length relative to the largest)</text>"
    )
    parts.append("</svg>")
    # Safe: numbers are formatted here, and every other text went through escape() above.
    return mark_safe("".join(parts))  # noqa: S308
