"""Reliability cases 1, 2, 3 and 6: who reaches which object, which fields a request may set, who reaches the
admin and its retraining actions, and CSRF on every session-authenticated write.

The URL tests read the resolver, so a URL is covered the day it is added: one this file does not know fails
`test_every_url_is_known_to_this_file`; once it is listed with the object it names, the matrix tries it as
every role of clinic A and as clinic B's doctor and admin.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern
from django.utils import timezone
from knox.models import AuthToken

from cdshooks.models import EhrConnection
from clinic.audit import audit_record
from clinic.models import AuditEvent, AuditOutcome, Clinic, Role, User
from clinic.testing import session_read_queries
from clinic.tests.factories import ClinicFactory, UserFactory
from labfeed.models import HL7Message, LabConnection, UnmatchedResult
from labfeed.services import hl7_message_receive
from mltraining.models import DriftReport, ModelStatus, ModelVersion, TrainingRun
from mltraining.tests.factories import ModelVersionFactory
from patients.contact import contact_request_create
from patients.forms import PatientForm
from patients.imports import uploads
from patients.imports.services import labs_import
from patients.models import (
    Condition,
    ContactRequest,
    ImportJob,
    Medication,
    Observation,
    Patient,
    TrustedSource,
    VerificationStatus,
)
from patients.services import ObservationInput, observations_record
from patients.tests.factories import ConditionFactory, PatientFactory
from predictions.models import Prediction, PredictionBatch
from recommendations import protocols
from recommendations import services as recommendation_services
from recommendations.generation import recommendations_generate
from recommendations.models import (
    FeedbackEvent,
    ItemStatus,
    RankerSnapshot,
    Recommendation,
    RecommendationItem,
    StandingProtocol,
)
from recommendations.tests.factories import prediction_for

ADMIN, DOCTOR, STAFF, PATIENT = Role.ADMIN, Role.DOCTOR, Role.STAFF, Role.PATIENT
CLINICAL = frozenset({ADMIN, DOCTOR, STAFF})
ADMINS, DOCTORS, PATIENTS = frozenset({ADMIN}), frozenset({DOCTOR}), frozenset({PATIENT})
DASHBOARD_ROLES = frozenset({ADMIN, DOCTOR})
OTHER_CLINIC = ("doctor_b", "admin_b")
API_NAMESPACES = {"patients-api", "imports-api", "fhir", "predictions-api", "recommendations-api"}
DENIED = {403, 404}
CSRF_SECRET = "k" * 32  # a CSRF secret as the cookie holds it


# --- the URLs the project serves ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str  # the namespaced URL name, or the route itself when the pattern has no name
    route: str
    arguments: frozenset[str]
    named: bool

    @property
    def is_admin(self) -> bool:
        return self.route.startswith("admin/")

    @property
    def is_api(self) -> bool:
        return self.name.split(":")[0] in API_NAMESPACES


def _arguments(pattern) -> set[str]:
    return set(pattern.converters) if isinstance(pattern, RoutePattern) else set(pattern.regex.groupindex)


def _walk(patterns, prefix: str, namespace: str, arguments: frozenset[str]):
    for entry in patterns:
        route = prefix + str(entry.pattern)
        found = arguments | _arguments(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, route, inner, frozenset(found))
        else:
            name = f"{namespace}{entry.name}" if entry.name else route
            yield Route(name, route, frozenset(found - set(entry.default_args)), bool(entry.name))


ROUTES = list(_walk(get_resolver().url_patterns, "", "", frozenset()))
PORTAL_AND_API = [route for route in ROUTES if not route.is_admin]
ADMIN_ROUTES = [route for route in ROUTES if route.is_admin]


# --- clinic A's objects ------------------------------------------------------------------------------------------


@dataclass
class World:
    """One object of every kind in clinic A, a patient of clinic B, and the users of both clinics."""

    clinic: Clinic
    other_clinic: Clinic
    users: dict[str, User]  # clinic A's by role, and "doctor_b" / "admin_b"
    patient: Patient  # clinic A's; not the patient account's own record
    own_record: Patient  # the record of clinic A's patient account
    other_patient: Patient  # clinic B's
    condition: Condition
    observation: Observation  # a result of `patient`, to correct or withdraw
    version: ModelVersion
    prediction: Prediction
    rec: Recommendation
    item: RecommendationItem  # pending
    feedback: FeedbackEvent
    batch: PredictionBatch
    run: TrainingRun
    drift: DriftReport
    ranker: RankerSnapshot
    protocol: StandingProtocol  # active, signed by clinic A's doctor
    audit_event: AuditEvent
    trusted_source: TrustedSource
    lab_connection: LabConnection
    ehr_connection: EhrConnection
    hl7_message: HL7Message
    unmatched: UnmatchedResult  # a lab's results held for a patient its message did not identify
    upload_token: str
    import_job: ImportJob
    contact_request: ContactRequest  # a question the patient account sent about its own record
    upload_entry: dict[str, Any] = field(repr=False)

    def user(self, key: str) -> User:
        return self.users[key]


CSV = b"mrn,analyte,value,unit,time\nA-100,glucose,126,mg/dL,2025-03-01T08:30\n"


@pytest.fixture
def world(clinic_a, clinic_b, users_by_role, doctor_b, admin_b, settings, tmp_path) -> World:
    settings.VAR_DIR = tmp_path  # the import's uploaded files
    settings.MODEL_DIR = tmp_path / "models"
    doctor_a, staff_a = users_by_role[DOCTOR], users_by_role[STAFF]
    patient = PatientFactory(clinic=clinic_a, mrn="A-100", sex="male")
    version = ModelVersionFactory(clinic=clinic_a, status=ModelStatus.CANDIDATE)
    prediction = prediction_for(patient, version=version, sex="male", risk_level="high", hba1c=7.2, ldl=5.2)
    rec = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)[0]
    pending, annotated = rec.items.filter(is_headline=False).order_by("position")[:2]
    recommendation_services.item_annotate(item=annotated, by=doctor_a, note="Discussed at the visit.")
    dry_run = labs_import(by=staff_a, clinic=clinic_a, data=CSV, filename="results.csv", dry_run=True)
    lab = LabConnection.objects.create(clinic=clinic_a, name="Lab", sending_facility="LAB", assigning_authority="A")
    hl7_message_receive(raw="MSH|^~\\&|LIS|LAB|||20260301||ORU^R01|M1|P|2.5.1\rPID|1||A-999^^^A\r"
                            "OBR|1|||P|||202603010830\rOBX|1|NM|2823-3^K^LN||4.2|mmol/L|||||F")  # fmt: skip
    own_record = PatientFactory(clinic=clinic_a, mrn="A-200", user=users_by_role[PATIENT])
    question = contact_request_create(patient=own_record, by=users_by_role[PATIENT], kind="question", message="When?")
    run = version.training_run
    run.plots = {"roc": "roc.png"}
    run.save(update_fields=["plots"])
    return World(
        clinic=clinic_a,
        other_clinic=clinic_b,
        users={**users_by_role, "doctor_b": doctor_b, "admin_b": admin_b},
        patient=patient,
        own_record=own_record,
        other_patient=PatientFactory(clinic=clinic_b, mrn="B-100"),
        condition=ConditionFactory(patient=patient, recorded_by=doctor_a),
        observation=observations_record(
            patient=patient,
            by=staff_a,
            entries=[ObservationInput("potassium", 4.2, "mmol/L")],
            effective_at=datetime.datetime(2026, 3, 1, 8, 30, tzinfo=datetime.UTC),
        )[0],
        version=version,
        prediction=prediction,
        rec=rec,
        item=pending,
        feedback=FeedbackEvent.objects.get(item=annotated),
        batch=PredictionBatch.objects.create(clinic=clinic_a, trigger="portal", total=0),
        run=run,
        drift=DriftReport.objects.create(
            clinic=clinic_a, model_version=version, window_days=30, n_recent=0, overall_band="stable"
        ),
        ranker=RankerSnapshot.objects.create(clinic=clinic_a, version=1, events=0, patients=0, data=b""),
        protocol=protocols.protocol_sign(
            by=doctor_a,
            title="Routine BP advice",
            advice_codes=["bp_stage1_lifestyle"],
            starts_on=timezone.localdate(),
            ends_on=timezone.localdate() + datetime.timedelta(days=30),
        ),
        audit_event=audit_record(actor=doctor_a, action="patient.view", target=patient, patient_id=patient.pk),
        trusted_source=TrustedSource.objects.create(
            clinic=clinic_a, source="fhir", reason="The EHR's export", trusted_by=users_by_role[ADMIN]
        ),
        lab_connection=lab,
        ehr_connection=EhrConnection.objects.create(
            clinic=clinic_a, name="EHR", iss="https://ehr.a.example", jwks={"keys": [{"kty": "EC"}]}, mrn_system="urn:a"
        ),
        hl7_message=HL7Message.objects.get(connection=lab),
        unmatched=UnmatchedResult.objects.get(clinic=clinic_a),
        upload_token=uploads.upload_save(CSV),
        import_job=ImportJob.objects.create(clinic=clinic_a, created_by=staff_a, kind="fhir", status="succeeded"),
        contact_request=question,
        upload_entry={
            "filename": "results.csv",
            "format": "auto",
            "mrn": "",
            "skip_bad_rows": False,
            "result": dry_run.summary(max_problems=0),
        },
    )


# --- what each URL names, and who may use it ---------------------------------------------------------------------

Body = dict[str, Any] | Callable[[World], dict[str, Any]]


def body_of(body: Body | None, w: World) -> dict[str, Any]:
    return (body(w) if callable(body) else body) or {}


@dataclass(frozen=True)
class Target:
    """A URL to try: the arguments naming clinic A's object, the roles of clinic A that may use it, and the
    methods tried, each with a valid body (so that a check that broke would let the write through)."""

    arguments: Callable[[World], dict[str, Any]]
    allowed: frozenset[str]
    methods: dict[str, Body | None]
    session_owner: str = ""  # the object lives in this user's session (an upload), not only in the clinic


def _no_arguments(w: World) -> dict[str, Any]:
    return {}


def _patient(w: World) -> dict[str, Any]:
    return {"pk": w.patient.pk}


def _nested(w: World) -> dict[str, Any]:
    return {"patient_pk": w.patient.pk}


def _item(w: World) -> dict[str, Any]:
    return {"pk": w.item.pk}


def _token(w: World) -> dict[str, Any]:
    return {"token": w.upload_token}


def _protocol_form(w: World) -> dict[str, Any]:
    today = timezone.localdate()
    return {"title": "Routine BP advice", "advice": "bp_stage1_lifestyle", "sex": "", "starts_on": today.isoformat(),
            "ends_on": (today + datetime.timedelta(days=30)).isoformat()}  # fmt: skip


def _patient_form(w: World) -> dict[str, Any]:
    values = model_to_dict(w.patient, fields=PatientForm._meta.fields)
    return {key: value for key, value in values.items() if value is not None} | {"family_name": "Changed"}


GET = {"GET": None}
POST = {"POST": None}
OBSERVATION = {"analyte": "glucose", "value": 99, "unit": "mg/dL", "effective_at": "2026-03-01T08:30:00Z"}
CONDITION = {"code": "I10", "display": "Hypertension"}
CONDITION_FORM = {**CONDITION, "clinical_status": "active", "verification_status": "provisional"}
NEW_PATIENT = {"mrn": "N-1", "given_name": "Nora", "family_name": "Vale", "birth_date": "1975-04-02", "sex": "female"}
UPLOADER = frozenset({STAFF})  # staff_a uploaded the file; no one else's session knows its token

OBJECT_URLS: dict[str, Target] = {
    # the portal
    "patients:detail": Target(_patient, CLINICAL, GET),
    "patients:edit": Target(_patient, CLINICAL, {"GET": None, "POST": _patient_form}),
    "patients:panel": Target(_patient, CLINICAL, {"GET": None, "POST": {"effective_at": "2026-03-01T08:30",
                                                                        "glucose": 99}}),
    "patients:condition_add": Target(_patient, CLINICAL, {"GET": None, "POST": CONDITION_FORM}),
    "patients:critical_acknowledge": Target(_patient, DOCTORS, POST),
    "patients:observation_amend": Target(lambda w: {"pk": w.patient.pk, "observation_pk": w.observation.pk}, CLINICAL,
                                         {"GET": None, "POST": {"action": "withdraw", "reason": "Entered twice."}}),
    "patients:medication_add": Target(_patient, CLINICAL, {"GET": None, "POST": {"name": "Metformin"}}),
    "patients:allergy_add": Target(_patient, CLINICAL, {"GET": None, "POST": {"substance": "Penicillin"}}),
    "patients:report": Target(_patient, CLINICAL, GET),
    "imports:preview": Target(_token, UPLOADER, GET, session_owner=STAFF),
    "imports:confirm": Target(_token, UPLOADER, POST, session_owner=STAFF),
    "imports:result": Target(_token, UPLOADER, GET, session_owner=STAFF),
    "imports:report": Target(_token, UPLOADER, GET, session_owner=STAFF),
    "imports:job_detail": Target(lambda w: {"pk": w.import_job.pk}, CLINICAL, GET),
    "imports:job_progress": Target(lambda w: {"pk": w.import_job.pk}, CLINICAL, GET),
    "predictions:score": Target(_patient, CLINICAL, POST),
    "predictions:batch_detail": Target(lambda w: {"pk": w.batch.pk}, ADMINS, GET),
    "predictions:batch_progress": Target(lambda w: {"pk": w.batch.pk}, ADMINS, GET),
    "mltraining:model_card": Target(lambda w: {"pk": w.version.pk}, ADMINS, GET),
    "recommendations:review": Target(lambda w: {"pk": w.rec.pk}, DOCTORS, GET),
    "recommendations:item_approve": Target(_item, DOCTORS, POST),
    "recommendations:item_reject": Target(_item, DOCTORS, {"POST": {"reason": "not_relevant", "comment": "No."}}),
    "recommendations:item_edit": Target(_item, DOCTORS, {"POST": {"patient_text": "Walk daily."}}),
    "recommendations:item_annotate": Target(_item, DOCTORS, {"POST": {"note": "Seen."}}),
    "patients:request_detail": Target(lambda w: {"pk": w.contact_request.pk}, CLINICAL,
                                      {"GET": None, "POST": {"action": "start", "reply": "We will call you."}}),
    "recommendations:protocol_revoke": Target(lambda w: {"pk": w.protocol.pk}, DOCTORS,
                                              {"POST": {"reason": "Guideline changed."}}),
    "recommendations:protocol_apply": Target(lambda w: {"pk": w.protocol.pk}, DOCTORS, POST),
    "labfeed:unmatched_detail": Target(lambda w: {"pk": w.unmatched.pk}, CLINICAL, {"GET": None,
                                                                                    "POST": {"mrn": "A-100"}}),
    # the API
    "patients-api:patient-detail": Target(_patient, CLINICAL, {"GET": None, "PATCH": {"family_name": "Changed"}}),
    "patients-api:observation-list": Target(_nested, CLINICAL, {"GET": None, "POST": OBSERVATION}),
    "patients-api:condition-list": Target(_nested, CLINICAL, {"GET": None, "POST": CONDITION}),
    "patients-api:condition-detail": Target(lambda w: {"patient_pk": w.patient.pk, "pk": w.condition.pk},
                                            CLINICAL, {"PATCH": {"note": "Changed."}}),
    "fhir:patient-export": Target(_patient, CLINICAL, GET),
    "imports-api:job-detail": Target(lambda w: {"pk": w.import_job.pk}, CLINICAL, GET),
    "predictions-api:prediction-list": Target(_nested, CLINICAL, {"GET": None, "POST": None}),
    "predictions-api:prediction-latest": Target(_nested, CLINICAL, GET),
    "recommendations-api:recommendation-latest": Target(_nested, CLINICAL, GET),
    "recommendations-api:item-review": Target(_item, DOCTORS, {"POST": {"action": "annotate", "note": "Seen."}}),
}  # fmt: skip

# Pages and endpoints that name no object, and the roles that may use them (everyone else: 403 or 404).
ROLE_PAGES: dict[str, Target] = {
    "patients:list": Target(_no_arguments, CLINICAL, GET),
    "patients:create": Target(_no_arguments, CLINICAL, GET),
    "patients:dashboard": Target(_no_arguments, DASHBOARD_ROLES, GET),
    "patients:dashboard_status": Target(_no_arguments, DASHBOARD_ROLES, GET),
    "imports:upload": Target(_no_arguments, CLINICAL, GET),
    "imports:diagnoses": Target(_no_arguments, DOCTORS, {"GET": None, "POST": None}),
    "imports:job_list": Target(_no_arguments, CLINICAL, GET),
    "imports:job_new": Target(_no_arguments, CLINICAL, {"GET": None, "POST": None}),
    "predictions:batch_list": Target(_no_arguments, ADMINS, GET),
    "predictions:batch_start": Target(_no_arguments, ADMINS, POST),
    "mltraining:dashboard": Target(_no_arguments, ADMINS, GET),
    "recommendations:queue": Target(_no_arguments, DOCTORS, GET),
    "recommendations:bulk_approve": Target(_no_arguments, DOCTORS, POST),
    "recommendations:mine": Target(_no_arguments, PATIENTS, GET),
    "patients:mine": Target(_no_arguments, PATIENTS, GET),
    "patients:my_report": Target(_no_arguments, PATIENTS, GET),
    "duty": Target(_no_arguments, DOCTORS, POST),  # the doctor's own on-duty switch
    "recommendations:dashboard": Target(_no_arguments, DASHBOARD_ROLES, GET),
    "recommendations:protocols": Target(_no_arguments, DOCTORS, GET),
    "recommendations:protocol_sign": Target(_no_arguments, DOCTORS, {"GET": None, "POST": _protocol_form}),
    "labfeed:unmatched": Target(_no_arguments, CLINICAL, GET),
    "patients:requests": Target(_no_arguments, CLINICAL, GET),
    "patients:contact_mine": Target(_no_arguments, PATIENTS, GET),
    "patients:contact_new": Target(
        _no_arguments, PATIENTS, {"GET": None, "POST": {"kind": "question", "message": "Is it urgent?"}}
    ),
    # Its GET is a list scoped to the user (a patient's account: its own record): see the scoped-list tests.
    "patients-api:patient-list": Target(_no_arguments, CLINICAL, {"POST": NEW_PATIENT}),
    "imports-api:labs": Target(_no_arguments, CLINICAL, POST),
    "imports-api:job-list": Target(_no_arguments, CLINICAL, {"GET": None, "POST": None}),
    "fhir:import": Target(_no_arguments, CLINICAL, POST),
    "recommendations-api:queue": Target(_no_arguments, DOCTORS, GET),
    "recommendations-api:my-advice": Target(_no_arguments, PATIENTS, GET),
}

# Authenticated by an EHR's signed JWT on every call, never by a session (so CSRF does not apply): the JWT's checks
# and the clinic scope of what they answer are tried in cdshooks/tests.
NOT_SESSION = {
    "cdshooks:service": "a CDS Hooks service (cdshooks/tests/test_auth.py, test_patient_view.py)",
    "cdshooks:feedback": "a CDS Hooks service's feedback (cdshooks/tests/test_feedback.py)",
}
# Open to anyone signed in (or to anyone), naming nothing of a clinic.
OPEN = {
    "home": "the start page, built from the user's own role",
    "healthz": "service health, no data",
    "favicon": "a redirect to the site's icon",
    "login": "sign-in",
    "logout": "sign-out",
    "password_change": "the user's own password",
    "auth-api:token": "an API token for the credentials given",
    "auth-api:logout": "revokes the request's own API token",
    "auth-api:logout-all": "revokes the user's own API tokens",
    "patients-api:analyte-list": "the analyte catalog, shared by every clinic",
    "patients-api:analyte-detail": "one entry of the shared analyte catalog, by code",
    "api-schema": "the OpenAPI schema",
    "api-docs": "Swagger UI",
    "cdshooks:discovery": "the CDS Hooks services this server offers, naming no patient",
    **NOT_SESSION,
}
OPEN_ARGUMENTS = {
    "patients-api:analyte-detail": {"code": "hemoglobin"},
    "cdshooks:service": {"service_id": "patient-view"},
    "cdshooks:feedback": {"service_id": "patient-view"},
}

# The Django admin: the object of clinic A that each model admin's URLs are tried with.
ADMIN_OBJECTS: dict[str, Callable[[World], Any]] = {
    "clinic.clinic": lambda w: w.clinic,
    "clinic.user": lambda w: w.user(STAFF),
    "clinic.auditevent": lambda w: w.audit_event,
    "predictions.predictionbatch": lambda w: w.batch,
    "predictions.prediction": lambda w: w.prediction,
    "recommendations.recommendation": lambda w: w.rec,
    "recommendations.feedbackevent": lambda w: w.feedback,
    "recommendations.rankersnapshot": lambda w: w.ranker,
    "mltraining.trainingrun": lambda w: w.run,
    "mltraining.modelversion": lambda w: w.version,
    "mltraining.driftreport": lambda w: w.drift,
    "patients.trustedsource": lambda w: w.trusted_source,
    "labfeed.labconnection": lambda w: w.lab_connection,
    "labfeed.hl7message": lambda w: w.hl7_message,
    "cdshooks.ehrconnection": lambda w: w.ehr_connection,
}
# Admin models that hold nothing of one clinic. The catalogs are read by every clinic admin and changed by
# superusers; the others need Django model permissions, which clinic admins do not have: superusers only.
ADMIN_CATALOGS = {"patients.analyte", "recommendations.adviceitem"}
ADMIN_SUPERUSER_ONLY = {
    "auth.group", "knox.authtoken", "axes.accessattempt", "axes.accesslog", "axes.accessfailurelog",
    "django_celery_beat.periodictask", "django_celery_beat.clockedschedule", "django_celery_beat.crontabschedule",
    "django_celery_beat.solarschedule", "django_celery_beat.intervalschedule",
}  # fmt: skip
# Admin URLs with arguments that are not a model's object.
ADMIN_OTHER = {
    "admin:app_list": "an app's index (its label is the argument)",
    "admin:view_on_site": "a redirect to an object's get_absolute_url(), which no model of the project has",
    "admin/(?P<url>.*)$": "the catch-all that answers 404 (or adds a slash)",
}
_ADMIN_MODEL = re.compile(r"^admin/(?P<app>\w+)/(?P<model>\w+)/")


def admin_label(route: Route) -> str | None:
    match = _ADMIN_MODEL.match(route.route)
    return f"{match['app']}.{match['model']}" if match else None


def _fill(route: str, arguments: dict[str, Any]) -> str:
    """The path of an unnamed route (the admin's `<object_id>/` redirects), its converters replaced by values."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda match: str(arguments[match.group(1)]), route)


def url_of(route: Route, w: World) -> str:
    """The path of any route, naming clinic A's object when the route takes one."""
    if not route.is_admin:
        target = OBJECT_URLS.get(route.name)
        return reverse(route.name, kwargs=target.arguments(w) if target else OPEN_ARGUMENTS.get(route.name, {}))
    if route.name == "admin:app_list":
        return reverse(route.name, kwargs={"app_label": "clinic"})
    if route.name == "admin:view_on_site":
        content_type = ContentType.objects.get_for_model(Patient)
        return reverse(route.name, kwargs={"content_type_id": content_type.pk, "object_id": w.patient.pk})
    if not route.named and "(?P<url>" in route.route:
        return "/admin/no-such-page/"
    label = admin_label(route)
    pk = ADMIN_OBJECTS[label](w).pk if label in ADMIN_OBJECTS else 1
    arguments = {"object_id": pk, "id": pk, "name": "roc"}
    if route.named:
        return reverse(route.name, kwargs={key: arguments[key] for key in route.arguments})
    return _fill(route.route, arguments)


# --- helpers -----------------------------------------------------------------------------------------------------

_WATCHED_APPS = ["clinic", "patients", "predictions", "recommendations", "mltraining", "auth", "knox"]
_UNWATCHED = {AuditEvent, Permission}  # the trail grows with each refusal; permissions never change at run time


def db_state() -> dict[str, list[dict[str, Any]]]:
    """Every row of the project's tables (accounts' groups and permissions too) but the audit trail."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for app in _WATCHED_APPS
        for model in apps.get_app_config(app).get_models(include_auto_created=True)
        if model not in _UNWATCHED and not model._meta.proxy
    }


def send(client: Client, method: str, url: str, body: dict[str, Any], *, api: bool, **extra):
    if method == "GET":
        return client.get(url, **extra)
    if api:
        return client.generic(method, url, json.dumps(body), content_type="application/json", **extra)
    if method == "POST":
        return client.post(url, body, **extra)
    form = urlencode(body, doseq=True)
    return client.generic(method, url, form, content_type="application/x-www-form-urlencoded", **extra)


def api_send(client: Client, method: str, url: str, body: dict[str, Any]):
    return send(client, method, url, body, api=True)


def signed_in(user: User, **options) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def remember_upload(client: Client, w: World) -> None:
    """Put the upload into this client's session, as the upload page does for the uploader."""
    session = client.session
    session["lab_imports"] = {w.upload_token: w.upload_entry}
    session.save()


def denial_rows(user: User) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="access.denied", actor=user).order_by("id"))


