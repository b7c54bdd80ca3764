"""A patient's profile for the feedback ranker: who is "similar" when feedback of other patients is borrowed.

Built from what a prediction stored (its input values and class probabilities), so a profile is the patient
as the model and the reviewing doctor saw them: key labs, age, sex and the model's risk pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mltraining.ml.labels import LABELS

PROFILE_FEATURES = (
    "hemoglobin", "mcv", "platelets", "glucose", "hba1c", "ldl", "hdl", "triglycerides", "egfr", "alt", "hs_crp",
    "bmi", "systolic_bp", "age",
)  # fmt: skip
PROFILE_CLASSES = tuple(key for key, _display, _codes in LABELS)
PROFILE_COLUMNS = (*PROFILE_FEATURES, "sex_male", *(f"p_{key}" for key in PROFILE_CLASSES))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return np.nan
    return float(value)


def profile_row(inputs: dict[str, Any], probabilities: dict[str, float]) -> list[float]:
    sex = inputs.get("sex")
    return [
        *(_number(inputs.get(name)) for name in PROFILE_FEATURES),
        1.0 if sex == "male" else 0.0 if sex == "female" else np.nan,
        *(_number(probabilities.get(key, 0.0)) for key in PROFILE_CLASSES),
    ]


def profile_matrix(rows: Sequence[tuple[dict[str, Any], dict[str, float]]]) -> np.ndarray:
    """One row per (inputs, probabilities), columns PROFILE_COLUMNS; NaN where a value is missing."""
    if not rows:
        return np.empty((0, len(PROFILE_COLUMNS)))
    return np.array([profile_row(inputs, probabilities) for inputs, probabilities in rows], dtype=float)
