import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from clinic.models import AuditEvent, AuditOutcome, Role
from clinic.tests.factories import UserFactory

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def nurse(clinic_a):
    return UserFactory(clinic=clinic_a, role=Role.STAFF, username="nurse", password=PASSWORD)


def _login(client, username, password, ip="10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_the_login_page_loads_bootstrap_from_this_server(client, db):
    response = client.get(reverse("login"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "/static/bootstrap/css/bootstrap.min.css" in html
    assert "http://" not in html
    assert "https://" not in html


def test_a_user_signs_in_and_lands_on_the_home_page(client, nurse):
    response = _login(client, "nurse", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert AuditEvent.objects.filter(action="auth.login", actor=nurse).exists()


@pytest.mark.reliability(5, "Session key before and after signing in")
def test_the_session_id_changes_at_login(client, nurse):
    client.get(reverse("login"))
    client.session.save()
    before = client.session.session_key

    _login(client, "nurse", PASSWORD)

    assert client.session.session_key != before


@pytest.mark.reliability(5, "The session cookie replayed after logout")
def test_the_old_session_cookie_is_rejected_after_logout(client, nurse):
    _login(client, "nurse", PASSWORD)
    old_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value

    client.post(reverse("logout"))
    client.cookies[settings.SESSION_COOKIE_NAME] = old_cookie
    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert AuditEvent.objects.filter(action="auth.logout", actor=nurse).exists()


def test_a_wrong_password_is_refused_and_audited_against_the_account(client, nurse):
    response = _login(client, "nurse", "not-the-password")

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert (event.actor_username, event.outcome, event.clinic_id) == ("nurse", AuditOutcome.FAILURE, nurse.clinic_id)


@pytest.mark.reliability(4, "Five wrong passwords for one user and address: the right one is then refused (429)")
def test_five_failures_lock_the_account_for_that_address_and_the_lockout_is_audited(client, nurse):
    for _ in range(4):
        _login(client, "nurse", "wrong-password-123")
    assert not AuditEvent.objects.filter(action="auth.lockout").exists()

    _login(client, "nurse", "wrong-password-123")
    lockout = AuditEvent.objects.get(action="auth.lockout")
    response = _login(client, "nurse", PASSWORD)

    assert (lockout.actor_username, lockout.outcome) == ("nurse", AuditOutcome.DENIED)
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.reliability(4, "A locked-out user signs in again after the cool-off")
def test_the_lockout_ends_after_the_cool_off(client, nurse):
    for _ in range(5):
        _login(client, "nurse", "wrong-password-123")
    assert _login(client, "nurse", PASSWORD).status_code == 429

    expired = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=expired)

    assert _login(client, "nurse", PASSWORD).status_code == 302


@pytest.mark.reliability(4, "A username locked from one address still signs in from another")
def test_a_lockout_does_not_stop_the_same_user_from_another_address(client, nurse):
    for _ in range(5):
        _login(client, "nurse", "wrong-password-123", ip="203.0.113.9")

    assert _login(client, "nurse", PASSWORD, ip="10.0.0.7").status_code == 302


@pytest.mark.reliability(4, "Usernames guessed from one address, fewer than its limit: a real user there signs in")
def test_an_attacker_cycling_usernames_does_not_lock_out_other_users(client, nurse, clinic_a):
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT - 1):
        _login(client, f"guess{n}", "wrong-password-123", ip="203.0.113.9")

    assert _login(client, "nurse", PASSWORD, ip="203.0.113.9").status_code == 302


@pytest.fixture
def hashes(monkeypatch):
    """How many times a password was hashed or checked against a hash (Argon2's cost, paid per attempt)."""
    calls = []
    for name in ("encode", "verify"):
        real = getattr(Argon2PasswordHasher, name)
        monkeypatch.setattr(
            Argon2PasswordHasher, name, lambda self, *args, _real=real: calls.append(1) or _real(self, *args)
        )
    return calls


@pytest.mark.reliability(26, "50 usernames sprayed at the login from one address: refused (429) before any hash")
def test_spraying_usernames_from_one_address_is_stopped_before_the_password_hash(client, nurse, hashes):
    limit = settings.LOGIN_ADDRESS_FAILURE_LIMIT
    answers = [_login(client, f"guess{n}", "Spring2026!", ip="203.0.113.9").status_code for n in range(50)]

    assert answers[:limit] == [200] * limit  # "wrong username or password"
    assert set(answers[limit:]) == {429}
    assert len(hashes) == limit  # the refused attempts cost no hash
    assert _login(client, "nurse", PASSWORD, ip="203.0.113.9").status_code == 429  # the address, for everyone


@pytest.mark.reliability(26, "After a spray from one address, a real user signs in from another address")
def test_spraying_from_one_address_does_not_lock_out_users_elsewhere(client, nurse):
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT + 5):
        _login(client, f"guess{n}", "Spring2026!", ip="203.0.113.9")

    assert _login(client, "nurse", PASSWORD, ip="10.0.0.7").status_code == 302


@pytest.mark.reliability(26, "50 usernames sprayed at the token endpoint from one address: 429 before any hash")
def test_spraying_the_token_endpoint_is_stopped_before_the_password_hash(nurse, hashes):
    api, limit = APIClient(), settings.LOGIN_ADDRESS_FAILURE_LIMIT
    token = reverse("auth-api:token")
    answers = [
        api.post(token, {"username": f"guess{n}", "password": "Spring2026!"}, REMOTE_ADDR="203.0.113.9").status_code
        for n in range(50)
    ]

    assert answers[:limit] == [400] * limit
    assert set(answers[limit:]) == {429}
    assert len(hashes) == limit
    legitimate = api.post(token, {"username": "nurse", "password": PASSWORD}, REMOTE_ADDR="10.0.0.7")
    assert legitimate.status_code == 200


@pytest.mark.reliability(26, "Failures older than the cool-off time: the address signs in again")
def test_the_address_throttle_ends_after_the_cool_off(client, nurse):
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT):
        _login(client, f"guess{n}", "Spring2026!", ip="203.0.113.9")
    assert _login(client, "nurse", PASSWORD, ip="203.0.113.9").status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))

    assert _login(client, "nurse", PASSWORD, ip="203.0.113.9").status_code == 302