def changed_tables(before: dict[str, list[dict[str, Any]]]) -> list[str]:
    after = db_state()
    return [label for label in before if after[label] != before[label]]


def _try_everyone(w: World, name: str, target: Target, *, names_an_object: bool) -> list[str]:
    """Every user and method against one URL; the problems found, as readable lines.

    Clinic B's users may use a page that names no object when their role may (they see their own clinic's);
    a URL naming clinic A's object must be a 404 to them, whatever their role.
    """
    route = next(route for route in ROUTES if route.name == name)
    url = url_of(route, w)

    def allowed(key: str) -> bool:
        if key in OTHER_CLINIC:
            return not names_an_object and w.user(key).role in target.allowed
        return key in target.allowed

    # The refused first, then the allowed: their writes go through and change what the others would see.
    keys = [key for key in [*OTHER_CLINIC, PATIENT, STAFF, DOCTOR, ADMIN] if not allowed(key)]
    keys += [key for key in [*OTHER_CLINIC, PATIENT, STAFF, DOCTOR, ADMIN] if allowed(key)]
    clients = {key: signed_in(w.user(key)) for key in keys}
    if target.session_owner:
        remember_upload(clients[target.session_owner], w)
    problems = []
    refused = db_state()  # after the sign-ins, which stamp last_login
    for key in keys:
        user = w.user(key)
        if allowed(key) and refused is not None:
            problems += [f"the refused requests changed {label}" for label in changed_tables(refused)]
            refused = None
        for method, body in target.methods.items():
            denials = len(denial_rows(user))
            status = send(clients[key], method, url, body_of(body, w), api=route.is_api).status_code
            where = f"{method} {url} as {user.username}"
            if allowed(key):
                if status in DENIED or status >= 500:
                    problems.append(f"{where}: {status}, expected to be allowed")
                continue
            expected = {404} if key in OTHER_CLINIC and user.role in target.allowed else DENIED
            if status not in expected:
                problems.append(f"{where}: {status}, expected {sorted(expected)}")
                continue
            rows = [(row.outcome, row.detail) for row in denial_rows(user)[denials:]]
            if rows != [(AuditOutcome.DENIED, {"method": method, "path": url, "status": status})]:
                problems.append(f"{where}: the denial was not audited once: {rows}")
    if refused is not None:
        problems += [f"the refused requests changed {label}" for label in changed_tables(refused)]
    return problems


