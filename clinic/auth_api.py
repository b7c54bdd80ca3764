"""The API's sign-in and sign-out: `POST /api/v1/auth/token/`, `.../logout/` and `.../logout-all/`.

Thin: parse, authenticate (through the same backends, lockout and address throttle as the portal's login), call a
service that writes the token row and its audit row, answer.
"""

from django.contrib.auth import authenticate
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic import services
from clinic.authentication import TokenAuthentication
from clinic.models import User

USERNAME_MAX_LENGTH = User._meta.get_field("username").max_length
REFUSED = "Unable to sign in with the username and password given."
NO_TOKEN = "This request carries no API token to revoke. To sign out of the portal, use its Sign out button."  # noqa: S105
LOCKED = OpenApiResponse(description="Too many failed sign-ins for this username, or from this address; try later.")


class TokenRequestSerializer(serializers.Serializer):
    # Longer than any username can be: refused here, before the lockout table (varchar 255) sees it.
    username = serializers.CharField(max_length=USERNAME_MAX_LENGTH)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class IssuedTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`. Shown once.")
    expiry = serializers.DateTimeField(help_text="When it dies unless used before; each use pushes it on.")


class TokenView(APIView):
    """A new token on every call; the user's other tokens stay valid until they expire or are revoked."""

    # Not the token class: a stale token sent along must not turn a sign-in into a 401. The session class stays,
    # so a browser's signed-in POST needs its CSRF token as on every other endpoint.
    authentication_classes = [SessionAuthentication]
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        summary="Obtain an API token",
        description="Username and password in, a new `token` out; send it as `Authorization: Token <token>`. "
        "The token dies after the session idle time without use (each use pushes its `expiry` on), after the "
        "maximum token age however busy, and on logout or a password change. Failed attempts count towards the "
        "login lockout.",
        auth=[],
        request=TokenRequestSerializer,
        responses={
            200: IssuedTokenSerializer,
            400: OpenApiResponse(description="Wrong username or password, or a field missing or too long."),
            429: LOCKED,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # The Django request, so a lockout flag set by the backends reaches axes' middleware (429).
        user = authenticate(request._request, **serializer.validated_data)
        if user is None:
            raise ValidationError({"non_field_errors": [REFUSED]})
        instance, token = services.api_token_issue(user=user)
        return Response(IssuedTokenSerializer({"token": token, "expiry": instance.expiry}).data)


class TokenLogoutView(APIView):
    @extend_schema(
        tags=["auth"],
        summary="Revoke the token of this request",
        description="Signs this token out; the user's other tokens and portal sessions stay valid.",
        request=None,
        responses={
            204: OpenApiResponse(description="The token is revoked."),
            400: OpenApiResponse(description="The request was signed in by a portal session, not a token."),
        },
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.successful_authenticator, TokenAuthentication):
            raise ValidationError({"non_field_errors": [NO_TOKEN]})
        services.api_token_revoke(token=request.auth, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenLogoutAllView(APIView):
    @extend_schema(
        tags=["auth"],
        summary="Revoke every token of the signed-in user",
        description="With a token or a portal session: every API token of the user is revoked (portal sessions "
        "are not signed out).",
        request=None,
        responses={200: inline_serializer("RevokedTokens", {"revoked": serializers.IntegerField()})},
    )
    def post(self, request: Request) -> Response:
        revoked = services.api_tokens_revoke_all(user=request.user, by=request.user, reason="logout_all")
        return Response({"revoked": revoked})


app_name = "auth-api"

urlpatterns = [
    path("token/", TokenView.as_view(), name="token"),
    path("logout/", TokenLogoutView.as_view(), name="logout"),
    path("logout-all/", TokenLogoutAllView.as_view(), name="logout-all"),
]
