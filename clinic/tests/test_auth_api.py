"""The API's tokens: issued on each sign-in, stored as digests, dead after the idle time or the maximum age, revoked
on logout and password change, every issue and revocation audited."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from clinic.models import AuditEvent, Role
from clinic.services import user_set_password
from clinic.tests.factories import UserFactory

PASSWORD = "correct-horse-battery-staple"
PATIENTS = "/api/v1/patients/"


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def nurse(clinic_a):
    return UserFactory(clinic=clinic_a, role=Role.STAFF, username="nurse", password=PASSWORD)


def _issue(api, username="nurse", password=PASSWORD, ip="10.0.0.1"):
    return api.post(reverse("auth-api:token"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def _token(api, **kwargs) -> str:
    response = _issue(api, **kwargs)
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _get(token: str, path: str = PATIENTS):
    return APIClient().get(path, HTTP_AUTHORIZATION=f"Token {token}")


@pytest.mark.reliability(25, "Asked for a token twice: two different tokens, both work, only digests stored, audited")
def test_each_sign_in_issues_a_new_token_stored_only_as_a_digest(api, nurse):
    first, second = _token(api), _token(api)

    assert first != second
    assert _get(first).status_code == 200
    assert _get(second).status_code == 200
    stored = list(AuthToken.objects.filter(user=nurse).values_list("digest", "token_key"))
    assert len(stored) == 2
    assert not any(first in row or second in row for row in stored)  # neither token is kept in full
    issued = AuditEvent.objects.filter(action="auth.token.issue", actor=nurse)
    assert issued.count() == 2


def test_the_answer_says_when_the_token_dies_unless_used(api, nurse):
    before = timezone.now()

    expiry = _issue(api).json()["expiry"]

    assert AuthToken.objects.get().expiry >= before + timedelta(seconds=settings.SESSION_IDLE_TIMEOUT)
    assert expiry.startswith(str(AuthToken.objects.get().expiry.date()))


@pytest.mark.reliability(25, "A request without credentials and one with a made-up token: 401 with a challenge")
@pytest.mark.parametrize("header", [None, "Token " + "0" * 64, "Token caf\xe9"])
def test_a_missing_or_unknown_token_gets_401_with_a_challenge(db, header):
    headers = {"HTTP_AUTHORIZATION": header} if header else {}

    response = APIClient().get(PATIENTS, **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.reliability(25, "A token left unused for longer than the session idle time")
def test_a_token_unused_for_the_idle_time_is_dead(api, nurse):
    token = _token(api)
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))  # the idle time passed since its last use

    response = _get(token)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "expired" in response.json()["detail"]
    assert not AuthToken.objects.exists()


def test_each_use_pushes_the_expiry_on_by_the_idle_time(api, nurse):
    token = _token(api)
    AuthToken.objects.update(expiry=timezone.now() + timedelta(minutes=5))

    assert _get(token).status_code == 200

    remaining = AuthToken.objects.get().expiry - timezone.now()
    assert remaining > timedelta(seconds=settings.SESSION_IDLE_TIMEOUT - 60)


@pytest.mark.reliability(25, "A token in constant use reaching the maximum age: its expiry stops at the maximum age")
def test_a_busy_token_still_dies_at_the_maximum_age(api, nurse):
    token = _token(api)
    created = timezone.now() - timedelta(seconds=settings.API_TOKEN_MAX_AGE) + timedelta(minutes=10)
    AuthToken.objects.update(created=created, expiry=timezone.now() + timedelta(minutes=1))

    assert _get(token).status_code == 200

    assert AuthToken.objects.get().expiry == created + timedelta(seconds=settings.API_TOKEN_MAX_AGE)


@pytest.mark.reliability(25, "Logout with one of two tokens: that one is dead, the other works, audited")
def test_logout_revokes_the_calling_token_only(api, nurse):
    leaving, staying = _token(api), _token(api)

    response = APIClient().post(reverse("auth-api:logout"), HTTP_AUTHORIZATION=f"Token {leaving}")

    assert response.status_code == 204
    assert _get(leaving).status_code == 401
    assert _get(staying).status_code == 200
    assert AuditEvent.objects.filter(action="auth.token.revoke", actor=nurse).count() == 1


def test_logout_from_a_portal_session_says_there_is_no_token_to_revoke(api, nurse):
    token = _token(api)
    api.force_login(nurse)

    response = api.post(reverse("auth-api:logout"))

    assert response.status_code == 400
    assert "no API token" in response.json()["non_field_errors"][0]
    assert _get(token).status_code == 200


@pytest.mark.reliability(25, "Logout-all with one of two tokens: both dead, audited with the count")
def test_logout_all_revokes_every_token_of_the_user(api, nurse, staff_a):
    first, second = _token(api), _token(api)
    someone_else = _token(api, username=UserFactory(clinic=nurse.clinic, username="other", password=PASSWORD).username)

    response = APIClient().post(reverse("auth-api:logout-all"), HTTP_AUTHORIZATION=f"Token {first}")

    assert response.json() == {"revoked": 2}
    assert _get(first).status_code == _get(second).status_code == 401
    assert _get(someone_else).status_code == 200
    event = AuditEvent.objects.get(action="auth.token.revoke_all")
    assert event.detail == {"reason": "logout_all", "count": 2}


@pytest.mark.reliability(25, "Signed out of the portal while holding an API token: the token is dead")
def test_signing_out_of_the_portal_revokes_the_users_tokens(client, api, nurse):
    token = _token(api)
    client.force_login(nurse)

    client.post(reverse("logout"))

    assert _get(token).status_code == 401
    assert AuditEvent.objects.get(action="auth.token.revoke_all").detail["reason"] == "logout"


@pytest.mark.reliability(25, "Changed the password in the portal while holding an API token: the token is dead")
def test_a_password_change_in_the_portal_revokes_the_users_tokens(client, api, nurse):
    token = _token(api)
    client.force_login(nurse)

    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-passphrase",
            "new_password2": "another-long-passphrase",
        },
    )

    assert response.status_code == 302
    assert _get(token).status_code == 401


@pytest.mark.reliability(25, "An admin set a new password for an account holding an API token: the token is dead")
def test_a_password_set_by_an_admin_revokes_the_users_tokens(api, nurse, admin_a):
    token = _token(api)

    user_set_password(user=nurse, password="another-long-passphrase", by=admin_a)

    assert _get(token).status_code == 401
    event = AuditEvent.objects.get(action="auth.token.revoke_all")
    assert (event.actor, event.detail["reason"]) == (admin_a, "password_change")


def test_a_password_set_in_the_django_admin_revokes_the_users_tokens(client, api, nurse, admin_a):
    token = _token(api)
    client.force_login(admin_a)
    new = "another-long-passphrase"

    response = client.post(
        reverse("admin:auth_user_password_change", args=[nurse.pk]), {"password1": new, "password2": new}
    )

    assert response.status_code == 302
    assert _get(token).status_code == 401


def test_a_deactivated_account_loses_its_token(api, nurse):
    token = _token(api)
    nurse.is_active = False
    nurse.save(update_fields=["is_active"])

    assert _get(token).status_code == 401


def test_a_wrong_password_gets_no_token(api, nurse):
    response = _issue(api, password="wrong")

    assert response.status_code == 400
    assert not AuthToken.objects.exists()


@pytest.mark.reliability(26, "Five wrong passwords at the token endpoint, then the right one: 429, no token")
def test_the_token_endpoint_shares_the_login_lockout(api, nurse):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _issue(api, password="guess")

    response = _issue(api)

    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.json()["detail"]
    assert not AuthToken.objects.exists()


@pytest.mark.reliability(27, "A 300-character username at the token endpoint: 400 naming the field, nothing stored")
def test_an_over_long_username_is_a_400_and_touches_no_lockout_row(api, nurse):
    response = _issue(api, username="u" * 300)

    assert response.status_code == 400
    assert "username" in response.json()
    assert not AccessAttempt.objects.exists()


# --- DRF throttles -----------------------------------------------------------------------------------------------


@pytest.fixture
def low_rates(monkeypatch):
    """Rates a test can exhaust; production's come from API_THROTTLE_ANON and API_THROTTLE_USER."""
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": "3/minute", "user": "5/minute"})


