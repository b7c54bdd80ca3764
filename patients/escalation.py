"""Critical results that wait: e-mailed to the clinic's on-duty doctors, then to its escalation contact.

A result in a critical range (LL/HH, final) that no doctor has acknowledged `Clinic.escalation_minutes` after it
reached the clinic (`Observation.created_at`, not the time the sample was taken: a result imported late must not
skip the wait) is e-mailed to the clinic's doctors on duty; `Clinic.escalation_contact_minutes` later, still
unacknowledged, to the clinic's escalation contact. With no doctor on duty it goes to the contact at once, and the
e-mail says so. Each e-mail is a `CriticalEscalation` row, one per result and level, so no level is e-mailed twice;
each attempt is audited (`observation.critical.escalate`, a failure once per distinct error).

Why not through `clinic.outbox`: the outbox carries task messages past a broker that is down; here the worker's
task is already running, and what can fail is the SMTP server. The row is this module's own outbox: one that
could not be sent keeps its error and is tried again on the next run, a minute later, until it is sent or the
result is acknowledged. A run that dies between sending and recording leaves the row to be sent again once its
lease ends: a doctor may get an e-mail twice, never none.

What an e-mail says: the clinic, that a result is critical, which analyte, how long it has waited, and a link to
the patient's page. No name, no date of birth, no MRN, no value: e-mail is not a secure channel (it crosses
servers in clear, sits in inboxes and on phones, is forwarded), so it only tells a doctor where to look; the
details are behind the portal's sign-in, where reading them is audited.
"""

from __future__ import annotations

import datetime
import logging
import smtplib

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from clinic.audit import audit_record
from clinic.models import AuditOutcome, Clinic, Role, User
from patients.catalog import catalog
from patients.clinical import CRITICAL_LABELS
from patients.models import CriticalEscalation, EscalationLevel, Observation, ObservationStatus

logger = logging.getLogger(__name__)

SYSTEM = "system"  # the audit trail's name for what nobody clicked
LEASE = datetime.timedelta(minutes=2)  # longer than an SMTP attempt (EMAIL_TIMEOUT) can take
NO_DOCTOR_ON_DUTY = "no doctor on duty"
SEND_ERRORS = (smtplib.SMTPException, OSError)  # refused, unreachable, timed out, TLS failed


def critical_escalations_run(*, now: datetime.datetime | None = None) -> list[CriticalEscalation]:
    """Every minute (beat): open the escalations now due, then try every one not yet sent whose result still waits.
    Returns the escalations attempted, each with its outcome (`sent_at` or `error`)."""
    now = now or timezone.now()
    for clinic in Clinic.objects.order_by("pk"):
        _escalations_open(clinic=clinic, now=now)
    pending = CriticalEscalation.objects.filter(
        sent_at=None, observation__acknowledged_at=None, observation__status=ObservationStatus.FINAL
    ).order_by("pk")
    attempted = (_escalation_send(pk=pk, now=now) for pk in list(pending.values_list("pk", flat=True)))
    return [escalation for escalation in attempted if escalation is not None]


def critical_waiting(*, clinic_id: int) -> QuerySet[Observation]:
    """The clinic's final results in a critical range no doctor has acknowledged, whatever their time."""
    return Observation.objects.filter(
        patient__clinic_id=clinic_id, interpretation__in=list(CRITICAL_LABELS), acknowledged_at=None
    )


def on_duty_addresses(*, clinic_id: int) -> list[str]:
    """The e-mail addresses of the clinic's active doctors on duty (a doctor without an address cannot be told)."""
    doctors = User.objects.filter(clinic_id=clinic_id, role=Role.DOCTOR, is_active=True, on_duty=True).exclude(email="")
    return sorted(doctors.values_list("email", flat=True))


def _escalations_open(*, clinic: Clinic, now: datetime.datetime) -> None:
    doctors_due = now - datetime.timedelta(minutes=clinic.escalation_minutes)
    contact_due = doctors_due - datetime.timedelta(minutes=clinic.escalation_contact_minutes)
    waiting = list(
        critical_waiting(clinic_id=clinic.pk)
        .filter(created_at__lte=doctors_due)
        .prefetch_related(Prefetch("escalations", queryset=CriticalEscalation.objects.only("observation", "level")))
    )
    if not waiting:
        return
    on_duty = bool(on_duty_addresses(clinic_id=clinic.pk))
    new = []
    for observation in waiting:
        levels = {escalation.level for escalation in observation.escalations.all()}
        if EscalationLevel.CONTACT in levels:
            continue  # the last level: after it, the result stays on the worklist until a doctor takes it on
        if EscalationLevel.DOCTORS not in levels and on_duty:
            new.append(CriticalEscalation(observation=observation, level=EscalationLevel.DOCTORS))
        if observation.created_at <= contact_due or not on_duty:
            reason = "" if on_duty else NO_DOCTOR_ON_DUTY
            new.append(CriticalEscalation(observation=observation, level=EscalationLevel.CONTACT, reason=reason))
    # A run alongside (beat started twice) may open the same rows: the unique constraint keeps one of each.
    CriticalEscalation.objects.bulk_create(new, ignore_conflicts=True)


