"""API token authentication: django-rest-knox's, with clear refusals and no per-request sweep of other tokens."""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox import auth as knox_auth
from rest_framework import exceptions

DEAD_TOKEN = "Invalid or expired token. Request a new one with POST /api/v1/auth/token/."  # noqa: S105  (a message, not a secret)


class TokenAuthentication(knox_auth.TokenAuthentication):
    """`Authorization: Token <token>`. Knox keeps only a SHA-512 digest of each token and an expiry that every use
    pushes on (settings.REST_KNOX); an unknown, expired or revoked token is refused with 401 and a challenge."""

    def authenticate_credentials(self, token: bytes):
        try:
            token.decode("ascii")
        except UnicodeDecodeError:
            # Knox decodes as UTF-8 and would raise on any other byte; no token of ours has one.
            raise exceptions.AuthenticationFailed(DEAD_TOKEN) from None
        try:
            return super().authenticate_credentials(token)
        except exceptions.AuthenticationFailed as refused:
            if refused.detail == "User inactive or deleted.":
                raise
            raise exceptions.AuthenticationFailed(DEAD_TOKEN) from None

    def _cleanup_token(self, auth_token) -> bool:
        """Knox deletes the user's other expired tokens on every request (one more query each time); here only the
        token in hand is checked, and the others are purged when the user is issued a new one
        (clinic.services.api_token_issue)."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class TokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI document names and describes the scheme (drf-spectacular finds it when this module loads)."""

    target_class = TokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")  # noqa: S106