@pytest.mark.reliability(26, "Four anonymous token requests a minute from one address, limit three: the fourth 429")
def test_anonymous_callers_are_throttled_per_address(nurse, low_rates):
    api = APIClient()
    answers = [_issue(api, password="wrong", ip="203.0.113.9").status_code for _ in range(4)]

    assert answers == [400, 400, 400, 429]  # requests without credentials to other endpoints stop at 401 anyway
    assert int(_issue(api, ip="203.0.113.9")["Retry-After"]) > 0
    assert _issue(api, ip="10.0.0.7").status_code == 200  # another address has its own count


@pytest.mark.reliability(26, "Six calls a minute by one account against a limit of five: the sixth 429, others go on")
def test_signed_in_callers_are_throttled_per_account(db, nurse, staff_a, low_rates):
    busy, other = APIClient(), APIClient()
    busy.force_authenticate(nurse)
    other.force_authenticate(staff_a)

    answers = [busy.get(PATIENTS).status_code for _ in range(6)]

    assert answers == [200] * 5 + [429]
    assert other.get(PATIENTS).status_code == 200


def test_with_the_cache_unreachable_the_api_answers_unthrottled(db, nurse, low_rates, monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(SimpleRateThrottle.cache, "get", unreachable)
    api = APIClient()
    api.force_authenticate(nurse)

    assert [api.get(PATIENTS).status_code for _ in range(6)] == [200] * 6
