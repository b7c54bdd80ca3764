"""Feedback from the EHR: each accepted or overridden card becomes a FeedbackEvent of the EHR's user."""

from __future__ import annotations

import pytest

from cdshooks.cards import suggestion_uuid
from cdshooks.tests.conftest import feedback_body, patient_view_body
from clinic.models import AuditEvent
from patients.tests.factories import PatientFactory
from recommendations import services as recommendation_services
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, FeedbackSource, ItemStatus
from recommendations.rankers import feedback_frames
from recommendations.tests.factories import prediction_for

PATH = "/cds-services/patient-view/feedback"


@pytest.fixture
def items(clinic_a, doctor_a):
    """An approved HbA1c item and a critical potassium item waiting for review, of a registered patient."""
    patient = PatientFactory(clinic=clinic_a, mrn="RV-1042", sex="male")
    prediction = prediction_for(patient, potassium=6.9, hba1c=7.4, sex="male")
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)
    specific = list(rec.items.filter(is_headline=False).select_related("advice").order_by("position"))
    critical = next(item for item in specific if item.pinned)
    approved = next(item for item in specific if not item.pinned)
    recommendation_services.item_approve(item=approved, by=doctor_a)
    return {"approved": approved, "critical": critical}


def test_the_cards_given_take_feedback_accepted_with_the_ehr_user(call, items):
    cards = call("/cds-services/patient-view", patient_view_body(mrn="RV-1042")).json()["cards"]
    card = next(c for c in cards if c.get("uuid") == str(items["approved"].card_id))
    body = feedback_body("feedback_accepted.json", card=card["uuid"], suggestion=suggestion_uuid(card["uuid"]))

    response = call(PATH, body)

    assert response.status_code == 200
    assert response.json() == {"recorded": 1}
    event = FeedbackEvent.objects.get(source=FeedbackSource.EHR)
    assert (event.item_id, event.outcome, event.clinician) == (items["approved"].pk, "accepted", None)
    assert event.ehr_user.endswith(":Practitioner/dr-okafor")  # the JWT's sub
    assert event.as_cds_hooks()["card"] == card["uuid"]
    audit = AuditEvent.objects.get(action="cdshooks.feedback")
    assert (audit.patient_id, audit.detail["outcome"]) == (event.patient_id, "accepted")


@pytest.mark.hazard("H5", "An EHR's feedback on a pending item records it but does not approve or reject it")
def test_overridden_with_our_reason_keeps_the_reason_and_comment_and_leaves_the_review_to_doctors(call, items):
    card = str(items["critical"].card_id)

    response = call(PATH, feedback_body("feedback_overridden.json", card=card))

    assert response.status_code == 200
    event = FeedbackEvent.objects.get(source=FeedbackSource.EHR)
    assert (event.outcome, event.override_reason) == ("overridden", "already_addressed")
    assert event.comment == "Repeat potassium already drawn this morning."
    items["critical"].refresh_from_db()
    assert items["critical"].status == ItemStatus.PENDING  # an EHR's dismissal is not a doctor's review here


def test_an_override_reason_of_the_ehrs_own_is_kept_as_other_with_what_it_said(call, items):
    body = feedback_body("feedback_overridden.json", card=str(items["approved"].card_id))
    body["feedback"][0]["overrideReason"]["reason"] = {"system": "urn:ehr:reasons", "code": "x1", "display": "Cost"}

    call(PATH, body)

    event = FeedbackEvent.objects.get(source=FeedbackSource.EHR)
    assert event.override_reason == "other"
    assert "urn:ehr:reasons|x1 Cost" in event.comment


def test_ehr_feedback_feeds_the_ranker_as_one_more_clinician(call, items):
    call(PATH, feedback_body("feedback_overridden.json", card=str(items["approved"].card_id)))

    events, _profiles = feedback_frames(clinic_id=items["approved"].recommendation.clinic_id)

    assert len(events) == 2  # the doctor's approval and the EHR user's override
    assert set(events["accepted"]) == {True, False}
    assert len(set(events["clinician_id"])) == 2


def test_feedback_for_an_unknown_card_is_404_and_nothing_is_written(call, items):
    body = feedback_body("feedback_overridden.json", card=str(items["approved"].card_id))
    body["feedback"].append({**body["feedback"][0], "card": "0b8c6f0e-8a3c-4a51-9d0e-3f0f5d1e2a77"})

    response = call(PATH, body)

    assert response.status_code == 404
    assert response.json()["unknown_cards"] == ["0b8c6f0e-8a3c-4a51-9d0e-3f0f5d1e2a77"]
    assert not FeedbackEvent.objects.filter(source=FeedbackSource.EHR).exists()


@pytest.mark.hazard("H12", "Feedback from an EHR naming another clinic's card is refused (404), nothing written")
def test_feedback_for_another_clinics_card_is_unknown(call, clinic_b):
    theirs = PatientFactory(clinic=clinic_b)
    [rec] = recommendations_generate(predictions=[prediction_for(theirs, potassium=6.9)], clinic_id=clinic_b.pk)
    card = str(rec.items.first().card_id)

    response = call(PATH, feedback_body("feedback_overridden.json", card=card))

    assert response.status_code == 404
    assert not FeedbackEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [{}, {"feedback": []}, {"feedback": [{"card": "x", "outcome": "maybe"}]}, {"feedback": [{"outcome": "accepted"}]}],
)
def test_malformed_feedback_is_400(call, body):
    response = call(PATH, body)

    assert response.status_code == 400
    assert response.json()["error"]


def test_feedback_needs_a_jwt_for_the_feedback_endpoint(call, items, ehr):
    body = feedback_body("feedback_overridden.json", card=str(items["approved"].card_id))

    response = call(PATH, body, token=ehr.token(aud="http://testserver/cds-services/patient-view"))

    assert response.status_code == 401
    assert not FeedbackEvent.objects.filter(source=FeedbackSource.EHR).exists()
