"""An EHR for the tests: its own key pair (generated here, never a file), a registered connection, signed calls."""

from __future__ import annotations

import copy
import datetime
import json
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.utils import timezone

from cdshooks.models import EhrConnection

REQUESTS = Path(__file__).parent / "requests"
ISS = "https://ehr.riverside.example"
MRN_SYSTEM = "https://ehr.riverside.example/mrn"
BASE = "http://testserver"
ACCESS_TOKEN = "ehr-fhir-access-token-must-never-be-logged"


def example(name: str) -> dict:
    """One of our spec-shaped example requests (requests/*.json)."""
    return json.loads((REQUESTS / name).read_text())


def patient_view_body(*, mrn: str, effective: datetime.datetime | None = None) -> dict:
    body = example("patient_view.json")
    body["prefetch"]["patient"]["identifier"][1]["value"] = mrn
    when = (effective or timezone.now() - datetime.timedelta(hours=2)).isoformat()
    for entry in body["prefetch"]["observations"]["entry"]:
        entry["resource"]["effectiveDateTime"] = when
    return body


def feedback_body(name: str, *, card: str, suggestion: str = "") -> dict:
    body = example(name)
    body["feedback"][0]["card"] = card
    if "acceptedSuggestions" in body["feedback"][0]:
        body["feedback"][0]["acceptedSuggestions"][0]["id"] = suggestion or str(uuid.uuid4())
    return body


class Ehr:
    """Signs JWTs as the CDS Hooks specification asks: RS384 (or ES384), kid, iss, aud, exp, iat, jti."""

    def __init__(self, *, algorithm: str = "RS384", kid: str = "ehr-key-1"):
        self.algorithm, self.kid = algorithm, kid
        self.private = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if algorithm.startswith("RS")
            else ec.generate_private_key(ec.SECP384R1())
        )

    def jwks(self) -> dict:
        algorithm = jwt.algorithms.RSAAlgorithm if self.algorithm.startswith("RS") else jwt.algorithms.ECAlgorithm
        public = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": self.algorithm}]}

    def token(self, *, aud: str, iss: str = ISS, lifetime: int = 300, drop: tuple[str, ...] = (), **claims) -> str:
        now = int(datetime.datetime.now(tz=datetime.UTC).timestamp())
        payload = {"iss": iss, "aud": aud, "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4()),
                   "sub": "Practitioner/dr-okafor", **claims}  # fmt: skip
        for name in drop:
            payload.pop(name, None)
        return jwt.encode(payload, self.private, algorithm=self.algorithm, headers={"kid": self.kid, "typ": "JWT"})


@pytest.fixture(scope="session")
def ehr() -> Ehr:
    return Ehr()


@pytest.fixture
def connection(clinic_a, ehr) -> EhrConnection:
    return EhrConnection.objects.create(
        clinic=clinic_a, name="Riverside EHR", iss=ISS, jwks=ehr.jwks(), audience=BASE, mrn_system=MRN_SYSTEM
    )


@pytest.fixture
def call(client, ehr, connection):
    """POST a body to a CDS Hooks path as the EHR, with a fresh JWT unless `token` is given."""

    def post(path: str, body: dict, *, token: str | None = None, authorization: str | None = None):
        token = token if token is not None else ehr.token(aud=f"{BASE}{path}")
        header = authorization if authorization is not None else f"Bearer {token}"
        return client.post(path, data=json.dumps(copy.deepcopy(body)), content_type="application/json",
                           HTTP_AUTHORIZATION=header)  # fmt: skip

    return post