def _escalation_send(*, pk: int, now: datetime.datetime) -> CriticalEscalation | None:
    """Claim the row (a conditional update: no other run holds or has sent it), e-mail, record the outcome."""
    free = Q(leased_until=None) | Q(leased_until__lt=now)
    if not CriticalEscalation.objects.filter(free, pk=pk, sent_at=None).update(leased_until=now + LEASE):
        return None
    escalation = CriticalEscalation.objects.select_related("observation__patient__clinic", "observation__analyte").get(
        pk=pk
    )
    recipients = _recipients(escalation)
    error = ""
    if not recipients:
        error = _nobody(escalation)
    else:
        try:
            _message(escalation, recipients, now).send()
        except SEND_ERRORS as exc:
            error = f"{type(exc).__name__}: {exc}"[:2000]
    return _outcome_record(escalation=escalation, recipients=recipients, error=error)


def _recipients(escalation: CriticalEscalation) -> list[str]:
    clinic = escalation.observation.patient.clinic
    if escalation.level == EscalationLevel.DOCTORS:
        return on_duty_addresses(clinic_id=clinic.pk)
    return [clinic.escalation_contact_email] if clinic.escalation_contact_email else []


def _nobody(escalation: CriticalEscalation) -> str:
    if escalation.level == EscalationLevel.DOCTORS:
        return "No doctor of the clinic is on duty with an e-mail address any more."
    return "The clinic has no escalation contact e-mail: an admin sets one in the clinic's settings."


def _message(escalation: CriticalEscalation, recipients: list[str], now: datetime.datetime) -> EmailMessage:
    observation = escalation.observation
    patient, clinic = observation.patient, observation.patient.clinic
    analyte = catalog().by_id[observation.analyte_id].name
    waited = int((now - observation.created_at).total_seconds() // 60)
    link = settings.PORTAL_URL + reverse("patients:detail", args=[patient.pk])
    lines = [
        f"A result in a critical range has waited {waited} minutes at {clinic.name} without a doctor acknowledging it.",
        "",
        f"Test: {analyte} ({CRITICAL_LABELS[observation.interpretation]})",
        f"Open the patient's page, see it and acknowledge it: {link}",
        "",
    ]
    if escalation.level == EscalationLevel.CONTACT:
        why = (
            f"No doctor of {clinic.name} is on duty, so this comes to you, the clinic's escalation contact."
            if escalation.reason == NO_DOCTOR_ON_DUTY
            else "The doctors on duty were told and nobody has acknowledged it since: you are the clinic's "
            "escalation contact."
        )
        lines += [why, ""]
    lines.append(
        "This e-mail names no patient and gives no value: e-mail is not a secure channel. Sign in to the portal for "
        "the details."
    )
    return EmailMessage(subject=f"Critical result waiting: {clinic.name}", body="\n".join(lines), to=recipients)


@transaction.atomic
def _outcome_record(*, escalation: CriticalEscalation, recipients: list[str], error: str) -> CriticalEscalation:
    observation = escalation.observation
    previous_error = escalation.error
    sent_at = None if error else timezone.now()
    CriticalEscalation.objects.filter(pk=escalation.pk).update(
        recipients=recipients, sent_at=sent_at, error=error, leased_until=None, attempts=F("attempts") + 1
    )
    escalation.refresh_from_db()
    if error:
        logger.warning("Critical escalation #%s not sent, tried again next run: %s", escalation.pk, error)
    if not error or error != previous_error:  # a server down for an hour is one audit row, not sixty
        audit_record(
            actor=None,
            username=SYSTEM,
            action="observation.critical.escalate",
            target=observation.patient,
            patient_id=observation.patient_id,
            outcome=AuditOutcome.FAILURE if error else AuditOutcome.SUCCESS,
            detail={
                "escalation_id": escalation.pk,
                "observation_id": observation.pk,
                "level": escalation.level,
                "reason": escalation.reason,
                "recipients": recipients,
                "attempt": escalation.attempts,
                "error": error,
            },
        )
    return escalation
