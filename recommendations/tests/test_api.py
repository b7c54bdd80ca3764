"""Advice in the REST API: scope, roles, the review decision and what a patient's account reads."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from clinic.models import AuditEvent
from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, ItemStatus
from recommendations.tests.factories import prediction_for


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def patient(clinic_a, patient_user_a):
    return PatientFactory(clinic=clinic_a, user=patient_user_a, sex="female")


@pytest.fixture
def rec(patient):
    prediction = prediction_for(patient, hba1c=7.0, risk_level="high")
    return recommendations_generate(predictions=[prediction], clinic_id=patient.clinic_id)[0]


def _review_url(item):
    return f"/api/v1/recommendation-items/{item.pk}/review/"


def test_the_latest_recommendation_of_a_patient_for_the_clinical_team(api, staff_a, rec):
    api.force_authenticate(staff_a)

    response = api.get(f"/api/v1/patients/{rec.patient_id}/recommendations/latest/")

    assert response.status_code == 200
    body = response.json()
    assert body["headline"] == rec.headline
    assert [item["position"] for item in body["items"]] == list(range(len(body["items"])))
    assert body["items"][1]["rationale"]
    assert AuditEvent.objects.filter(action="recommendation.view", actor=staff_a).exists()


def test_the_latest_recommendation_reads_its_reviewers_in_the_same_queries_as_none(api, staff_a, doctor_a, patient):
    prediction = prediction_for(patient, hba1c=7.2, ldl=5.5, hemoglobin=9.0, risk_level="high")
    rec = recommendations_generate(predictions=[prediction], clinic_id=patient.clinic_id)[0]
    api.force_authenticate(staff_a)
    url = f"/api/v1/patients/{rec.patient_id}/recommendations/latest/"
    with CaptureQueriesContext(connection) as unreviewed:
        api.get(url)
    rec.items.update(status=ItemStatus.APPROVED, reviewed_by=doctor_a, reviewed_at=timezone.now())

    with CaptureQueriesContext(connection) as reviewed:
        response = api.get(url)

    assert len(response.json()["items"]) == 4
    assert {item["reviewed_by"] for item in response.json()["items"]} == {"doctor_a"}
    assert len(reviewed) == len(unreviewed)


def test_the_schema_documents_each_filter_of_the_queue_with_its_values():
    from drf_spectacular.generators import SchemaGenerator

    from recommendations.models import Category, Headline, Severity

    schema = SchemaGenerator().get_schema(request=None, public=True)
    queue = schema["paths"]["/api/v1/recommendations/queue/"]["get"]
    parameters = {parameter["name"]: parameter["schema"] for parameter in queue["parameters"]}

    assert sorted(parameters["severity"]["enum"]) == sorted(Severity.values)
    assert sorted(parameters["headline"]["enum"]) == sorted(Headline.values)
    assert sorted(parameters["category"]["enum"]) == sorted(Category.values)
    assert sorted(parameters["ordering"]["enum"]) == ["newest", "oldest", "severity"]
    assert parameters["q"]["type"] == "string"


def test_another_clinic_gets_404_and_a_patient_account_403(api, doctor_b, patient_user_a, rec):
    api.force_authenticate(doctor_b)
    assert api.get(f"/api/v1/patients/{rec.patient_id}/recommendations/latest/").status_code == 404
    assert api.post(_review_url(rec.items.get(position=1)), {"action": "approve"}).status_code == 404

    api.force_authenticate(patient_user_a)
    assert api.get(f"/api/v1/patients/{rec.patient_id}/recommendations/latest/").status_code == 403


def test_a_doctor_approves_through_the_api(api, doctor_a, rec):
    api.force_authenticate(doctor_a)
    item = rec.items.get(position=1)

    response = api.post(_review_url(item), {"action": "approve", "patient_text": "Talk to us."}, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["patient_text"]) == ("approved", "Talk to us.")
    assert FeedbackEvent.objects.get(item=item).outcome == "accepted"


def test_rejecting_through_the_api_needs_a_reason(api, doctor_a, rec):
    api.force_authenticate(doctor_a)
    item = rec.items.get(position=1)

    response = api.post(_review_url(item), {"action": "reject"}, format="json")

    assert response.status_code == 400
    assert "reason" in response.json()
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING


def test_the_api_refuses_patient_declined_at_a_review_before_release(api, doctor_a, rec):
    api.force_authenticate(doctor_a)
    item = rec.items.get(position=1)

    response = api.post(_review_url(item), {"action": "reject", "reason": "patient_declined"}, format="json")

    assert response.status_code == 400
    assert "reason" in response.json()
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING


@pytest.mark.parametrize("field", ["status", "reviewed_by", "clinic", "severity", "pinned"])
def test_read_only_fields_in_a_review_are_refused(api, doctor_a, rec, field):
    api.force_authenticate(doctor_a)
    item = rec.items.get(position=1)

    response = api.post(_review_url(item), {"action": "annotate", "note": "x", field: "approved"}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    item.refresh_from_db()
    assert (item.status, item.note) == (ItemStatus.PENDING, "")


@pytest.mark.parametrize("role", ["staff_a", "admin_a"])
def test_staff_and_admins_cannot_review(api, rec, role, request):
    api.force_authenticate(request.getfixturevalue(role))

    response = api.post(_review_url(rec.items.get(position=1)), {"action": "approve"}, format="json")

    assert response.status_code == 403
    assert not FeedbackEvent.objects.exists()


def test_the_queue_lists_only_pending_advice_of_the_doctors_clinic(api, doctor_a, doctor_b, rec):
    api.force_authenticate(doctor_a)
    assert [r["id"] for r in api.get("/api/v1/recommendations/queue/").json()["results"]] == [rec.pk]

    api.force_authenticate(doctor_b)
    assert api.get("/api/v1/recommendations/queue/").json()["results"] == []


@pytest.mark.hazard(
    "H5", "The API gives a patient no advice before approval, then only the approved item, without the rationale"
)
def test_a_patient_reads_only_approved_advice(api, doctor_a, patient_user_a, rec):
    item = rec.items.get(position=1)
    api.force_authenticate(patient_user_a)
    assert api.get("/api/v1/me/advice/").json() == []

    api.force_authenticate(doctor_a)
    api.post(_review_url(item), {"action": "approve"}, format="json")
    api.force_authenticate(patient_user_a)

    advice = api.get("/api/v1/me/advice/").json()
    assert [a["id"] for a in advice] == [item.pk]
    assert set(advice[0]) == {"id", "title", "text", "approved_at"}  # no rationale, note or reviewer
