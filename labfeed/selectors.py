"""Reads of the lab feed, scoped to what the user may see. `*_read` functions also write the audit row of the read."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from clinic import roles
from clinic.audit import audit_record
from clinic.models import User
from labfeed.models import UnmatchedResult, UnmatchedStatus


def unmatched_list_for(*, user: User) -> QuerySet[UnmatchedResult]:
    """Held results of the user's clinic (every clinic's for a superuser). Only roles that enter results file them;
    anyone else is refused (a patient's account too)."""
    if not roles.can_enter_results(user):
        raise PermissionDenied("Your role cannot file lab results.")
    held = UnmatchedResult.objects.select_related("message__connection", "patient", "resolved_by")
    return held if user.is_superuser else held.filter(clinic_id=user.clinic_id)


def unmatched_waiting_read(*, user: User) -> list[UnmatchedResult]:
    """The worklist: results still waiting for a patient, oldest first; one audit row for the page."""
    waiting = list(unmatched_list_for(user=user).filter(status=UnmatchedStatus.WAITING).order_by("created_at", "id"))
    audit_record(actor=user, action="hl7.unmatched.list", detail={"count": len(waiting)})
    return waiting


def unmatched_get_for(*, user: User, pk: int) -> UnmatchedResult:
    return get_object_or_404(unmatched_list_for(user=user), pk=pk)  # another clinic's: 404


def unmatched_read(*, user: User, pk: int) -> UnmatchedResult:
    held = unmatched_get_for(user=user, pk=pk)
    audit_record(actor=user, action="hl7.unmatched.view", target=held, detail={"message_id": held.message_id})
    return held
