"""Reads of predictions and batches, scoped to what the user may see. Other apps read predictions through here.

Predictions are decision support for clinicians: staff, doctors and admins of the patient's clinic see them;
a patient never sees their own (they see the advice a doctor approved). Batches belong to the clinic's
admins. Functions named `*_read` also write the audit row for that read: one per page or API call.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.shortcuts import get_object_or_404
from django.utils import timezone

from clinic import roles
from clinic.audit import audit_record
from clinic.models import User
from mltraining.ml.labels import CLASS_DISPLAY, HEALTHY
from mltraining.selectors import version_detail_deferred
from patients.models import Patient
from patients.selectors import patient_list_for
from predictions.models import (
    BatchStatus,
    ChunkStatus,
    Prediction,
    PredictionBatch,
    PredictionChunk,
    PredictionStatus,
)

DECISION_SUPPORT = "Decision support for clinicians, not a diagnosis."
HISTORY_LENGTH = 10
UNFINISHED = (BatchStatus.QUEUED, BatchStatus.RUNNING)
EXPLANATION_METHODS = {
    "tree_path": "Tree-path contributions (Saabas) of the boosted trees, on the log-odds score before calibration",
    "lightgbm_treeshap": "TreeSHAP values of the boosted trees, on the log-odds score before calibration",
    "treeshap": "TreeSHAP values of the tree model, on the raw score before calibration",
    "linear": "Coefficient × standardised value of the linear model, on the log-odds before calibration",
    "unavailable": "This model type gives no per-patient explanation",
}


def class_display(key: str) -> str:
    """A class key in plain words ("diabetes" -> "Type 2 diabetes"); unknown keys are shown as they are."""
    return CLASS_DISPLAY.get(key, key.replace("_", " ").capitalize())


SUMMARY_FLOOR = 0.10  # a target condition named beside a raised risk has at least this probability
SUMMARY_MOST = 3


def risk_summary(*, probabilities: dict[str, float], risk_level: str) -> str:
    """What a prediction says, in one line that never contradicts its risk level. The rule every page follows:

    - a low risk: "No target condition likely (85 %)", with the probability of no target condition;
    - a moderate or high risk: the target conditions with a probability of 10 % or more, most likely first, at
      most three ("Chronic kidney disease 31 %, Type 2 diabetes 12 %"), or the most likely one when none reaches
      10 %. "No target condition" is never named as the finding beside a moderate or high risk, even when it is
      the single most likely class: the risk score is the probability of any target condition, which the
      conditions share.
    """
    if risk_level == "low" or not risk_level:
        return f"No target condition likely ({round(100 * probabilities.get(HEALTHY, 0.0))} %)"
    conditions = sorted(
        ((key, p) for key, p in probabilities.items() if key != HEALTHY), key=lambda item: item[1], reverse=True
    )
    named = [(key, p) for key, p in conditions if p >= SUMMARY_FLOOR][:SUMMARY_MOST] or conditions[:1]
    return ", ".join(f"{class_display(key)} {round(100 * p)} %" for key, p in named)


def explanation_method_display(method: str) -> str:
    return EXPLANATION_METHODS.get(method, method)


# --- predictions of one patient ------------------------------------------------------------------------------


def _with_version(predictions: QuerySet[Prediction]) -> QuerySet[Prediction]:
    """With the model version's number, not its large JSON (mltraining.selectors.version_detail_deferred)."""
    return predictions.select_related("model_version").defer(*version_detail_deferred("model_version"))


def prediction_list_for(*, user: User, patient: Patient) -> QuerySet[Prediction]:
    """A patient's predictions, newest first, with their model version. The caller got `patient` through
    `patients.selectors.patient_get_for`, so the clinic scope holds; a role that may not see predictions
    (a patient, their own record included) gets none."""
    if not roles.can_view_patients(user):
        return Prediction.objects.none()
    return _with_version(Prediction.objects.filter(patient=patient))


