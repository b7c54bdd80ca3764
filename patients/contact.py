"""Patients contacting their clinic from the portal: a question, or a request for an appointment, that waits in
the staff's worklist until someone takes it on and answers.

Both the reads (scoped, as `patients.selectors`) and the writes (one transaction, one audit row, as
`patients.services`) of `ContactRequest` live here: those two modules are past the size where a module splits.

- A patient writes only for their own record, at most `OPEN_PER_DAY` unanswered requests a day.
- Admins, doctors and staff of the patient's clinic read and handle them: open, then in progress, then done; the
  reply is what the patient reads.
- Not an emergency channel: the form says so, since it is read during opening hours only.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from clinic import roles
from clinic.audit import audit_record
from clinic.models import User
from patients.models import (
    CONTACT_MESSAGE_MAX,
    CONTACT_TIMES_MAX,
    ContactKind,
    ContactRequest,
    ContactStatus,
    Patient,
)
from recommendations.models import Category, ItemStatus, RecommendationItem
from recommendations.selectors import approved_advice_for

OPEN_PER_DAY = 3  # unanswered requests a patient may send in 24 hours: enough for real needs, stops a flood
# Approved advice that tells the patient to book or see a doctor offers "Request an appointment about this".
APPOINTMENT_CATEGORIES = frozenset({Category.REFERRAL, Category.FOLLOW_UP_TEST, Category.URGENT})
WAITING = (ContactStatus.OPEN, ContactStatus.IN_PROGRESS)
_STATUS_ORDER = Case(
    When(status=ContactStatus.OPEN, then=Value(0)),
    When(status=ContactStatus.IN_PROGRESS, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


# --- reads -------------------------------------------------------------------------------------------------------


def own_patient_record(*, user: User) -> Patient | None:
    """The patient record of a patient's account (None when the clinic has not linked one); 404 for other roles."""
    if not roles.is_patient(user):
        raise Http404
    return Patient.objects.filter(user_id=user.pk, clinic_id=user.clinic_id).first()


def advice_item_for_contact(*, user: User, patient: Patient, pk: int | None) -> RecommendationItem | None:
    """One of the approved advice items the patient reads now, to ask about; any other id is a 404."""
    if pk is None:
        return None
    for item in approved_advice_for(user=user, patient=patient):
        if item.pk == pk:
            return item
    raise Http404


def advice_item_read(*, user: User, patient: Patient, item: RecommendationItem) -> None:
    """The form about an advice item shows its text: a read of the patient's advice, audited as "My advice" is."""
    audit_record(actor=user, action="recommendation.patient_view", target=patient, patient_id=patient.pk,
                 detail={"items": [item.pk]})  # fmt: skip


def contact_requests_for(*, user: User) -> QuerySet[ContactRequest]:
    """Requests the user may read: their clinic's for the clinical team, their own for a patient."""
    if user.is_superuser:
        return ContactRequest.objects.all()
    if roles.can_handle_patient_requests(user):
        return ContactRequest.objects.filter(clinic_id=user.clinic_id)
    if roles.is_patient(user):
        return ContactRequest.objects.filter(patient__user_id=user.pk, clinic_id=user.clinic_id)
    return ContactRequest.objects.none()


@dataclass(frozen=True)
class WorklistFilters:
    kind: str = ""
    status: str = ""

    @classmethod
    def parse(cls, params) -> WorklistFilters:
        """From query parameters; unknown values are ignored, never an error."""
        kind, status = params.get("kind", ""), params.get("status", "")
        return cls(
            kind=kind if kind in ContactKind.values else "", status=status if status in ContactStatus.values else ""
        )


def worklist_for(*, user: User, filters: WorklistFilters = WorklistFilters()) -> QuerySet[ContactRequest]:
    """The clinic's requests for its team: open first, then in progress, then done; the oldest first in each."""
    if not roles.can_handle_patient_requests(user):
        return ContactRequest.objects.none()
    requests = contact_requests_for(user=user)
    if filters.kind:
        requests = requests.filter(kind=filters.kind)
    if filters.status:
        requests = requests.filter(status=filters.status)
    return requests.select_related("patient", "handled_by").order_by(_STATUS_ORDER, "created_at", "pk")


def worklist_read(*, user: User, rows, page_number: int, filters: WorklistFilters) -> None:
    """Audit one page of the worklist: the patients whose messages the user saw."""
    audit_record(actor=user, action="contact_request.list", target=None,
                 detail={"page": page_number, "patient_ids": [row.patient_id for row in rows],
                         "filters": filters.__dict__})  # fmt: skip


def waiting_count(*, user: User) -> int:
    """The home page's count of the clinic's requests nobody has finished (a number, no names)."""
    return worklist_for(user=user).filter(status__in=WAITING).count()


