"""The predictions API: latest, history and a new prediction on request; roles, clinics, audit, query counts."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from clinic.models import AuditEvent, Role
from clinic.testing import audit_write_queries
from conftest import scorable
from mltraining.ml.labels import CLASS_DISPLAY
from patients.demo import demo_cohort_load
from patients.models import Patient
from predictions import services
from predictions.models import Prediction

CLINICAL_ROLES = [Role.ADMIN, Role.DOCTOR, Role.STAFF]


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    services._loaded.clear()
    yield
    services._loaded.clear()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def cohort(clinic_a, patient_user_a):
    """30 synthetic patients of clinic A; the first is the record of the patient account `patient_user_a`."""
    demo_cohort_load(clinic=clinic_a, n_patients=30, seed=9, link_user=patient_user_a)
    return list(Patient.objects.filter(clinic=clinic_a).order_by("pk"))


@pytest.fixture
def patient(cohort):
    return scorable(cohort[1:])


@pytest.fixture
def own_record(cohort, patient_user_a):
    return Patient.objects.get(user=patient_user_a)


@pytest.fixture
def scored(active_model, patient):
    """Two predictions of `patient`, the newer one returned."""
    services.prediction_create(patient_id=patient.pk)
    return services.prediction_create(patient_id=patient.pk)


def url(name, patient):
    return reverse(f"predictions-api:{name}", args=[patient.pk])


# --- access ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "name"), [("get", "prediction-list"), ("post", "prediction-list"),
                                              ("get", "prediction-latest")])  # fmt: skip
def test_anonymous_callers_are_refused(api, patient, method, name):
    response = getattr(api, method)(url(name, patient))

    assert response.status_code == 401
    assert not AuditEvent.objects.filter(action__startswith="prediction").exists()


@pytest.mark.parametrize("role", CLINICAL_ROLES)
@pytest.mark.parametrize("name", ["prediction-list", "prediction-latest"])
def test_clinical_roles_read_predictions_of_their_clinics_patients(api, users_by_role, scored, patient, role, name):
    api.force_authenticate(users_by_role[role])

    assert api.get(url(name, patient)).status_code == 200


@pytest.mark.hazard(
    "H6", "A patient's account cannot read or request predictions, even their own: they are for clinicians"
)
@pytest.mark.parametrize(("method", "name"), [("get", "prediction-list"), ("post", "prediction-list"),
                                              ("get", "prediction-latest")])  # fmt: skip
def test_a_patient_cannot_read_or_request_predictions_even_on_their_own_record(
    api, patient_user_a, active_model, own_record, method, name
):
    services.prediction_create(patient_id=own_record.pk)
    api.force_authenticate(patient_user_a)

    response = getattr(api, method)(url(name, own_record))

    assert response.status_code == 403
    assert "decision support for clinicians" in response.json()["detail"]
    assert Prediction.objects.count() == 1


@pytest.mark.parametrize(("method", "name"), [("get", "prediction-list"), ("post", "prediction-list"),
                                              ("get", "prediction-latest")])  # fmt: skip
def test_a_doctor_of_another_clinic_gets_404_and_nothing_is_written(api, doctor_b, scored, patient, method, name):
    api.force_authenticate(doctor_b)

    response = getattr(api, method)(url(name, patient))

    assert response.status_code == 404
    assert Prediction.objects.count() == 2
    assert not AuditEvent.objects.filter(action__in=["prediction.view", "prediction.list"]).exists()


# --- reading ---------------------------------------------------------------------------------------------------


@pytest.mark.hazard(
    "H6", "The API gives a prediction with its model version, inputs, contributions and the decision-support notice"
)
def test_the_latest_prediction_carries_everything_to_show_and_explain_it(api, doctor_a, scored, patient):
    api.force_authenticate(doctor_a)

    body = api.get(url("prediction-latest", patient)).json()

    assert body["id"] == scored.pk
    assert body["patient"] == patient.pk
    assert body["status"] == "succeeded"
    assert body["error"] == ""
    assert body["probabilities"] == scored.probabilities
    assert body["predicted_class"] == scored.predicted_class
    assert body["predicted_class_display"] == CLASS_DISPLAY[scored.predicted_class]
    assert (body["risk_score"], body["risk_level"], body["risk_thresholds"]) == (
        scored.risk_score, scored.risk_level, [0.2, 0.5]
    )  # fmt: skip
    assert body["model_version"] == {
        "id": scored.model_version_id,
        "version": 1,
        "training_data": "Trained on this clinic's records: 1,200 patients, 310 doctor-confirmed diagnoses.",
    }
    assert (body["batch"], body["source"]) == (None, "online")
    assert body["contributions"] == scored.contributions
    assert body["inputs"] == scored.inputs
    assert body["explanation_method"] == scored.explanation_method != ""
    assert body["decision_support"] == "Decision support for clinicians, not a diagnosis."
    assert body["created_at"]


def test_latest_is_404_with_a_message_when_the_patient_has_no_prediction(api, doctor_a, active_model, patient):
    api.force_authenticate(doctor_a)

    response = api.get(url("prediction-latest", patient))

    assert response.status_code == 404
    assert response.json()["detail"] == "There is no prediction for this patient yet."


@pytest.mark.parametrize("name", ["prediction-list", "prediction-latest"])
def test_a_patient_id_beyond_any_database_integer_is_a_404(api, doctor_a, scored, name):
    api.force_authenticate(doctor_a)

    response = api.get(reverse(f"predictions-api:{name}", args=[2**128]))

    assert response.status_code == 404


def test_latest_can_ask_for_the_latest_successful_one(api, doctor_a, scored, active_model, patient):
    active_model.sha256 = "0" * 64
    active_model.save()
    services._loaded.clear()
    failed = services.prediction_create(patient_id=patient.pk)
    api.force_authenticate(doctor_a)

    latest = api.get(url("prediction-latest", patient)).json()
    succeeded = api.get(url("prediction-latest", patient), {"status": "succeeded"}).json()

    assert (latest["id"], latest["status"]) == (failed.pk, "failed")
    assert "cannot be used" in latest["error"]
    assert latest["probabilities"] == {}
    assert latest["contributions"] == []
    assert succeeded["id"] == scored.pk


def test_an_unknown_status_filter_is_a_400(api, doctor_a, scored, patient):
    api.force_authenticate(doctor_a)

    assert api.get(url("prediction-list", patient), {"status": "maybe"}).status_code == 400
    assert api.get(url("prediction-latest", patient), {"status": "maybe"}).status_code == 400


def test_the_history_is_newest_first_and_paginated(api, doctor_a, scored, patient):
    for _ in range(3):
        services.prediction_create(patient_id=patient.pk)
    api.force_authenticate(doctor_a)

    first = api.get(url("prediction-list", patient), {"page_size": 2}).json()
    second = api.get(first["next"]).json()

    assert first["count"] == 5
    ids = [row["id"] for row in first["results"] + second["results"]]
    assert ids == sorted(ids, reverse=True)


def test_reading_the_latest_writes_one_view_row(api, doctor_a, scored, patient):
    api.force_authenticate(doctor_a)

    api.get(url("prediction-latest", patient))

    event = AuditEvent.objects.get(action="prediction.view")
    assert (event.actor, event.patient_id, event.object_id) == (doctor_a, patient.pk, str(scored.pk))


def test_reading_the_history_writes_one_list_row(api, doctor_a, scored, patient):
    api.force_authenticate(doctor_a)

    api.get(url("prediction-list", patient), {"status": "succeeded"})

    event = AuditEvent.objects.get(action="prediction.list")
    assert (event.actor, event.patient_id) == (doctor_a, patient.pk)
    assert event.detail == {"filters": {"status": "succeeded", "page": 1}, "count": 2}


# --- requesting a prediction -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", CLINICAL_ROLES)
def test_clinical_roles_request_a_prediction_and_get_it_back(api, users_by_role, active_model, patient, role):
    api.force_authenticate(users_by_role[role])

    response = api.post(url("prediction-list", patient))

    assert response.status_code == 201
    prediction = Prediction.objects.get(patient=patient)
    assert response.json()["id"] == prediction.pk
    assert response.json()["status"] == "succeeded"
    event = AuditEvent.objects.get(action="prediction.create")
    assert event.actor == users_by_role[role]


def test_a_request_without_an_active_model_returns_a_failed_prediction_with_no_model(api, doctor_a, patient):
    api.force_authenticate(doctor_a)

    response = api.post(url("prediction-list", patient))

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["model_version"], body["error"]) == (
        "failed", None, "the clinic has no active model yet"
    )  # fmt: skip
    assert body["id"] == Prediction.objects.get(patient=patient).pk


def test_a_request_with_an_unusable_model_returns_the_failed_prediction(api, doctor_a, active_model, patient):
    active_model.sha256 = "0" * 64
    active_model.save()
    api.force_authenticate(doctor_a)

    response = api.post(url("prediction-list", patient))

    assert response.status_code == 201
    assert response.json()["status"] == "failed"
    assert response.json()["error"].startswith("Model version 1 cannot be used")


def test_a_session_request_needs_the_csrf_token(doctor_a, active_model, patient):
    api = APIClient(enforce_csrf_checks=True)
    api.force_login(doctor_a)

    response = api.post(url("prediction-list", patient))

    assert response.status_code == 403
    assert not Prediction.objects.exists()


# --- query counts ----------------------------------------------------------------------------------------------

LIST_READS = 3  # the scoped patient, count, page (model version joined)
LATEST_READS = 1  # the latest, its patient in scope (model version joined)


@pytest.mark.parametrize(("name", "reads"), [("prediction-list", LIST_READS), ("prediction-latest", LATEST_READS)])
def test_the_endpoints_run_a_constant_number_of_queries(
    api, doctor_a, active_model, patient, name, reads, django_assert_num_queries
):
    api.force_authenticate(doctor_a)
    services.prediction_create(patient_id=patient.pk)
    with django_assert_num_queries(reads + audit_write_queries()):
        api.get(url(name, patient))
    for _ in range(19):
        services.prediction_create(patient_id=patient.pk)

    with django_assert_num_queries(reads + audit_write_queries()):
        response = api.get(url(name, patient))

    assert response.status_code == 200
    if name == "prediction-list":
        assert len(response.json()["results"]) == 20


# --- schema ----------------------------------------------------------------------------------------------------


def test_the_schema_documents_the_prediction_endpoints(api, staff_a):
    api.force_authenticate(staff_a)

    schema = api.get("/api/schema/").content.decode()

    assert "/api/v1/patients/{patient_pk}/predictions/:" in schema
    assert "/api/v1/patients/{patient_pk}/predictions/latest/:" in schema
    assert "decision_support" in schema
