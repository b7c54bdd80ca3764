"""Acceptance: the test acts as an EHR over real HTTP. It generated its key pair, registered its public key with
the clinic, and signs a JWT per call for the live server's own URL: discovery, patient-view, then feedback on a
card it was given."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from cdshooks.models import EhrConnection
from cdshooks.tests.conftest import ISS, MRN_SYSTEM, Ehr, feedback_body, patient_view_body
from patients.tests.factories import PatientFactory
from recommendations import services as recommendation_services
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, FeedbackSource
from recommendations.tests.factories import prediction_for


def _request(url: str, *, body: dict | None = None, token: str = "") -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (the live server)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.django_db(transaction=True)
def test_an_ehr_over_http_gets_cards_and_sends_feedback(live_server, clinic_a, doctor_a):
    ehr = Ehr()
    EhrConnection.objects.create(clinic=clinic_a, name="Live EHR", iss=ISS, jwks=ehr.jwks(),
                                 audience=live_server.url, mrn_system=MRN_SYSTEM)  # fmt: skip
    patient = PatientFactory(clinic=clinic_a, mrn="RV-1042", sex="male")
    [rec] = recommendations_generate(predictions=[prediction_for(patient, hba1c=7.4, sex="male")],
                                     clinic_id=clinic_a.pk)  # fmt: skip
    approved = rec.items.filter(is_headline=False).first()
    recommendation_services.item_approve(item=approved, by=doctor_a)
    service = f"{live_server.url}/cds-services/patient-view"

    status, discovery = _request(f"{live_server.url}/cds-services")
    assert status == 200
    assert discovery["services"][0]["id"] == "patient-view"

    status, refused = _request(service, body=patient_view_body(mrn="RV-1042"))
    assert status == 401
    assert "Bearer" in refused["error"]

    status, answer = _request(service, body=patient_view_body(mrn="RV-1042"), token=ehr.token(aud=service))
    assert status == 200
    card = next(c for c in answer["cards"] if c.get("uuid") == str(approved.card_id))

    feedback = f"{service}/feedback"
    body = feedback_body("feedback_overridden.json", card=card["uuid"])
    status, recorded = _request(feedback, body=body, token=ehr.token(aud=feedback))
    assert (status, recorded) == (200, {"recorded": 1})
    assert FeedbackEvent.objects.get(source=FeedbackSource.EHR).item_id == approved.pk
