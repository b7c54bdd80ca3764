"""Reliability case 12: schemathesis against the OpenAPI schema.

Every operation of the schema the API serves gets generated requests, valid ones and invalid ones, sent to the
Django WSGI app in this process (no server), signed in with a token as a doctor, a staff member and a patient of
a clinic with data. No answer may be a 5xx, and every answer must be one the schema documents: its status code,
content type, headers and body.
"""

from __future__ import annotations

import copy
import datetime
import json

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from knox.models import AuthToken
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from patients import services as patient_services
from patients.models import ObservationSource
from patients.services import ObservationInput
from patients.tests.factories import ConditionFactory, PatientFactory
from predictions.models import Prediction, PredictionStatus
from recommendations.generation import recommendations_generate
from recommendations.services import item_approve
from recommendations.tests.factories import prediction_for

# "No 5xx, and responses match the schema". Checks about the input (is invalid data refused, valid data
# accepted) are left out: an unknown filter value may be ignored (case 8), and valid JSON is not a valid panel.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
TOKEN_PATH = "/api/v1/auth/token/"
PHASES = ["examples", "coverage", "fuzzing", "stateful"]
# NDJSON bodies are documented as a string: sent as the text they are.
schemathesis.serializer.alias(["application/x-ndjson", "application/fhir+ndjson"], "text/plain")
# Path parameters that name a row of the seeded clinic, per operation path; filled for each test by `seeded`.
_known: dict[str, dict[str, int | str]] = {}


def _openapi() -> dict:
    """The document /api/schema/ serves, generated in-process: no request, no database."""
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


def _flatmap_path_parameters(context, path_parameters):
    """Half the requests name rows that exist, so the answers with a body are checked too, not only 404s."""
    known = _known.get(context.operation.path)
    if not known:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **known}])


def _load(document: dict, *, phases: list[str]) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict({"phases": {name: {"enabled": name in phases} for name in PHASES}})
    loaded = schemathesis.openapi.from_dict(copy.deepcopy(document), config=config)
    loaded.app = WSGIHandler()
    loaded.hook("flatmap_path_parameters")(_flatmap_path_parameters)
    return loaded


DOCUMENT = _openapi()
# The doctor gets every phase for every operation: the schema's examples, coverage (boundary values, missing,
# extra and wrongly typed fields, other methods) and random fuzzing. Staff and patients reach the same code behind
# another scope or a 403, so examples and fuzzing suffice, at a fifth of the time; the token endpoint does not
# depend on who asks.
schema = _load(DOCUMENT, phases=["examples", "coverage", "fuzzing"])
other_roles_schema = _load(DOCUMENT, phases=["examples", "fuzzing"]).exclude(path=TOKEN_PATH)
HYPOTHESIS = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def in_process():
    """Requests reach the app inside the test's transaction; as in Django's test client, the app must not close
    the connection at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(clinic_a, doctor_a, patient_user_a, active_model):
    """The patient account's own record with results (one without a reference range), a condition, a failed and
    a succeeded prediction, and the advice it produced, one item approved."""
    patient = PatientFactory(clinic=clinic_a, user=patient_user_a, mrn="SCHEMA-1")
    patient_services.observations_record(
        patient=patient,
        by=doctor_a,
        entries=[ObservationInput("hemoglobin", 13.2, "g/dL"), ObservationInput("body_weight", 70, "kg")],
        effective_at=datetime.datetime(2026, 3, 1, 8, 30, tzinfo=datetime.UTC),
        source=ObservationSource.API,
    )
    condition = ConditionFactory(patient=patient)
    Prediction.objects.create(
        patient=patient, model_version=active_model, created_at=timezone.now(), status=PredictionStatus.FAILED,
        error="The model artifact could not be read.",
    )  # fmt: skip
    prediction = prediction_for(patient, hba1c=7.0, risk_level="high", version=active_model)
    recommendation = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)[0]
    items = list(recommendation.items.order_by("position"))
    item_approve(item=items[0], by=doctor_a)
    _known.update({
        "/api/v1/patients/{id}/": {"id": patient.pk},
        "/api/v1/fhir/patients/{id}/export/": {"id": patient.pk},
        "/api/v1/patients/{patient_pk}/conditions/{id}/": {"patient_pk": patient.pk, "id": condition.pk},
        "/api/v1/recommendation-items/{id}/review/": {"id": items[-1].pk},
        "/api/v1/analytes/{code}/": {"code": "hemoglobin"},
    })  # fmt: skip
    for path in DOCUMENT["paths"]:
        if "{patient_pk}" in path and path not in _known:
            _known[path] = {"patient_pk": patient.pk}
    yield patient
    _known.clear()


def _headers(user) -> dict[str, str]:
    # A new token for each request: a fuzzed call to logout or logout-all must not sign the next one out.
    return {"Authorization": f"Token {AuthToken.objects.create(user=user)[1]}"}


@pytest.mark.reliability(12, "Coverage and fuzzing requests, valid and invalid, to every operation as a doctor")
@schema.parametrize()
@HYPOTHESIS
def test_every_operation_answers_a_doctor_as_documented_and_never_with_a_5xx(case, doctor_a, seeded, in_process):
    case.call_and_validate(headers=_headers(doctor_a), checks=CHECKS)


@pytest.mark.reliability(12, "Fuzzing requests, valid and invalid, to every operation as staff and as a patient")
@pytest.mark.parametrize("role", ["staff", "patient"])
@other_roles_schema.parametrize()
@HYPOTHESIS
def test_every_operation_answers_other_roles_as_documented_and_never_with_a_5xx(
    case, role, users_by_role, seeded, in_process
):
    case.call_and_validate(headers=_headers(users_by_role[role]), checks=CHECKS)


@pytest.mark.reliability(12, "Compared the schema the requests are generated from with the one /api/schema/ serves")
def test_the_fuzzed_schema_is_the_one_the_api_serves(staff_a):
    api = APIClient()
    api.force_authenticate(staff_a)

    response = api.get("/api/schema/", {"format": "json"})

    assert response.status_code == 200
    assert json.loads(response.content) == DOCUMENT
