"""The home page's worklist of critical results waiting for a doctor, the on-duty switch and the clinic's settings."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clinic.models import AuditEvent, Role
from clinic.tests.factories import UserFactory
from clinic.tests.test_views import home_line
from patients.escalation import critical_escalations_run
from patients.models import Observation
from patients.services import ObservationInput, critical_results_acknowledge, observations_record
from patients.tests.factories import PatientFactory


def critical_potassium(patient, by, *, minutes_ago, value=7.0):
    [observation] = observations_record(
        patient=patient,
        by=by,
        entries=[ObservationInput("potassium", value, "mmol/L")],
        effective_at=timezone.now() - datetime.timedelta(hours=3),
    )
    arrived = timezone.now() - datetime.timedelta(minutes=minutes_ago)
    Observation.all_objects.filter(pk=observation.pk).update(created_at=arrived)
    return observation


def worklist_rows(client):
    html = client.get(reverse("home")).content.decode()
    rows = re.findall(r'<tr data-testid="worklist-row">(.*?)</tr>', html, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in rows]


@pytest.mark.parametrize("role", [Role.STAFF, Role.DOCTOR, Role.ADMIN])
def test_clinical_staff_see_their_clinics_waiting_critical_results_longest_waiting_first(
    client, users_by_role, clinic_a, clinic_b, doctor_b, role
):
    staff, doctor = users_by_role[Role.STAFF], users_by_role[Role.DOCTOR]
    doctor.email, doctor.on_duty = "dr@riverside.example", True
    doctor.save()
    told = PatientFactory(clinic=clinic_a, given_name="Ada", family_name="Quill", mrn="Q-1")
    fresh = PatientFactory(clinic=clinic_a, given_name="Ben", family_name="Roe", mrn="R-2")
    taken_on = PatientFactory(clinic=clinic_a, given_name="Cy", family_name="Taken")
    critical_potassium(told, staff, minutes_ago=45)
    critical_potassium(fresh, staff, minutes_ago=5, value=2.1)
    critical_potassium(taken_on, staff, minutes_ago=50)
    critical_results_acknowledge(patient=taken_on, by=doctor)
    critical_potassium(PatientFactory(clinic=clinic_b, family_name="Elsewhere"), doctor_b, minutes_ago=60)
    critical_escalations_run()  # e-mails the doctor on duty about Ada Quill's (Django's test outbox)
    client.force_login(users_by_role[role])

    rows = worklist_rows(client)

    assert len(rows) == 2
    assert rows[0].startswith("Ada Quill Q-1 Potassium 7.0 mmol/L (critically high)")
    assert "45 min on-duty doctors e-mailed" in rows[0]
    assert rows[1].startswith("Ben Roe R-2 Potassium 2.1 mmol/L (critically low)")
    assert "5 min not escalated yet: e-mailed at" in rows[1]
    assert f'href="{reverse("patients:detail", args=[told.pk])}"' in client.get(reverse("home")).content.decode()
    event = AuditEvent.objects.filter(action="patient.critical_worklist").latest("id")
    expected = {"count": 2, "patient_ids": sorted([told.pk, fresh.pk])}
    assert (event.actor, event.detail) == (users_by_role[role], expected)


def test_a_failed_e_mail_shows_on_the_worklist_with_its_reason(client, staff_a, clinic_a):
    critical_potassium(PatientFactory(clinic=clinic_a), staff_a, minutes_ago=40)  # no doctor on duty, no contact
    critical_escalations_run()
    client.force_login(staff_a)

    [row] = worklist_rows(client)

    assert "e-mail to the escalation contact failed, tried again every minute: The clinic has no escalation" in row


def test_with_nothing_waiting_the_worklist_says_so_and_a_patient_sees_none(client, staff_a, patient_user_a):
    client.force_login(staff_a)
    assert "No critical result is waiting for a doctor." in client.get(reverse("home")).content.decode()
    assert not AuditEvent.objects.filter(action="patient.critical_worklist").exists()

    client.force_login(patient_user_a)
    assert 'data-testid="critical-worklist"' not in client.get(reverse("home")).content.decode()


def test_the_home_page_reads_the_worklist_in_the_same_queries_for_2_or_8_results(client, staff_a, clinic_a):
    def queries_with(n):
        for _ in range(n - len(worklist_rows(client))):
            critical_potassium(PatientFactory(clinic=clinic_a), staff_a, minutes_ago=40)
        critical_escalations_run()
        with CaptureQueriesContext(connection) as captured:
            assert len(worklist_rows(client)) == n
        return len(captured)

    client.force_login(staff_a)
    assert queries_with(2) == queries_with(8)


def test_a_doctor_goes_on_and_off_duty_from_the_home_page_and_it_is_audited(client, doctor_a):
    doctor_a.email = "dr@riverside.example"
    doctor_a.save()
    client.force_login(doctor_a)

    on = client.post(reverse("duty"), {"on_duty": "on"}, follow=True)
    doctor_a.refresh_from_db()
    assert doctor_a.on_duty
    assert "You are on duty" in on.content.decode()
    client.post(reverse("duty"), {"on_duty": "off"})
    doctor_a.refresh_from_db()
    assert not doctor_a.on_duty
    events = AuditEvent.objects.filter(action="user.duty").order_by("id")
    assert [(e.actor, e.detail["on_duty"]) for e in events] == [(doctor_a, True), (doctor_a, False)]


def test_a_doctor_without_an_e_mail_address_cannot_go_on_duty_and_is_told_why(client, doctor_a):
    doctor_a.email = ""
    doctor_a.save()
    client.force_login(doctor_a)

    response = client.post(reverse("duty"), {"on_duty": "on"}, follow=True)

    doctor_a.refresh_from_db()
    assert not doctor_a.on_duty
    assert "Your account has no e-mail address" in response.content.decode()
    assert not AuditEvent.objects.filter(action="user.duty").exists()


@pytest.mark.parametrize("role", [Role.STAFF, Role.ADMIN, Role.PATIENT])
def test_only_a_doctor_has_a_duty_switch(client, users_by_role, role):
    user = users_by_role[role]
    client.force_login(user)

    assert client.post(reverse("duty"), {"on_duty": "on"}).status_code == 403
    assert 'data-testid="duty"' not in client.get(reverse("home")).content.decode()
    user.refresh_from_db()
    assert not user.on_duty


def test_a_clinic_admin_sets_the_escalation_of_their_own_clinic_only(client, admin_a, clinic_a, clinic_b):
    client.force_login(admin_a)
    url = reverse("admin:clinic_clinic_change", args=[clinic_a.pk])

    response = client.post(
        url,
        {
            "escalation_minutes": "15",
            "escalation_contact_minutes": "10",
            "escalation_contact_email": "lead@r.example",
            "time_zone": "UTC",
        },  # fmt: skip
    )

    assert response.status_code == 302
    clinic_a.refresh_from_db()
    assert (clinic_a.escalation_minutes, clinic_a.escalation_contact_minutes) == (15, 10)
    assert (clinic_a.escalation_contact_email, clinic_a.name) == ("lead@r.example", "Riverside Clinic")
    event = AuditEvent.objects.get(action="clinic.update")
    assert (event.actor, event.clinic_id, event.detail["changed"]["escalation_minutes"]) == (admin_a, clinic_a.pk, "15")
    assert client.get(reverse("admin:clinic_clinic_change", args=[clinic_b.pk])).status_code == 404
    refused = client.post(url, {"escalation_minutes": "0", "escalation_contact_minutes": "10"})
    assert "Ensure this value is greater than or equal to 1." in refused.content.decode()


def test_a_clinic_admin_puts_a_doctor_with_an_e_mail_address_on_duty_and_only_a_doctor(
    client, admin_a, doctor_a, staff_a
):
    client.force_login(admin_a)

    def change(user, **fields):
        data = {"username": user.username, "role": user.role, "is_active": "on", "on_duty": "on", **fields}
        return client.post(reverse("admin:clinic_user_change", args=[user.pk]), data)

    without_address = change(doctor_a, email="")
    not_a_doctor = change(staff_a, email="nurse@riverside.example")
    saved = change(doctor_a, email="dr@riverside.example")

    assert "A doctor on duty is e-mailed about critical results: add an e-mail address." in (
        without_address.content.decode()
    )
    assert "Only a doctor goes on duty." in not_a_doctor.content.decode()
    assert saved.status_code == 302
    doctor_a.refresh_from_db()
    staff_a.refresh_from_db()
    assert (doctor_a.on_duty, staff_a.on_duty) == (True, False)
    event = AuditEvent.objects.get(action="user.update")
    assert "on_duty" in event.detail["changed"]


def test_a_doctor_of_another_clinic_is_never_on_this_worklist(client, clinic_a, doctor_b, staff_a):
    critical_potassium(PatientFactory(clinic=clinic_a), staff_a, minutes_ago=40)
    UserFactory(clinic=doctor_b.clinic, role=Role.STAFF, username="staff_b")
    client.force_login(doctor_b)
    assert worklist_rows(client) == []


def test_an_earlier_critical_result_not_acknowledged_is_counted_though_the_latest_is_normal(client, staff_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a)
    critical_potassium(patient, staff_a, minutes_ago=5)
    observations_record(
        patient=patient, by=staff_a, entries=[ObservationInput("potassium", 4.4, "mmol/L")], effective_at=timezone.now()
    )
    client.force_login(staff_a)

    text, links = home_line(client, "home-critical")

    assert text == (
        "No patient has a latest result in a critical range; 1 with an earlier critical result not yet acknowledged "
        "by a doctor, on the worklist above."
    )
    assert links == []
