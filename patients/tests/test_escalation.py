"""Critical results left unacknowledged are e-mailed, through a real SMTP server on localhost (aiosmtpd)."""

import datetime
import email
import socket
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.utils import timezone

from clinic.models import AuditEvent, Role
from clinic.tests.factories import UserFactory
from patients.escalation import critical_escalations_run
from patients.models import CriticalEscalation, EscalationLevel, Observation
from patients.services import ObservationInput, critical_results_acknowledge, observations_record
from patients.tasks import escalate_critical_results
from patients.tests.factories import PatientFactory

PORTAL = "https://portal.riverside.example"
CONTACT = "lead@riverside.example"


class Inbox:
    """aiosmtpd's handler: keeps every message the server accepted."""

    def __init__(self):
        self.received: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  (aiosmtpd's hook name)
        self.received.append((sorted(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"

    def to(self, *addresses):
        return [message for recipients, message in self.received if recipients == sorted(addresses)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", controller.port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "alerts@riverside.example"
    settings.PORTAL_URL = PORTAL
    yield inbox
    controller.stop()


@pytest.fixture
def riverside(clinic_a):
    clinic_a.escalation_minutes, clinic_a.escalation_contact_minutes = 30, 20
    clinic_a.escalation_contact_email = CONTACT
    clinic_a.save()
    return clinic_a


@pytest.fixture
def on_duty(riverside):
    return UserFactory(clinic=riverside, role=Role.DOCTOR, username="dr_on", email="on@riverside.example", on_duty=True)


@pytest.fixture
def off_duty(riverside):
    return UserFactory(clinic=riverside, role=Role.DOCTOR, username="dr_off", email="off@riverside.example")


def critical_potassium(patient, by, *, minutes_ago: int, value: float = 7.0) -> Observation:
    """A result that reached the clinic `minutes_ago` minutes ago (time travel: its created_at moved back)."""
    [observation] = observations_record(
        patient=patient,
        by=by,
        entries=[ObservationInput("potassium", value, "mmol/L")],
        effective_at=timezone.now() - datetime.timedelta(hours=2),
    )
    waited_since = timezone.now() - datetime.timedelta(minutes=minutes_ago)
    Observation.all_objects.filter(pk=observation.pk).update(created_at=waited_since)
    return observation


def waited(observation, minutes):
    Observation.all_objects.filter(pk=observation.pk).update(
        created_at=timezone.now() - datetime.timedelta(minutes=minutes)
    )


def escalation_audits(**filters):
    return list(AuditEvent.objects.filter(action="observation.critical.escalate", **filters).order_by("id"))


def test_a_waiting_critical_result_is_e_mailed_once_to_the_on_duty_doctors_then_once_to_the_contact(
    smtp, riverside, on_duty, off_duty, staff_a
):
    patient = PatientFactory(clinic=riverside, given_name="Ada", family_name="Quill", mrn="RQ-771")
    observation = critical_potassium(patient, staff_a, minutes_ago=31)

    escalate_critical_results.delay()  # beat's task, run in-process
    critical_escalations_run()  # the next minute: nothing new

    [message] = smtp.to("on@riverside.example")
    assert len(smtp.received) == 1  # neither the doctor off duty nor the contact yet
    assert message["Subject"] == "Critical result waiting: Riverside Clinic"
    assert message["From"] == "alerts@riverside.example"
    body = message.get_payload()
    assert "Test: Potassium (critically high)" in body
    assert f"{PORTAL}/patients/{patient.pk}/" in body
    assert "waited 31 minutes at Riverside Clinic" in body
    for identifying in ("Ada", "Quill", "RQ-771", "7.0"):  # e-mail is not a secure channel
        assert identifying not in body

    waited(observation, 30 + 20 + 1)
    critical_escalations_run()
    critical_escalations_run()

    [to_contact] = smtp.to(CONTACT)
    assert len(smtp.received) == 2
    assert "The doctors on duty were told and nobody has acknowledged it since" in to_contact.get_payload()
    rows = CriticalEscalation.objects.filter(observation=observation).order_by("pk")
    assert [(row.level, row.recipients, row.sent_at is not None, row.attempts) for row in rows] == [
        (EscalationLevel.DOCTORS, ["on@riverside.example"], True, 1),
        (EscalationLevel.CONTACT, [CONTACT], True, 1),
    ]
    audits = escalation_audits()
    assert [(a.outcome, a.patient_id, a.clinic_id, a.actor_username) for a in audits] == [
        ("success", patient.pk, riverside.pk, "system")
    ] * 2
    assert [(a.detail["level"], a.detail["recipients"]) for a in audits] == [
        ("doctors", ["on@riverside.example"]),
        ("contact", [CONTACT]),
    ]


def test_nothing_is_sent_before_the_clinics_minutes_nor_ever_for_an_acknowledged_result(
    smtp, riverside, on_duty, staff_a
):
    early = critical_potassium(PatientFactory(clinic=riverside), staff_a, minutes_ago=29)
    taken_on = PatientFactory(clinic=riverside)
    critical_potassium(taken_on, staff_a, minutes_ago=90)
    critical_results_acknowledge(patient=taken_on, by=on_duty)

    critical_escalations_run()
    assert smtp.received == []

    waited(early, 30)
    critical_escalations_run()
    assert len(smtp.to("on@riverside.example")) == 1
    assert not CriticalEscalation.objects.filter(observation__patient=taken_on).exists()


def test_a_result_acknowledged_after_the_doctors_were_told_never_reaches_the_contact(smtp, riverside, on_duty, staff_a):
    patient = PatientFactory(clinic=riverside)
    observation = critical_potassium(patient, staff_a, minutes_ago=31)
    critical_escalations_run()
    critical_results_acknowledge(patient=patient, by=on_duty)

    waited(observation, 120)
    critical_escalations_run()

    assert [recipients for recipients, _message in smtp.received] == [["on@riverside.example"]]


def test_with_no_doctor_on_duty_the_contact_is_e_mailed_at_once_and_told_so(smtp, riverside, off_duty, staff_a):
    observation = critical_potassium(PatientFactory(clinic=riverside), staff_a, minutes_ago=31)

    critical_escalations_run()
    waited(observation, 120)
    critical_escalations_run()

    [message] = smtp.to(CONTACT)
    assert len(smtp.received) == 1  # the contact once; the doctor off duty never
    assert "No doctor of Riverside Clinic is on duty, so this comes to you" in message.get_payload()
    escalation = CriticalEscalation.objects.get()
    assert (escalation.level, escalation.reason) == (EscalationLevel.CONTACT, "no doctor on duty")
    assert escalation_audits()[0].detail["reason"] == "no doctor on duty"


def test_each_clinics_results_go_to_its_own_doctors_only(smtp, riverside, on_duty, clinic_b, staff_a, doctor_b):
    doctor_b.email, doctor_b.on_duty = "dr@hillcrest.example", True
    doctor_b.save()
    ours = PatientFactory(clinic=riverside)
    theirs = PatientFactory(clinic=clinic_b)
    critical_potassium(ours, staff_a, minutes_ago=31)
    critical_potassium(theirs, doctor_b, minutes_ago=31)

    critical_escalations_run()

    [to_ours] = smtp.to("on@riverside.example")
    [to_theirs] = smtp.to("dr@hillcrest.example")
    assert len(smtp.received) == 2
    assert f"/patients/{ours.pk}/" in to_ours.get_payload()
    assert f"/patients/{theirs.pk}/" in to_theirs.get_payload()
    assert to_theirs["Subject"] == "Critical result waiting: Hillcrest Clinic"


def test_when_the_smtp_server_is_down_the_failure_is_recorded_and_the_e_mail_sent_on_a_later_run(
    smtp, settings, riverside, on_duty, staff_a
):
    patient = PatientFactory(clinic=riverside)
    critical_potassium(patient, staff_a, minutes_ago=31)
    server_port, settings.EMAIL_PORT = settings.EMAIL_PORT, free_port()  # nothing listens there

    critical_escalations_run()
    critical_escalations_run()

    escalation = CriticalEscalation.objects.get()
    assert escalation.sent_at is None
    assert escalation.attempts == 2
    assert "ConnectionRefusedError" in escalation.error
    [failure] = escalation_audits()  # one row for the outage, not one a minute
    assert (failure.outcome, failure.patient_id, failure.detail["error"]) == ("failure", patient.pk, escalation.error)

    settings.EMAIL_PORT = server_port  # the server is back
    critical_escalations_run()
    critical_escalations_run()

    assert len(smtp.to("on@riverside.example")) == 1
    escalation.refresh_from_db()
    assert (escalation.sent_at is not None, escalation.error, escalation.attempts) == (True, "", 3)
    assert [a.outcome for a in escalation_audits()] == ["failure", "success"]


def test_without_a_contact_e_mail_the_escalation_stays_pending_and_says_why(smtp, riverside, staff_a):
    riverside.escalation_contact_email = ""
    riverside.save()
    critical_potassium(PatientFactory(clinic=riverside), staff_a, minutes_ago=31)

    critical_escalations_run()

    escalation = CriticalEscalation.objects.get()
    assert smtp.received == []
    assert escalation.sent_at is None
    assert escalation.error.startswith("The clinic has no escalation contact e-mail: an admin sets one")
    riverside.escalation_contact_email = CONTACT  # an admin sets one: the next run sends
    riverside.save()
    critical_escalations_run()
    assert len(smtp.to(CONTACT)) == 1


def test_beat_runs_the_escalation_every_minute():
    entry = django_settings.CELERY_BEAT_SCHEDULE["escalate-critical-results"]
    assert entry["task"] == escalate_critical_results.name
    assert str(entry["schedule"]._orig_minute) == "*"
