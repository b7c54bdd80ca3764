"""Reads of recommendations, scoped by clinic and role. Functions named `*_read` also write the audit row.

- Doctors review: the queue of their clinic's pending advice and each recommendation in full.
- Staff, doctors and admins see the advice on a patient's page with its review status (staff cannot decide).
- A patient sees only items a doctor approved, on their own record, in plain language.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from clinic import roles
from clinic.audit import audit_record
from clinic.models import User
from mltraining.selectors import version_detail_deferred
from patients import selectors as patient_selectors
from patients.models import Patient
from recommendations import evidence
from recommendations.generation import facts_of
from recommendations.models import (
    Category,
    Headline,
    ItemStatus,
    Recommendation,
    RecommendationItem,
    Severity,
)

URGENT = Severity.HIGH  # the home page's "urgent": high or critical
QUEUE_ORDERINGS = {"severity": ["-severity", "created_at", "pk"], "oldest": ["created_at", "pk"],
                   "newest": ["-created_at", "-pk"]}  # fmt: skip


def _items(*, reviewers: bool = True) -> Prefetch:
    """Every item with its advice and its reviewer (the review page and the API name who decided); without the
    reviewer for a page that names none, whose query the user join costs more to build than to run."""
    items = RecommendationItem.objects.select_related("advice", *(("reviewed_by",) if reviewers else ()))
    return Prefetch("items", queryset=items.order_by("position"))


def _clinic_scope(user: User) -> Q:
    return Q() if user.is_superuser else Q(clinic_id=user.clinic_id)


@dataclass(frozen=True)
class QueueFilters:
    severity: int | None = None  # at least this severity
    headline: str = ""
    category: str = ""  # recommendations with a pending item of this category
    q: str = ""  # patient name or MRN
    ordering: str = "severity"

    @classmethod
    def parse(cls, params) -> QueueFilters:
        """From query parameters; unknown or malformed values are ignored, never an error."""
        try:
            severity = int(params.get("severity", ""))
        except ValueError:
            severity = None
        return cls(
            severity=severity if severity in Severity.values else None,
            headline=params.get("headline", "") if params.get("headline") in Headline.values else "",
            category=params.get("category", "") if params.get("category") in Category.values else "",
            q=(params.get("q") or "").strip()[:100],
            ordering=params.get("ordering") if params.get("ordering") in QUEUE_ORDERINGS else "severity",
        )


def review_queue_for(*, user: User, filters: QueueFilters = QueueFilters()) -> QuerySet[Recommendation]:
    """Recommendations of the doctor's clinic with items waiting for review, most severe and oldest first, each
    with all its items (the API's queue)."""
    return _queue(user, filters).prefetch_related(_items())


QUEUE_COLUMNS = ("pk", "patient_id", "headline", "severity", "created_at", "patient__given_name",
                 "patient__family_name", "patient__mrn")  # fmt: skip


def review_queue_page_for(*, user: User, filters: QueueFilters = QueueFilters()) -> QuerySet:
    """The same queue for the portal's page, with only the columns it shows, as named tuples (`rec.patient__mrn`):
    model instances of each recommendation and its patient cost more than the rest of a row's work. The items
    waiting in each come from `waiting_items_of`, for the page's recommendations."""
    return _queue(user, filters).values_list(*QUEUE_COLUMNS, named=True)


def waiting_items_of(*, recommendation_ids: list[int]) -> dict[int, list[tuple]]:
    """The items still to review besides the headline of each of these recommendations (the caller scoped the ids,
    a queue page's), in their order, each as a named tuple (`pk`, `pinned`, `advice__title`): one query for the page."""
    items = RecommendationItem.objects.filter(
        recommendation_id__in=recommendation_ids, status=ItemStatus.PENDING, is_headline=False
    )
    waiting: dict[int, list[tuple]] = {pk: [] for pk in recommendation_ids}
    if recommendation_ids:
        rows = items.order_by("position").values_list("recommendation_id", "pk", "pinned", "advice__title", named=True)
        for item in rows:
            waiting[item.recommendation_id].append(item)
    return waiting


def _queue(user: User, filters: QueueFilters) -> QuerySet[Recommendation]:
    if not roles.can_review_advice(user):
        return Recommendation.objects.none()
    queryset = Recommendation.objects.filter(_clinic_scope(user), pending__gt=0)
    if filters.severity is not None:
        queryset = queryset.filter(severity__gte=filters.severity)
    if filters.headline:
        queryset = queryset.filter(headline=filters.headline)
    if filters.category:
        queryset = queryset.filter(
            items__status=ItemStatus.PENDING, items__advice__category=filters.category
        ).distinct()
    if filters.q:
        queryset = queryset.filter(
            Q(patient__family_name__icontains=filters.q)
            | Q(patient__given_name__icontains=filters.q)
            | Q(patient__mrn__iexact=filters.q)
        )
    return queryset.select_related("patient").order_by(*QUEUE_ORDERINGS[filters.ordering])


def review_queue_counts(*, user: User) -> dict[str, int]:
    """The home page's counts: patients with advice waiting for review, and of them those whose advice is urgent
    (high or critical). Numbers without names; the queue they link to audits its read."""
    return _queue(user, QueueFilters()).aggregate(
        patients=Count("patient_id", distinct=True),
        urgent=Count("patient_id", distinct=True, filter=Q(severity__gte=URGENT)),
    )


def review_queue_read(*, user: User, page_number: int, rows, filters: QueueFilters) -> None:
    """Audit one page of the queue: the patients whose advice the doctor saw."""
    audit_record(
        actor=user, action="recommendation.queue.view", target=None,
        detail={"page": page_number, "patient_ids": [rec.patient_id for rec in rows], "filters": filters.__dict__},
    )  # fmt: skip


def recommendation_get_for_review(*, user: User, pk: int) -> Recommendation:
    """One recommendation with its items, for a doctor of its clinic; anyone else gets 404."""
    if not roles.can_review_advice(user):
        raise Http404
    queryset = (
        Recommendation.objects.filter(_clinic_scope(user))
        .select_related("patient", "prediction__model_version")
        .defer(*version_detail_deferred("prediction__model_version"))
    )
    recommendation = get_object_or_404(queryset.prefetch_related(_items()), pk=pk)
    audit_record(actor=user, action="recommendation.view", target=recommendation, patient_id=recommendation.patient_id)
    return recommendation


def review_evidence_for(*, recommendation: Recommendation) -> dict[int, evidence.ItemEvidence]:
    """The evidence behind each item (`evidence`) of a recommendation the caller read for review (scoped and
    audited): the facts the rules judged when the advice was generated, and the values shown, in three queries."""
    prediction, patient_id = recommendation.prediction, recommendation.patient_id
    record = patient_selectors.clinical_records(patient_ids=[patient_id], as_of=prediction.created_at).get(patient_id)
    facts = facts_of(prediction.inputs, record, prediction.created_at)
    codes = evidence.analytes_needed(recommendation, facts)
    observations = patient_selectors.observation_history(patient=recommendation.patient, codes=codes) if codes else []
    return evidence.item_evidence(recommendation=recommendation, facts=facts, observations=observations)


def item_get_for_review(*, user: User, pk: int) -> RecommendationItem:
    if not roles.can_review_advice(user):
        raise Http404
    scope = Q() if user.is_superuser else Q(recommendation__clinic_id=user.clinic_id)
    return get_object_or_404(RecommendationItem.objects.filter(scope).select_related("recommendation"), pk=pk)


def pending_item_ids_of(*, user: User, recommendation_ids: list[int]) -> list[int]:
    """The pending item ids of these recommendations that the doctor may decide (their clinic's only)."""
    if not roles.can_review_advice(user):
        return []
    scope = Q() if user.is_superuser else Q(recommendation__clinic_id=user.clinic_id)
    items = RecommendationItem.objects.filter(
        scope, recommendation_id__in=recommendation_ids, status=ItemStatus.PENDING
    )
    return list(items.values_list("pk", flat=True))


def latest_recommendation_for(*, user: User, patient: Patient, reviewers: bool = True) -> Recommendation | None:
    """The patient's newest recommendation for the clinical team (the caller scoped `patient`), its items with
    who decided each unless `reviewers` is False (the patient page's advice card names nobody)."""
    if not roles.can_view_patients(user):
        return None
    return Recommendation.objects.filter(patient=patient).prefetch_related(_items(reviewers=reviewers)).first()


def latest_recommendation_read(*, user: User, patient: Patient) -> Recommendation | None:
    recommendation = latest_recommendation_for(user=user, patient=patient)
    if recommendation is not None:
        audit_record(actor=user, action="recommendation.view", target=recommendation, patient_id=patient.pk)
    return recommendation


def approved_advice_for(*, user: User, patient: Patient) -> list[RecommendationItem]:
    """What the patient may read: the approved items of their newest recommendation that has any approved.

    Never anything pending, rejected or superseded before approval; the doctor's notes are not part of it. An item
    released under a standing protocol comes with the protocol and its signer, whom the patient reads it from.
    """
    items = (
        RecommendationItem.objects.filter(recommendation__patient=patient, status=ItemStatus.APPROVED)
        .select_related("advice", "recommendation", "reviewed_by", "protocol__signed_by")
        .order_by("-recommendation__created_at", "-recommendation_id", "position")
    )
    newest = [item for item in items[:50]]
    if not newest:
        return []
    keep = newest[0].recommendation_id
    return [item for item in newest if item.recommendation_id == keep]


def my_advice_read(*, user: User) -> tuple[Patient | None, list[RecommendationItem]]:
    """A patient's own approved advice, audited as a read of their record."""
    if not roles.is_patient(user):
        raise Http404
    patient = Patient.objects.filter(user_id=user.pk, clinic_id=user.clinic_id).first()
    if patient is None:
        return None, []
    advice = approved_advice_for(user=user, patient=patient)
    audit_record(actor=user, action="recommendation.patient_view", target=patient, patient_id=patient.pk,
                 detail={"items": [item.pk for item in advice]})  # fmt: skip
    return patient, advice
