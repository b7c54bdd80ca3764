"""Shared fixtures: one clinic with a user per role, a second clinic to prove scoping, service markers.

Tests marked `postgres`, `redis`, `celery_worker` or `browser` need a real service. Locally they skip
when it is missing; with CI=true they fail, so a CI run can never pass by skipping them.
"""

import os
import shutil

import pytest
from django.db import connection

from clinic.models import Role
from clinic.tests.factories import ClinicFactory, UserFactory

CI = os.environ.get("CI", "").lower() == "true"


def _postgres_available() -> bool:
    return connection.vendor == "postgresql"


def _redis_available() -> bool:
    url = os.environ.get("REDIS_URL")
    if not url:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _browser_available() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return shutil.which("chromium") is not None or os.path.exists("/usr/bin/chromium")


_SERVICES = {
    "postgres": (_postgres_available, "PostgreSQL is not configured (set DATABASE_URL=postgres://...)"),
    "redis": (_redis_available, "Redis is not reachable (set REDIS_URL=redis://...)"),
    "celery_worker": (
        lambda: _postgres_available() and _redis_available(),
        "a real Celery worker needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    ),
    "browser": (_browser_available, "Playwright and /usr/bin/chromium are needed"),
}


@pytest.fixture(autouse=True)
def _require_marked_services(request):
    for name, (available, reason) in _SERVICES.items():
        if request.node.get_closest_marker(name) and not available():
            if CI:
                pytest.fail(f"CI=true and {reason}")
            pytest.skip(reason)


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run in-process in tests; the real-worker tests switch this off for themselves."""
    from clinic.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _analyte_catalog(request):
    """Tests that use the database see the analyte catalog, even after a transactional test emptied it."""
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif "db" in request.fixturenames or marker:
        request.getfixturevalue("db")
    else:
        return
    from django.apps import apps

    from patients.catalog import catalog_clear, catalog_sync
    from patients.models import Analyte

    if not Analyte.objects.exists():
        catalog_sync(apps)
        catalog_clear()


@pytest.fixture
def clinic_a(db):
    return ClinicFactory(name="Riverside Clinic", slug="riverside")


@pytest.fixture
def clinic_b(db):
    return ClinicFactory(name="Hillcrest Clinic", slug="hillcrest")


@pytest.fixture
def admin_a(clinic_a):
    return UserFactory(clinic=clinic_a, role=Role.ADMIN, username="admin_a")


@pytest.fixture
def doctor_a(clinic_a):
    return UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="doctor_a")


@pytest.fixture
def staff_a(clinic_a):
    return UserFactory(clinic=clinic_a, role=Role.STAFF, username="staff_a")


@pytest.fixture
def patient_user_a(clinic_a):
    return UserFactory(clinic=clinic_a, role=Role.PATIENT, username="patient_a")


@pytest.fixture
def admin_b(clinic_b):
    return UserFactory(clinic=clinic_b, role=Role.ADMIN, username="admin_b")


@pytest.fixture
def doctor_b(clinic_b):
    return UserFactory(clinic=clinic_b, role=Role.DOCTOR, username="doctor_b")


@pytest.fixture
def superuser(db):
    return UserFactory(clinic=None, role=Role.ADMIN, username="root", is_superuser=True)


@pytest.fixture
def users_by_role(admin_a, doctor_a, staff_a, patient_user_a):
    return {Role.ADMIN: admin_a, Role.DOCTOR: doctor_a, Role.STAFF: staff_a, Role.PATIENT: patient_user_a}
