"""Who is calling: the JWT an EHR signs for every CDS Hooks call, verified as the specification requires.

`caller_verify` takes the `Authorization: Bearer <JWT>` header and returns the EHR connection and the claims, or
raises `Unauthorized` with a message for the EHR's integrators. Checked, in this order:

1. a bearer token is there and is a JWT signed with RS384 or ES384 (the specification's recommended algorithms;
   never `none`, never a shared-secret HMAC);
2. its `iss` is the issuer of an active registered `EhrConnection`;
3. the signature verifies with that connection's key named by the JWT's `kid` (the stored JWK Set, else the
   connection's JWKS URL, fetched with a short timeout and cached);
4. `aud` is the URL of the endpoint being called, under the connection's audience (or CDS_HOOKS_BASE_URL);
5. `exp`, `iat` and `jti` are present, `exp` is not past (nor more than an hour ahead: a JWT is for one call);
6. the `jti` was not seen before from this connection (`services.jti_claim`, kept until `exp`).

Nothing here logs the token.
"""

from __future__ import annotations

import datetime
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.core.cache import cache

from cdshooks import selectors
from cdshooks.models import EhrConnection

ALGORITHMS = ["RS384", "ES384"]
MAX_LIFETIME = datetime.timedelta(hours=1)
LEEWAY_SECONDS = 30  # clock skew between the EHR and us
JWKS_TIMEOUT_SECONDS = 3
JWKS_CACHE_SECONDS = 3600
JWKS_MAX_BYTES = 256 * 1024


class Unauthorized(Exception):
    """The call is refused with 401; the message says why, for the EHR's integrators (never the token)."""


@dataclass(frozen=True)
class Caller:
    connection: EhrConnection
    claims: dict[str, Any]

    @property
    def subject(self) -> str:
        return str(self.claims.get("sub") or "")


def bearer_token(header: str) -> str:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send a JWT signed by your EHR in the Authorization header: 'Bearer <JWT>'.")
    return token.strip()


def _fetched_jwks(url: str) -> dict[str, Any]:
    """The JWK Set at `url`, cached; a failure to fetch is a refusal, never a call without verification."""
    key = f"cdshooks:jwks:{url}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    try:
        with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as response:  # noqa: S310 (https in admin)
            jwks = json.loads(response.read(JWKS_MAX_BYTES))
    except (OSError, ValueError) as exc:
        raise Unauthorized(f"The EHR's public keys could not be fetched from its JWKS URL ({exc}).") from None
    cache.set(key, jwks, JWKS_CACHE_SECONDS)
    return jwks


def _signing_key(connection: EhrConnection, kid: str | None) -> Any:
    jwks = connection.jwks or (_fetched_jwks(connection.jwks_url) if connection.jwks_url else {})
    try:
        keys = jwt.PyJWKSet.from_dict(jwks).keys
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"The EHR connection's public keys cannot be read ({exc}).") from None
    if kid is None and len(keys) == 1:
        return keys[0].key
    for key in keys:
        if key.key_id == kid:
            return key.key
    raise Unauthorized(f"No public key with kid {kid!r} is registered for this EHR.")


def expected_audience(connection: EhrConnection, path: str) -> str:
    base = (connection.audience or settings.CDS_HOOKS_BASE_URL).rstrip("/")
    return f"{base}{path}"


def caller_verify(*, authorization: str, path: str, now: datetime.datetime) -> Caller:
    """The connection and claims of a verified JWT for a call to `path` (e.g. /cds-services/patient-view)."""
    token = bearer_token(authorization)
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise Unauthorized("The bearer token is not a JWT.") from None
    if header.get("alg") not in ALGORITHMS:
        raise Unauthorized(f"JWTs must be signed with {' or '.join(ALGORITHMS)}, not {header.get('alg')!r}.")
    connection = selectors.connection_by_issuer(iss=str(unverified.get("iss") or ""))
    if connection is None:
        raise Unauthorized("The JWT's issuer (iss) is not a registered, active EHR connection.")
    audience = expected_audience(connection, path)
    try:
        claims = jwt.decode(
            token, _signing_key(connection, header.get("kid")), algorithms=ALGORITHMS, audience=audience,
            issuer=connection.iss, leeway=LEEWAY_SECONDS, options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The JWT has expired (exp is past).") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized(f"The JWT's audience (aud) must be {audience}.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthorized(f"The JWT lacks the {exc.claim!r} claim.") from None
    except jwt.InvalidSignatureError:
        raise Unauthorized("The JWT's signature does not verify with the EHR's registered key.") from None
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"The JWT is not valid ({exc}).") from None
    expires = datetime.datetime.fromtimestamp(claims["exp"], tz=datetime.UTC)
    if expires - now > MAX_LIFETIME:
        raise Unauthorized("The JWT expires more than an hour ahead: sign one short-lived JWT per call.")
    if not isinstance(claims["jti"], str) or not claims["jti"] or len(claims["jti"]) > 200:
        raise Unauthorized("The JWT's jti must be a non-empty string of at most 200 characters.")
    return Caller(connection=connection, claims=claims)