# --- case 1: every URL is known, and tried as everyone -----------------------------------------------------------


@pytest.mark.reliability(1, "Listed every URL of the resolver: each must be known to the test, with its object")
def test_every_url_is_known_to_this_file():
    known = OBJECT_URLS.keys() | ROLE_PAGES.keys() | OPEN.keys()
    with_arguments = {route.name for route in PORTAL_AND_API if route.arguments}

    unknown = sorted(route.name for route in PORTAL_AND_API if route.name not in known)
    not_objects = sorted(with_arguments - OBJECT_URLS.keys() - OPEN_ARGUMENTS.keys())

    assert not unknown, f"URLs this file does not try (add them to OBJECT_URLS, ROLE_PAGES or OPEN): {unknown}"
    assert not not_objects, f"URLs with arguments but no object of clinic A to try them with: {not_objects}"
    assert OBJECT_URLS.keys() <= with_arguments, "OBJECT_URLS names URLs the resolver does not have"


@pytest.mark.reliability(1, "Listed every model admin and admin URL with arguments: each must have an object to try")
def test_every_admin_url_with_an_object_is_known_to_this_file():
    registered = {model._meta.label_lower for model in admin.site._registry}
    known = ADMIN_OBJECTS.keys() | ADMIN_CATALOGS | ADMIN_SUPERUSER_ONLY

    unknown = sorted(
        route.name
        for route in ADMIN_ROUTES
        if route.arguments and route.name not in ADMIN_OTHER and admin_label(route) not in known
    )

    assert registered == known, "a model admin this file does not know, or one it lists that is gone"
    assert not unknown, f"admin URLs with arguments this file cannot try: {unknown}"


