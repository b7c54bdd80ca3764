"""From predictions to recommendations, in bulk: rules, model-driven items, headline, ranking, rows.

Called by the predictions services right after predictions are written (one patient online, a chunk of 100
to 1,000 in a batch), in the same transaction, with a constant number of queries per call:

1. the guideline rules read the prediction's input values (canonical units, derived eGFR included), also those
   of a prediction that failed because the model could not be used (its advice comes from the rules alone),
   overlaid with the patient's record: each analyte's latest value with its date, however old (a value too old
   to judge asks for a repeat), and the creatinine and eGFR course (acute kidney injury, CKD persistence);
2. a target condition the model finds likely (probability >= MODEL_ITEM_PROBABILITY) that no rule already
   covers adds the model's follow-up item, so the model's finding reaches the doctor too; one on a topic an item
   already covers (prediabetes beside a diabetes finding) is named in that item instead;
3. the headline comes from the most severe finding and the calibrated risk level;
4. items are ordered by severity tier; within a tier by the model's probability of the related condition
   plus the clinic's feedback lift; critical items are pinned first in rule order and never re-ranked;
5. the same advice as the patient's latest recommendation (same headline, items and severities) is not
   generated again: a nightly batch does not bury the doctors' queue under copies of unchanged advice.
   Changed advice supersedes the patient's items still pending review;
6. the clinic's active standing protocols release the new items they cover (`protocols.protocols_release`):
   a patient gets routine low-severity advice without waiting, and the queue keeps what needs a doctor.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db import connection
from django.db.models import OuterRef, Subquery

from clinic.bulk import bulk_insert, copy_insert
from patients import selectors as patient_selectors
from patients.selectors import ClinicalRecord
from recommendations import protocols, ranking, rules
from recommendations.models import (
    AdviceItem,
    ItemStatus,
    Recommendation,
    RecommendationItem,
    Severity,
)
from recommendations.profiles import profile_matrix
from recommendations.rankers import ranker_for

MODEL_ITEM_PROBABILITY = 0.5
# The model's follow-up item per target class, used when no rule covers the class, and its severity.
MODEL_ADVICE: dict[str, tuple[str, int]] = {
    "ckd": ("model_ckd_follow_up", Severity.MODERATE),
    "diabetes": ("model_diabetes_follow_up", Severity.MODERATE),
    "thalassemia_trait": ("model_thalassemia_trait_follow_up", Severity.MODERATE),
    "iron_deficiency": ("model_anemia_work_up", Severity.MODERATE),
    "thrombocytopenia": ("model_thrombocytopenia_follow_up", Severity.MODERATE),
    "dyslipidemia": ("model_dyslipidemia_follow_up", Severity.LOW),
    "prediabetes": ("model_prediabetes_lifestyle", Severity.LOW),
}
_HEADLINE_SEVERITY = {rules.HEADLINE_NO_ACTION: Severity.INFO, rules.HEADLINE_LIFESTYLE: Severity.LOW,
                      rules.HEADLINE_CONSULT: Severity.HIGH}  # fmt: skip


@dataclass(frozen=True)
class Proposed:
    """One item before it is written."""

    advice: str
    severity: int
    rule: str
    rationale: str
    citation: str
    condition: str
    probability: float | None


def facts_of(inputs: dict[str, Any], record: ClinicalRecord | None = None, as_of=None) -> rules.Facts:
    """The rules' facts: the prediction's inputs, overlaid with the patient's record (each latest value with its
    date, however old, and the kidney's course) where there is one."""
    age = inputs.get("age")
    return rules.facts_from(
        values=inputs, sex=str(inputs.get("sex") or ""), age=float(age) if age is not None else None, as_of=as_of,
        latest=record.latest if record else None, history=record.history if record else None,
    )  # fmt: skip


def propose_many(predictions: Sequence[Any]) -> list[list[Proposed]]:
    """The items of each prediction, unordered: rule findings (the rules screened over all predictions at once),
    then the model's likely conditions that no rule covers."""
    as_of = max(p.created_at for p in predictions)
    records = patient_selectors.clinical_records(patient_ids=[p.patient_id for p in predictions], as_of=as_of)
    findings = rules.evaluate_many([facts_of(p.inputs, records.get(p.patient_id), p.created_at) for p in predictions])
    return [_proposed(found, p.probabilities) for found, p in zip(findings, predictions, strict=True)]


