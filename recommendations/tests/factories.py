"""Predictions with chosen inputs, so advice can be generated without scoring a model."""

from __future__ import annotations

from django.utils import timezone

from mltraining.models import ModelVersion
from mltraining.tests.factories import ModelVersionFactory
from predictions.models import Prediction

HEALTHY_INPUTS = {
    "hemoglobin": 14.0, "hematocrit": 42.0, "platelets": 250.0, "wbc": 6.5, "mcv": 90.0, "glucose": 5.0,
    "hba1c": 5.2, "creatinine": 80.0, "egfr": 95.0, "sodium": 140.0, "potassium": 4.2, "total_cholesterol": 4.5,
    "ldl": 2.5, "hdl": 1.6, "triglycerides": 1.0, "non_hdl_cholesterol": 2.9, "alt": 18.0, "hs_crp": 0.6,
    "systolic_bp": 115.0, "diastolic_bp": 72.0, "bmi": 22.5, "steps": 8000.0, "sleep_duration": 7.5,
    "age": 45, "sex": "female",
}  # fmt: skip
HEALTHY_PROBABILITIES = {"healthy": 0.93, "diabetes": 0.02, "ckd": 0.01, "dyslipidemia": 0.02, "prediabetes": 0.02}


def prediction_for(patient, *, inputs=None, probabilities=None, risk_level="low", version=None, **changes):
    """A succeeded prediction of `patient` with HEALTHY_INPUTS updated by `changes` (None removes a value)."""
    values = {**HEALTHY_INPUTS, **(inputs or {}), **changes}
    values = {key: value for key, value in values.items() if value is not None}
    probabilities = probabilities or HEALTHY_PROBABILITIES
    version = (
        version
        or ModelVersion.objects.filter(clinic=patient.clinic).first()
        or ModelVersionFactory(clinic=patient.clinic)
    )
    return Prediction.objects.create(
        patient=patient, model_version=version, created_at=timezone.now(), status="succeeded",
        probabilities=probabilities, predicted_class=max(probabilities, key=probabilities.get),
        risk_score=1 - probabilities.get("healthy", 0.0), risk_level=risk_level, risk_thresholds=[0.2, 0.5],
        inputs=values,
    )  # fmt: skip