@pytest.mark.hazard(
    "H12", "Each object URL of clinic A requested by clinic B's doctor and admin: 404, audited, nothing written"
)
@pytest.mark.reliability(
    1,
    "Requested each object URL of clinic A (GET, and POST/PATCH with a valid body) as clinic B's doctor and admin "
    "and as each role of clinic A; checked the status, the access.denied audit row and that nothing was written",
)
@pytest.mark.parametrize("name", sorted(OBJECT_URLS))
def test_each_object_url_is_a_404_outside_its_scope_and_the_denial_is_audited(world, name):
    problems = _try_everyone(world, name, OBJECT_URLS[name], names_an_object=True)

    assert not problems, "\n".join(problems)


@pytest.mark.reliability(1, "Requested each page and endpoint that names no object as every role of clinic A")
@pytest.mark.parametrize("name", sorted(ROLE_PAGES))
def test_each_page_is_a_403_to_the_roles_it_is_not_for_and_the_denial_is_audited(world, name):
    problems = _try_everyone(world, name, ROLE_PAGES[name], names_an_object=False)

    assert not problems, "\n".join(problems)


@pytest.mark.reliability(
    1, "Opened every admin URL of a clinic A object (GET and POST) as clinic B's admin: 404, audited, nothing changed"
)
@pytest.mark.parametrize("label", sorted(ADMIN_OBJECTS))
def test_each_admin_page_of_a_clinic_a_object_is_a_404_to_another_clinics_admin(world, label):
    admin_b = world.user("admin_b")
    outsider, insider = signed_in(admin_b), signed_in(world.user(ADMIN))
    problems = []
    before = db_state()
    for route in (r for r in ADMIN_ROUTES if r.arguments and admin_label(r) == label):
        url = url_of(route, world)
        for method in ("GET", "POST"):
            denials = len(denial_rows(admin_b))
            response = send(outsider, method, url, {"action": "activate"}, api=False, follow=not route.named)
            if method == "GET" and response.status_code == 405:  # a POST-only button: says nothing of the object
                continue
            if response.status_code != 404:
                problems.append(f"{method} {url}: {response.status_code}, expected 404")
            elif len(denial_rows(admin_b)) == denials:
                problems.append(f"{method} {url}: the 404 was not audited")
        if route.name.endswith(("_change", "_history")):  # the clinic's own admin finds it: the object is right
            status = insider.get(url).status_code
            if status not in (200, 403):  # 403: found, but for superusers only (the clinic row itself)
                problems.append(f"GET {url} as admin_a: {status}, expected 200 or 403")
    if db_state() != before:
        problems.append("clinic B's admin changed the database")

    assert not problems, "\n".join(problems)


