"""Case 13: every read of patient data writes exactly the audit rows docs/AUDIT.md documents.

The table in docs/AUDIT.md is the contract: each of its rows names a read below, and the test performs that
read and compares the audit rows it wrote with the documented ones. A read without a documented row, or a
documented row without a read, fails.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from clinic.models import AuditEvent
from patients import services as patient_services
from patients.contact import contact_request_create
from patients.models import ContactRequest, ImportJob, Observation, Patient
from patients.services import ObservationInput
from patients.tests.factories import PatientFactory
from predictions import services as prediction_services
from predictions.models import Prediction
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, Recommendation
from recommendations.services import item_approve
from recommendations.tests.factories import prediction_for

AUDIT_DOC = Path(__file__).resolve().parents[2] / "docs" / "AUDIT.md"
_ROW = re.compile(r"^\|\s*`(?P<key>[a-z_]+)`\s*\|(?P<where>[^|]*)\|(?P<rows>[^|]*)\|\s*$")
_ITEM = re.compile(r"`(?P<action>[a-z_.]+)`(?P<patient> for the patient)?(?: × (?P<count>\d+))?")


def documented_reads() -> dict[str, Counter]:
    """{read key: Counter of (action, names the patient)} from the table in docs/AUDIT.md."""
    reads = {}
    for line in AUDIT_DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            rows = Counter()
            for item in _ITEM.finditer(match["rows"]):
                rows[(item["action"], bool(item["patient"]))] += int(item["count"] or 1)
            reads[match["key"]] = rows
    return reads


@dataclass
class World:
    patient: Patient
    doctor: Client
    admin: Client
    patient_client: Client
    doctor_token: str
    prediction: Prediction
    recommendation: Recommendation
    clinic_slug: str


READS: dict[str, Callable[[World], object]] = {}


def read(key: str):
    def register(function):
        READS[key] = function
        return function

    return register


def _get(client: Client, url: str, **headers) -> None:
    response = client.get(url, **headers)
    assert response.status_code == 200, (url, response.status_code)


def _api(world: World, url: str) -> None:
    _get(Client(), url, HTTP_AUTHORIZATION=f"Token {world.doctor_token}")


@read("portal_patient_list")
def _(w):
    _get(w.doctor, reverse("patients:list"))


@read("portal_patient_search")
def _(w):
    _get(w.doctor, reverse("patients:list") + f"?q={w.patient.mrn}")


@read("portal_patient_detail")
def _(w):
    _get(w.doctor, reverse("patients:detail", args=[w.patient.pk]))


@read("portal_patient_edit_form")
def _(w):
    _get(w.doctor, reverse("patients:edit", args=[w.patient.pk]))


@read("portal_results_form")
def _(w):
    _get(w.doctor, reverse("patients:panel", args=[w.patient.pk]))


@read("portal_result_correction_form")
def _(w):
    result = Observation.objects.filter(patient=w.patient).first()
    _get(w.doctor, reverse("patients:observation_amend", args=[w.patient.pk, result.pk]))


@read("portal_review_queue")
def _(w):
    _get(w.doctor, reverse("recommendations:queue"))


@read("portal_review_page")
def _(w):
    _get(w.doctor, reverse("recommendations:review", args=[w.recommendation.pk]))


@read("portal_my_advice")
def _(w):
    _get(w.patient_client, reverse("recommendations:mine"))


@read("portal_contact_form_about_advice")
def _(w):
    item = w.recommendation.items.get(status="approved")
    _get(w.patient_client, reverse("patients:contact_new") + f"?kind=appointment&about={item.pk}")


@read("portal_my_requests")
def _(w):
    _get(w.patient_client, reverse("patients:contact_mine"))


@read("portal_patient_requests")
def _(w):
    _get(w.doctor, reverse("patients:requests"))


@read("portal_patient_request")
def _(w):
    _get(w.doctor, reverse("patients:request_detail", args=[ContactRequest.objects.get(patient=w.patient).pk]))


@read("portal_imported_diagnoses")
def _(w):
    _get(w.doctor, reverse("imports:diagnoses"))


def _finished_import_job(world: World) -> ImportJob:
    return ImportJob.objects.create(clinic=world.patient.clinic, kind="fhir", status="succeeded",
                                    summary={"patients": {"created": [world.patient.mrn]}})  # fmt: skip


@read("portal_import_job")
def _(w):
    _get(w.doctor, reverse("imports:job_detail", args=[_finished_import_job(w).pk]))


@read("api_import_job")
def _(w):
    _api(w, reverse("imports-api:job-detail", args=[_finished_import_job(w).pk]))


@read("portal_own_patient_page")
def _(w):
    _get(w.patient_client, reverse("patients:detail", args=[w.patient.pk]))


@read("portal_my_results")
def _(w):
    _get(w.patient_client, reverse("patients:mine"))


@read("portal_my_report")
def _(w):
    _get(w.patient_client, reverse("patients:my_report"))


@read("portal_patient_report")
def _(w):
    _get(w.doctor, reverse("patients:report", args=[w.patient.pk]))


@read("portal_population_dashboard")
def _(w):
    _get(w.doctor, reverse("patients:dashboard"))


@read("portal_review_dashboard")
def _(w):
    _get(w.doctor, reverse("recommendations:dashboard"))


@read("portal_fhir_download")
def _(w):
    _get(w.doctor, reverse("fhir:patient-export", args=[w.patient.pk]))


@read("api_patient_list")
def _(w):
    _api(w, reverse("patients-api:patient-list"))


@read("api_patient_detail")
def _(w):
    _api(w, reverse("patients-api:patient-detail", args=[w.patient.pk]))


@read("api_observations")
def _(w):
    _api(w, reverse("patients-api:observation-list", args=[w.patient.pk]))


@read("api_conditions")
def _(w):
    _api(w, reverse("patients-api:condition-list", args=[w.patient.pk]))


@read("api_predictions")
def _(w):
    _api(w, reverse("predictions-api:prediction-list", args=[w.patient.pk]))


@read("api_latest_prediction")
def _(w):
    _api(w, reverse("predictions-api:prediction-latest", args=[w.patient.pk]))


@read("api_latest_recommendation")
def _(w):
    _api(w, reverse("recommendations-api:recommendation-latest", args=[w.patient.pk]))


@read("api_review_queue")
def _(w):
    _api(w, reverse("recommendations-api:queue"))


@read("api_my_advice")
def _(w):
    _get(w.patient_client, reverse("recommendations-api:my-advice"))


@read("api_fhir_export")
def _(w):
    _api(w, reverse("fhir:patient-export", args=[w.patient.pk]))


@read("admin_prediction_list")
def _(w):
    _get(w.admin, reverse("admin:predictions_prediction_changelist"))


@read("admin_prediction_page")
def _(w):
    _get(w.admin, reverse("admin:predictions_prediction_change", args=[w.prediction.pk]))


@read("admin_recommendation_list")
def _(w):
    _get(w.admin, reverse("admin:recommendations_recommendation_changelist"))


@read("admin_recommendation_page")
def _(w):
    _get(w.admin, reverse("admin:recommendations_recommendation_change", args=[w.recommendation.pk]))


@read("admin_feedback_list")
def _(w):
    _get(w.admin, reverse("admin:recommendations_feedbackevent_changelist"))


@read("admin_feedback_page")
def _(w):
    event = FeedbackEvent.objects.get(patient=w.patient)
    _get(w.admin, reverse("admin:recommendations_feedbackevent_change", args=[event.pk]))


@read("admin_audit_list")
def _(w):
    _get(w.admin, reverse("admin:clinic_auditevent_changelist"))


@read("admin_audit_page")
def _(w):
    event = AuditEvent.objects.filter(patient_id=w.patient.pk).first()
    _get(w.admin, reverse("admin:clinic_auditevent_change", args=[event.pk]))


@read("job_batch_scoring")
def _(w):
    with TestCase.captureOnCommitCallbacks(execute=True):  # the chunks are enqueued on commit
        prediction_services.prediction_batch_start(clinic=w.patient.clinic, by=None, trigger="schedule")


@read("command_export_fhir")
def _(w):
    call_command("export_fhir", "--clinic", w.clinic_slug, "--mrn", w.patient.mrn, "-o", "/dev/null")


def _ehr_call(w: World, mrn: str) -> None:
    """patient-view from a registered EHR, signed as the specification asks (cdshooks/tests/conftest.py)."""
    from cdshooks.models import EhrConnection
    from cdshooks.tests.conftest import BASE, ISS, MRN_SYSTEM, Ehr, patient_view_body

    ehr, path = Ehr(), "/cds-services/patient-view"
    EhrConnection.objects.create(clinic=w.patient.clinic, name="EHR", iss=ISS, jwks=ehr.jwks(), audience=BASE,
                                 mrn_system=MRN_SYSTEM)  # fmt: skip
    response = Client().post(path, data=patient_view_body(mrn=mrn), content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {ehr.token(aud=BASE + path)}")  # fmt: skip
    assert response.status_code == 200, response.content


@read("cds_hooks_patient_view")
def _(w):
    _ehr_call(w, w.patient.mrn)


@read("cds_hooks_patient_view_not_registered")
def _(w):
    _ehr_call(w, "NOT-REGISTERED-HERE")


@pytest.fixture
def world(clinic_a, doctor_a, admin_a, patient_user_a, active_model) -> World:
    patient = PatientFactory(clinic=clinic_a, user=patient_user_a, sex="male")
    PatientFactory(clinic=clinic_a)  # a second patient: list reads name no single patient
    patient_services.observations_record(
        patient=patient, by=doctor_a, effective_at=timezone.now() - datetime.timedelta(days=1),
        entries=[ObservationInput("hemoglobin", 15.1, "g/dL"), ObservationInput("glucose", 5.2, "mmol/L")],
    )  # fmt: skip
    prediction = prediction_for(patient, version=active_model, ldl=5.2)
    recommendation = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)[0]
    item_approve(item=recommendation.items.order_by("position").first(), by=doctor_a)
    contact_request_create(patient=patient, by=patient_user_a, kind="question", message="When do I repeat it?")
    clients = []
    for user in (doctor_a, admin_a, patient_user_a):
        client = Client()
        client.force_login(user)
        clients.append(client)
    token = AuthToken.objects.create(user=doctor_a)[1]
    return World(patient, *clients, token, prediction, recommendation, clinic_a.slug)


def _patient_rows(world: World, since: int) -> Counter:
    rows = AuditEvent.objects.filter(pk__gt=since).values_list("action", "patient_id")
    return Counter((action, patient_id == world.patient.pk) for action, patient_id in rows)


def test_every_documented_read_is_tried_and_every_read_is_documented():
    assert set(documented_reads()) == set(READS)


@pytest.mark.reliability(13, "Each of the portal, API, admin, batch and command reads listed in docs/AUDIT.md, "
                             "one at a time, comparing the audit rows written with the documented ones")  # fmt: skip
@pytest.mark.parametrize("key", sorted(READS))
def test_a_read_writes_exactly_the_documented_audit_rows(world, key):
    since = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    READS[key](world)
    written = _patient_rows(world, since)
    assert written == documented_reads().get(key), f"{key}: wrote {dict(written)}"
