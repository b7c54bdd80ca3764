"""The unmatched results worklist and the patient page's preliminary results, for each role and another clinic."""

import pytest
from django.urls import reverse

from clinic.models import AuditEvent, Role
from labfeed.models import UnmatchedResult, UnmatchedStatus
from labfeed.services import hl7_message_receive
from labfeed.tests.factories import oru, potassium, sodium
from patients.models import Observation
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(connection, patient):
    hl7_message_receive(raw=oru(potassium("6.9"), sodium("139"), mrn="RV2002", born="19900101", control_id="H1"))
    return UnmatchedResult.objects.get()


@pytest.fixture
def newcomer(clinic_a):
    """The patient the held results belong to, registered after they arrived."""
    return PatientFactory(clinic=clinic_a, mrn="rv2002", birth_date="1990-01-01")


@pytest.mark.parametrize("role", [Role.STAFF, Role.DOCTOR, Role.ADMIN])
def test_results_entry_roles_see_their_clinics_worklist(client, users_by_role, held, role):
    client.force_login(users_by_role[role])

    response = client.get(reverse("labfeed:unmatched"))

    assert response.status_code == 200
    assert list(response.context["waiting"]) == [held]
    assert "RV2002" in response.content.decode()
    assert AuditEvent.objects.filter(action="hl7.unmatched.list", actor=users_by_role[role]).count() == 1


def test_a_patient_account_is_refused_the_worklist(client, patient_user_a, held):
    client.force_login(patient_user_a)

    assert client.get(reverse("labfeed:unmatched")).status_code == 403
    assert client.get(reverse("labfeed:unmatched_detail", args=[held.pk])).status_code == 403


@pytest.mark.hazard("H12", "Another clinic's held HL7 results answer 404 and cannot be filed")
def test_another_clinics_held_results_do_not_exist_for_you(client, doctor_b, held):
    client.force_login(doctor_b)

    assert client.get(reverse("labfeed:unmatched")).context["waiting"] == []
    assert client.get(reverse("labfeed:unmatched_detail", args=[held.pk])).status_code == 404
    response = client.post(reverse("labfeed:unmatched_detail", args=[held.pk]), {"mrn": "RV1001"})
    assert response.status_code == 404
    assert not Observation.all_objects.exists()


def test_signed_out_visitors_are_sent_to_the_login_page(client, held):
    response = client.get(reverse("labfeed:unmatched"))

    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_staff_file_held_results_to_the_patient_they_pick(client, staff_a, held, newcomer):
    client.force_login(staff_a)
    page = client.get(reverse("labfeed:unmatched_detail", args=[held.pk]))
    assert "Potassium" in page.content.decode()

    response = client.post(reverse("labfeed:unmatched_detail", args=[held.pk]), {"mrn": "RV2002"})

    assert response.status_code == 302
    assert response["Location"] == reverse("patients:detail", args=[newcomer.pk])
    stored = {o.analyte.code: o for o in Observation.objects.filter(patient=newcomer)}
    assert set(stored) == {"potassium", "sodium"}
    assert stored["potassium"].interpretation == "HH"  # flagged against the patient picked
    held.refresh_from_db()
    assert (held.status, held.patient, held.resolved_by) == (UnmatchedStatus.RESOLVED, newcomer, staff_a)
    audit = AuditEvent.objects.get(action="hl7.unmatched.resolve")
    assert (audit.actor, audit.patient_id, audit.detail["created"], audit.detail["critical"]) == (
        staff_a, newcomer.pk, 2, 1,
    )  # fmt: skip
    assert client.get(reverse("labfeed:unmatched")).context["waiting"] == []


def test_filing_to_an_mrn_the_clinic_does_not_have_says_so_and_files_nothing(client, staff_a, held):
    client.force_login(staff_a)

    response = client.post(reverse("labfeed:unmatched_detail", args=[held.pk]), {"mrn": "NOPE"})

    assert response.status_code == 200
    assert "No patient with MRN NOPE in this clinic: register them first." in response.content.decode()
    assert not Observation.all_objects.exists()


def test_an_mrn_of_another_clinic_is_not_found(client, staff_a, held, clinic_b):
    PatientFactory(clinic=clinic_b, mrn="B-1")
    client.force_login(staff_a)

    response = client.post(reverse("labfeed:unmatched_detail", args=[held.pk]), {"mrn": "B-1"})

    assert "No patient with MRN B-1 in this clinic" in response.content.decode()
    assert not Observation.all_objects.exists()


def test_results_dated_before_the_picked_patients_birth_are_not_filed(client, staff_a, held, clinic_a):
    PatientFactory(clinic=clinic_a, mrn="BABY", birth_date="2026-06-01")
    client.force_login(staff_a)

    response = client.post(reverse("labfeed:unmatched_detail", args=[held.pk]), {"mrn": "BABY"})

    assert "Nothing was filed" in response.content.decode()
    assert "is dated before the patient&#x27;s birth" in response.content.decode()
    assert not Observation.all_objects.exists()
    held.refresh_from_db()
    assert held.status == UnmatchedStatus.WAITING


def test_filed_results_cannot_be_filed_twice(client, staff_a, held, newcomer, patient):
    client.force_login(staff_a)
    client.post(reverse("labfeed:unmatched_detail", args=[held.pk]), {"mrn": "RV2002"})

    response = client.post(reverse("labfeed:unmatched_detail", args=[held.pk]), {"mrn": "RV1001"})

    assert response.status_code == 200
    assert "Filed to" in response.content.decode()
    assert not Observation.all_objects.filter(patient=patient).exists()


def test_the_patient_page_shows_preliminary_results_marked_apart_from_the_latest(client, doctor_a, connection, patient):
    hl7_message_receive(raw=oru(potassium("4.9", status="P")))
    client.force_login(doctor_a)

    response = client.get(reverse("patients:detail", args=[patient.pk]))

    html = response.content.decode()
    assert 'data-testid="preliminary-results"' in html
    assert [row.name for row in response.context["preliminary"]] == ["Potassium"]
    assert all(row.name != "Potassium" for panel in response.context["panels"] for row in panel["rows"])


def test_a_preliminary_replaced_by_the_final_shows_in_the_history_and_the_final_in_the_latest(
    client, doctor_a, connection, patient
):
    hl7_message_receive(raw=oru(potassium("4.9", status="P"), control_id="P1"))
    hl7_message_receive(raw=oru(potassium("5.0"), control_id="F1"))
    client.force_login(doctor_a)

    response = client.get(reverse("patients:detail", args=[patient.pk]))

    assert response.context["preliminary"] == []
    [history] = response.context["amended"]
    assert (history["name"], history["by"]) == ("Potassium", "the lab's feed")
    assert "final result of the lab" in history["reason"]
    latest = [row.value for panel in response.context["panels"] for row in panel["rows"] if row.name == "Potassium"]
    assert latest == ["5.0 mmol/L"]