@pytest.mark.reliability(1, "A patient's account opened its own record, then another patient's of the same clinic")
def test_a_patient_reads_their_own_record_and_no_one_elses(world):
    client = signed_in(world.user(PATIENT))
    own, other = world.own_record.pk, world.patient.pk

    listed = [row["id"] for row in client.get(reverse("patients-api:patient-list")).json()["results"]]

    assert listed == [own]
    assert client.get(reverse("recommendations:mine")).status_code == 200
    assert client.get(reverse("patients:mine")).status_code == 200
    for name in ("patients:detail", "patients:report", "patients-api:patient-detail", "fhir:patient-export"):
        assert client.get(reverse(name, args=[own])).status_code == 200, name
        assert client.get(reverse(name, args=[other])).status_code == 404, name
    for name in ("patients-api:observation-list", "patients-api:condition-list"):
        assert client.get(reverse(name, args=[other])).status_code == 404, name
    # Predictions and the clinicians' view of advice are decision support: not for a patient, not even their own.
    for name in ("predictions-api:prediction-list", "recommendations-api:recommendation-latest"):
        assert client.get(reverse(name, args=[own])).status_code == 403, name


@pytest.mark.hazard(
    "H12", "Clinic B's patient lists and review queue (portal and API) show none of clinic A's patients"
)
@pytest.mark.reliability(1, "Listed patients and the review queue (portal and API) as clinic B's doctor and admin")
def test_lists_never_show_another_clinics_rows(world):
    for key in OTHER_CLINIC:
        client = signed_in(world.user(key))
        api = [row["id"] for row in client.get(reverse("patients-api:patient-list")).json()["results"]]
        portal = [patient.pk for patient, _age in client.get(reverse("patients:list")).context["rows"]]
        assert api == portal == [world.other_patient.pk], key
    doctor_b = signed_in(world.user("doctor_b"))
    assert doctor_b.get(reverse("recommendations-api:queue")).json()["results"] == []
    assert list(doctor_b.get(reverse("recommendations:queue")).context["rows"]) == []


@pytest.mark.hazard("H12", "Clinic A's ids sent in a form or query by clinic B's users are not followed")
@pytest.mark.reliability(1, "Sent clinic A's ids in a form body or a query string as clinic B's doctor and admin")
def test_ids_of_another_clinic_in_a_body_or_query_are_not_followed(world):
    doctor_b, admin_b = signed_in(world.user("doctor_b")), signed_in(world.user("admin_b"))

    doctor_b.post(reverse("recommendations:bulk_approve"), {"recommendation": [world.rec.pk]})
    dashboard = admin_b.get(reverse("mltraining:dashboard"), {"version": world.version.pk})
    admin_b.post(reverse("predictions:batch_start"), {"clinic": world.clinic.pk})
    patient_type = ContentType.objects.get_for_model(Patient).pk
    on_site = admin_b.get(reverse("admin:view_on_site", args=[patient_type, world.patient.pk]))

    assert not RecommendationItem.objects.filter(recommendation=world.rec, status=ItemStatus.APPROVED).exists()
    assert (dashboard.status_code, on_site.status_code) == (404, 404)
    assert [row.detail["status"] for row in denial_rows(world.user("admin_b"))] == [404, 404]
    assert list(PredictionBatch.objects.filter(clinic=world.clinic)) == [world.batch]


@pytest.mark.hazard(
    "H12", "An API token of clinic B's doctor gets 404 for clinic A's patient, and the denial is audited"
)
@pytest.mark.reliability(1, "A token-authenticated API call by clinic B's doctor for clinic A's patient")
def test_a_token_authenticated_denial_is_audited_too(world):
    doctor_b = world.user("doctor_b")
    client = Client(headers={"Authorization": f"Token {AuthToken.objects.create(user=doctor_b)[1]}"})

    response = client.get(reverse("patients-api:patient-detail", args=[world.patient.pk]))

    assert response.status_code == 404
    assert [row.detail["status"] for row in denial_rows(doctor_b)] == [404]


@pytest.mark.reliability(1, "Anonymous 404s, and a 200 for a signed-in user: no access.denied row, no extra query")
def test_only_signed_in_denials_are_audited_and_a_200_costs_no_query(world, django_assert_num_queries):
    anonymous = Client()
    anonymous.get(reverse("patients-api:patient-detail", args=[world.patient.pk]))
    anonymous.get("/no-such-page/")
    client = signed_in(world.user(DOCTOR))
    client.get(reverse("patients-api:analyte-list"))  # the session's first request also saves it

    # the user and the session (unless read from Redis): the catalog is served from memory
    with django_assert_num_queries(1 + session_read_queries()):
        assert client.get(reverse("patients-api:analyte-list")).status_code == 200

    assert not AuditEvent.objects.filter(action="access.denied").exists()


