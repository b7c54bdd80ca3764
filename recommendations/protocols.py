"""Standing protocols: a doctor signs once, and routine low-severity advice reaches patients without per-patient review.

What a protocol may name: advice items that the rules and the model can only ever generate at information or low
severity (`releasable_advice`, read off the rules themselves, so a rule that one day gives an item a higher severity
takes it off the list). Headlines summarise the other items: "No action needed" is always information and may be
named; "Lifestyle changes recommended" can be moderate, so it is never named, but it is released with the last
pending item of its recommendation when its own severity is low (then every item of the recommendation is).

What a protocol releases (`protocols_release`), on generation and on "apply to what is waiting now":
- a pending item whose advice it names, whose own generated severity is information or low, of a patient in its
  scope (sex and age band, judged on the age and sex the advice was generated from; unknown: out of scope), on a
  day between its start and end, not revoked;
- never an item of a recommendation that also carries a critical, pinned or urgent item, whatever its status, nor
  one whose recommendation still has an item of moderate severity or worse pending: the patient reads nothing before
  a doctor has seen the findings that matter (once the doctor has decided those, the routine items follow on the
  next "apply").

A release is not a clinician's decision: the item is approved with the protocol recorded and no reviewer, no
FeedbackEvent is written (the feedback ranker learns from doctors only), the recommendation's pending count drops,
and one audit row per recommendation and protocol names the items released and the protocol's signer.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from clinic import roles
from clinic.audit import audit_record
from clinic.models import User
from recommendations import rules
from recommendations.models import (
    AdviceItem,
    Category,
    ItemStatus,
    ProtocolSex,
    Recommendation,
    RecommendationItem,
    Severity,
    StandingProtocol,
)

RELEASABLE = Severity.LOW  # the most severe an item released without review may be
MAX_DAYS = 365  # a protocol lasts at most a year, then a doctor signs it again
MAX_AGE = 130
RELEASE_ACTION = "recommendation.release_under_protocol"
AUDIT_USERNAME = "standing-protocol"  # the audit trail's actor for releases nobody clicked (generation)
_CHUNK = 1000  # recommendations read per query when applying to the waiting queue


@functools.cache
def advice_severities() -> dict[str, frozenset[int]]:
    """Every severity at which each advice item can be generated: its rules', the model's follow-up items', the
    "repeat the test" item's, and the headlines' (lifestyle: low, or moderate with a moderate item)."""
    from recommendations.generation import MODEL_ADVICE  # generation applies protocols: import here, not above

    found: dict[str, set[int]] = {}
    for rule in rules.RULES:
        found.setdefault(rule.advice, set()).add(int(rule.severity))
    for advice, severity in MODEL_ADVICE.values():
        found.setdefault(advice, set()).add(int(severity))
    found.setdefault(rules.STALE_ADVICE, set()).add(Severity.MODERATE)
    found[rules.HEADLINE_NO_ACTION] = {Severity.INFO}
    found[rules.HEADLINE_LIFESTYLE] = {Severity.LOW, Severity.MODERATE}
    found[rules.HEADLINE_CONSULT] = {Severity.HIGH, Severity.CRITICAL}
    return {advice: frozenset(severities) for advice, severities in found.items()}


def releasable_advice() -> QuerySet[AdviceItem]:
    """The active advice items a protocol may name: never generated above low severity, never urgent."""
    codes = [code for code, severities in advice_severities().items() if max(severities) <= RELEASABLE]
    return AdviceItem.objects.filter(code__in=codes, active=True).exclude(category=Category.URGENT).order_by("title")


# --- reads ------------------------------------------------------------------------------------------------------


def protocol_list_for(*, user: User) -> QuerySet[StandingProtocol]:
    """The protocols of the doctor's clinic, each with `released` (items released under it); none for others."""
    if not roles.can_review_advice(user):
        return StandingProtocol.objects.none()
    scope = Q() if user.is_superuser else Q(clinic_id=user.clinic_id)
    return (
        StandingProtocol.objects.filter(scope)
        .select_related("signed_by", "revoked_by")
        .prefetch_related("advice")
        .annotate(released=Count("released_items"))
    )


def protocol_get_for(*, user: User, pk: int) -> StandingProtocol:
    """One protocol of the doctor's clinic; anyone else gets 404."""
    if not roles.can_review_advice(user):
        raise Http404
    return get_object_or_404(protocol_list_for(user=user), pk=pk)


