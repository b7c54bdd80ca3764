"""A prediction as a FHIR R4 RiskAssessment, alone and in the patient's exported bundle."""

import json

import pytest
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.riskassessment import RiskAssessment

from conftest import scorable
from patients.demo import demo_cohort_load
from patients.fhir.exporter import patient_bundle
from patients.fhir.services import fhir_import
from patients.models import Patient
from predictions import services
from predictions.fhir import risk_assessment
from predictions.models import Prediction
from predictions.selectors import class_display

REFERENCE = {"reference": "urn:uuid:7f1c1a56-0d55-5c1c-9b59-5a1e7f0c2b11"}


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    services._loaded.clear()
    yield
    services._loaded.clear()


@pytest.fixture
def patient(clinic_a):
    demo_cohort_load(clinic=clinic_a, n_patients=30, seed=14)
    return scorable(Patient.objects.filter(clinic=clinic_a).order_by("pk")[1:])


@pytest.fixture
def prediction(active_model, patient):
    return services.prediction_create(patient_id=patient.pk)


@pytest.mark.hazard("H6", "A FHIR RiskAssessment names the model version and carries the decision-support note")
def test_a_prediction_is_a_valid_fhir_r4_risk_assessment(prediction):
    resource = risk_assessment(prediction, REFERENCE, resource_id="ra-1")

    parsed = RiskAssessment.model_validate(resource)

    assert parsed.id == "ra-1"
    assert parsed.status == "final"
    assert parsed.subject.reference == REFERENCE["reference"]
    assert parsed.occurrenceDateTime == prediction.created_at
    assert "v1" in parsed.method.text
    assert "v1" in parsed.basis[0].display
    assert parsed.note[0].text == "Decision support for clinicians, not a diagnosis."


def test_a_risk_assessment_notes_what_its_model_was_trained_on(active_model, patient):
    # Written as scoring stores it: the resource's reading of a prediction is under test, not scoring.
    stored = Prediction.objects.create(
        patient=patient, model_version=active_model, created_at=timezone.now(), status="succeeded",
        probabilities={"healthy": 0.6, "ckd": 0.4}, predicted_class="healthy", risk_score=0.4, risk_level="moderate",
        risk_thresholds=[0.2, 0.5], explanation_method="unavailable",
    )  # fmt: skip

    parsed = RiskAssessment.model_validate(risk_assessment(stored, REFERENCE))

    assert [note.text for note in parsed.note] == [
        "Decision support for clinicians, not a diagnosis.",
        "Trained on this clinic's records: 1,200 patients, 310 doctor-confirmed diagnoses.",
    ]


def test_the_overall_risk_carries_the_score_and_the_level_as_qualitative_risk(prediction):
    overall = risk_assessment(prediction, REFERENCE)["prediction"][0]

    assert overall["outcome"]["text"] == "Any target condition"
    assert overall["probabilityDecimal"] == prediction.risk_score
    coding = overall["qualitativeRisk"]["coding"][0]
    assert coding["system"] == "http://terminology.hl7.org/CodeSystem/risk-probability"
    assert coding["code"] == prediction.risk_level
    assert "low below 0.20, moderate from 0.20, high from 0.50" in overall["rationale"]


def test_every_class_is_an_outcome_in_words_with_its_probability_most_likely_first(prediction):
    per_class = risk_assessment(prediction, REFERENCE)["prediction"][1:]

    assert [p["outcome"]["text"] for p in per_class][0] == class_display(prediction.predicted_class)
    assert {p["outcome"]["text"]: p["probabilityDecimal"] for p in per_class} == {
        class_display(key): value for key, value in prediction.probabilities.items()
    }
    probabilities = [p["probabilityDecimal"] for p in per_class]
    assert probabilities == sorted(probabilities, reverse=True)


def test_a_failed_prediction_is_not_a_risk_assessment(active_model, patient):
    active_model.sha256 = "0" * 64
    active_model.save()
    failed = services.prediction_create(patient_id=patient.pk)

    with pytest.raises(ValueError, match="Only a successful prediction"):
        risk_assessment(failed, REFERENCE)


def test_a_clinicians_bundle_carries_the_latest_successful_prediction(active_model, patient):
    services.prediction_create(patient_id=patient.pk)
    latest = services.prediction_create(patient_id=patient.pk)
    active_model.sha256 = "0" * 64
    active_model.save()
    services._loaded.clear()
    services.prediction_create(patient_id=patient.pk)  # failed: not exported

    bundle = patient_bundle(patient, include_decision_support=True)

    parsed = Bundle.model_validate(bundle)
    assessments = [e.resource for e in parsed.entry if e.resource.get_resource_type() == "RiskAssessment"]
    assert len(assessments) == 1
    assert assessments[0].occurrenceDateTime.isoformat() == latest.created_at.isoformat()
    patient_entry = bundle["entry"][0]
    assert assessments[0].subject.reference == patient_entry["fullUrl"]
    assert bundle["entry"][-1]["fullUrl"] == f"urn:uuid:{assessments[0].id}"


def test_the_risk_assessment_id_is_stable_across_exports(prediction, patient):
    first = patient_bundle(patient, include_decision_support=True)["entry"][-1]
    second = patient_bundle(patient, include_decision_support=True)["entry"][-1]

    assert first["resource"]["resourceType"] == "RiskAssessment"
    assert first["fullUrl"] == second["fullUrl"]


def test_a_bundle_without_decision_support_has_no_risk_assessment(prediction, patient):
    """What a patient's own download gets: predictions are for clinicians."""
    bundle = patient_bundle(patient)

    assert "RiskAssessment" not in {e["resource"]["resourceType"] for e in bundle["entry"]}


def test_a_patient_without_predictions_exports_no_risk_assessment(active_model, patient):
    bundle = patient_bundle(patient, include_decision_support=True)

    assert "RiskAssessment" not in {e["resource"]["resourceType"] for e in bundle["entry"]}


def test_the_importer_counts_the_risk_assessment_and_skips_it(prediction, patient, doctor_b):
    bundle = patient_bundle(patient, include_decision_support=True)

    summary = fhir_import(by=doctor_b, data=json.dumps(bundle).encode(), name="bundle.json")

    assert summary["skipped_resource_types"] == {"RiskAssessment": 1}
    copy = Patient.objects.get(clinic=doctor_b.clinic)
    assert copy.mrn == patient.mrn
    assert copy.observations.count() == patient.observations.count()
    assert not copy.predictions.exists()