@pytest.mark.reliability(
    1,
    "Staff confirmed a diagnosis through the API, refused inside the service's transaction, with and without "
    "ATOMIC_REQUESTS: the change rolled back and the access.denied row was committed",
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("atomic_requests", [False, True], ids=["autocommit", "atomic-requests"])
def test_the_denial_row_is_committed_although_the_views_transaction_rolled_back(atomic_requests, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", atomic_requests)
    clinic = ClinicFactory(slug="committed")
    nurse = UserFactory(clinic=clinic, role=STAFF, username="nurse_commit")
    condition = ConditionFactory(patient=PatientFactory(clinic=clinic))
    url = reverse("patients-api:condition-detail", args=[condition.patient_id, condition.pk])

    response = api_send(signed_in(nurse), "PATCH", url, {"verification_status": "confirmed"})

    assert response.status_code == 403
    assert not connection.in_atomic_block  # no transaction is open here: the rows in the table are committed
    assert Condition.objects.get(pk=condition.pk).verification_status == VerificationStatus.PROVISIONAL
    assert [(row.outcome, row.detail["status"]) for row in denial_rows(nurse)] == [(AuditOutcome.DENIED, 403)]


# --- case 2: read-only fields cannot be mass-assigned ------------------------------------------------------------

YEARS_AGO = "2000-01-01T00:00:00Z"


@pytest.mark.reliability(2, "Registered and changed a patient through the API with clinic, id and timestamps set")
def test_the_api_ignores_a_patients_clinic_id_and_timestamps(world):
    client = signed_in(world.user(STAFF))
    foreign = {"clinic": world.other_clinic.pk, "id": 987654, "created_at": YEARS_AGO, "updated_at": YEARS_AGO}
    before = Patient.objects.values("clinic_id", "created_at").get(pk=world.patient.pk)

    created = api_send(client, "POST", reverse("patients-api:patient-list"), {**NEW_PATIENT, **foreign})
    changed = api_send(client, "PATCH", reverse("patients-api:patient-detail", args=[world.patient.pk]), foreign)

    new = Patient.objects.get(mrn=NEW_PATIENT["mrn"])
    assert (created.status_code, changed.status_code) == (201, 200)
    assert (new.clinic_id, new.pk != 987654, new.created_at.year) == (world.clinic.pk, True, timezone.now().year)
    assert Patient.objects.values("clinic_id", "created_at").get(pk=world.patient.pk) == before
    assert list(Patient.objects.filter(clinic=world.other_clinic)) == [world.other_patient]


@pytest.mark.reliability(2, "Tried to link a patient record to an account through the API (the user field)")
def test_the_api_refuses_to_link_a_patient_record_to_an_account(world):
    client = signed_in(world.user(STAFF))
    account = {"user": world.user(PATIENT).pk}

    changed = api_send(client, "PATCH", reverse("patients-api:patient-detail", args=[world.patient.pk]), account)
    created = api_send(client, "POST", reverse("patients-api:patient-list"), {**NEW_PATIENT, **account})

    assert (changed.status_code, created.status_code) == (400, 400)
    assert Patient.objects.get(pk=world.patient.pk).user_id is None
    assert not Patient.objects.filter(mrn=NEW_PATIENT["mrn"]).exists()


@pytest.mark.reliability(2, "Posted a result with its flag, source, author, patient or canonical value set")
def test_an_observation_cannot_carry_its_flag_source_author_or_patient(world):
    client = signed_in(world.user(STAFF))
    url = reverse("patients-api:observation-list", args=[world.patient.pk])
    extras = {"interpretation": "N", "source": "demo", "entered_by": world.user(DOCTOR).pk, "entered_value": 1,
              "patient": world.other_patient.pk, "created_at": YEARS_AGO}  # fmt: skip

    statuses = [
        api_send(client, "POST", url, {**OBSERVATION, name: value}).status_code for name, value in extras.items()
    ]

    assert statuses == [400] * len(extras)
    assert list(Observation.all_objects.all()) == [world.observation]


@pytest.mark.reliability(2, "Recorded and changed a condition through the API with its patient, author and times set")
def test_a_condition_keeps_its_patient_and_author(world):
    staff, doctor = world.user(STAFF), world.user(DOCTOR)
    client = signed_in(staff)
    foreign = {"patient": world.other_patient.pk, "recorded_by": doctor.pk, "recorded_at": YEARS_AGO}
    detail = reverse("patients-api:condition-detail", args=[world.patient.pk, world.condition.pk])

    created = api_send(client, "POST", reverse("patients-api:condition-list", args=[world.patient.pk]),
                       {**CONDITION, **foreign})  # fmt: skip
    changed = api_send(client, "PATCH", detail, foreign)

    new, old = Condition.objects.get(code=CONDITION["code"]), Condition.objects.get(pk=world.condition.pk)
    assert (created.status_code, changed.status_code) == (201, 200)
    assert (new.patient_id, new.recorded_by_id, new.recorded_at.year) == (
        world.patient.pk,
        staff.pk,
        timezone.now().year,
    )
    assert (old.patient_id, old.recorded_by_id) == (world.patient.pk, doctor.pk)
    assert not Condition.objects.filter(patient=world.other_patient).exists()


@pytest.mark.reliability(2, "Staff set a diagnosis to confirmed through the API (new and existing) and the portal")
def test_only_a_doctor_sets_the_confirmed_status(world):
    client = signed_in(world.user(STAFF))
    confirmed = {"verification_status": "confirmed"}
    detail = reverse("patients-api:condition-detail", args=[world.patient.pk, world.condition.pk])

    created = api_send(client, "POST", reverse("patients-api:condition-list", args=[world.patient.pk]),
                       {**CONDITION, **confirmed})  # fmt: skip
    changed = api_send(client, "PATCH", detail, confirmed)
    portal = client.post(reverse("patients:condition_add", args=[world.patient.pk]), {**CONDITION_FORM, **confirmed})

    assert (created.status_code, changed.status_code, portal.status_code) == (403, 403, 200)
    assert list(Condition.objects.all()) == [world.condition]
    assert world.condition.verification_status != VerificationStatus.CONFIRMED


@pytest.mark.reliability(2, "Sent a review decision with its status, reviewer or review time set (API and portal)")
def test_a_review_cannot_set_its_own_status_or_reviewer(world):
    doctor, other_doctor = world.user(DOCTOR), world.user("doctor_b").pk
    client = signed_in(doctor)
    url = reverse("recommendations-api:item-review", args=[world.item.pk])

    refused = [
        api_send(client, "POST", url, {"action": "annotate", "note": "x", "status": "approved"}).status_code,
        api_send(client, "POST", url, {"action": "approve", "reviewed_by": other_doctor}).status_code,
        api_send(client, "POST", url, {"action": "annotate", "note": "x", "reviewed_at": YEARS_AGO}).status_code,
    ]
    untouched = RecommendationItem.objects.get(pk=world.item.pk)
    client.post(reverse("recommendations:item_annotate", args=[world.item.pk]),
                {"note": "Seen.", "status": "approved", "reviewed_by": other_doctor})  # fmt: skip
    annotated = RecommendationItem.objects.get(pk=world.item.pk)
    client.post(reverse("recommendations:item_approve", args=[world.item.pk]), {"reviewed_by": other_doctor})
    approved = RecommendationItem.objects.get(pk=world.item.pk)

    assert refused == [400, 400, 400]
    assert (untouched.status, untouched.reviewed_by_id, untouched.note) == (ItemStatus.PENDING, None, "")
    assert (annotated.status, annotated.reviewed_by_id, annotated.note) == (ItemStatus.PENDING, None, "Seen.")
    assert (approved.status, approved.reviewed_by_id) == (ItemStatus.APPROVED, doctor.pk)


@pytest.mark.reliability(2, "Scored a patient now (API and portal) naming another model version, patient and result")
def test_score_now_uses_the_clinics_active_model_whatever_the_body_says(world):
    active = ModelVersionFactory(clinic=world.clinic, status=ModelStatus.ACTIVE)
    elsewhere = ModelVersionFactory(clinic=world.other_clinic, status=ModelStatus.ACTIVE)
    client = signed_in(world.user(DOCTOR))
    body = {"model_version": elsewhere.pk, "model_version_id": world.version.pk, "status": "succeeded",
            "risk_level": "low", "predicted_class": "healthy", "patient": world.other_patient.pk}  # fmt: skip

    api = api_send(client, "POST", reverse("predictions-api:prediction-list", args=[world.patient.pk]), body)
    client.post(reverse("predictions:score", args=[world.patient.pk]), body)

    new = Prediction.objects.exclude(pk=world.prediction.pk)
    assert api.status_code == 201
    assert [(p.patient_id, p.model_version_id) for p in new] == [(world.patient.pk, active.pk)] * 2
    assert not Prediction.objects.filter(patient=world.other_patient).exists()
    # This stand-in version has no artifact: a failed prediction, whatever the body's "succeeded" says.
    assert {p.status for p in new} == {"failed"}


@pytest.mark.hazard("H12", "A CSV import naming another clinic and its patient's MRN writes nothing there")
@pytest.mark.reliability(2, "Imported a CSV through the API with a clinic field and a row for clinic B's patient")
def test_the_csv_import_writes_only_into_the_importers_clinic(world):
    client = signed_in(world.user(STAFF))
    data = b"mrn,analyte,value,unit,time\nB-100,glucose,126,mg/dL,2025-03-01T08:30\n"
    upload = SimpleUploadedFile("results.csv", data, content_type="text/csv")

    response = client.post(reverse("imports-api:labs"), {"file": upload, "clinic": world.other_clinic.pk})

    assert response.status_code == 400
    assert "No patient with MRN B-100 in this clinic" in response.content.decode()
    assert list(Observation.all_objects.all()) == [world.observation]


def _fhir_bundle(*, mrn: str, organization: str) -> dict[str, Any]:
    mr = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
    patient = {
        "resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970-01-01",
        "name": [{"family": "Other", "given": ["Bea"]}], "identifier": [{"type": mr, "value": mrn}],
        "managingOrganization": {"reference": organization},
    }  # fmt: skip
    glucose = {
        "resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "effectiveDateTime": "2025-03-01T08:30:00Z",
        "valueQuantity": {"value": 99, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
    }  # fmt: skip
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": "Patient/p1", "resource": patient}, {"resource": glucose}]}  # fmt: skip


@pytest.mark.hazard("H12", "A FHIR bundle with clinic B's MRN and organisation adds nothing to clinic B's patient")
@pytest.mark.reliability(2, "Imported a FHIR bundle naming clinic B's MRN and clinic B as managing organisation")
def test_a_fhir_import_cannot_reach_another_clinics_patient(world):
    client = signed_in(world.user(STAFF))
    bundle = _fhir_bundle(mrn="B-100", organization=f"Organization/{world.other_clinic.pk}")

    response = client.post(reverse("fhir:import"), json.dumps(bundle), content_type="application/fhir+json")

    assert response.status_code == 200, response.content
    assert Patient.objects.get(clinic=world.clinic, mrn="B-100").observations.count() == 1
    assert list(Patient.objects.filter(clinic=world.other_clinic)) == [world.other_patient]
    assert not world.other_patient.observations.exists()


@pytest.mark.reliability(2, "Posted the portal's patient and condition forms with clinic, account, id and author added")
def test_the_portal_forms_ignore_clinic_account_and_author(world):
    staff = world.user(STAFF)
    client = signed_in(staff)
    extras = {"clinic": world.other_clinic.pk, "user": world.user(PATIENT).pk, "id": 987654}
    lifestyle = {"smoking": "unknown", "alcohol": "unknown", "physical_activity": "unknown", "diet": "unknown"}

    created = client.post(reverse("patients:create"), {**NEW_PATIENT, **lifestyle, **extras})
    changed = client.post(reverse("patients:edit", args=[world.patient.pk]), {**_patient_form(world), **extras})
    condition = client.post(
        reverse("patients:condition_add", args=[world.patient.pk]),
        {**CONDITION_FORM, "patient": world.other_patient.pk, "recorded_by": world.user(DOCTOR).pk},
    )

    registered, edited = Patient.objects.get(mrn=NEW_PATIENT["mrn"]), Patient.objects.get(pk=world.patient.pk)
    recorded = Condition.objects.get(code=CONDITION["code"])
    assert (created.status_code, changed.status_code, condition.status_code) == (302, 302, 302)
    assert (registered.clinic_id, registered.user_id, registered.pk != 987654) == (world.clinic.pk, None, True)
    assert (edited.clinic_id, edited.user_id, edited.family_name) == (world.clinic.pk, None, "Changed")
    assert (recorded.patient_id, recorded.recorded_by_id) == (world.patient.pk, staff.pk)


@pytest.mark.reliability(2, "Changed one's own password with role, clinic, superuser and staff fields added")
def test_the_password_form_does_not_change_role_or_clinic(world):
    nurse = UserFactory(clinic=world.clinic, role=STAFF, username="nurse_pw", password="Old-password-for-test-1")
    passwords = {"old_password": "Old-password-for-test-1", "new_password1": "New-password-for-test-2",
                 "new_password2": "New-password-for-test-2"}  # fmt: skip
    extras = {"role": ADMIN, "clinic": world.other_clinic.pk, "is_superuser": "on", "is_staff": "on"}

    response = signed_in(nurse).post(reverse("password_change"), {**passwords, **extras})

    nurse.refresh_from_db()
    assert response.status_code == 302
    assert nurse.check_password("New-password-for-test-2")
    assert (nurse.role, nurse.clinic_id, nurse.is_superuser, nurse.is_staff) == (STAFF, world.clinic.pk, False, False)


@pytest.mark.reliability(2, "A clinic admin saved an account in the admin with another clinic, superuser, permissions")
def test_a_clinic_admin_cannot_move_an_account_or_grant_superuser_or_permissions(world):
    staff = world.user(STAFF)
    form = {"username": staff.username, "first_name": "Sam", "last_name": "Lee", "email": "", "role": STAFF,
            "is_active": "on"}  # fmt: skip
    extras = {"clinic": world.other_clinic.pk, "is_superuser": "on", "is_staff": "on",
              "user_permissions": [Permission.objects.get(codename="change_patient").pk],
              "groups": [Group.objects.create(name="everything").pk]}  # fmt: skip

    response = signed_in(world.user(ADMIN)).post(reverse("admin:clinic_user_change", args=[staff.pk]), form | extras)

    staff.refresh_from_db()
    assert response.status_code == 302
    assert staff.first_name == "Sam"  # the form was saved, and none of the extras with it
    assert (staff.clinic_id, staff.is_superuser, staff.is_staff) == (world.clinic.pk, False, False)
    assert not staff.user_permissions.exists()
    assert not staff.groups.exists()


# --- case 3: the admin and the retraining actions are for clinic admins ------------------------------------------


@pytest.mark.reliability(
    3,
    "Opened and posted to every URL of the Django admin (start training, activate, roll back, check drift, rebuild "
    "ranker and score all included) as a doctor, a staff member and a patient of clinic A",
)
@pytest.mark.parametrize("role", [DOCTOR, STAFF, PATIENT])
def test_no_admin_url_is_reached_by_a_lower_role(world, role):
    client = signed_in(world.user(role))
    login, index = reverse("admin:login"), reverse("admin:index")
    action = {"action": "activate", "_selected_action": [world.version.pk]}
    problems = []
    before = db_state()
    for route in ADMIN_ROUTES:
        if route.name == "admin:login":  # the admin's sign-in form, which tells them the account is not allowed
            continue
        url = url_of(route, world)
        for method in ("GET", "POST"):
            response = send(client, method, url, action, api=False)
            where = response.get("Location", "")
            if response.status_code != 302 or not (where.startswith(login) or where == index):
                problems.append(f"{method} {url}: {response.status_code} {where}")

    assert not problems, "\n".join(problems)
    assert db_state() == before
    assert client.get(index)["Location"].startswith(login)  # where the admin's logout sends them


def _rows_of(clinic: Clinic) -> list[list[Any]]:
    """What the retraining, drift, ranker and batch buttons create for a clinic."""
    return [list(model.objects.filter(clinic=clinic)) for model in (TrainingRun, DriftReport, RankerSnapshot,
                                                                    PredictionBatch)]  # fmt: skip


@pytest.mark.reliability(
    3,
    "As clinic B's admin: started training, a drift check, a ranker rebuild and 'score all' naming clinic A, and "
    "ran the activate and roll back actions and buttons on clinic A's version",
)
def test_another_clinics_admin_cannot_act_on_clinic_a(world):
    world.version.status = ModelStatus.ARCHIVED
    world.version.save(update_fields=["status"])
    active = ModelVersionFactory(clinic=world.clinic, status=ModelStatus.ACTIVE)
    client = signed_in(world.user("admin_b"))
    pick = {"clinic": world.clinic.pk}
    buttons = ["mltraining_trainingrun_start", "mltraining_driftreport_check",
               "recommendations_rankersnapshot_rebuild", "predictions_predictionbatch_start"]  # fmt: skip
    rows_of_a = _rows_of(world.clinic)

    for name in buttons:
        client.post(reverse(f"admin:{name}"), pick)
    client.post(reverse("predictions:batch_start"), pick)
    selected = {"_selected_action": [world.version.pk]}
    for action in ("activate", "rollback"):
        client.post(reverse("admin:mltraining_modelversion_changelist"), {"action": action, **selected})
        button = client.post(reverse(f"admin:mltraining_modelversion_{action}", args=[world.version.pk]))
        assert button.status_code == 404

    assert _rows_of(world.clinic) == rows_of_a
    assert dict(ModelVersion.objects.filter(clinic=world.clinic).values_list("pk", "status")) == {
        world.version.pk: ModelStatus.ARCHIVED,
        active.pk: ModelStatus.ACTIVE,
    }


@pytest.mark.reliability(3, "Opened the admin's tables of all clinics (groups, tokens, schedules, lockouts) as a "
                         "clinic admin")  # fmt: skip
@pytest.mark.parametrize("label", sorted(ADMIN_SUPERUSER_ONLY))
def test_tables_of_every_clinic_are_for_superusers_only(world, superuser, label):
    prefix = "admin:{}_{}".format(*label.split("."))
    clinic_admin = signed_in(world.user(ADMIN))

    assert clinic_admin.get(reverse(f"{prefix}_changelist")).status_code == 403
    assert clinic_admin.get(reverse(f"{prefix}_add")).status_code == 403
    assert clinic_admin.get(reverse(f"{prefix}_change", args=[1])).status_code == 403
    assert signed_in(superuser).get(reverse(f"{prefix}_changelist")).status_code == 200


@pytest.mark.reliability(3, "Read and changed the shared advice catalog in the admin as a clinic admin")
def test_a_clinic_admin_reads_the_catalog_but_cannot_change_it(world):
    client = signed_in(world.user("admin_b"))
    advice = world.item.advice
    url = reverse("admin:recommendations_adviceitem_change", args=[advice.pk])

    page = client.get(url)
    change = client.post(url, {"active": ""})

    advice.refresh_from_db()
    assert (page.status_code, change.status_code) == (200, 403)
    assert advice.active


# --- case 6: CSRF on every session-authenticated write -----------------------------------------------------------


def _writer(w: World, route: Route) -> User:
    """A user whose write to this URL would go through with the token: the refusal is then CSRF's alone."""
    target = OBJECT_URLS.get(route.name) or ROLE_PAGES.get(route.name)
    if target is None:
        return w.user(ADMIN)
    return w.user(STAFF if STAFF in target.allowed else sorted(target.allowed)[0])


def _refused_writes(w: World, routes: list[Route], methods: tuple[str, ...]) -> list[str]:
    """Each write without the CSRF token, from a session; the ones not refused for CSRF, as readable lines."""
    clients: dict[str, Client] = {}
    for route in routes:
        user = _writer(w, route)
        if user.username not in clients:
            clients[user.username] = signed_in(user, enforce_csrf_checks=True)
            remember_upload(clients[user.username], w)
    problems = []
    before = db_state()  # after the sign-ins, which stamp last_login
    for route in routes:
        user = _writer(w, route)
        client, url = clients[user.username], url_of(route, w)
        target = OBJECT_URLS.get(route.name) or ROLE_PAGES.get(route.name)
        bodies = target.methods if target else {}
        for method in methods:
            body = body_of(bodies.get(method) or bodies.get("POST"), w)
            response = send(client, method, url, body, api=route.is_api)
            if response.status_code == 403 and b"CSRF" not in response.content:
                # A page that shows no reason (Swagger UI's renderer): with the token, the 403 must be gone.
                client.cookies["csrftoken"] = CSRF_SECRET
                retried = send(client, method, url, body, api=route.is_api, headers={"X-CSRFToken": CSRF_SECRET})
                del client.cookies["csrftoken"]
                if retried.status_code != 403:
                    continue
            if response.status_code != 403 or b"CSRF" not in response.content:
                problems.append(f"{method} {url} as {user.username}: {response.status_code}, not refused for CSRF")
    if db_state() != before:
        problems.append("the database changed")
    return problems


@pytest.mark.reliability(6, "Posted to every portal URL while signed in, without the CSRF token")
def test_every_portal_write_without_the_csrf_token_is_refused(world):
    routes = [
        route
        for route in PORTAL_AND_API
        if not route.is_api and route.name not in ("api-schema", "api-docs") and route.name not in NOT_SESSION
    ]

    problems = _refused_writes(world, routes, ("POST",))

    assert not problems, "\n".join(problems)


@pytest.mark.reliability(6, "Sent POST, PUT, PATCH and DELETE to every API URL with a session, without the CSRF token")
def test_every_session_api_write_without_the_csrf_token_is_refused(world):
    routes = [route for route in PORTAL_AND_API if route.is_api or route.name in ("api-schema", "api-docs")]

    problems = _refused_writes(world, routes, ("POST", "PUT", "PATCH", "DELETE"))

    assert not problems, "\n".join(problems)


@pytest.mark.reliability(6, "Posted to every URL of the Django admin as a clinic admin, without the CSRF token")
def test_every_admin_write_without_the_csrf_token_is_refused(world):
    problems = _refused_writes(world, ADMIN_ROUTES, ("POST",))

    assert not problems, "\n".join(problems)


@pytest.mark.reliability(6, "Sent a portal form and a session API call with the CSRF token from the page")
def test_with_the_csrf_token_a_session_write_goes_through(world):
    client = signed_in(world.user(STAFF), enforce_csrf_checks=True)
    form_url = reverse("patients:medication_add", args=[world.patient.pk])
    client.get(form_url)  # the form page sets the CSRF cookie
    token = client.cookies["csrftoken"].value

    form = client.post(form_url, {"name": "Metformin", "csrfmiddlewaretoken": token})
    api = client.patch(
        reverse("patients-api:patient-detail", args=[world.patient.pk]),
        json.dumps({"family_name": "Changed"}),
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )

    assert (form.status_code, api.status_code) == (302, 200)
    assert Medication.objects.filter(patient=world.patient, name="Metformin").exists()
    assert Patient.objects.get(pk=world.patient.pk).family_name == "Changed"


@pytest.mark.reliability(6, "Called the API with a token and no session: works without a CSRF token, as expected")
def test_a_token_authenticated_api_write_needs_no_csrf_token(world):
    token = AuthToken.objects.create(user=world.user(STAFF))[1]
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Token {token}"})

    response = api_send(client, "PATCH", reverse("patients-api:patient-detail", args=[world.patient.pk]),
                        {"family_name": "Changed"})  # fmt: skip

    assert response.status_code == 200
    assert Patient.objects.get(pk=world.patient.pk).family_name == "Changed"


@pytest.mark.reliability(6, "Signed out with a POST without the CSRF token: refused, and still signed in")
def test_a_logout_without_the_csrf_token_does_not_sign_out(world):
    client = signed_in(world.user(DOCTOR), enforce_csrf_checks=True)

    response = client.post(reverse("logout"))

    assert response.status_code == 403
    assert client.get(reverse("patients:list")).status_code == 200
