"""Review decisions for the demo clinic, so its queue, feedback ranker and review statistics have history.

Three demo doctors review the pending advice of some patients through the same services a doctor uses in
the portal (feedback and audit rows included). Their habits are hidden rules that depend on the patient,
which is what the feedback ranker is meant to pick up:

- lifestyle advice is approved for patients under 65 and mostly rejected above as "not indicated for this patient";
- the model's own follow-up items are approved when its probability is at least 0.7, else "not indicated for this
  patient";
- follow-up tests for patients with a low risk level are often "already addressed";
- everything else is approved nine times in ten.

Then the demo doctor signs a standing protocol (`demo_protocol_sign`): lifestyle advice for adults aged 18 to 64,
the habit above made explicit, released without per-patient review, the waiting queue included.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import numpy as np
from django.contrib.auth.hashers import make_password
from django.utils import timezone

from clinic.models import Clinic, Role, User
from recommendations import protocols, selectors, services
from recommendations.models import (
    Category,
    FeedbackEvent,
    ItemStatus,
    OverrideReason,
    RecommendationItem,
    StandingProtocol,
)

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


DEMO_PROTOCOL_ADVICE = [
    "bp_stage1_lifestyle", "bmi_overweight_lifestyle", "bmi_obesity_lifestyle", "prediabetes_lifestyle",
    "hdl_low_lifestyle", "triglycerides_lifestyle", "activity_increase", "sleep_more",
]  # fmt: skip


def demo_protocol_sign(*, clinic: Clinic) -> tuple[StandingProtocol | None, dict[str, int], dict[str, int]]:
    """The demo doctor (the `doctor` account, else the clinic's first doctor) signs the demo protocol for a year and
    applies it to the waiting queue. Returns it (None if the clinic has one already) with the queue's counts before
    and after: patients waiting, and of them those whose advice is high or critical."""
    doctor = (
        User.objects.filter(clinic=clinic, role=Role.DOCTOR, username="doctor").first()
        or User.objects.filter(clinic=clinic, role=Role.DOCTOR).order_by("pk").first()
    )
    if doctor is None or StandingProtocol.objects.filter(clinic=clinic).exists():
        return None, {}, {}
    before = selectors.review_queue_counts(user=doctor)
    today = timezone.localdate()
    protocol = protocols.protocol_sign(
        by=doctor, title="Lifestyle advice for adults under 65", advice_codes=DEMO_PROTOCOL_ADVICE,
        starts_on=today, ends_on=today + datetime.timedelta(days=protocols.MAX_DAYS), min_age=18, max_age=64,
        release_waiting=True,
    )  # fmt: skip
    return protocol, before, selectors.review_queue_counts(user=doctor)
