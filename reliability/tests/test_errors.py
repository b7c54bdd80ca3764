"""Case 21: a server error shows a generic page with a request id; logs hold no secrets or patient records."""

import logging
import uuid

import pytest
from django.test import Client
from knox.models import AuthToken

from clinic.testing import wait_for, worker_start, worker_stop
from patients.tests.factories import PatientFactory
from predictions.models import Prediction

PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture
def failing_urls(settings):
    settings.ROOT_URLCONF = "reliability.tests.urls_failing"
    settings.DEBUG = False


@pytest.fixture
def patient(clinic_a):
    return PatientFactory(clinic=clinic_a, given_name="Philippa", family_name="Quarrington", mrn="SECRET-MRN-77")


@pytest.mark.reliability(21, "A portal page that raises: generic page with the request id of the response header, "
                             "no traceback, exception text or patient data")  # fmt: skip
def test_a_server_error_shows_a_generic_page_with_the_request_id(failing_urls, doctor_a, patient):
    client = Client(raise_request_exception=False)
    client.force_login(doctor_a)

    response = client.get("/boom/")

    page = response.content.decode()
    assert response.status_code == 500
    assert response["X-Request-ID"] in page
    assert "Something went wrong" in page
    for leak in ("Traceback", "RuntimeError", "unexpected state", "patient #", "urls_failing", "SECRET-MRN"):
        assert leak not in page.replace(response["X-Request-ID"], ""), leak


@pytest.mark.reliability(21, "An API call that raises: JSON body with the request id and no details")
def test_an_api_server_error_is_json_with_the_request_id(failing_urls, doctor_a, patient):
    client = Client(raise_request_exception=False)
    token = AuthToken.objects.create(user=doctor_a)[1]

    response = client.get("/api/v1/boom/", HTTP_AUTHORIZATION=f"Token {token}", HTTP_X_REQUEST_ID="trace-42")

    assert response.status_code == 500
    assert response.json() == {"detail": response.json()["detail"], "request_id": response["X-Request-ID"]}
    assert response["X-Client-Request-ID"] == "trace-42"  # the caller's own id, handed back beside ours
    assert "unexpected" not in response.json()["detail"]


@pytest.mark.reliability(21, "Sign-in (right and wrong password), a token API call, reading and editing a patient "
                             "and a failing request: the captured log has no password, token, MRN or name")  # fmt: skip
def test_logs_hold_no_password_token_or_patient_record(failing_urls, doctor_a, patient, caplog):
    doctor_a.set_password(PASSWORD)
    doctor_a.save()
    token = AuthToken.objects.create(user=doctor_a)[1]
    caplog.set_level(logging.DEBUG)
    client = Client(raise_request_exception=False)

    client.post("/accounts/login/", {"username": doctor_a.username, "password": PASSWORD + "x"})
    client.post("/accounts/login/", {"username": doctor_a.username, "password": PASSWORD})
    client.get(f"/patients/{patient.pk}/")
    client.post(f"/patients/{patient.pk}/edit/", {"given_name": "Philippa", "family_name": "", "mrn": patient.mrn})
    Client().get(f"/api/v1/patients/{patient.pk}/", HTTP_AUTHORIZATION=f"Token {token}")
    Client().get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Token {token}x")  # a wrong token
    client.post("/boom/", {"password": PASSWORD, "note": "Quarrington"})

    assert "Internal Server Error: /boom/" in caplog.text  # the failure itself is logged, with its traceback
    for secret in (PASSWORD, token, "SECRET-MRN-77", "Philippa", "Quarrington"):
        assert secret not in caplog.text, secret


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.reliability(21, "A real worker scores a patient: its log names the task and counts, never the "
                             "patient's name, MRN or values")  # fmt: skip
def test_a_worker_log_holds_no_patient_record(clinic_a, doctor_a, active_model, trained_artifact):
    from clinic.celery import app
    from patients import services
    from patients.services import ObservationInput
    from predictions.tasks import predict_patients

    patient = PatientFactory(clinic=clinic_a, given_name="Philippa", family_name="Quarrington", mrn="SECRET-MRN-77")
    services.observations_record(
        patient=patient, by=doctor_a, effective_at=patient.created_at,
        entries=[ObservationInput("glucose", 7.31, "mmol/L"), ObservationInput("hemoglobin", 13.37, "g/dL")],
    )  # fmt: skip
    Prediction.objects.filter(patient=patient).delete()  # scored in-process on commit; now by the worker
    queue = f"test-{uuid.uuid4().hex[:8]}"
    worker = worker_start(queue, env={"MODEL_DIR": str(trained_artifact[0]), "LOG_LEVEL": "DEBUG"})
    try:
        app.conf.task_always_eager = False
        predict_patients.apply_async(args=[[patient.pk]], queue=queue)
        scored = wait_for(lambda: Prediction.objects.filter(patient=patient).exists(), seconds=90)
    finally:
        log = worker_stop(worker)
    assert scored, log
    assert "predict_patients" in log
    assert "succeeded" in log
    for secret in ("SECRET-MRN-77", "Philippa", "Quarrington", "7.31", "13.37"):
        assert secret not in log, secret
