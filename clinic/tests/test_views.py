import pytest
from django.urls import reverse

from clinic.models import Role

NAV_BY_ROLE = {
    Role.ADMIN: [
        "Home",
        "Patients",
        "Import results",
        "Population",
        "Reviews",
        "Models",
        "Audit trail",
        "Administration",
        "API",
    ],
    Role.DOCTOR: ["Home", "Patients", "Import results", "Review advice", "Population", "Reviews", "API"],
    Role.STAFF: ["Home", "Patients", "Import results", "API"],
    Role.PATIENT: ["Home", "My advice"],
}


def test_the_home_page_sends_anonymous_visitors_to_login(client, db):
    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", list(NAV_BY_ROLE))
def test_each_role_sees_its_own_navigation(client, users_by_role, role):
    client.force_login(users_by_role[role])

    response = client.get(reverse("home"))

    labels = [item["label"] for item in response.context["navigation"]]
    assert response.status_code == 200
    assert labels == NAV_BY_ROLE[role]


def test_a_patient_sees_their_own_space_and_no_clinical_tools(client, patient_user_a):
    client.force_login(patient_user_a)

    html = client.get(reverse("home")).content.decode()

    assert "Your results and advice" in html
    assert "Review advice" not in html
    assert "Open administration" not in html


def test_a_doctor_sees_the_review_card(client, doctor_a):
    client.force_login(doctor_a)

    html = client.get(reverse("home")).content.decode()

    assert "Review advice" in html
    assert "Riverside Clinic" in html


def test_every_page_carries_the_decision_support_notice(client, doctor_a):
    client.force_login(doctor_a)

    assert "decision support for clinicians, not a diagnosis" in client.get(reverse("home")).content.decode()


def test_responses_carry_a_request_id_and_keep_a_sane_incoming_one(client, db):
    generated = client.get(reverse("login"))
    kept = client.get(reverse("login"), HTTP_X_REQUEST_ID="lb-1234")
    replaced = client.get(reverse("login"), HTTP_X_REQUEST_ID="<script>alert(1)</script>")

    assert len(generated["X-Request-ID"]) == 32
    assert kept["X-Request-ID"] == "lb-1234"
    assert replaced["X-Request-ID"] != "<script>alert(1)</script>"


def test_the_api_docs_need_a_login(client, staff_a):
    assert client.get(reverse("api-schema")).status_code == 403

    client.force_login(staff_a)

    assert client.get(reverse("api-docs")).status_code == 200
    assert client.get(reverse("api-schema")).status_code == 200


def test_pages_forbid_framing(client, db):
    assert client.get(reverse("login"))["X-Frame-Options"] == "DENY"
