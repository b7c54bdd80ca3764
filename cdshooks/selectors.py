"""Reads of the CDS Hooks service: the connection of an issuer, the patient an EHR means, what we hold on them.

Everything is scoped by the connection's clinic: an EHR sees only the patients of the clinic that registered it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from cdshooks.models import EhrConnection
from patients.models import Patient
from predictions.models import Prediction
from predictions.selectors import prediction_latest_succeeded
from recommendations.models import ItemStatus, RecommendationItem, Severity

MAX_ITEMS = 100  # a patient's approved and critical items, newest first: far more than a chart shows


def connection_by_issuer(*, iss: str) -> EhrConnection | None:
    if not iss:
        return None
    return EhrConnection.objects.filter(iss=iss, active=True).select_related("clinic").first()


def mrn_of(*, connection: EhrConnection, patient_resource: dict[str, Any]) -> str:
    """The value of the Patient's identifier in the connection's MRN system, or "" when it has none."""
    for identifier in patient_resource.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == connection.mrn_system:
            value = identifier.get("value")
            if isinstance(value, str) and value.strip():
                return value.strip()
    return ""


def patient_match(*, connection: EhrConnection, mrn: str) -> Patient | None:
    """The connection's clinic's patient with this MRN (MRNs are unique in a clinic regardless of case)."""
    if not mrn:
        return None
    return Patient.objects.filter(clinic_id=connection.clinic_id, mrn__iexact=mrn).first()


@dataclass(frozen=True)
class PatientAdvice:
    approved: list[RecommendationItem]  # of the newest recommendation with approved items
    pending_critical: list[RecommendationItem]  # critical items waiting for a doctor, oldest first
    prediction: Prediction | None  # the latest successful one, with its model version


def patient_advice(*, patient: Patient) -> PatientAdvice:
    """What the EHR's clinician may see of a registered patient: approved advice (of the newest recommendation that
    has any), critical advice still waiting for review, and the latest risk estimate. Two queries."""
    wanted = Q(status=ItemStatus.APPROVED) | Q(status=ItemStatus.PENDING, severity__gte=Severity.CRITICAL)
    items = list(
        RecommendationItem.objects.filter(wanted, recommendation__patient=patient, is_headline=False)
        .select_related("advice", "recommendation")
        .order_by("-recommendation__created_at", "-recommendation_id", "position")[:MAX_ITEMS]
    )  # fmt: skip
    approved = [item for item in items if item.status == ItemStatus.APPROVED]
    if approved:
        newest = approved[0].recommendation_id
        approved = [item for item in approved if item.recommendation_id == newest]
    pending_critical = [item for item in reversed(items) if item.status == ItemStatus.PENDING]  # oldest first
    return PatientAdvice(approved, pending_critical, prediction_latest_succeeded(patient=patient))


def card_item(*, connection: EhrConnection, card_id: str) -> RecommendationItem | None:
    """The advice item behind a card we gave, if it is one of the connection's clinic's; else None (unknown)."""
    return (
        RecommendationItem.objects.filter(card_id=card_id, recommendation__clinic_id=connection.clinic_id)
        .select_related("recommendation")
        .first()
    )
