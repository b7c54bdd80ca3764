"""The review workflow: who may decide, what a decision writes, and what the patient then sees."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from clinic.models import AuditEvent
from patients.tests.factories import PatientFactory
from recommendations import selectors, services
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, ItemStatus, Recommendation
from recommendations.tests.factories import prediction_for


@pytest.fixture
def patient(clinic_a, patient_user_a):
    return PatientFactory(clinic=clinic_a, user=patient_user_a, sex="male")


@pytest.fixture
def recommendation(patient):
    prediction = prediction_for(patient, hba1c=7.4, ldl=5.3, sex="male", risk_level="high")
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=patient.clinic_id)
    return rec


def _item(rec, index=1):
    return rec.items.order_by("position")[index]


@pytest.mark.hazard("H5", "Every generated item starts pending, waiting for a doctor")
def test_generated_advice_waits_for_review(recommendation):
    items = list(recommendation.items.all())
    assert len(items) >= 3  # headline + HbA1c + LDL
    assert {item.status for item in items} == {ItemStatus.PENDING}
    assert recommendation.pending == len(items)


def test_a_doctor_approves_an_item_and_feedback_and_audit_rows_are_written(recommendation, doctor_a):
    item = _item(recommendation)

    services.item_approve(item=item, by=doctor_a)

    item.refresh_from_db()
    assert (item.status, item.reviewed_by) == (ItemStatus.APPROVED, doctor_a)
    event = FeedbackEvent.objects.get(item=item)
    assert (event.outcome, event.clinician, event.position, event.action) == ("accepted", doctor_a, 1, "approve")
    assert event.as_cds_hooks()["outcome"] == "accepted"
    assert event.as_cds_hooks()["card"] == str(item.card_id)
    assert AuditEvent.objects.filter(
        action="recommendation.approve", actor=doctor_a, patient_id=recommendation.patient_id
    ).exists()
    recommendation.refresh_from_db()
    assert recommendation.pending == recommendation.items.count() - 1


def test_rejecting_needs_a_coded_reason(recommendation, doctor_a):
    item = _item(recommendation)

    with pytest.raises(ValidationError, match="Choose why"):
        services.item_reject(item=item, by=doctor_a, reason="", comment="no")
    with pytest.raises(ValidationError, match="Other"):
        services.item_reject(item=item, by=doctor_a, reason="other", comment="")

    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING
    assert not FeedbackEvent.objects.exists()


def test_patient_declined_is_refused_at_a_review_before_the_patient_has_seen_anything(recommendation, doctor_a):
    item = _item(recommendation)

    with pytest.raises(ValidationError, match="No longer offered"):
        services.item_reject(item=item, by=doctor_a, reason="patient_declined", comment="Said no.")

    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING
    assert not FeedbackEvent.objects.exists()


def test_a_rejection_is_stored_as_an_override_with_its_reason_and_comment(recommendation, doctor_a):
    item = _item(recommendation)

    services.item_reject(item=item, by=doctor_a, reason="already_addressed", comment="On a statin since May.")

    event = FeedbackEvent.objects.get(item=item)
    cds = event.as_cds_hooks()
    assert cds["outcome"] == "overridden"
    assert cds["overrideReason"]["reason"]["code"] == "already_addressed"
    assert cds["overrideReason"]["userComment"] == "On a statin since May."
    assert AuditEvent.objects.filter(action="recommendation.reject", patient_id=recommendation.patient_id).exists()


def test_an_item_is_decided_once(recommendation, doctor_a):
    item = _item(recommendation)
    services.item_approve(item=item, by=doctor_a)

    with pytest.raises(ValidationError, match="already approved"):
        services.item_reject(item=item, by=doctor_a, reason="not_relevant")
    assert FeedbackEvent.objects.count() == 1


@pytest.mark.hazard("H5", "Staff, an admin, the patient and another clinic's doctor cannot approve or reject an item")
@pytest.mark.parametrize("role", ["staff_a", "admin_a", "patient_user_a", "doctor_b"])
def test_only_a_doctor_of_the_clinic_can_decide(recommendation, role, request):
    user = request.getfixturevalue(role)
    item = _item(recommendation)

    with pytest.raises(PermissionDenied):
        services.item_approve(item=item, by=user)
    with pytest.raises(PermissionDenied):
        services.item_reject(item=item, by=user, reason="not_relevant")

    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING
    assert not FeedbackEvent.objects.exists()


@pytest.mark.hazard("H5", "A patient reads nothing before review, then only the approved item, not the rejected one")
def test_a_patient_sees_nothing_before_approval_and_only_approved_items_after(recommendation, doctor_a, patient_user_a):
    first, second = _item(recommendation, 1), _item(recommendation, 2)
    assert selectors.my_advice_read(user=patient_user_a)[1] == []

    services.item_approve(item=first, by=doctor_a, patient_text="Please book a visit to talk about your sugar.")
    services.item_reject(item=second, by=doctor_a, reason="duplicate")

    _patient, advice = selectors.my_advice_read(user=patient_user_a)
    assert [item.pk for item in advice] == [first.pk]
    assert advice[0].patient_text == "Please book a visit to talk about your sugar."
    assert AuditEvent.objects.filter(action="recommendation.patient_view", actor=patient_user_a).count() == 2


def test_edits_and_notes_are_feedback_too_but_not_decisions(recommendation, doctor_a):
    item = _item(recommendation)

    services.item_annotate(item=item, by=doctor_a, note="Discussed by phone.")
    services.item_edit(item=item, by=doctor_a, patient_text="Shorter text.")

    item.refresh_from_db()
    assert (item.status, item.note, item.patient_text) == (ItemStatus.PENDING, "Discussed by phone.", "Shorter text.")
    assert list(FeedbackEvent.objects.values_list("action", "outcome")) == [("annotate", ""), ("edit", "")]


def test_bulk_approve_decides_every_pending_item_in_primary_key_order(recommendation, doctor_a):
    first = _item(recommendation)
    services.item_reject(item=first, by=doctor_a, reason="not_relevant")
    ids = selectors.pending_item_ids_of(user=doctor_a, recommendation_ids=[recommendation.pk])

    approved = services.items_approve(item_ids=ids, by=doctor_a)

    assert approved == recommendation.items.count() - 1
    recommendation.refresh_from_db()
    assert recommendation.pending == 0
    assert list(FeedbackEvent.objects.filter(action="approve").values_list("item_id", flat=True)) == sorted(ids)


def test_bulk_approve_ignores_items_of_another_clinic(recommendation, doctor_b):
    assert selectors.pending_item_ids_of(user=doctor_b, recommendation_ids=[recommendation.pk]) == []


def test_new_advice_supersedes_pending_items_but_keeps_decided_ones(recommendation, patient, doctor_a):
    decided = _item(recommendation)
    services.item_approve(item=decided, by=doctor_a)

    newer = prediction_for(patient, hba1c=7.4, ldl=2.0, sex="male", risk_level="high")
    [new_rec] = recommendations_generate(predictions=[newer], clinic_id=patient.clinic_id)

    decided.refresh_from_db()
    assert decided.status == ItemStatus.APPROVED
    old_statuses = set(recommendation.items.exclude(pk=decided.pk).values_list("status", flat=True))
    assert old_statuses == {ItemStatus.SUPERSEDED}
    recommendation.refresh_from_db()
    assert recommendation.pending == 0
    assert new_rec.pending == new_rec.items.count()


def test_the_same_advice_is_not_generated_twice_in_a_row(recommendation, patient):
    again = prediction_for(patient, hba1c=7.4, ldl=5.3, sex="male", risk_level="high")

    assert recommendations_generate(predictions=[again], clinic_id=patient.clinic_id) == []
    assert Recommendation.objects.filter(patient=patient).count() == 1