# --- writes -----------------------------------------------------------------------------------------------------


def _ensure_doctor_of(user: User, clinic_id: int | None) -> None:
    if not roles.can_review_advice(user):
        raise PermissionDenied("Only doctors sign, revoke and apply standing protocols.")
    if clinic_id is None or (not user.is_superuser and user.clinic_id != clinic_id):
        raise PermissionDenied("This protocol belongs to another clinic.")


def _validated_scope(*, starts_on: datetime.date, ends_on: datetime.date | None, min_age: int | None,
                     max_age: int | None, sex: str) -> dict[str, str]:  # fmt: skip
    errors: dict[str, str] = {}
    today = timezone.localdate()
    if starts_on < today:
        errors["starts_on"] = "A protocol cannot start before the day it is signed."
    if ends_on is None:
        errors["ends_on"] = "Give the last day the protocol applies (at most a year after it starts)."
    elif ends_on < starts_on:
        errors["ends_on"] = "The end date is before the start date."
    elif ends_on > starts_on + datetime.timedelta(days=MAX_DAYS):
        errors["ends_on"] = (
            f"A protocol lasts at most a year: end it by {starts_on + datetime.timedelta(days=MAX_DAYS)}."
        )
    for name, age in (("min_age", min_age), ("max_age", max_age)):
        if age is not None and not 0 <= age <= MAX_AGE:
            errors[name] = f"An age is between 0 and {MAX_AGE} years."
    if min_age is not None and max_age is not None and min_age > max_age and "min_age" not in errors:
        errors["max_age"] = "The oldest age is below the youngest."
    if sex not in ProtocolSex.values:
        errors["sex"] = "Choose all patients, female or male."
    return errors


def _named_advice(codes: Sequence[str]) -> tuple[list[AdviceItem], str]:
    codes = sorted(set(codes))
    if not codes:
        return [], "Name at least one advice item."
    allowed = {advice.code: advice for advice in releasable_advice()}
    refused = [code for code in codes if code not in allowed]
    if refused:
        severities = advice_severities()
        named = ", ".join(
            f"{code} (can be {Severity(max(severities[code])).label.lower()})" if code in severities else code
            for code in refused
        )
        return [], f"Only advice that is never more than low severity can be released without review; refused: {named}."
    return [allowed[code] for code in codes], ""


@transaction.atomic
def protocol_sign(
    *, by: User, title: str, advice_codes: Sequence[str], starts_on: datetime.date, ends_on: datetime.date | None,
    min_age: int | None = None, max_age: int | None = None, sex: str = "", release_waiting: bool = False,
) -> StandingProtocol:  # fmt: skip
    """Sign a protocol for the doctor's clinic. Everything is checked before anything is written: a protocol naming
    one item that can be moderate or worse is refused whole. With `release_waiting`, a protocol that starts today
    also releases what it covers in the queue now, in the same transaction; `released_now` says how many items."""
    _ensure_doctor_of(by, by.clinic_id)
    title = (title or "").strip()
    errors = {"title": "Give the protocol a title."} if not title else {}
    if len(title) > 200:
        errors["title"] = "At most 200 characters."
    advice, refusal = _named_advice(advice_codes)
    if refusal:
        errors["advice"] = refusal
    errors.update(_validated_scope(starts_on=starts_on, ends_on=ends_on, min_age=min_age, max_age=max_age, sex=sex))
    if errors:
        raise ValidationError(errors)
    protocol = StandingProtocol.objects.create(
        clinic_id=by.clinic_id, title=title, min_age=min_age, max_age=max_age, sex=sex, starts_on=starts_on,
        ends_on=ends_on, signed_by=by, signed_at=timezone.now(),
    )  # fmt: skip
    protocol.advice.set(advice)
    audit_record(
        actor=by, action="protocol.sign", target=protocol,
        detail={"title": title, "advice": [a.code for a in advice], "scope": protocol.scope_display,
                "starts_on": starts_on, "ends_on": ends_on},
    )  # fmt: skip
    active = protocol.status_on(timezone.localdate()) == "active"
    protocol.released_now = _apply_waiting(protocol, by) if release_waiting and active else 0
    return protocol


