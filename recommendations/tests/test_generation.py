"""Generation after a prediction: headline, items, ranking, pinning, and the feedback adjustment."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.models import AuditEvent, Role
from clinic.tests.factories import UserFactory
from patients.tests.factories import PatientFactory
from recommendations import rules, services
from recommendations.generation import recommendations_generate
from recommendations.models import Recommendation, Severity
from recommendations.tests.factories import prediction_for

MODERATE_PAIR = {"ldl": 4.3, "alt": 40.0}  # LDL 160-189 mg/dL and ALT above the ACG limit: both MODERATE


def _generate(patient, **kwargs):
    found = recommendations_generate(predictions=[prediction_for(patient, **kwargs)], clinic_id=patient.clinic_id)
    return found[0] if found else None


def _codes(rec):
    return [item.advice.code for item in rec.items.select_related("advice").order_by("position")]


@pytest.fixture
def patient(clinic_a):
    return PatientFactory(clinic=clinic_a, sex="female")


def test_normal_results_and_a_low_risk_give_no_action_needed(patient):
    rec = _generate(patient)

    assert rec.headline == "no_action_needed"
    assert _codes(rec) == ["no_action_needed"]
    assert rec.severity == Severity.INFO


def test_a_finding_is_stored_with_its_rule_rationale_citation_and_versions(patient):
    rec = _generate(patient, hba1c=7.1, risk_level="moderate")

    item = rec.items.get(advice__code="diabetes_range_confirm")
    assert item.rule == "hba1c_diabetes_range"
    assert "7.1" in item.rationale
    assert "%" in item.rationale
    assert "6.5" in item.rationale
    assert "American Diabetes Association" in item.citation or "ADA" in item.citation
    assert rec.headline == "consult_professional"
    assert rec.rules_version == rules.RULES_VERSION
    assert rec.rationale["model_version_id"] == rec.prediction.model_version_id
    assert rec.rationale["risk_level"] == "moderate"


def test_the_advice_rationale_says_what_the_model_was_trained_on(patient):
    rec = _generate(patient, risk_level="moderate")

    assert rec.rationale["training_data"] == (
        "Trained on this clinic's records: 1,200 patients, 310 doctor-confirmed diagnoses."
    )


def test_items_are_ranked_by_severity_then_by_the_models_probability(patient):
    probabilities = {"healthy": 0.2, "dyslipidemia": 0.7, "diabetes": 0.1}
    rec = _generate(patient, hba1c=5.9, ldl=4.3, alt=40.0, bmi=31.0, probabilities=probabilities)

    items = list(rec.items.order_by("position"))
    severities = [item.severity for item in items[1:]]
    assert severities == sorted(severities, reverse=True)
    moderate = [item.advice.code for item in items[1:] if item.severity == Severity.MODERATE]
    assert moderate == ["ldl_high_risk_review", "alt_elevated_work_up"]  # P(dyslipidemia) 0.7 lifts the LDL item


def test_a_likely_condition_no_rule_covers_adds_the_models_item(patient):
    rec = _generate(patient, probabilities={"healthy": 0.3, "ckd": 0.65}, risk_level="high")

    item = rec.items.get(advice__code="model_ckd_follow_up")
    assert item.rule == ""
    assert item.probability == pytest.approx(0.65)
    assert "65%" in item.rationale


@pytest.mark.hazard(
    "H1", "Critical potassium and sodium give urgent items pinned first, never re-ranked, and a 'consult' headline"
)
def test_critical_items_are_pinned_first_in_rule_order(patient):
    rec = _generate(patient, potassium=7.0, sodium=165.0, hba1c=7.0)

    items = list(rec.items.order_by("position"))
    assert [i.advice.code for i in items[1:3]] == ["sodium_critical_urgent", "potassium_critical_urgent"]
    assert all(i.pinned and i.lift == 0.0 for i in items[1:3])
    assert rec.severity == Severity.CRITICAL
    assert rec.headline == "consult_professional"


# --- feedback ---------------------------------------------------------------------------------------------------


def _review_many(clinic, doctors, n, decide, **inputs):
    """n patients like the given inputs, their advice generated and decided by `decide(item) -> bool`."""
    for index in range(n):
        patient = PatientFactory(clinic=clinic, sex="female")
        rec = _generate(patient, **inputs)
        doctor = doctors[index % len(doctors)]
        for item in rec.items.exclude(is_headline=True).select_related("advice"):
            if decide(item):
                services.item_approve(item=item, by=doctor)
            else:
                services.item_reject(item=item, by=doctor, reason="not_relevant")


@pytest.fixture
def doctors(clinic_a, doctor_a):
    return [doctor_a, UserFactory(clinic=clinic_a, role=Role.DOCTOR), UserFactory(clinic=clinic_a, role=Role.DOCTOR)]


def test_feedback_on_similar_patients_reorders_items_within_their_tier(patient, clinic_a, doctors):
    before = _generate(patient, **MODERATE_PAIR)
    assert _codes(before)[1:] == ["ldl_high_risk_review", "alt_elevated_work_up"]  # rule order on a tie

    _review_many(clinic_a, doctors, 30, lambda item: item.advice.code != "ldl_high_risk_review", **MODERATE_PAIR)
    snapshot = services.ranker_rebuild(clinic_id=clinic_a.pk)
    later = PatientFactory(clinic=clinic_a, sex="female")
    after = _generate(later, **MODERATE_PAIR)

    assert snapshot is not None
    assert after.ranker_version == snapshot.version
    assert _codes(after)[1:] == ["alt_elevated_work_up", "ldl_high_risk_review"]
    ldl = after.items.get(advice__code="ldl_high_risk_review")
    assert -0.3 <= ldl.lift < 0


def test_a_ranker_snapshot_that_cannot_be_read_leaves_advice_in_rule_order_and_is_logged(patient, clinic_a, caplog):
    from recommendations.models import RankerSnapshot

    RankerSnapshot.objects.create(clinic=clinic_a, version=1, events=40, patients=20, data=b"not an npz file")

    rec = _generate(patient, **MODERATE_PAIR)

    assert _codes(rec)[1:] == ["ldl_high_risk_review", "alt_elevated_work_up"]  # rule order: no lift applied
    assert rec.ranker_version is None
    assert {item.lift for item in rec.items.all()} == {0.0}
    assert "Feedback ranker v1 of clinic" in caplog.text
    assert "ranked without it" in caplog.text


def test_no_amount_of_negative_feedback_moves_a_critical_item(patient, clinic_a, doctors):
    critical = {"potassium": 7.0, "sodium": 165.0, **MODERATE_PAIR}
    _review_many(
        clinic_a, doctors, 40, lambda item: item.advice.code not in {"sodium_critical_urgent", "ldl_high_risk_review"},
        **critical,
    )  # fmt: skip
    assert services.ranker_rebuild(clinic_id=clinic_a.pk) is not None

    rec = _generate(patient, **critical)

    codes = _codes(rec)
    assert codes[1:3] == ["sodium_critical_urgent", "potassium_critical_urgent"]
    assert rec.items.get(advice__code="sodium_critical_urgent").lift == 0.0
    assert rec.items.get(advice__code="ldl_high_risk_review").lift < 0  # feedback did reach the other items
    assert len(codes) == 5  # nothing hidden


def test_a_batch_of_predictions_is_generated_in_a_constant_number_of_queries(clinic_a):
    counts = []
    for n in (2, 20):
        predictions = [prediction_for(PatientFactory(clinic=clinic_a), hba1c=7.0, ldl=4.3) for _ in range(n)]
        with CaptureQueriesContext(connection) as queries:
            written = recommendations_generate(predictions=predictions, clinic_id=clinic_a.pk)
        assert len(written) == n
        # SQLite caps the parameters of one statement, so its bulk inserts come in several statements; every
        # other query must not depend on the number of predictions.
        counts.append(sum(not q["sql"].startswith("INSERT") for q in queries.captured_queries))
    assert counts[0] == counts[1]


def _enter_critical_potassium(clinic, by, capture_on_commit) -> Recommendation:
    """A staff member enters potassium 7.1 mmol/L for a new patient; the scoring it queues runs."""
    from patients.services import ObservationInput, observations_record

    patient = PatientFactory(clinic=clinic, sex="male", birth_date=datetime.date(1960, 1, 1))
    with capture_on_commit(execute=True):
        observations_record(
            patient=patient, by=by, entries=[ObservationInput("potassium", 7.1, "mmol/L")],
            effective_at=timezone.now() - datetime.timedelta(hours=1),
        )  # fmt: skip
    return Recommendation.objects.get(patient=patient)


def test_advice_is_generated_when_entering_results_scores_the_patient(
    active_model, clinic_a, staff_a, django_capture_on_commit_callbacks
):
    rec = _enter_critical_potassium(clinic_a, staff_a, django_capture_on_commit_callbacks)

    assert rec.items.filter(advice__code="potassium_critical_urgent", pinned=True, position=1).exists()
    assert rec.prediction.inputs["potassium"] == pytest.approx(7.1)


@pytest.mark.hazard("H1", "A critical potassium gets its pinned urgent item although the model file is corrupt")
def test_a_critical_value_gets_rule_advice_when_the_model_cannot_be_used(
    active_model, clinic_a, staff_a, django_capture_on_commit_callbacks
):
    from predictions import services as prediction_services

    active_model.sha256 = "0" * 64  # what a changed or corrupt artifact looks like to the check
    active_model.save()
    prediction_services._loaded.clear()

    rec = _enter_critical_potassium(clinic_a, staff_a, django_capture_on_commit_callbacks)

    assert rec.prediction.status == "failed"
    assert rec.prediction.inputs["potassium"] == pytest.approx(7.1)  # what the rules read, kept with the failure
    assert rec.items.filter(advice__code="potassium_critical_urgent", pinned=True, position=1).exists()
    assert rec.headline == "consult_professional"
    assert "cannot be used" in rec.rationale["model_error"]
    assert rec.rationale["risk_level"] == ""
    assert not rec.items.filter(rule="", is_headline=False).exists()  # no model finding without a model


def test_a_critical_value_gets_rule_advice_before_the_clinic_has_a_model(
    clinic_a, staff_a, django_capture_on_commit_callbacks
):
    rec = _enter_critical_potassium(clinic_a, staff_a, django_capture_on_commit_callbacks)

    assert rec.prediction.status == "failed"
    assert rec.prediction.model_version is None
    assert rec.prediction.inputs["potassium"] == pytest.approx(7.1)
    assert rec.items.filter(advice__code="potassium_critical_urgent", pinned=True, position=1).exists()
    assert rec.headline == "consult_professional"
    assert rec.rationale == {
        "risk_level": "",
        "model_version_id": None,
        "model_error": "the clinic has no active model yet",
    }
    event = AuditEvent.objects.get(action="prediction.create")
    assert (event.object_type, event.object_id, event.clinic_id) == ("clinic.clinic", str(clinic_a.pk), clinic_a.pk)
    assert event.detail["model_version"] is None
    assert event.detail["failed"] == 1


def test_a_failed_prediction_without_inputs_gets_no_advice(patient):
    prediction = prediction_for(patient)
    prediction.status, prediction.inputs, prediction.error = "failed", {}, "Model version 1 cannot be used"
    prediction.save()

    assert recommendations_generate(predictions=[prediction], clinic_id=patient.clinic_id) == []


def test_a_deactivated_advice_item_is_no_longer_generated(patient):
    from recommendations.models import AdviceItem

    AdviceItem.objects.filter(code="diabetes_range_confirm").update(active=False)

    rec = _generate(patient, hba1c=7.1)

    assert "diabetes_range_confirm" not in _codes(rec)
    assert rec.headline == "consult_professional"  # the finding still sets the headline
