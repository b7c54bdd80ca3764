"""Review decisions for the demo clinic, so its queue, feedback ranker and review statistics have history.

Three demo doctors review the pending advice of some patients through the same services a doctor uses in
the portal (feedback and audit rows included). Their habits are hidden rules that depend on the patient,
which is what the feedback ranker is meant to pick up:

- lifestyle advice is approved for patients under 65 and mostly rejected above as "not indicated for this patient";
- the model's own follow-up items are approved when its probability is at least 0.7, else "not indicated for this
  patient";
- follow-up tests for patients with a low risk level are often "already addressed";
- everything else is approved nine times in ten.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from django.contrib.auth.hashers import make_password

from clinic.models import Clinic, Role, User
from recommendations import services
from recommendations.models import Category, FeedbackEvent, ItemStatus, OverrideReason, RecommendationItem

DEMO_REVIEWERS = [("dr_chen", "Wei", "Chen"), ("dr_patel", "Anika", "Patel")]


def _reviewers(clinic: Clinic) -> list[User]:
    doctors = list(User.objects.filter(clinic=clinic, role=Role.DOCTOR).order_by("pk"))
    for username, first, last in DEMO_REVIEWERS:
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={"clinic": clinic, "role": Role.DOCTOR, "first_name": first, "last_name": last,
                      "password": make_password(None)},  # no password: reviews only, cannot sign in
        )  # fmt: skip
        if user not in doctors:
            doctors.append(user)
    return doctors


def _decision(item: RecommendationItem, rng: np.random.Generator) -> str:
    """The hidden habit: "" to approve, else the override reason."""
    inputs = item.recommendation.prediction.inputs
    age = inputs.get("age") or 50
    draw = rng.random()
    if item.advice.category == Category.LIFESTYLE:
        return OverrideReason.NOT_RELEVANT if age >= 65 and draw < 0.8 else ""
    if not item.rule and not item.is_headline:
        return "" if (item.probability or 0) >= 0.7 else OverrideReason.NOT_RELEVANT
    if item.advice.category == Category.FOLLOW_UP_TEST and item.recommendation.rationale.get("risk_level") == "low":
        return OverrideReason.ALREADY_ADDRESSED if draw < 0.6 else ""
    return OverrideReason.DISAGREE_EVIDENCE if draw < 0.1 else ""


def demo_reviews_seed(
    *, clinic: Clinic, patients: int, seed: int = 0, progress: Callable[[int, int], None] | None = None
) -> int:
    """Review the pending advice of up to `patients` patients; returns the decisions made (0 if done before)."""
    if FeedbackEvent.objects.filter(clinic=clinic).exists():
        return 0
    rng = np.random.default_rng(seed)
    doctors = _reviewers(clinic)
    pending = (
        RecommendationItem.objects.filter(recommendation__clinic=clinic, status=ItemStatus.PENDING)
        .select_related("advice", "recommendation__prediction")
        .order_by("recommendation__patient_id", "position")
    )
    # The demo patient's own account comes first, so signing in as the patient shows approved advice.
    linked = list(pending.filter(recommendation__patient__user__isnull=False).values_list(
        "recommendation__patient_id", flat=True).distinct())  # fmt: skip
    others = sorted({item.recommendation.patient_id for item in pending[: patients * 8]} - set(linked))
    chosen = (linked + others)[:patients]
    decisions = 0
    for index, patient_id in enumerate(chosen):
        doctor = doctors[index % len(doctors)]
        for item in pending.filter(recommendation__patient_id=patient_id):
            reason = _decision(item, rng)
            if reason:
                services.item_reject(item=item, by=doctor, reason=reason, comment="Demo review.")
            else:
                services.item_approve(item=item, by=doctor)
            decisions += 1
        if progress is not None:
            progress(index + 1, len(chosen))
    return decisions
