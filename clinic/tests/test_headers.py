"""Hardening of every answer: the Content-Security-Policy, no-store for signed-in users, what /healthz tells whom,
whose request id the audit trail keeps, and the API answering a browser."""

import re

import pytest
from django.template import engines
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from clinic import health
from clinic.charts import Chart
from clinic.models import AuditEvent
from patients.tests.factories import PatientFactory

ROLES = ["admin", "doctor", "staff", "patient"]
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _script_tags(html: str) -> list[str]:
    return re.findall(r"<script\b[^>]*>", html)


@pytest.mark.reliability(28, "Every page's policy: scripts only from this server or with the nonce, no framing")
def test_every_answer_carries_a_content_security_policy_without_inline_scripts(client, db):
    policy = client.get(reverse("login"))["Content-Security-Policy"]

    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert re.fullmatch(r"'self' 'nonce-[\w-]{22}'", directives["script-src"])
    assert "unsafe-inline" not in directives["script-src"]
    assert "unsafe-eval" not in policy
    assert (directives["object-src"], directives["frame-ancestors"]) == ("'none'", "'none'")


def test_each_request_gets_a_new_nonce(client, db):
    first, second = (client.get(reverse("login"))["Content-Security-Policy"] for _ in range(2))

    assert first != second


@pytest.mark.reliability(28, "A chart card rendered in a request: no inline script to run, its figure is JSON data")
def test_a_chart_card_has_no_inline_script_to_run(client, db):
    chart = Chart(key="radar", title="</script>", figure={"data": [{"type": "bar", "x": [1], "y": [2]}]}, columns=[],
                  rows=[])  # fmt: skip
    response = client.get(reverse("login"))

    html = (
        engines["django"]
        .from_string('{% include "includes/chart_card.html" %}')
        .render({"chart": chart}, response.wsgi_request)
    )

    inline = [tag for tag in _script_tags(html) if "src=" not in tag]
    assert inline == ['<script type="application/json" data-plotly-figure="chart-radar">']  # data, never run


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.reliability(28, "Pages of each role's own and the portal's templates: no inline script without nonce")
def test_the_home_page_of_each_role_has_no_inline_script_without_the_nonce(client, users_by_role, role):
    client.force_login(users_by_role[role])

    html = client.get(reverse("home")).content.decode()

    assert all("src=" in tag or "nonce=" in tag or "application/json" in tag for tag in _script_tags(html))


@pytest.mark.reliability(28, "A patient page and an API answer to a signed-in user: Cache-Control no-store")
def test_answers_to_a_signed_in_user_are_not_stored(client, doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a)
    client.force_login(doctor_a)
    token = AuthToken.objects.create(user=doctor_a)[1]

    page = client.get(reverse("patients:detail", args=[patient.pk]))
    by_session = client.get("/api/v1/patients/")
    by_token = APIClient().get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Token {token}")

    for response in (page, by_session, by_token):
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        assert "private" in response["Cache-Control"]


@pytest.fixture
def named_workers(monkeypatch):
    monkeypatch.setattr(
        health, "check_workers", lambda: {"status": "ok", "count": 2, "workers": ["celery@web-3", "celery@web-4"]}
    )


@pytest.mark.reliability(28, "/healthz asked anonymously: the worker count, not their host names")
def test_anonymous_healthz_names_no_host(client, db, named_workers):
    body = client.get(reverse("healthz")).json()

    assert body["workers"] == {"status": "ok", "count": 2}
    assert "web-3" not in str(body)


def test_an_admin_and_monitoring_with_the_token_see_the_worker_names(
    client, admin_a, doctor_a, named_workers, settings
):
    settings.HEALTHZ_TOKEN = "monitoring-secret-1234"
    client.force_login(doctor_a)
    assert "workers" not in client.get(reverse("healthz")).json()["workers"]

    client.force_login(admin_a)
    assert client.get(reverse("healthz")).json()["workers"]["workers"] == ["celery@web-3", "celery@web-4"]

    monitoring = client.__class__()
    assert "workers" not in monitoring.get(reverse("healthz"), HTTP_X_HEALTHZ_TOKEN="wrong").json()["workers"]
    body = monitoring.get(reverse("healthz"), HTTP_X_HEALTHZ_TOKEN="monitoring-secret-1234").json()
    assert body["workers"]["workers"] == ["celery@web-3", "celery@web-4"]


@pytest.mark.reliability(28, "A request with a client-chosen X-Request-ID that writes an audit row: the row has ours")
def test_a_client_chosen_request_id_never_reaches_the_audit_trail(client, doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a)
    client.force_login(doctor_a)

    response = client.get(reverse("patients:detail", args=[patient.pk]), HTTP_X_REQUEST_ID="someone-elses-id")

    row = AuditEvent.objects.filter(patient_id=patient.pk).latest("pk")
    assert row.request_id == response["X-Request-ID"] != "someone-elses-id"
    assert not AuditEvent.objects.filter(request_id="someone-elses-id").exists()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.reliability(27, "GET /api/v1/patients/ from a browser session (Accept: text/html) as each role: 200 JSON")
def test_the_api_answers_a_browser_with_json_for_every_role(client, users_by_role, clinic_a, role):
    PatientFactory(clinic=clinic_a)
    client.force_login(users_by_role[role])

    for accept in (BROWSER_ACCEPT, "text/html"):
        response = client.get("/api/v1/patients/", HTTP_ACCEPT=accept)

        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert "count" in response.json()