def _proposed(findings: list[rules.Finding], probabilities: dict[str, float]) -> list[Proposed]:
    items = [
        Proposed(f.advice, int(f.severity), f.rule, f.rationale, f.citation, f.condition,
                 probabilities.get(f.condition) if f.condition else None)
        for f in findings
    ]  # fmt: skip
    # One item per topic, as the rules merge their findings: the model's likely condition on a topic an item
    # already covers (a rule's diabetes finding, the model's likely prediabetes) is named in that item, never a
    # second one beside it ("confirm diabetes" and "prediabetes: lifestyle").
    topics = {rules.TOPIC.get(i.condition, i.condition): n for n, i in enumerate(items) if i.condition}
    advices = {i.advice for i in items}
    for condition, (advice, severity) in MODEL_ADVICE.items():
        probability = probabilities.get(condition, 0.0)
        topic = rules.TOPIC.get(condition, condition)
        if probability < MODEL_ITEM_PROBABILITY or advice in advices:
            continue
        pattern = f"{probability:.0%} for the pattern of {condition.replace('_', ' ')}"
        if topic in topics:
            merged = items[topics[topic]]
            if merged.condition != condition:
                items[topics[topic]] = replace(merged, rationale=f"{merged.rationale} The model also gives {pattern}.")
            continue
        rationale = (
            f"The model gives {pattern} (threshold for this item {MODEL_ITEM_PROBABILITY:.0%}); no guideline rule "
            "covers it."
        )
        topics[topic] = len(items)
        advices.add(advice)
        items.append(Proposed(advice, severity, "", rationale, "", condition, probability))
    return items


def headline_of(items: Sequence[Proposed], risk_level: str) -> str:
    """The same cut as `rules.headline`, counting the model's own items as lifestyle-level findings."""
    model_items = [i for i in items if not i.rule]
    top = max((i.severity for i in items), default=Severity.INFO)
    if top >= Severity.HIGH or risk_level == "high":
        return rules.HEADLINE_CONSULT
    if top >= Severity.LOW or risk_level == "moderate" or model_items:
        return rules.HEADLINE_LIFESTYLE
    return rules.HEADLINE_NO_ACTION


def fingerprint(headline: str, items: Sequence[Proposed]) -> str:
    text = headline + "|" + ",".join(sorted(f"{i.advice}:{i.severity}" for i in items))
    return hashlib.sha256(text.encode()).hexdigest()


def _latest_fingerprints(patient_ids: list[int]) -> dict[int, str]:
    """The fingerprint of each patient's newest recommendation: one query over the (patient, time) index."""
    rows = Recommendation.objects.filter(patient_id__in=patient_ids)
    if connection.vendor == "postgresql":  # DISTINCT ON walks the index once per patient
        rows = rows.order_by("patient_id", "-created_at", "-id").distinct("patient_id")
    else:
        latest = Recommendation.objects.filter(patient_id=OuterRef("patient_id")).order_by("-created_at", "-id")
        rows = rows.filter(pk=Subquery(latest.values("pk")[:1]))
    return dict(rows.values_list("patient_id", "fingerprint"))


def recommendations_generate(*, predictions: Sequence[Any], clinic_id: int) -> list[Recommendation]:
    """Write the recommendations of these predictions (one clinic). Returns those written.

    A failed prediction that kept its inputs (the model could not be used) gets advice from the guideline rules
    alone; one without inputs gets none.
    """
    predictions = [p for p in predictions if p.pk is not None and (p.status == "succeeded" or p.inputs)]
    if not predictions:
        return []
    catalog = {a.code: a for a in AdviceItem.objects.all()}  # headlines are always given, even if deactivated
    active = {code for code, advice in catalog.items() if advice.active}
    previous = _latest_fingerprints([p.patient_id for p in predictions])
    ranker, ranker_version = ranker_for(clinic_id=clinic_id)

    planned = []
    for prediction, proposed in zip(predictions, propose_many(predictions), strict=True):
        headline = headline_of(proposed, prediction.risk_level)  # a deactivated item's finding still counts
        items = [i for i in proposed if i.advice in active]
        key = fingerprint(headline, items)
        if previous.get(prediction.patient_id) != key:
            planned.append((prediction, headline, items, key))
    if not planned:
        return []

    lifts = _lifts(ranker, planned)
    recommendations = [
        Recommendation(
            clinic_id=clinic_id, patient_id=p.patient_id, prediction_id=p.pk, created_at=p.created_at,
            headline=headline, severity=max([_HEADLINE_SEVERITY[headline], *(i.severity for i in items)]),
            pending=len(items) + 1, fingerprint=key, rules_version=rules.RULES_VERSION, ranker_version=ranker_version,
            rationale=_rationale(p),
        )
        for p, headline, items, key in planned
    ]  # fmt: skip
    _supersede([p.patient_id for p, *_ in planned if p.patient_id in previous])  # first advice: nothing to supersede
    _recommendations_insert(recommendations)
    rows = []
    for rec, (_p, headline, items, _key), item_lifts in zip(recommendations, planned, lifts, strict=True):
        rows.append(_headline_item(rec, catalog[headline], len(items)))
        rows.extend(_ranked_items(rec, items, item_lifts, catalog))
    bulk_insert(RecommendationItem, _ITEM_COLUMNS, rows)
    protocols.protocols_release(clinic_id=clinic_id, recommendation_ids=[rec.pk for rec in recommendations])
    return recommendations


