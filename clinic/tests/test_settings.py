"""Production mode is checked in a fresh interpreter: settings are read once per process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "x7Kq2-this-is-a-test-only-secret-key-that-is-long-enough-0123456789",
    "ALLOWED_HOSTS": "clinic.example.org",
    "DATABASE_URL": "sqlite:///:memory:",
    "AUDIT_HMAC_KEY": "a-test-only-audit-key-of-forty-characters",
}


def _manage(*args, **env):
    # DJANGO_ALLOW_ASYNC_UNSAFE is set by the browser tests' fixture; a deploy check must not see it.
    unset = {"DJANGO_ENV", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE", "AUDIT_HMAC_KEY"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.reliability(5, "`manage.py check --deploy` with production variables")
def test_the_deployment_check_is_clean_with_production_variables():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_production_refuses_to_start_with_debug_on():
    result = _manage("check", **{**PRODUCTION_ENV, "DEBUG": "true"})

    assert result.returncode != 0
    assert "DEBUG is on" in result.stderr


@pytest.mark.parametrize("secret", ["", "too-short"])
def test_production_refuses_to_start_without_a_long_secret_key(secret):
    result = _manage("check", **{**PRODUCTION_ENV, "SECRET_KEY": secret})

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("key", ["", "too-short"])
@pytest.mark.reliability(23, "Production settings without an audit key of 32+ characters: refused at start")
def test_production_refuses_to_start_without_an_audit_key(key):
    result = _manage("check", **{**PRODUCTION_ENV, "AUDIT_HMAC_KEY": key})

    assert result.returncode != 0
    assert "AUDIT_HMAC_KEY" in result.stderr


def test_a_malformed_boolean_is_a_clear_configuration_error():
    result = _manage("check", DEBUG="maybe")

    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


@pytest.mark.reliability(5, "Cookie flags under production settings: Secure, HttpOnly, SameSite=Lax, HSTS, no framing")
def test_production_cookies_are_secure_httponly_and_samesite():
    code = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.SESSION_COOKIE_SAMESITE,"
        " s.SECURE_HSTS_SECONDS > 0, s.X_FRAME_OPTIONS)"
    )
    result = _manage("shell", "--no-imports", "-c", code, **PRODUCTION_ENV)

    assert result.stdout.split() == ["True", "True", "True", "Lax", "True", "DENY"]
