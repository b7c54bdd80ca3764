"""A result as the pages show it: the value at its precision and unit, its flag in words, the patient's reference
range, its date, and a server-drawn trend. The patient page and the advice review page build their rows here."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import SafeString

from patients import selectors
from patients.catalog import catalog
from patients.catalog_data import RECENCY, recency_days, unit_label
from patients.charts import Point, trend_svg
from patients.clinical import Range, shown_value
from patients.models import Interpretation, Observation, Patient

BADGES = {
    "LL": "text-bg-danger", "HH": "text-bg-danger", "L": "text-bg-warning", "H": "text-bg-warning",
    "N": "text-bg-success", "": "text-bg-secondary",
}  # fmt: skip


@dataclass(frozen=True)
class ResultRow:
    name: str
    value: str
    entered: str  # the value as entered, when that was another unit
    flag: str
    flag_label: str
    badge: str
    reference: str
    effective_at: datetime.datetime
    chart: SafeString | None
    acknowledged: str = ""  # of a critical value: "Dr Grace Okafor, 29 Nov 2026 10:02: “patient called”"
    pk: int = 0  # the observation's, for its "Correct" link
    out_of_date: str = ""  # "older than 365 days: ADA 2025 ...", for a result too old to be judged as current
    later: str = ""  # of a critical value no longer the latest: "4.5 mmol/L (normal), 2 Mar 2026 09:30"


def range_text(rng: Range | None, unit: str) -> str:
    if rng is None or (rng.low is None and rng.high is None):
        return "no adult range"
    if rng.low is None:
        return f"≤ {rng.high:g} {unit}"
    if rng.high is None:
        return f"≥ {rng.low:g} {unit}"
    return f"{rng.low:g}–{rng.high:g} {unit}"


def result_row(patient: Patient, observation: Observation, chart: SafeString | None) -> ResultRow:
    analyte, flag = observation.analyte, observation.interpretation
    converted = observation.entered_unit != analyte.unit
    rng = selectors.reference_range_for(patient=patient, analyte_code=analyte.code)
    limits = [analyte.critical_low, analyte.critical_high, *((rng.low, rng.high) if rng else ())]
    value = shown_value(observation.value, decimals=analyte.decimals, converted=converted, limits=limits)
    entered = f"{observation.entered_value:g} {unit_label(analyte.code, observation.entered_unit)}"
    unit = unit_label(analyte.code, analyte.unit)
    return ResultRow(
        name=analyte.name,
        value=f"{value} {unit}",
        entered=entered if converted else "",
        flag=flag,
        flag_label=Interpretation(flag).label if flag else "no adult range",
        badge=BADGES[flag],
        reference=range_text(rng, unit),
        effective_at=observation.effective_at,
        chart=chart,
        acknowledged=_acknowledged(observation),
        pk=observation.pk,
        out_of_date=_out_of_date(analyte.code, observation.effective_at),
    )


def _out_of_date(code: str, effective_at: datetime.datetime) -> str:
    days = recency_days(code)
    if timezone.now() - effective_at <= datetime.timedelta(days=days):
        return ""
    why = RECENCY.get(code, (0, "older than the model's two-year window"))[1]
    return f"Out of date: older than {days} days ({why}); not judged as current. Repeat the test."


def _acknowledged(observation: Observation) -> str:
    if observation.acknowledged_at is None:
        return ""
    by = observation.acknowledged_by
    when = date_format(timezone.localtime(observation.acknowledged_at), "j M Y H:i")
    text = f"{by.get_full_name() or by.username}, {when}" if by else when
    return f"{text}: “{observation.acknowledgement_note}”" if observation.acknowledgement_note else text


def trend_chart(patient: Patient, code: str, series: list[tuple[datetime.datetime, float, str]]) -> SafeString | None:
    if len(series) < 2:
        return None
    spec = catalog().by_code[code]
    return trend_svg(
        title=spec.name,
        unit=unit_label(code, spec.unit),
        points=[Point(timezone.localtime(at), value, flag) for at, value, flag in series],
        band=selectors.reference_range_for(patient=patient, analyte_code=code),
        decimals=spec.decimals,
        description=f"{spec.name} of {patient.full_name} over time",
    )