def contact_request_get_for_handling(*, user: User, pk: int) -> ContactRequest:
    """One request of the user's clinic with its patient and advice item, audited as a read; anyone else: 404."""
    if not roles.can_handle_patient_requests(user):
        raise Http404
    queryset = contact_requests_for(user=user).select_related("patient", "handled_by", "advice_item__advice")
    request = get_object_or_404(queryset, pk=pk)
    audit_record(actor=user, action="contact_request.view", target=request, patient_id=request.patient_id)
    return request


def my_contact_requests_read(*, user: User, patient: Patient) -> list[ContactRequest]:
    """A patient's own requests with the clinic's replies, newest first, audited as a read of their record."""
    requests = list(contact_requests_for(user=user).filter(patient=patient).select_related("advice_item__advice")[:100])
    audit_record(actor=user, action="contact_request.patient_view", target=patient, patient_id=patient.pk,
                 detail={"requests": [request.pk for request in requests]})  # fmt: skip
    return requests


# --- writes ------------------------------------------------------------------------------------------------------


def _text(value: str | None, field: str, limit: int) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise ValidationError({field: f"At most {limit} characters (this has {len(value)})."})
    if "\x00" in value:  # PostgreSQL cannot store a NUL
        raise ValidationError({field: "The text contains a NUL character; remove it."})
    return value


@transaction.atomic
def contact_request_create(
    *,
    patient: Patient,
    by: User,
    kind: str,
    message: str,
    preferred_times: str = "",
    advice_item: RecommendationItem | None = None,
) -> ContactRequest:
    """A patient's question or appointment request, for their own record only; refused with a clear message when
    empty, too long, about someone else's advice, or past `OPEN_PER_DAY` unanswered requests in 24 hours."""
    if not (roles.is_patient(by) and patient.user_id == by.pk and patient.clinic_id == by.clinic_id):
        raise PermissionDenied("A patient writes to the clinic only about their own record.")
    if kind not in ContactKind.values:
        raise ValidationError({"kind": "Choose a question or an appointment."})
    message = _text(message, "message", CONTACT_MESSAGE_MAX)
    if not message:
        raise ValidationError({"message": "Write your question or what the appointment is about."})
    times = _text(preferred_times, "preferred_times", CONTACT_TIMES_MAX)
    if advice_item is not None and (
        advice_item.recommendation.patient_id != patient.pk or advice_item.status != ItemStatus.APPROVED
    ):
        raise ValidationError({"advice_item": "This advice is not yours to ask about."})
    Patient.objects.select_for_update().filter(pk=patient.pk).first()  # one request of a patient at a time
    since = timezone.now() - datetime.timedelta(hours=24)
    unanswered = ContactRequest.objects.filter(patient=patient, status__in=WAITING, created_at__gte=since).count()
    if unanswered >= OPEN_PER_DAY:
        raise ValidationError(
            f"You have sent {unanswered} requests in the last 24 hours that the clinic has not answered yet. Please "
            "wait for its reply, or telephone the clinic."
        )
    request = ContactRequest.objects.create(
        clinic_id=patient.clinic_id, patient=patient, kind=kind, message=message, preferred_times=times,
        advice_item=advice_item,
    )  # fmt: skip
    audit_record(actor=by, action="contact_request.create", target=request, patient_id=patient.pk,
                 detail={"kind": kind, "advice_item": advice_item.pk if advice_item else None})  # fmt: skip
    return request


# Where each action may start from, and where it leads.
TRANSITIONS = {
    "start": ({ContactStatus.OPEN}, ContactStatus.IN_PROGRESS),
    "done": ({ContactStatus.OPEN, ContactStatus.IN_PROGRESS}, ContactStatus.DONE),
}


@transaction.atomic
def contact_request_handle(*, request: ContactRequest, by: User, action: str, reply: str = "") -> ContactRequest:
    """Take a request on (`start`, a reply optional: "we will call you on Monday") or finish it (`done`, with the
    reply the patient reads). Only the clinic's admins, doctors and staff; a finished request stays finished."""
    if not (roles.can_handle_patient_requests(by) and (by.is_superuser or by.clinic_id == request.clinic_id)):
        raise PermissionDenied("Only the team of the patient's clinic handles their requests.")
    if action not in TRANSITIONS:
        raise ValidationError("Choose to take the request on or to mark it done.")
    reply = _text(reply, "reply", CONTACT_MESSAGE_MAX)
    request = ContactRequest.objects.select_for_update().get(pk=request.pk)
    allowed_from, status = TRANSITIONS[action]
    if request.status not in allowed_from:
        raise ValidationError(f"This request is already {request.get_status_display().lower()}.")
    if status == ContactStatus.DONE and not (reply or request.reply):
        raise ValidationError({"reply": "Write the reply the patient will read before marking the request done."})
    previous = request.status
    request.status, request.handled_by, request.handled_at = status, by, timezone.now()
    request.reply = reply or request.reply
    request.save(update_fields=["status", "handled_by", "handled_at", "reply"])
    audit_record(actor=by, action=f"contact_request.{action}", target=request, patient_id=request.patient_id,
                 detail={"from": previous, "to": status, "replied": bool(reply)})  # fmt: skip
    return request
