"""Predictions in the portal: the risk card of the patient page, "Score now", and batch scoring for admins.

Thin: scope through selectors (another clinic's patient or batch is a 404), write through one service call,
render. The risk card is built here and placed on the patient page by `patients.views.patient_detail`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from clinic import roles
from clinic import selectors as clinic_selectors
from clinic.forms import parse_id
from clinic.models import Clinic, User
from mltraining.ml.features import outside_range
from patients import selectors as patient_selectors
from patients.models import Patient
from predictions import selectors, services
from predictions.charts import contributions_svg
from predictions.models import BatchTrigger, Prediction, PredictionStatus, RiskLevel

PAGE_SIZE = 25
RISK_BADGES = {"low": "text-bg-success", "moderate": "text-bg-warning", "high": "text-bg-danger"}
BATCH_BADGES = {
    "queued": "text-bg-secondary", "running": "text-bg-info", "succeeded": "text-bg-success",
    "partial": "text-bg-warning", "failed": "text-bg-danger",
}  # fmt: skip


# --- the risk card of the patient page -----------------------------------------------------------------------


def _thresholds_text(thresholds: list[float]) -> str:
    if len(thresholds) != 2:
        return ""
    low, high = thresholds
    return f"low below {low:.2f}, moderate from {low:.2f}, high from {high:.2f}"


def _probability_rows(prediction: Prediction) -> list[dict[str, Any]]:
    ranked = sorted(prediction.probabilities.items(), key=lambda item: item[1], reverse=True)
    return [
        {
            "display": selectors.class_display(key),
            "percent": round(100 * probability, 1),
            "predicted": key == prediction.predicted_class,
        }
        for key, probability in ranked
    ]


def _risk_badge(prediction: Prediction, critical: list[str]) -> str:
    """A succeeded prediction's badge: green, amber or red by risk level, but grey for a low risk beside critical
    results. The model scores the target conditions, not emergencies such as a critical potassium, so its low risk
    must not read as reassurance about them."""
    if critical and prediction.risk_level == RiskLevel.LOW:
        return "text-bg-secondary"
    return RISK_BADGES.get(prediction.risk_level, "text-bg-secondary")


def _explained(
    prediction: Prediction, critical: list[str], measured: dict[str, datetime.datetime] | None = None
) -> dict[str, Any]:
    """The successful prediction the card shows: its summary (`selectors.risk_summary`: the conditions behind a
    raised risk, never "no target condition" beside one), risk, probabilities and explanation chart, which explains
    the single most likely class and says so.

    An input the model had no value for, while the record has an older one (`measured`: analyte -> time of its
    latest value), says so with that value's date rather than "not recorded": it was measured, too long ago.
    """
    explained = selectors.class_display(prediction.predicted_class)
    method = selectors.explanation_method_display(prediction.explanation_method)
    chart = None
    if prediction.contributions:
        contributions = [
            _absent(item, (measured or {}).get(item.get("analyte") or "")) for item in prediction.contributions
        ]
        chart = contributions_svg(contributions=contributions, predicted=explained, method=method)
    return {
        "prediction": prediction,
        "predicted": _summary(prediction),
        "explained": explained,
        "from_demographics": not outside_range(prediction.inputs),
        "badge": _risk_badge(prediction, critical),
        "critical": critical,
        "thresholds": _thresholds_text(prediction.risk_thresholds),
        "probabilities": _probability_rows(prediction),
        "chart": chart,
        "method": method,
    }


def _summary(prediction: Prediction) -> str:
    return selectors.risk_summary(probabilities=prediction.probabilities, risk_level=prediction.risk_level)


def _absent(item: dict[str, Any], last: datetime.datetime | None) -> dict[str, Any]:
    if item.get("value") is not None or last is None:
        return item
    return {**item, "absent": f"none recent enough for the model; last measured {last.date().isoformat()}"}


def _history_row(prediction: Prediction, critical: list[str]) -> dict[str, Any]:
    scored = prediction.status == PredictionStatus.SUCCEEDED
    if prediction.without_model:
        badge, failure = "text-bg-secondary", "No model"
    elif prediction.status == PredictionStatus.INSUFFICIENT:
        badge, failure = "text-bg-secondary", "Not enough data"
    elif not scored:
        badge, failure = "text-bg-danger", "Failed"
    else:
        badge, failure = _risk_badge(prediction, critical), ""
    return {
        "prediction": prediction,
        "predicted": _summary(prediction) if scored else "—",
        "badge": badge,
        "failure": failure,
        "source": f"Batch #{prediction.batch_id}" if prediction.batch_id else "Online",
    }


def risk_card(
    *, user: User, patient: Patient, critical: list[str], measured: dict[str, datetime.datetime] | None = None
) -> dict[str, Any] | None:
    """The "Risk (decision support)" card, or None for a role that may not see predictions (a patient).

    `critical` names the patient's latest results in a critical range ("Potassium"), which the card says the model
    does not weigh; `measured` gives the time of each analyte's latest result (for inputs too old for the model).
    """
    if not roles.can_view_patients(user):
        return None
    history = selectors.prediction_history_for(user=user, patient=patient)
    latest = history.latest
    insufficient = latest if latest is not None and latest.status == PredictionStatus.INSUFFICIENT else None
    # An earlier score is not shown as current once the data it came from is too old to score again.
    shown = None if insufficient else history.latest_succeeded
    return {
        "latest_failed": latest if latest is not None and latest.status == PredictionStatus.FAILED else None,
        "insufficient": insufficient,
        "shown": _explained(shown, critical, measured) if shown else None,
        "history": [_history_row(p, critical) for p in history.recent],
        "score_url": reverse("predictions:score", args=[patient.pk]),
        "notice": selectors.DECISION_SUPPORT,
    }


@login_required
@require_POST
def prediction_score(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Score now": one prediction with the clinic's active model, in this request."""
    patient = patient_selectors.patient_get_for(user=request.user, pk=pk)  # outside your scope: 404
    prediction = services.prediction_create(patient_id=patient.pk, by=request.user)  # a patient's role: 403
    if prediction.without_model:
        messages.warning(
            request,
            "The patient was not scored: the clinic has no active model yet, so the advice comes from the guideline "
            "rules alone. A clinic admin trains a model and activates it in the administration.",
        )
    elif prediction.status == PredictionStatus.INSUFFICIENT:
        messages.info(request, f"{prediction.error} The advice comes from the guideline rules alone.")
    elif prediction.status == PredictionStatus.FAILED:
        messages.error(request, f"The model could not be used: {prediction.error}")
    else:
        messages.success(
            request,
            f"Scored with model v{prediction.model_version.version}: "
            f"{selectors.class_display(prediction.predicted_class)}, {prediction.get_risk_level_display().lower()} "
            f"risk (score {prediction.risk_score:.2f}). {selectors.DECISION_SUPPORT}",
        )
    return redirect(reverse("patients:detail", args=[patient.pk]) + "#risk")