def prediction_latest_for(*, user: User, patient: Patient) -> Prediction | None:
    return prediction_list_for(user=user, patient=patient).first()


def prediction_latest_in_scope(*, user: User, patient_pk: int, status: str = "") -> Prediction | None:
    """The latest prediction (of that status) of a patient the user may see, found with the scope in one query:
    the API's most frequent read. None when there is none, or no such patient in the user's scope; the caller
    tells the two apart (`patients.selectors.patient_get_for`) only then."""
    if not roles.can_view_patients(user):
        return None
    # The id is matched on the patient's own key, whose lookup turns an id beyond the column's range into "none".
    predictions = Prediction.objects.filter(patient__in=patient_list_for(user=user).filter(pk=patient_pk))
    if status:
        predictions = predictions.filter(status=status)
    return _with_version(predictions).first()


@dataclass(frozen=True)
class PredictionHistory:
    recent: list[Prediction]  # newest first, at most HISTORY_LENGTH
    latest_succeeded: Prediction | None  # may be older than every row of `recent`

    @property
    def latest(self) -> Prediction | None:
        return self.recent[0] if self.recent else None


def prediction_history_for(*, user: User, patient: Patient, limit: int = HISTORY_LENGTH) -> PredictionHistory:
    """The latest predictions and the latest successful one: one query, a second only when every recent
    prediction failed."""
    predictions = prediction_list_for(user=user, patient=patient)
    recent = list(predictions[:limit])
    succeeded = next((p for p in recent if p.status == PredictionStatus.SUCCEEDED), None)
    if succeeded is None and recent:
        succeeded = predictions.filter(status=PredictionStatus.SUCCEEDED).first()
    return PredictionHistory(recent=recent, latest_succeeded=succeeded)


def prediction_latest_succeeded(*, patient: Patient) -> Prediction | None:
    """The patient's latest successful prediction, for exports the caller already allowed (no user scope)."""
    return _with_version(Prediction.objects.filter(patient=patient, status=PredictionStatus.SUCCEEDED)).first()


def prediction_read(*, user: User, prediction: Prediction) -> None:
    """Audit one read of a prediction (the API's latest)."""
    audit_record(actor=user, action="prediction.view", target=prediction, patient_id=prediction.patient_id)


def prediction_list_read(*, user: User, patient: Patient | None, filters: dict[str, Any], count: int) -> None:
    """Audit one read of a list of predictions (an API page of a patient's history, an admin changelist page):
    one row, not one per prediction."""
    audit_record(
        actor=user,
        action="prediction.list",
        target=patient,
        patient_id=patient.pk if patient is not None else None,
        detail={"filters": filters, "count": count},
    )


def prediction_admin_list_for(*, user: User) -> QuerySet[Prediction]:
    """Every prediction of the clinic, for its admins in the Django admin (superusers: every clinic's)."""
    if user.is_superuser:
        return Prediction.objects.all()
    if not roles.can_manage_clinic(user):
        return Prediction.objects.none()
    return Prediction.objects.filter(patient__clinic_id=user.clinic_id)


# --- batches ------------------------------------------------------------------------------------------------


def batch_list_for(*, user: User) -> QuerySet[PredictionBatch]:
    """Batches the user may follow: their clinic's for its admins, every clinic's for superusers."""
    if user.is_superuser:
        return PredictionBatch.objects.all()
    if not roles.can_manage_clinic(user):
        return PredictionBatch.objects.none()
    return PredictionBatch.objects.filter(clinic_id=user.clinic_id)


def batch_list_shown_for(*, user: User) -> QuerySet[PredictionBatch]:
    """`batch_list_for` as pages show it: with each batch's clinic, requester and model version (its number, not
    its large JSON) joined."""
    return (
        batch_list_for(user=user)
        .select_related("clinic", "model_version", "requested_by")
        .defer(*version_detail_deferred("model_version"))
    )


