"""The patient's own pages: their latest results in plain language, and the printable results report that the
patient and the clinic's staff print. Thin views over `patients.selectors`; the words come from
`patients.plain_language`."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from clinic import roles
from patients import selectors
from patients.catalog_data import recency_days, unit_label
from patients.clinical import Range, age_on, shown_value
from patients.models import Observation, Patient, VerificationStatus
from patients.plain_language import FLAG_WORDS, PANEL_NAMES, meaning, plain
from patients.selectors import CRITICAL
from recommendations import selectors as advice_selectors

TRACKER_UNITS = {"steps": "steps a day", "resting_heart_rate": "beats a minute", "sleep_duration": "hours a night"}
TRACKER_DECIMALS = {"steps": 0, "resting_heart_rate": 0}
CONDITION_WORDS = {
    VerificationStatus.CONFIRMED: "confirmed by your doctor",
    VerificationStatus.PROVISIONAL: "not yet confirmed",
    VerificationStatus.REFUTED: "ruled out",
}
TONES = {"LL": "danger", "HH": "danger", "L": "warning", "H": "warning", "N": "success", "": "secondary"}


@dataclass(frozen=True)
class PlainResult:
    code: str
    name: str  # the plain name
    lab_name: str  # the catalog's, as lab reports print it
    value: str  # "5.8 mmol/L"
    flag: str
    flag_words: str
    tone: str  # a Bootstrap colour: danger, warning, success, secondary
    usual_range: str
    taken: datetime.datetime
    measures: str
    meaning: str
    seen_by_doctor: datetime.datetime | None  # when a doctor acknowledged a result far outside the range
    out_of_date_days: int  # of a result older than its analyte's recency window ("more than 365 days old"), else 0


def _usual_range(rng: Range | None, unit: str) -> str:
    if rng is None or (rng.low is None and rng.high is None):
        return "No usual range for adults"
    if rng.low is None:
        return f"{rng.high:g} {unit} or less"
    if rng.high is None:
        return f"{rng.low:g} {unit} or more"
    return f"{rng.low:g} to {rng.high:g} {unit}"


def plain_result(patient: Patient, observation: Observation) -> PlainResult:
    analyte, flag = observation.analyte, observation.interpretation
    rng = selectors.reference_range_for(patient=patient, analyte_code=analyte.code)
    limits = [analyte.critical_low, analyte.critical_high, *((rng.low, rng.high) if rng else ())]
    converted = observation.entered_unit != analyte.unit
    unit = unit_label(analyte.code, analyte.unit)
    days = recency_days(analyte.code)
    words = plain(analyte.code)
    return PlainResult(
        code=analyte.code,
        name=words.name,
        lab_name=analyte.name,
        value=f"{shown_value(observation.value, decimals=analyte.decimals, converted=converted, limits=limits)} {unit}",
        flag=flag,
        flag_words=FLAG_WORDS[flag],
        tone=TONES[flag],
        usual_range=_usual_range(rng, unit),
        taken=observation.effective_at,
        measures=words.measures,
        meaning=meaning(analyte.code, flag),
        seen_by_doctor=observation.acknowledged_at if flag in CRITICAL else None,
        out_of_date_days=days if timezone.now() - observation.effective_at > datetime.timedelta(days=days) else 0,
    )


def plain_panels(patient: Patient) -> list[dict]:
    """The patient's latest measured results (tests and vital signs; a tracker's daily values are not results),
    grouped as the staff's page groups them, under plain panel names."""
    return [
        {"key": key, "name": PANEL_NAMES[key], "rows": [plain_result(patient, o) for o in observations]}
        for key, _label, observations in selectors.latest_by_panel(patient=patient)
        if key != "wearable"
    ]


def _tracker_averages(patient: Patient) -> list[dict[str, str]]:
    averages = selectors.wearable_averages(series=selectors.observation_series(patient=patient))
    return [
        {"name": plain(code).name, "value": f"{mean:,.{TRACKER_DECIMALS.get(code, 1)}f} {TRACKER_UNITS.get(code, '')}"}
        for code, mean in averages.items()
        if mean is not None
    ]


def results_page(request: HttpRequest, patient: Patient) -> HttpResponse:
    """The patient's own results page (`patient` already read and audited for the patient's account)."""
    panels = plain_panels(patient)
    context = {
        "patient": patient,
        "panels": panels,
        "urgent": [row for panel in panels for row in panel["rows"] if row.flag in CRITICAL],
        "advice": advice_selectors.approved_advice_for(user=request.user, patient=patient),
        "tracker": _tracker_averages(patient),
        "conditions": [
            (condition.display, CONDITION_WORDS[condition.verification_status])
            for condition in selectors.condition_list_for(user=request.user, patient=patient)
            if condition.verification_status != VerificationStatus.ENTERED_IN_ERROR
        ],
    }
    return render(request, "patients/my_results.html", context)


@login_required
def my_results(request: HttpRequest) -> HttpResponse:
    return results_page(request, selectors.own_patient_read(user=request.user))


def _report(request: HttpRequest, patient: Patient) -> HttpResponse:
    advice = advice_selectors.approved_advice_for(user=request.user, patient=patient)
    selectors.patient_report_read(user=request.user, patient=patient, advice_items=[item.pk for item in advice])
    context = {
        "patient": patient,
        "age": age_on(patient.birth_date, timezone.localdate()),
        "panels": plain_panels(patient),
        "advice": advice,
        "printed_at": timezone.localtime(),
        "for_patient": roles.is_patient(request.user),
    }
    return render(request, "patients/report.html", context)


@login_required
def my_report(request: HttpRequest) -> HttpResponse:
    return _report(request, selectors.own_patient_get(user=request.user))


@login_required
def patient_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The report printed from the patient's page by the clinic's staff (a patient's own account: its own)."""
    return _report(request, selectors.patient_get_for(user=request.user, pk=pk))
