"""On PostgreSQL the server binds the parameters and prepares the statements a connection runs again and again."""

import subprocess
import sys

import pytest
from django.db import connection
from django.urls import reverse

from clinic.tests.test_settings import ROOT
from patients.tests.factories import PatientFactory

SHOW_OPTIONS = "from django.conf import settings; print(settings.DATABASES['default'].get('OPTIONS', {}))"


def _options(**env) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SHOW_OPTIONS],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout


def test_postgresql_prepares_statements_unless_a_pooler_needs_them_off():
    url = "postgres://clinic@127.0.0.1:5432/clinic"

    assert "'server_side_binding': True" in _options(DATABASE_URL=url)
    assert "server_side_binding" not in _options(DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="false")
    assert "server_side_binding" not in _options(DATABASE_URL="sqlite:///:memory:")


@pytest.mark.postgres
def test_a_page_read_again_runs_its_queries_as_prepared_statements(client, doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a)
    client.force_login(doctor_a)

    for _ in range(6):  # psycopg prepares a statement once it has run five times on the connection
        assert client.get(reverse("patients:detail", args=[patient.pk])).status_code == 200

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "patients_patient"' in statement for statement in prepared), prepared
