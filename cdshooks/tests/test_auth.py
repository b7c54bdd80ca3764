"""Only a registered EHR's signed, fresh, unused JWT for this very endpoint gets an answer; the EHR's FHIR access
token never reaches a log or the audit trail."""

from __future__ import annotations

import json
import logging

import jwt
import pytest

from cdshooks.tests.conftest import ACCESS_TOKEN, BASE, Ehr, patient_view_body
from clinic.models import AuditEvent, AuditOutcome
from patients.tests.factories import PatientFactory

PATH = "/cds-services/patient-view"
AUD = f"{BASE}{PATH}"


@pytest.fixture
def body(clinic_a):
    PatientFactory(clinic=clinic_a, mrn="RV-1042")
    return patient_view_body(mrn="RV-1042")


def _refused(response, words: str) -> None:
    assert response.status_code == 401, response.content
    assert words in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_signed_call_is_answered(call, body):
    assert call(PATH, body).status_code == 200


def test_an_es384_signed_call_is_answered(call, body, connection):
    ec_ehr = Ehr(algorithm="ES384", kid="ehr-ec-1")
    connection.jwks = {"keys": connection.jwks["keys"] + ec_ehr.jwks()["keys"]}
    connection.save()

    assert call(PATH, body, token=ec_ehr.token(aud=AUD)).status_code == 200


def test_a_call_without_a_jwt_is_refused(call, body):
    _refused(call(PATH, body, authorization=""), "Bearer <JWT>")
    _refused(call(PATH, body, authorization="Basic dXNlcjpwYXNz"), "Bearer <JWT>")
    _refused(call(PATH, body, authorization="Bearer not-a-jwt"), "not a JWT")


def test_a_jwt_signed_with_another_key_is_refused(call, body):
    impostor = Ehr()  # same kid, another key

    _refused(call(PATH, body, token=impostor.token(aud=AUD)), "signature does not verify")


def test_a_jwt_from_an_unregistered_issuer_is_refused(call, body, ehr):
    _refused(call(PATH, body, token=ehr.token(aud=AUD, iss="https://elsewhere.example")), "issuer")


def test_an_inactive_connection_is_refused(call, body, ehr, connection):
    connection.active = False
    connection.save()

    _refused(call(PATH, body), "issuer")


def test_a_jwt_for_another_audience_is_refused(call, body, ehr):
    _refused(call(PATH, body, token=ehr.token(aud="https://other-cds.example/cds-services/patient-view")), "aud")
    _refused(call(PATH, body, token=ehr.token(aud=f"{BASE}/cds-services/other")), "aud")


def test_an_expired_jwt_is_refused(call, body, ehr):
    _refused(call(PATH, body, token=ehr.token(aud=AUD, lifetime=-120)), "expired")


def test_a_jwt_valid_for_hours_is_refused(call, body, ehr):
    _refused(call(PATH, body, token=ehr.token(aud=AUD, lifetime=6 * 3600)), "more than an hour")


@pytest.mark.parametrize("claim", ["exp", "jti", "iat"])
def test_a_jwt_without_a_required_claim_is_refused(call, body, ehr, claim):
    _refused(call(PATH, body, token=ehr.token(aud=AUD, drop=(claim,))), claim)


def test_a_replayed_jwt_is_refused(call, body, ehr):
    token = ehr.token(aud=AUD)
    assert call(PATH, body, token=token).status_code == 200

    _refused(call(PATH, body, token=token), "already used")


def test_symmetric_and_unsigned_jwts_are_refused(call, body):
    claims = {"iss": "https://ehr.riverside.example", "aud": AUD, "exp": 4102444800, "iat": 0, "jti": "x"}
    _refused(call(PATH, body, token=jwt.encode(claims, "a-shared-secret-long-enough-for-hs384-" * 2, "HS384")), "RS384")
    _refused(call(PATH, body, token=jwt.encode(claims, None, "none")), "RS384")


def test_a_refusal_is_audited_without_the_token(call, body, ehr):
    token = ehr.token(aud=AUD, lifetime=-120)

    call(PATH, body, token=token)

    refused = AuditEvent.objects.get(action="cdshooks.refused")
    assert refused.outcome == AuditOutcome.DENIED
    assert "expired" in refused.detail["reason"]
    assert token not in json.dumps(refused.detail)


def test_the_fhir_access_token_never_reaches_a_log_or_the_audit_trail(call, body, caplog):
    assert body["fhirAuthorization"]["access_token"] == ACCESS_TOKEN
    caplog.set_level(logging.DEBUG)
    broken = {**body, "hook": "order-sign"}  # a 400 takes the error path too
    unknown = patient_view_body(mrn="NOT-HERE")  # and the prefetch path

    responses = [call(PATH, body), call(PATH, broken), call(PATH, unknown), call(PATH, body, authorization="x")]

    assert [r.status_code for r in responses] == [200, 400, 200, 401]
    assert caplog.records  # the requests were logged (DEBUG: SQL included), without the token
    assert ACCESS_TOKEN not in caplog.text
    rows = list(AuditEvent.objects.values_list("detail", "actor_username", "object_id"))
    assert len(rows) >= 3
    assert ACCESS_TOKEN not in json.dumps(rows, default=str)
    assert all(ACCESS_TOKEN not in r.content.decode() for r in responses)


def test_keys_from_a_jwks_url_are_fetched_with_a_short_timeout_and_cached(call, body, ehr, connection, monkeypatch):
    connection.jwks, connection.jwks_url = {}, "https://ehr.riverside.example/.well-known/jwks.json"
    connection.save()
    fetched = []

    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self, limit):
            return json.dumps(ehr.jwks()).encode()

    def urlopen(url, timeout):  # the test never reaches the network
        fetched.append((url, timeout))
        return Response()

    monkeypatch.setattr("cdshooks.auth.urllib.request.urlopen", urlopen)

    assert [call(PATH, body).status_code for _ in range(3)] == [200, 200, 200]
    assert fetched == [(connection.jwks_url, 3)]


def test_a_jwks_url_that_cannot_be_reached_refuses_the_call(call, body, connection, monkeypatch):
    connection.jwks, connection.jwks_url = {}, "https://ehr.riverside.example/jwks"
    connection.save()

    def urlopen(url, timeout):
        raise OSError("timed out")

    monkeypatch.setattr("cdshooks.auth.urllib.request.urlopen", urlopen)

    _refused(call(PATH, body), "could not be fetched")