# --- batch scoring (clinic admins) ---------------------------------------------------------------------------


def admins_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in users whose role cannot manage the clinic get 403; anonymous visitors go to the login."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not roles.can_manage_clinic(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def _duration(batch) -> str:
    seconds = selectors.batch_elapsed_seconds(batch)
    if seconds is None:
        return "—"
    return f"{seconds:,.1f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


@admins_only
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    batches = selectors.batch_list_shown_for(user=request.user)
    page = Paginator(batches, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": [{"batch": b, "badge": BATCH_BADGES[b.status], "duration": _duration(b)} for b in page],
        "clinics": clinic_selectors.clinic_list_for(user=request.user) if request.user.is_superuser else None,
    }
    return render(request, "predictions/batch_list.html", context)


def _clinic_of_request(request: HttpRequest) -> Clinic:
    """The clinic to score: the admin's own, or the one a superuser picked (404 for an unknown id)."""
    if not request.user.is_superuser:
        return request.user.clinic
    chosen = parse_id(request.POST.get("clinic", ""))
    return get_object_or_404(clinic_selectors.clinic_list_for(user=request.user), pk=chosen or 0)


@admins_only
@require_POST
def batch_start(request: HttpRequest) -> HttpResponse:
    """ "Score all patients": a batch over every patient of the clinic, chunks enqueued on commit."""
    clinic = _clinic_of_request(request)
    try:
        batch = services.prediction_batch_start(clinic=clinic, by=request.user, trigger=BatchTrigger.PORTAL)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("predictions:batch_list")
    messages.success(request, f"Scoring {batch.total:,} patients of {clinic.name} in {batch.chunks_total:,} chunks.")
    return redirect("predictions:batch_detail", pk=batch.pk)


@admins_only
@require_GET
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = selectors.batch_get_for(user=request.user, pk=pk)
    context = {
        "batch": batch,
        "badge": BATCH_BADGES[batch.status],
        "duration": _duration(batch),
        "progress": selectors.batch_progress(batch=batch),
        "progress_url": reverse("predictions:batch_progress", args=[batch.pk]),
    }
    return render(request, "predictions/batch_detail.html", context)


@never_cache
@admins_only
@require_GET
def batch_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """What the batch page polls every 2 s while the batch runs."""
    batch = selectors.batch_get_for(user=request.user, pk=pk)
    return JsonResponse(selectors.batch_progress(batch=batch))
