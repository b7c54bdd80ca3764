import datetime
import re

import pytest
from django.urls import reverse

from clinic.models import Role
from mltraining.models import ModelStatus
from mltraining.tests.factories import ModelVersionFactory
from patients.services import ObservationInput, critical_results_acknowledge, observations_record
from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.models import Severity
from recommendations.services import items_approve
from recommendations.tests.factories import prediction_for

NAV_BY_ROLE = {
    Role.ADMIN: [
        "Home",
        "Patients",
        "Import results",
        "Requests",
        "Population",
        "Reviews",
        "Models",
        "Audit trail",
        "Administration",
        "API",
    ],
    Role.DOCTOR: [
        "Home",
        "Patients",
        "Import results",
        "Review advice",
        "Requests",
        "Population",
        "Reviews",
        "API",
    ],
    Role.STAFF: ["Home", "Patients", "Import results", "Requests", "API"],
    Role.PATIENT: ["Home", "My results", "My advice", "Contact the clinic"],
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


def signed_in_as(html):
    return re.search(r'data-testid="signed-in-as">([^<]*) ·', html).group(1)


@pytest.mark.parametrize("page", ["home", "recommendations:mine"])
def test_a_patient_account_is_greeted_and_named_by_its_own_patients_name(client, clinic_a, patient_user_a, page):
    patient_user_a.first_name, patient_user_a.last_name = "Pat", "Jones"  # set up by a relative, under their name
    patient_user_a.save()
    PatientFactory(clinic=clinic_a, given_name="Noah", family_name="Müller", user=patient_user_a)
    client.force_login(patient_user_a)

    html = client.get(reverse(page)).content.decode()

    assert signed_in_as(html) == "Noah Müller"
    assert "Pat Jones" not in html
    if page == "home":
        assert "Welcome, Noah Müller</h1>" in html


def test_a_patient_account_without_a_record_yet_is_greeted_by_its_account_name(client, patient_user_a):
    patient_user_a.first_name, patient_user_a.last_name = "Pat", "Jones"
    patient_user_a.save()
    client.force_login(patient_user_a)

    assert "Welcome, Pat Jones</h1>" in client.get(reverse("home")).content.decode()


def test_staff_are_greeted_by_their_own_name_not_a_patients(client, clinic_a, doctor_a):
    doctor_a.first_name, doctor_a.last_name = "Grace", "Okafor"
    doctor_a.save()
    PatientFactory(clinic=clinic_a, given_name="Noah", family_name="Müller")
    client.force_login(doctor_a)

    html = client.get(reverse("home")).content.decode()

    assert (signed_in_as(html), "Welcome, Grace Okafor</h1>" in html) == ("Grace Okafor", True)


def test_a_doctor_sees_the_review_card(client, doctor_a):
    client.force_login(doctor_a)

    html = client.get(reverse("home")).content.decode()

    assert "Review advice" in html
    assert "Riverside Clinic" in html


def home_line(client, testid):
    """The text of one of the home page's counts, tags stripped, with the links it carries."""
    html = client.get(reverse("home")).content.decode()
    match = re.search(rf'<p[^>]*data-testid="{testid}">(.*?)</p>', html, re.S)
    if match is None:
        return None, []
    return " ".join(re.sub(r"<[^>]+>", "", match[1]).split()), re.findall(r'href="([^"]+)"', match[1])


def _advice(clinic, n, risk_level="high", **inputs):
    patients = [PatientFactory(clinic=clinic, sex="male") for _ in range(n)]
    predictions = [prediction_for(p, sex="male", risk_level=risk_level, **inputs) for p in patients]
    return recommendations_generate(predictions=predictions, clinic_id=clinic.pk)


def test_a_doctor_sees_how_many_patients_have_advice_waiting_and_how_many_are_urgent(
    client, doctor_a, clinic_a, clinic_b
):
    mild = _advice(clinic_a, 3, risk_level="low", hba1c=6.0)
    (urgent,) = _advice(clinic_a, 1, potassium=7.0)
    _advice(clinic_b, 2, potassium=7.0)  # another clinic's
    items_approve(item_ids=list(mild[0].items.values_list("pk", flat=True)), by=doctor_a)  # nothing left to review
    assert urgent.severity >= Severity.HIGH > max(rec.severity for rec in mild)
    client.force_login(doctor_a)

    text, links = home_line(client, "home-queue")

    assert text == "3 patients with advice waiting, 1 of them high or critical."
    assert links == [reverse("recommendations:queue") + f"?severity={Severity.HIGH}"]
    listed = client.get(links[0]).context["rows"]
    assert [row["rec"].pk for row in listed] == [urgent.pk]


def test_a_doctor_with_nothing_to_review_is_told_so(client, doctor_a):
    client.force_login(doctor_a)

    assert home_line(client, "home-queue") == ("Nothing is waiting for your review.", [])


def _potassium(patient, by, value, day):
    when = datetime.datetime(2026, 3, day, 9, 0, tzinfo=datetime.UTC)
    observations_record(
        patient=patient, by=by, entries=[ObservationInput("potassium", value, "mmol/L")], effective_at=when
    )


@pytest.mark.parametrize("role", [Role.STAFF, Role.DOCTOR, Role.ADMIN])
def test_clinical_staff_see_how_many_patients_have_a_critical_latest_result_and_how_many_wait(
    client, users_by_role, clinic_a, clinic_b, doctor_b, role
):
    waiting, acknowledged, recovered, normal = (PatientFactory(clinic=clinic_a) for _ in range(4))
    by = users_by_role[Role.STAFF]
    _potassium(waiting, by, 7.0, day=1)
    _potassium(acknowledged, by, 2.0, day=1)
    critical_results_acknowledge(patient=acknowledged, by=users_by_role[Role.DOCTOR])
    _potassium(recovered, by, 2.0, day=1)
    _potassium(recovered, by, 4.0, day=2)  # back in range since, but nobody took the critical value on
    _potassium(normal, by, 4.5, day=1)
    _potassium(PatientFactory(clinic=clinic_b), doctor_b, 7.0, day=1)  # another clinic's
    client.force_login(users_by_role[role])

    text, links = home_line(client, "home-critical")

    assert text == (
        "2 patients with a latest result in a critical range, 2 with a critical result not yet acknowledged by a "
        "doctor. Show them"
    )
    assert {patient.pk for patient, _age in client.get(links[0]).context["rows"]} == {waiting.pk, acknowledged.pk}
    critical_results_acknowledge(patient=waiting, by=users_by_role[Role.DOCTOR])
    critical_results_acknowledge(patient=recovered, by=users_by_role[Role.DOCTOR])
    assert home_line(client, "home-critical")[0] == (
        "2 patients with a latest result in a critical range, all acknowledged. Show them"
    )


def test_without_critical_results_the_home_page_says_so_and_a_patient_sees_no_count(
    client, staff_a, patient_user_a, clinic_a
):
    _potassium(PatientFactory(clinic=clinic_a), staff_a, 5.5, day=1)  # high, not critical
    client.force_login(staff_a)
    assert home_line(client, "home-critical") == ("No patient has a latest result in a critical range.", [])

    client.force_login(patient_user_a)
    assert home_line(client, "home-critical") == (None, [])
    assert home_line(client, "home-queue") == (None, [])


def test_a_clinic_admin_sees_which_model_scores_the_clinic(client, admin_a, clinic_a, clinic_b):
    ModelVersionFactory(clinic=clinic_b, version=9, status=ModelStatus.ACTIVE)
    client.force_login(admin_a)
    assert home_line(client, "home-model")[0] == (
        "No active model yet: patients are not scored until one is trained and activated (Models); "
        "until then their advice comes from the guideline rules alone."
    )

    ModelVersionFactory(
        clinic=clinic_a, version=4, status=ModelStatus.ACTIVE,
        activated_at=datetime.datetime(2026, 11, 2, 10, 0, tzinfo=datetime.UTC),
    )  # fmt: skip
    ModelVersionFactory(clinic=clinic_a, version=5)  # a candidate, not scoring

    text, links = home_line(client, "home-model")
    assert text == "Scoring with model version 4, active since 2 Nov 2026."
    assert links == [reverse("mltraining:dashboard")]


@pytest.mark.hazard("H6", "Every page says predictions and advice are decision support for clinicians, not a diagnosis")
def test_every_page_carries_the_decision_support_notice(client, doctor_a):
    client.force_login(doctor_a)

    assert "decision support for clinicians, not a diagnosis" in client.get(reverse("home")).content.decode()


def test_responses_carry_a_request_id_of_our_own_and_hand_back_a_sane_incoming_one(client, db):
    generated = client.get(reverse("login"))
    theirs = client.get(reverse("login"), HTTP_X_REQUEST_ID="lb-1234")
    refused = client.get(reverse("login"), HTTP_X_REQUEST_ID="<script>alert(1)</script>")

    assert len(generated["X-Request-ID"]) == 32
    assert (len(theirs["X-Request-ID"]), theirs["X-Client-Request-ID"]) == (32, "lb-1234")
    assert refused["X-Request-ID"] != "<script>alert(1)</script>"
    assert "X-Client-Request-ID" not in refused


def test_behind_a_trusted_proxy_its_request_id_is_kept(client, db, settings):
    settings.TRUST_X_REQUEST_ID = True

    assert client.get(reverse("login"), HTTP_X_REQUEST_ID="lb-1234")["X-Request-ID"] == "lb-1234"


def test_the_api_docs_need_a_login(client, staff_a):
    assert client.get(reverse("api-schema")).status_code == 401

    client.force_login(staff_a)

    assert client.get(reverse("api-docs")).status_code == 200
    assert client.get(reverse("api-schema")).status_code == 200


def test_pages_forbid_framing(client, db):
    assert client.get(reverse("login"))["X-Frame-Options"] == "DENY"