def batch_get_for(*, user: User, pk: int) -> PredictionBatch:
    return get_object_or_404(batch_list_shown_for(user=user), pk=pk)  # another clinic's batch: 404


def batch_elapsed_seconds(batch: PredictionBatch, *, now=None) -> float | None:
    """Seconds the batch took, or has taken so far while it runs; None before a chunk started."""
    if batch.seconds is not None:
        return batch.seconds
    if batch.started_at is None:
        return None
    return ((now or timezone.now()) - batch.started_at).total_seconds()


def batch_failed_chunks(*, batch_id: int) -> list[dict[str, Any]]:
    """The chunks that failed for good, in order, with their error: one query."""
    return list(
        PredictionChunk.objects.filter(batch_id=batch_id, status=ChunkStatus.FAILED)
        .order_by("index")
        .values("index", "error")
    )


def batch_progress(*, batch: PredictionBatch) -> dict[str, Any]:
    """What the progress page polls and the command prints: counts, state, failed chunks, seconds."""
    return {
        "id": batch.pk,
        "status": batch.status,
        "status_display": batch.get_status_display(),
        "finished": batch.status not in UNFINISHED,
        "done": batch.done,
        "failed": batch.failed,
        "total": batch.total,
        "progress": round(batch.progress, 4),
        "chunks_finished": batch.chunks_finished,
        "chunks_total": batch.chunks_total,
        "failed_chunks": batch_failed_chunks(batch_id=batch.pk),
        "seconds": None if (seconds := batch_elapsed_seconds(batch)) is None else round(seconds, 1),
    }


def batch_by_id(*, pk: int) -> PredictionBatch:
    """A batch for system work (the command that started it follows it): no user scope."""
    return PredictionBatch.objects.get(pk=pk)


# --- aggregates for the population dashboard -----------------------------------------------------------------


def _of_clinic(clinic_id: int | None) -> QuerySet[Prediction]:
    """Successful predictions of the clinic's patients; `clinic_id=None` means every clinic (superusers)."""
    succeeded = Prediction.objects.filter(status=PredictionStatus.SUCCEEDED)
    return succeeded if clinic_id is None else succeeded.filter(patient__clinic_id=clinic_id)


def latest_predictions_frame(*, clinic_id: int | None) -> pd.DataFrame:
    """The latest successful prediction of each patient of the clinic, one row per patient: id, patient_id,
    created_at, predicted_class, risk_level and confidence (the highest class probability). One query; the caller
    scoped `clinic_id`. The model's inputs are left out (about 50 values each): `prediction_inputs` reads those
    of the rows a caller needs."""
    newer = Prediction.objects.filter(patient_id=OuterRef("patient_id"), status=PredictionStatus.SUCCEEDED).filter(
        Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk"))
    )
    columns = ["id", "patient_id", "created_at", "predicted_class", "risk_level", "probabilities"]
    rows = _of_clinic(clinic_id).exclude(Exists(newer)).order_by("patient_id").values_list(*columns)
    frame = pd.DataFrame(list(rows), columns=columns)
    frame["confidence"] = [max(p.values(), default=float("nan")) for p in frame["probabilities"]]
    return frame.drop(columns="probabilities")


def prediction_inputs(*, prediction_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The values the model was given, per prediction id: one query (none for no id)."""
    if not prediction_ids:
        return {}
    return dict(Prediction.objects.filter(pk__in=prediction_ids).values_list("pk", "inputs"))


def risk_level_counts_by_month(*, clinic_id: int | None) -> list[tuple[datetime.datetime, str, int]]:
    """(first moment of the month, risk level, number of successful predictions made that month) of the
    clinic, oldest month first: one grouped query."""
    return list(
        _of_clinic(clinic_id)
        .exclude(risk_level="")
        .annotate(month=TruncMonth("created_at"))
        .order_by("month", "risk_level")
        .values("month", "risk_level")
        .annotate(n=Count("id"))
        .values_list("month", "risk_level", "n")
    )
