"""A prediction as a FHIR R4 RiskAssessment, for the patient's exported Bundle.

Built by hand like the rest of the export and validated in the tests with the fhir.resources R4B model
(R4B's RiskAssessment is R4's). One `prediction` entry for the overall risk (the risk score, i.e. the
probability of any target condition, with the calibrated level as `qualitativeRisk`), then one per class
with its probability, most likely first; a note says what the model was trained on. The importer counts
RiskAssessment as a type it does not store.
"""

from __future__ import annotations

import datetime
from typing import Any

from predictions import selectors
from predictions.models import Prediction, PredictionStatus

RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
QUALITATIVE_RISK = {"low": "Low likelihood", "moderate": "Moderate likelihood", "high": "High likelihood"}
OVERALL_OUTCOME = "Any target condition"


def _instant(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat()


def _overall(prediction: Prediction) -> dict[str, Any]:
    entry: dict[str, Any] = {"outcome": {"text": OVERALL_OUTCOME}, "probabilityDecimal": prediction.risk_score}
    level = prediction.risk_level
    if level in QUALITATIVE_RISK:
        entry["qualitativeRisk"] = {
            "coding": [{"system": RISK_PROBABILITY, "code": level, "display": QUALITATIVE_RISK[level]}],
            "text": prediction.get_risk_level_display(),
        }
    if len(prediction.risk_thresholds) == 2:
        low, high = prediction.risk_thresholds
        entry["rationale"] = (
            f"Risk score = 1 - P({selectors.class_display('healthy')}); "
            f"low below {low:.2f}, moderate from {low:.2f}, high from {high:.2f}."
        )
    return entry


def risk_assessment(
    prediction: Prediction, patient_reference: dict[str, str], *, resource_id: str | None = None
) -> dict[str, Any]:
    """A FHIR R4 RiskAssessment of one successful prediction about the referenced patient."""
    if prediction.status != PredictionStatus.SUCCEEDED:
        raise ValueError("Only a successful prediction is a risk assessment.")
    version = prediction.model_version.version
    method = selectors.explanation_method_display(prediction.explanation_method)
    ranked = sorted(prediction.probabilities.items(), key=lambda item: item[1], reverse=True)
    resource: dict[str, Any] = {"resourceType": "RiskAssessment"}
    if resource_id:
        resource["id"] = resource_id
    resource |= {
        "status": "final",
        "code": {"text": "Risk of the platform's target conditions (machine-learning model)"},
        "subject": patient_reference,
        "occurrenceDateTime": _instant(prediction.created_at),
        "method": {"text": f"Clinic platform risk model v{version}: calibrated class probabilities"},
        "basis": [
            {
                "display": f"Model v{version} given the patient's latest results of the last two years, "
                f"demographics and lifestyle. Explanation: {method}."
            }
        ],
        "prediction": [
            _overall(prediction),
            *(
                {"outcome": {"text": selectors.class_display(key)}, "probabilityDecimal": probability}
                for key, probability in ranked
            ),
        ],
        "note": [{"text": selectors.DECISION_SUPPORT}, {"text": prediction.model_version.training_data}],
    }
    return resource
