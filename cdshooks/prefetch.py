"""The FHIR data an EHR prefetched for a patient not registered here, judged without storing it.

The resources go through the FHIR import's own reader (`patients.fhir.importer.collect`): the same LOINC codes,
unit conversions to canonical units and plausibility limits as an import. Then the guideline rules judge each
analyte's latest value, as they judge a registered patient's record, and the clinic's active model scores the
row where its required inputs are there (and its provenance allows it to score this clinic's patients, as
`mltraining.selectors.active_model_for` decides). Codes the catalog does not know, values refused as impossible
and results not final yet (preliminary: not judged as final, as for the lab's own feed) are reported, never fatal.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mltraining.ml.features import OBSERVATION_COLUMNS, PATIENT_COLUMNS, build_features, missing_inputs
from mltraining.selectors import active_model_for
from patients.fhir.importer import Collected, collect
from patients.fhir.reader import FhirFile, Item
from predictions.scoring import risk_levels
from predictions.selectors import risk_summary
from recommendations import rules

PREFETCH_KEYS = {"patient": "Patient", "observations": "Observation", "conditions": "Condition"}
WINDOW_DAYS = 730
_SEX = {"female": "female", "male": "male"}


@dataclass
class Risk:
    level: str
    summary: str
    version: int
    training_data: str


@dataclass
class Judged:
    findings: list[rules.Finding]
    results: int  # measurements read
    unknown: list[str] = field(default_factory=list)  # "LOINC 1234-5 (display) x2"
    problems: list[str] = field(default_factory=list)
    not_final: list[str] = field(default_factory=list)  # "preliminary: LOINC 2823-3 (display)"
    risk: Risk | None = None
    no_risk_because: str = ""
    collected: Collected | None = None


def resources_of(value: Any, kind: str) -> list[dict[str, Any]]:
    """A prefetch entry: one resource, or a searchset Bundle of them; null (the EHR found none) is empty."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        entries = [entry.get("resource") for entry in value.get("entry") or [] if isinstance(entry, dict)]
        return [r for r in entries if isinstance(r, dict) and r.get("resourceType") == kind]
    return [value] if value.get("resourceType") == kind else []


def fhir_items(prefetch: dict[str, Any], keys: tuple[str, ...] = tuple(PREFETCH_KEYS)) -> list[Item]:
    items = []
    for key in keys:
        kind = PREFETCH_KEYS[key]
        for n, resource in enumerate(resources_of(prefetch.get(key), kind), start=1):
            items.append(Item(where=f"prefetch {key} {n}", resource=resource))
    return items


def _age(birth: Any, now: datetime.datetime) -> float | None:
    try:
        born = datetime.date.fromisoformat(str(birth)[:10])
    except ValueError:
        return None
    return (now.date() - born).days / 365.25


def _risk(clinic_id: int, latest: dict, sex: str, birth: Any, now: datetime.datetime) -> tuple[Risk | None, str]:
    from predictions.services import ModelUnavailable, model_load  # the cached, verified model of the clinic

    version = active_model_for(clinic=clinic_id)
    if version is None:
        return None, "the clinic has no model that may score its patients"
    try:
        birth_date = datetime.date.fromisoformat(str(birth)[:10])
    except ValueError:
        return None, "the Patient sent has no birth date"
    observations = pd.DataFrame(
        [(0, code, value, when) for code, (value, when) in latest.items()], columns=list(OBSERVATION_COLUMNS)
    )
    people = pd.DataFrame([(0, sex or "unknown", birth_date) + ("unknown",) * 4 + (None,) * 3],
                          columns=list(PATIENT_COLUMNS))  # fmt: skip
    X = build_features(observations, people, as_of=pd.Timestamp(now), window_days=WINDOW_DAYS)
    required = (version.feature_schema or {}).get("required")
    missing = missing_inputs(X, required)[0]
    if missing:
        return None, f"not enough recent results for a risk estimate (no {', '.join(missing)})"
    try:
        model = model_load(version=version)
    except ModelUnavailable as exc:
        return None, str(exc)
    # Probabilities and level only: the card names no contributions, so no explanation is computed for it.
    proba, _risks, levels = risk_levels(model, X, version.risk_thresholds)
    probabilities = {str(name): float(p) for name, p in zip(model.classes_, proba[0], strict=True)}
    summary = risk_summary(probabilities=probabilities, risk_level=levels[0])
    return Risk(levels[0], summary, version.version, version.training_data), ""


def _code_text(system: str, code: str, display: str, count: int) -> str:
    """A code as the card that lists what was not used names it: "LOINC 1234-5 (display) x2"."""
    return (f"{'LOINC' if system == 'http://loinc.org' else system or 'no system'} {code or '?'}"
            + (f" ({display})" if display else "") + (f" x{count}" if count > 1 else ""))  # fmt: skip


def judge(*, prefetch: dict[str, Any], clinic_id: int, now: datetime.datetime) -> Judged:
    """The rules' findings and the model's risk on the prefetched data; nothing is written."""
    # The Patient is read for its sex and birth date only: an EHR need not send its name to get advice.
    collected = collect(FhirFile(kind="CDS Hooks prefetch", items=fhir_items(prefetch, ("observations", "conditions"))))
    patient = next(iter(resources_of(prefetch.get("patient"), "Patient")), {})
    sex, birth = _SEX.get(str(patient.get("gender") or ""), ""), patient.get("birthDate")
    latest: dict[str, tuple[float, datetime.datetime]] = {}
    for m in collected.measurements:
        if m.effective_at <= now and (m.spec.code not in latest or m.effective_at > latest[m.spec.code][1]):
            latest[m.spec.code] = (m.value, m.effective_at)
    facts = rules.facts_from(values={}, sex=sex, age=_age(birth, now), as_of=now, latest=latest)
    unknown = [_code_text(system, code, display, count)
               for (system, code, display), count in collected.unknown_codes.most_common()]  # fmt: skip
    not_final = [f"{status}: {_code_text(system, code, display, count)}"
                 for (status, system, code, display), count in collected.not_final.most_common()]  # fmt: skip
    judged = Judged(rules.evaluate(facts), len(collected.measurements), unknown,
                    collected.problems + collected.unreadable, not_final=not_final, collected=collected)  # fmt: skip
    if latest:
        judged.risk, judged.no_risk_because = _risk(clinic_id, latest, sex, birth, now)
    else:
        judged.no_risk_because = "no result the model reads was sent"
    return judged
