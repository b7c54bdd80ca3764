"""Writes of the recommendations app: generation (see `generation`), review decisions, ranker rebuilds.

Every review decision is one transaction: the item changes, an append-only FeedbackEvent is written, and an
audit row records who did what to which patient's advice. Only doctors of the patient's clinic decide;
an item decided once is not decided again (a new decision comes with new advice), but its patient text may
still be edited and it may be annotated.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clinic import roles
from clinic.audit import audit_record
from clinic.models import User
from recommendations.generation import recommendations_generate
from recommendations.models import (
    LEGACY_OVERRIDE_REASONS,
    FeedbackAction,
    FeedbackEvent,
    FeedbackOutcome,
    ItemStatus,
    OverrideReason,
    Recommendation,
    RecommendationItem,
)
from recommendations.rankers import ranker_rebuild

__all__ = [
    "item_annotate",
    "item_approve",
    "item_edit",
    "item_reject",
    "items_approve",
    "ranker_rebuild",
    "rankers_rebuild_all",
    "recommendations_generate",
]

MAX_TEXT = 4000


def _ensure_can_review(user: User, item: RecommendationItem) -> None:
    if not roles.can_review_advice(user):
        raise PermissionDenied("Only doctors can review advice.")
    if not user.is_superuser and item.recommendation.clinic_id != user.clinic_id:
        raise PermissionDenied("This advice belongs to another clinic.")


def _locked(item: RecommendationItem) -> RecommendationItem:
    return RecommendationItem.objects.select_for_update(of=("self",)).select_related("recommendation").get(pk=item.pk)


def _text(value: str, field: str) -> str:
    value = (value or "").strip()
    if len(value) > MAX_TEXT:
        raise ValidationError({field: f"At most {MAX_TEXT} characters."})
    if "\x00" in value:  # the portal posts these fields unparsed, and PostgreSQL cannot store a NUL
        raise ValidationError({field: "The text contains a NUL character; remove it."})
    return value


def _feedback(item: RecommendationItem, *, by: User, action: str, outcome: str = "", reason: str = "",
              comment: str = "") -> FeedbackEvent:  # fmt: skip
    rec = item.recommendation
    event = FeedbackEvent.objects.create(
        item=item, clinic_id=rec.clinic_id, patient_id=rec.patient_id, advice_id=item.advice_id, clinician=by,
        action=action, outcome=outcome, override_reason=reason, comment=comment, position=item.position,
        created_at=timezone.now(),
    )  # fmt: skip
    audit_record(
        actor=by, action=f"recommendation.{action}", target=rec, patient_id=rec.patient_id,
        detail={"item": item.pk, "advice": item.advice_id, "outcome": outcome, "reason": reason},
    )  # fmt: skip
    return event


def _decide(item: RecommendationItem, *, by: User, status: str, reason: str = "", note: str = "") -> None:
    if item.status != ItemStatus.PENDING:
        raise ValidationError(f"This item is already {item.get_status_display().lower()}.")
    item.status, item.reviewed_by, item.reviewed_at = status, by, timezone.now()
    item.override_reason = reason
    if note:
        item.note = note
    item.save(update_fields=["status", "reviewed_by", "reviewed_at", "override_reason", "note"])
    Recommendation.objects.filter(pk=item.recommendation_id, pending__gt=0).update(pending=F("pending") - 1)


@transaction.atomic
def item_approve(*, item: RecommendationItem, by: User, patient_text: str | None = None) -> RecommendationItem:
    """Approve the item; the patient sees it from now on (with `patient_text` if the doctor rewrote it)."""
    _ensure_can_review(by, item)
    item = _locked(item)
    if patient_text is not None and _text(patient_text, "patient_text"):
        item.patient_text = _text(patient_text, "patient_text")
        item.save(update_fields=["patient_text"])
    _decide(item, by=by, status=ItemStatus.APPROVED)
    _feedback(item, by=by, action=FeedbackAction.APPROVE, outcome=FeedbackOutcome.ACCEPTED)
    return item


@transaction.atomic
def item_reject(*, item: RecommendationItem, by: User, reason: str, comment: str = "") -> RecommendationItem:
    """Reject the item with a coded reason (required) and a comment (required when the reason is "other")."""
    _ensure_can_review(by, item)
    comment = _text(comment, "comment")
    if reason in LEGACY_OVERRIDE_REASONS:
        raise ValidationError({"reason": "No longer offered: the patient has not seen this advice yet."})
    if reason not in OverrideReason.values:
        raise ValidationError({"reason": "Choose why this advice does not apply."})
    if reason == OverrideReason.OTHER and not comment:
        raise ValidationError({"comment": 'Say why, when the reason is "Other".'})
    item = _locked(item)
    _decide(item, by=by, status=ItemStatus.REJECTED, reason=reason, note=comment)
    _feedback(item, by=by, action=FeedbackAction.REJECT, outcome=FeedbackOutcome.OVERRIDDEN, reason=reason,
              comment=comment)  # fmt: skip
    return item


@transaction.atomic
def item_edit(*, item: RecommendationItem, by: User, patient_text: str) -> RecommendationItem:
    """Rewrite what the patient reads (pending or approved items)."""
    _ensure_can_review(by, item)
    text = _text(patient_text, "patient_text")
    if not text:
        raise ValidationError({"patient_text": "The patient text cannot be empty."})
    item = _locked(item)
    if item.status not in (ItemStatus.PENDING, ItemStatus.APPROVED):
        raise ValidationError(f"This item is {item.get_status_display().lower()}: its text is final.")
    item.patient_text = text
    item.save(update_fields=["patient_text"])
    _feedback(item, by=by, action=FeedbackAction.EDIT, comment=text)
    return item


@transaction.atomic
def item_annotate(*, item: RecommendationItem, by: User, note: str) -> RecommendationItem:
    """Add the doctor's note to the item (kept from the patient)."""
    _ensure_can_review(by, item)
    note = _text(note, "note")
    if not note:
        raise ValidationError({"note": "Write the note."})
    item = _locked(item)
    item.note = note
    item.save(update_fields=["note"])
    _feedback(item, by=by, action=FeedbackAction.ANNOTATE, comment=note)
    return item


@transaction.atomic
def items_approve(*, item_ids: Sequence[int], by: User) -> int:
    """Bulk approve the given items still pending, locked in primary-key order (concurrent reviews cannot
    deadlock; an item someone else decided meanwhile is left alone). Returns how many were approved."""
    items = (
        RecommendationItem.objects.select_for_update(of=("self",))
        .select_related("recommendation")
        .filter(pk__in=list(item_ids), status=ItemStatus.PENDING)
        .order_by("pk")
    )
    approved = 0
    for item in items:
        _ensure_can_review(by, item)
        _decide(item, by=by, status=ItemStatus.APPROVED)
        _feedback(item, by=by, action=FeedbackAction.APPROVE, outcome=FeedbackOutcome.ACCEPTED)
        approved += 1
    return approved


def rankers_rebuild_all() -> list[int]:
    """Refit the ranker of every clinic that has review decisions; returns the clinic ids refitted."""
    rebuilt = []
    for clinic_id in FeedbackEvent.objects.order_by().values_list("clinic_id", flat=True).distinct():
        if ranker_rebuild(clinic_id=clinic_id) is not None:
            rebuilt.append(clinic_id)
    return sorted(rebuilt)