@transaction.atomic
def protocol_revoke(*, protocol: StandingProtocol, by: User, reason: str) -> StandingProtocol:
    """Revoke the protocol with a reason: it releases nothing more; what it released stays released."""
    _ensure_doctor_of(by, protocol.clinic_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why the protocol is revoked."})
    if len(reason) > 4000:
        raise ValidationError({"reason": "At most 4000 characters."})
    protocol = StandingProtocol.objects.select_for_update().get(pk=protocol.pk)
    if protocol.revoked_at is not None:
        raise ValidationError("This protocol is already revoked.")
    protocol.revoked_by, protocol.revoked_at, protocol.revoke_reason = by, timezone.now(), reason
    protocol.save(update_fields=["revoked_by", "revoked_at", "revoke_reason"])
    audit_record(actor=by, action="protocol.revoke", target=protocol, detail={"reason": reason})
    return protocol


@transaction.atomic
def protocol_apply_waiting(*, protocol: StandingProtocol, by: User) -> int:
    """Release what the protocol covers among the advice already waiting in its clinic's queue (the queue shrinks
    at once, not only as new results come in). Returns the items released."""
    _ensure_doctor_of(by, protocol.clinic_id)
    protocol = StandingProtocol.objects.get(pk=protocol.pk)
    if protocol.status_on(timezone.localdate()) != "active":
        raise ValidationError("Only an active protocol releases advice.")
    return _apply_waiting(protocol, by)


def _apply_waiting(protocol: StandingProtocol, by: User) -> int:
    waiting = (
        RecommendationItem.objects.filter(
            recommendation__clinic_id=protocol.clinic_id, status=ItemStatus.PENDING,
            advice__in=protocol.advice.all(),
        )
        .order_by("recommendation_id")
        .values_list("recommendation_id", flat=True)
        .distinct()
    )  # fmt: skip
    ids = list(waiting)
    released = sum(
        protocols_release(
            clinic_id=protocol.clinic_id, recommendation_ids=ids[start : start + _CHUNK], by=by, only=protocol
        )  # fmt: skip
        for start in range(0, len(ids), _CHUNK)
    )
    audit_record(actor=by, action="protocol.apply", target=protocol,
                 detail={"recommendations": len(ids), "released": released})  # fmt: skip
    return released


# --- releasing ----------------------------------------------------------------------------------------------------


@dataclass
class _Advice:
    """A recommendation's items as the release reads them."""

    patient_id: int
    age: float | None
    sex: str
    blocked: bool = False  # carries a critical, pinned or urgent item, or one of moderate severity or worse pending
    pending: list[tuple[int, str, int, bool]] = field(default_factory=list)  # (item id, advice, severity, headline)


def _active(clinic_id: int, today: datetime.date, only: StandingProtocol | None) -> list[StandingProtocol]:
    protocols = StandingProtocol.objects.filter(
        clinic_id=clinic_id, revoked_at__isnull=True, starts_on__lte=today, ends_on__gte=today
    )
    if only is not None:
        protocols = protocols.filter(pk=only.pk)
    protocols = list(protocols.select_related("signed_by").prefetch_related("advice").order_by("signed_at", "pk"))
    for protocol in protocols:
        protocol.codes = {advice.code for advice in protocol.advice.all()}
    return protocols


def _in_scope(protocol: StandingProtocol, age: float | None, sex: str) -> bool:
    """Sex and age band as the advice was generated; a scope the patient's record cannot settle excludes them."""
    if protocol.sex and sex != protocol.sex:
        return False
    if protocol.min_age is None and protocol.max_age is None:
        return True
    if age is None:
        return False
    return (protocol.min_age is None or age >= protocol.min_age) and (
        protocol.max_age is None or age <= protocol.max_age
    )


def _read(recommendation_ids: Sequence[int]) -> dict[int, _Advice]:
    """Two queries: the recommendations' patients and the age and sex their advice came from; then every item of
    them (decided ones too: a critical item a doctor approved still keeps its recommendation from release), locked
    so that a doctor deciding the same items waits for the release, and is then told they are decided."""
    heads = Recommendation.objects.filter(pk__in=recommendation_ids).values_list(
        "pk", "patient_id", "prediction__inputs__age", "prediction__inputs__sex"
    )
    advice = {pk: _Advice(patient_id, _number(age), str(sex or "")) for pk, patient_id, age, sex in heads}
    items = (
        RecommendationItem.objects.select_for_update(of=("self",))
        .filter(recommendation_id__in=list(advice))
        .order_by("pk")
        .values_list("pk", "recommendation_id", "advice__code", "advice__category", "severity", "pinned",
                     "is_headline", "status")
    )  # fmt: skip
    for pk, rec_id, code, category, severity, pinned, headline, status in items:
        found = advice[rec_id]
        if pinned or severity >= Severity.CRITICAL or category == Category.URGENT:
            found.blocked = True
        if status == ItemStatus.PENDING and severity >= Severity.MODERATE:
            found.blocked = True  # a finding a doctor has not yet seen: nothing reaches the patient before it
        if status == ItemStatus.PENDING:
            found.pending.append((pk, code, severity, headline))
    return advice


def _number(value) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _plan(found: _Advice, protocols: list[StandingProtocol]) -> dict[int, list[tuple[int, str]]]:
    """Which pending items of one recommendation each protocol releases: {protocol id: [(item id, advice)]}."""
    if found.blocked:
        return {}
    in_scope = [p for p in protocols if _in_scope(p, found.age, found.sex)]
    plan: dict[int, list[tuple[int, str]]] = {}
    headline = None
    for pk, code, severity, is_headline in found.pending:
        if is_headline and code != rules.HEADLINE_NO_ACTION:
            headline = (pk, code, severity)  # follows the other items, below
            continue
        protocol = next((p for p in in_scope if code in p.codes), None)
        if protocol is not None and severity <= RELEASABLE:
            plan.setdefault(protocol.pk, []).append((pk, code))
    released = sum(len(items) for items in plan.values())
    others = sum(not is_headline for _pk, _code, _severity, is_headline in found.pending)
    if headline is not None and released and released == others and headline[2] <= RELEASABLE:
        plan[next(iter(plan))].append(headline[:2])
    return plan


def protocols_release(
    *, clinic_id: int, recommendation_ids: Sequence[int], by: User | None = None,
    only: StandingProtocol | None = None,
) -> int:  # fmt: skip
    """Release, under the clinic's active protocols (or `only` that one), the pending items of these recommendations
    that a protocol covers. Runs in the caller's transaction: generation's, or `protocol_apply_waiting`'s. A
    constant number of queries plus one audit row per recommendation and protocol; nothing when no protocol is
    active (one query). Returns the items released."""
    protocols = _active(clinic_id, timezone.localdate(), only)
    if not protocols or not recommendation_ids:
        return 0
    with transaction.atomic():  # the items are locked as they are read; a savepoint when the caller has a transaction
        return _release(clinic_id, recommendation_ids, protocols, by)


def _release(clinic_id: int, recommendation_ids: Sequence[int], protocols: list[StandingProtocol],
             by: User | None) -> int:  # fmt: skip
    by_pk = {protocol.pk: protocol for protocol in protocols}
    now = timezone.now()
    releases: dict[int, list[int]] = {}  # protocol -> item ids
    drops: dict[int, list[int]] = {}  # items released -> recommendation ids
    audits = []
    for rec_id, found in _read(recommendation_ids).items():
        plan = _plan(found, protocols)
        for protocol_id, items in plan.items():
            releases.setdefault(protocol_id, []).extend(pk for pk, _code in items)
            audits.append((rec_id, found.patient_id, by_pk[protocol_id], items))
        if plan:
            drops.setdefault(sum(len(items) for items in plan.values()), []).append(rec_id)
    for protocol_id, item_ids in releases.items():
        RecommendationItem.objects.filter(pk__in=item_ids).update(
            status=ItemStatus.APPROVED, protocol_id=protocol_id, reviewed_at=now
        )
    for count, rec_ids in drops.items():
        Recommendation.objects.filter(pk__in=rec_ids).update(pending=F("pending") - count)
    for rec_id, patient_id, protocol, items in audits:
        audit_record(
            actor=by, username=AUDIT_USERNAME, action=RELEASE_ACTION,
            target=Recommendation(pk=rec_id, clinic_id=clinic_id), patient_id=patient_id,
            detail={"protocol": protocol.pk, "signed_by": protocol.signed_by.username,
                    "items": [pk for pk, _code in items], "advice": [code for _pk, code in items]},
        )  # fmt: skip
    return sum(len(item_ids) for item_ids in releases.values())