def _rationale(prediction: Any) -> dict[str, Any]:
    if prediction.status == "insufficient":  # guideline rules alone: the patient lacks recent inputs the model needs
        return {"risk_level": "", "model_version_id": prediction.model_version_id, "not_enough_data": prediction.error}
    if prediction.status != "succeeded":  # guideline rules alone: say why the model is absent
        return {"risk_level": "", "model_version_id": prediction.model_version_id, "model_error": prediction.error}
    return {
        "risk_level": prediction.risk_level,
        "risk_score": prediction.risk_score,
        "predicted_class": prediction.predicted_class,
        "probability": prediction.probabilities.get(prediction.predicted_class),
        "model_version_id": prediction.model_version_id,
        # What the model's finding rests on (the caller's predictions carry their version: no query).
        "training_data": prediction.model_version.training_data if prediction.model_version_id else "",
    }


_RECOMMENDATION_COLUMNS = (
    "clinic_id", "patient_id", "prediction_id", "created_at", "headline", "severity", "pending", "fingerprint",
    "rationale", "rules_version", "ranker_version",
)  # fmt: skip


def _recommendations_insert(recommendations: list[Recommendation]) -> None:
    """COPY (PostgreSQL) or bulk_create, then the primary keys by prediction (one query), for the items."""
    copy_insert(Recommendation, recommendations, _RECOMMENDATION_COLUMNS)
    if any(rec.pk is None for rec in recommendations):
        ids = dict(
            Recommendation.objects.filter(prediction_id__in=[rec.prediction_id for rec in recommendations])
            .values_list("prediction_id", "pk")
        )  # fmt: skip
        for rec in recommendations:
            rec.pk = ids[rec.prediction_id]


_ITEM_COLUMNS = (
    "recommendation_id", "advice_id", "card_id", "position", "is_headline", "severity", "pinned", "rule", "rationale",
    "citation", "condition", "probability", "base_score", "lift", "status", "patient_text", "note", "override_reason",
)  # fmt: skip


def _supersede(patient_ids: list[int]) -> None:
    """Older advice still waiting for review is replaced by the new advice; decided items stay as they are."""
    RecommendationItem.objects.filter(recommendation__patient_id__in=patient_ids, status=ItemStatus.PENDING).update(
        status=ItemStatus.SUPERSEDED
    )
    Recommendation.objects.filter(patient_id__in=patient_ids, pending__gt=0).update(pending=0)


def _lifts(ranker: ranking.Ranker | None, planned: list) -> list[list[float]]:
    if ranker is None:
        return [[0.0] * len(items) for _p, _h, items, _k in planned]
    items = sorted({i.advice for _p, _h, proposed, _k in planned for i in proposed})
    if not items:
        return [[] for _ in planned]
    profiles = profile_matrix([(p.inputs, p.probabilities) for p, *_ in planned])
    table = ranker.lifts(profiles, items)
    column = {advice: n for n, advice in enumerate(items)}
    return [
        [float(table[row, column[i.advice]]) for i in proposed] for row, (_p, _h, proposed, _k) in enumerate(planned)
    ]


_HEADLINE_WHY = {
    rules.HEADLINE_NO_ACTION: "No guideline rule fired and the model's risk level is low.",
    rules.HEADLINE_LIFESTYLE: "The most severe finding calls for lifestyle changes, or the model's risk is moderate.",
    rules.HEADLINE_CONSULT: "A finding of high severity, or a high risk level from the model.",
}


def _item_row(rec: Recommendation, advice: AdviceItem, position: int, severity: int, *, is_headline: bool = False,
              rule: str = "", rationale: str, citation: str = "", condition: str = "",
              probability: float | None = None, base_score: float = 0.0, lift: float = 0.0) -> tuple:  # fmt: skip
    """One item as a row in _ITEM_COLUMNS order: thousands are written per chunk, so no model instances."""
    pinned = severity >= Severity.CRITICAL
    return (
        rec.pk, advice.pk, uuid.uuid4(), position, is_headline, severity, pinned, rule, rationale, citation, condition,
        probability, base_score, 0.0 if pinned else lift, ItemStatus.PENDING.value, advice.patient_text, "", "",
    )  # fmt: skip


def _headline_item(rec: Recommendation, advice: AdviceItem, n_items: int) -> tuple:
    why = f"{_HEADLINE_WHY[advice.code]} Specific items: {n_items}."
    return _item_row(rec, advice, 0, rec.severity, is_headline=True, rationale=why)


def _ranked_items(
    rec: Recommendation, items: list[Proposed], lifts: list[float], catalog: dict[str, AdviceItem]
) -> list[tuple]:
    base = [i.probability or 0.0 for i in items]
    order = ranking.order(tiers=[i.severity for i in items], base=base, lifts=lifts, critical_tier=Severity.CRITICAL)
    rows = []
    for position, index in enumerate(order, start=1):
        item, lift = items[index], lifts[index]
        rows.append(
            _item_row(
                rec, catalog[item.advice], position, item.severity, rule=item.rule, rationale=item.rationale,
                citation=item.citation, condition=item.condition, probability=item.probability,
                base_score=base[index], lift=max(-1.0, min(1.0, float(lift))) if math.isfinite(lift) else 0.0,
            )
        )  # fmt: skip
    return rows
