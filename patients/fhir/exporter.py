"""A patient's record as a FHIR R4 Bundle (type collection): Patient, every Observation, every Condition,
and for readers who may see predictions the latest successful one as a RiskAssessment.

The JSON is built by hand and checked in the tests by parsing it back with the fhir.resources R4B models
(R4B's Patient, Observation, Condition and Bundle are R4's). Values go out in the analyte's canonical
UCUM unit under its preferred LOINC code, with the interpretation and the reference range that flagged
them, so `patients.fhir.importer` reads the bundle back without loss.

The bundle is assembled from `RESOURCE_BUILDERS`, one function per resource type. The predictions app's
RiskAssessment is listed here (built by `predictions.fhir`, imported at call time); another app adds its
resources with `register_resource_builder` in its AppConfig.ready.
Resource ids are UUIDs derived from the clinic and the row, so exporting twice gives the same ids.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from patients.catalog import catalog
from patients.catalog_data import AnalyteSpec
from patients.clinical import age_on, reference_range
from patients.models import Condition, Interpretation, Observation, Patient, VerificationStatus

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CATEGORY_OF_KIND = {
    "lab": ("laboratory", "Laboratory"),
    "vital": ("vital-signs", "Vital Signs"),
    "wearable": ("activity", "Activity"),
}

Resource = dict[str, Any]


@dataclass(frozen=True)
class ExportContext:
    patient: Patient
    clinic_slug: str
    # Predictions are decision support for clinicians: a patient's own download must not carry them.
    include_decision_support: bool = False

    def resource_id(self, kind: str, pk: int) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:clinic:{self.clinic_slug}:{kind}:{pk}"))

    @property
    def patient_reference(self) -> dict[str, str]:
        return {"reference": f"urn:uuid:{self.resource_id('Patient', self.patient.pk)}"}


Builder = Callable[[ExportContext], Iterable[Resource]]


def _instant(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat()


def _coding(system: str, code: str, display: str = "") -> dict[str, str]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _concept(system: str, code: str, display: str = "") -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)], **({"text": display} if display else {})}


def mrn_system(clinic_slug: str) -> str:
    return f"urn:clinic:{clinic_slug}:mrn"


def patient_resources(context: ExportContext) -> Iterable[Resource]:
    patient = context.patient
    telecom = [
        {"system": system, "value": value}
        for system, value in (("email", patient.email), ("phone", patient.phone))
        if value
    ]
    yield {
        "resourceType": "Patient",
        "id": context.resource_id("Patient", patient.pk),
        "identifier": [
            {
                "use": "usual",
                "type": _concept(IDENTIFIER_TYPE, "MR", "Medical record number"),
                "system": mrn_system(context.clinic_slug),
                "value": patient.mrn,
            }
        ],
        "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
        **({"telecom": telecom} if telecom else {}),
        "gender": patient.sex,
        "birthDate": patient.birth_date.isoformat(),
        **({"address": [{"text": patient.address}]} if patient.address else {}),
    }


def _quantity(spec: AnalyteSpec, value: float) -> dict[str, Any]:
    return {"value": value, "unit": spec.unit, "system": UCUM, "code": spec.unit}


def _observation(context: ExportContext, observation: Observation, spec: AnalyteSpec) -> Resource:
    category, category_display = CATEGORY_OF_KIND[spec.kind]
    patient = context.patient
    rng = reference_range(spec, patient.sex, age_on(patient.birth_date, observation.effective_at.date()))
    resource: Resource = {
        "resourceType": "Observation",
        "id": context.resource_id("Observation", observation.pk),
        "status": "final",
        "category": [_concept(OBSERVATION_CATEGORY, category, category_display)],
        "code": _concept(LOINC, spec.loinc[0], spec.name),
        "subject": context.patient_reference,
        "effectiveDateTime": _instant(observation.effective_at),
        "issued": _instant(observation.created_at),
        "valueQuantity": _quantity(spec, observation.value),
    }
    if observation.interpretation:
        label = Interpretation(observation.interpretation).label
        resource["interpretation"] = [_concept(INTERPRETATION, observation.interpretation, label)]
    if rng is not None and (rng.low is not None or rng.high is not None):
        bounds = {"low": rng.low, "high": rng.high}
        resource["referenceRange"] = [{k: _quantity(spec, v) for k, v in bounds.items() if v is not None}]
    return resource


def observation_resources(context: ExportContext) -> Iterable[Resource]:
    spec_of = catalog().by_id
    for observation in Observation.objects.filter(patient=context.patient).order_by("effective_at", "id"):
        yield _observation(context, observation, spec_of[observation.analyte_id])


def _condition(context: ExportContext, condition: Condition) -> Resource:
    resource: Resource = {
        "resourceType": "Condition",
        "id": context.resource_id("Condition", condition.pk),
        "verificationStatus": _concept(CONDITION_VERIFICATION, condition.verification_status),
        "category": [_concept(CONDITION_CATEGORY, "problem-list-item", "Problem List Item")],
        "code": _concept(ICD10, condition.code, condition.display),
        "subject": context.patient_reference,
        "recordedDate": _instant(condition.recorded_at),
    }
    # FHIR invariant con-5: an entered-in-error condition carries no clinical status.
    if condition.verification_status != VerificationStatus.ENTERED_IN_ERROR:
        resource["clinicalStatus"] = _concept(CONDITION_CLINICAL, condition.clinical_status)
    if condition.onset_date:
        resource["onsetDateTime"] = condition.onset_date.isoformat()
    if condition.note:
        resource["note"] = [{"text": condition.note}]
    return resource


def condition_resources(context: ExportContext) -> Iterable[Resource]:
    for condition in Condition.objects.filter(patient=context.patient).order_by("recorded_at", "id"):
        yield _condition(context, condition)


def risk_assessment_resources(context: ExportContext) -> Iterable[Resource]:
    """The patient's latest successful prediction as a RiskAssessment, for readers who may see predictions."""
    if not context.include_decision_support:
        return
    # predictions reads patients; import at call time
    from predictions.fhir import risk_assessment
    from predictions.selectors import prediction_latest_succeeded

    prediction = prediction_latest_succeeded(patient=context.patient)
    if prediction is not None:
        resource_id = context.resource_id("RiskAssessment", prediction.pk)
        yield risk_assessment(prediction, context.patient_reference, resource_id=resource_id)


RESOURCE_BUILDERS: list[Builder] = [
    patient_resources,
    observation_resources,
    condition_resources,
    risk_assessment_resources,
]


def register_resource_builder(builder: Builder) -> None:
    """Add a builder whose resources follow the patient's own in every export (idempotent)."""
    if builder not in RESOURCE_BUILDERS:
        RESOURCE_BUILDERS.append(builder)


def patient_bundle(patient: Patient, *, include_decision_support: bool = False) -> Resource:
    """The bundle; `include_decision_support` adds the latest prediction (for clinicians and the system only)."""
    context = ExportContext(
        patient=patient, clinic_slug=patient.clinic.slug, include_decision_support=include_decision_support
    )
    entries = [
        {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}
        for builder in RESOURCE_BUILDERS
        for resource in builder(context)
    ]
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": _instant(timezone.now()),
        "entry": entries,
    }
