"""EHR connections of the CDS Hooks service, and the JWT ids already used.

- An `EhrConnection` is one clinic's EHR registered by its admin: the issuer (`iss`) of the JWTs it signs, where its
  public keys are (a JWK Set stored here, or a JWKS URL), the audience it calls us by, the identifier system of
  its medical record numbers, and whether the FHIR data it sends may be stored here.
- A `UsedJti` keeps a JWT's id until the JWT expires: the same JWT presented twice is a replay and refused.

Written by `cdshooks.services` (and the admin), read by `cdshooks.selectors`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models


def validate_jwks(value) -> None:
    """A JWK Set: {"keys": [{...}, ...]} with public keys only (a private key has no business here)."""
    if value in (None, "", {}):
        return
    keys = value.get("keys") if isinstance(value, dict) else None
    if not isinstance(keys, list) or not keys or not all(isinstance(key, dict) for key in keys):
        raise ValidationError('A JWK Set is an object {"keys": [ ... ]} with at least one key.')
    for key in keys:
        if key.get("kty") not in ("RSA", "EC"):
            raise ValidationError(f"Key {key.get('kid', '?')}: only RSA and EC keys sign CDS Hooks JWTs.")
        if "d" in key:
            raise ValidationError(f'Key {key.get("kid", "?")} holds a private part ("d"): store the public key only.')


class EhrConnection(models.Model):
    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100, help_text='Which EHR this is, for people: "Epic production".')
    iss = models.CharField(
        "issuer (iss)", max_length=300, unique=True,
        help_text="The iss claim of the JWTs this EHR signs, exactly as it sends it.",
    )  # fmt: skip
    jwks_url = models.URLField(
        "JWKS URL", max_length=500, blank=True,
        help_text="Where the EHR publishes its public keys (fetched with a short timeout, cached for an hour). "
        "Leave empty and paste the keys below instead.",
    )  # fmt: skip
    jwks = models.JSONField(
        "public keys (JWK Set)", default=dict, blank=True, validators=[validate_jwks],
        help_text='The EHR\'s public keys as a JWK Set, {"keys": [...]}; used before the JWKS URL.',
    )  # fmt: skip
    audience = models.URLField(
        "allowed audience", max_length=300, blank=True,
        help_text="Our base URL as this EHR calls it: a JWT's aud must be this URL followed by "
        "/cds-services/patient-view (or .../feedback). Empty: the CDS_HOOKS_BASE_URL setting.",
    )  # fmt: skip
    mrn_system = models.CharField(
        "MRN identifier system", max_length=300,
        help_text="The Patient.identifier system whose value is our MRN, e.g. urn:oid:1.2.36.146.595.217.0.1.",
    )  # fmt: skip
    may_store_prefetch = models.BooleanField(
        "may store prefetched data", default=False,
        help_text="Import the FHIR data the EHR sends for a patient not registered here. Off: it is evaluated "
        "and forgotten.",
    )  # fmt: skip
    active = models.BooleanField(default=True, help_text="An inactive connection's calls are refused.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["clinic", "name"]
        verbose_name = "EHR connection"

    def __str__(self) -> str:
        return f"{self.name} ({self.iss})"

    def clean(self) -> None:
        if not self.jwks and not self.jwks_url:
            raise ValidationError("Give the EHR's public keys or its JWKS URL: without them no JWT can be verified.")


class UsedJti(models.Model):
    """A JWT id seen from a connection, kept until the JWT expires."""

    connection = models.ForeignKey(EhrConnection, on_delete=models.CASCADE, related_name="+")
    jti = models.CharField(max_length=200)
    exp = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "jti"], name="jti_once_per_connection")]

    def __str__(self) -> str:
        return self.jti