@pytest.mark.reliability(27, "A 300-character username at the portal login: the form says so, nothing recorded")
def test_an_over_long_username_at_the_login_is_a_form_error(client, nurse):
    response = _login(client, "u" * 300, "whatever-password")

    assert response.status_code == 200
    assert "at most 150 characters" in response.content.decode()
    assert not AccessAttempt.objects.exists()


@pytest.mark.parametrize("password", ["short-pw1", "password12345", "123456789012345"])
@pytest.mark.reliability(7, "Short, common and all-digit passwords against the validators")
def test_weak_passwords_are_refused(nurse, password):
    with pytest.raises(ValidationError):
        validate_password(password, nurse)


@pytest.mark.reliability(7, "The stored hash of a new account")
def test_passwords_are_stored_as_argon2_hashes(nurse):
    assert nurse.password.startswith("argon2$argon2id$")


@pytest.mark.reliability(5, "A request after the idle timeout has passed: signed out, audited")
def test_an_idle_session_is_signed_out_after_the_timeout(client, nurse):
    client.force_login(nurse)
    session = client.session
    session["last_activity"] = time.time() - settings.SESSION_IDLE_TIMEOUT - 5
    session.save()

    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert AuditEvent.objects.filter(action="auth.logout.idle", actor=nurse).exists()


def test_an_active_session_stays_signed_in(client, nurse):
    client.force_login(nurse)
    session = client.session
    session["last_activity"] = time.time() - settings.SESSION_IDLE_TIMEOUT + 60
    session.save()

    assert client.get(reverse("home")).status_code == 200


@pytest.mark.reliability(7, "A weak new password in the portal: refused; a strong one: accepted and audited")
def test_changing_a_password_validates_it_and_is_audited(client, nurse):
    client.force_login(nurse)
    url = reverse("password_change")

    weak = client.post(url, {"old_password": PASSWORD, "new_password1": "short", "new_password2": "short"})
    strong = client.post(
        url, {"old_password": PASSWORD, "new_password1": "a-much-longer-pass", "new_password2": "a-much-longer-pass"}
    )

    assert weak.status_code == 200
    assert "too short" in weak.content.decode()
    assert strong.status_code == 302
    assert AuditEvent.objects.filter(action="auth.password_change", actor=nurse).count() == 1


@pytest.mark.reliability(5, "Logout by GET (a link or image on another site): refused with 405")
def test_logout_requires_post_so_a_link_cannot_sign_someone_out(client, nurse):
    client.force_login(nurse)

    assert client.get(reverse("logout")).status_code == 405


def test_the_signed_in_user_comes_with_their_clinic(nurse, django_assert_num_queries):
    from clinic.backends import ClinicModelBackend

    user = ClinicModelBackend().get_user(nurse.pk)

    with django_assert_num_queries(0):  # every page's header names the clinic
        assert user.clinic.name == nurse.clinic.name
    nurse.is_active = False
    nurse.save()
    assert ClinicModelBackend().get_user(nurse.pk) is None


@pytest.mark.redis
def test_with_redis_sessions_are_read_from_it_and_survive_its_loss(client, nurse):
    from django.contrib.sessions.backends.cached_db import KEY_PREFIX
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db"
    _login(client, nurse.username, PASSWORD)
    client.get(reverse("patients:list"))  # the first request stamps the activity time

    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("patients:list")).status_code == 200
    assert not [q for q in queries.captured_queries if "django_session" in q["sql"]]

    cache.delete(KEY_PREFIX + client.session.session_key)  # what a Redis restart does to it
    response = client.get(reverse("patients:list"))
    assert response.status_code == 200
    assert response.wsgi_request.user == nurse
