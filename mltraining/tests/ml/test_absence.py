"""Absence is not evidence: a test that was not done never raises a patient's risk, and normal results never make
a patient high risk. Metamorphic tests on a model trained as the product trains it (the session's
`trained_artifact`), scored on patients it never saw; no database.
"""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest

from mltraining.ml.artifact import model_loads
from mltraining.ml.features import FEATURES, build_features, missing_inputs
from patients.catalog_data import ANALYTES
from patients.clinical import interpret
from patients.demo_cohort import cohort_frames, generate_cohort
from predictions.scoring import risk_levels

pytestmark = pytest.mark.hazard("H6", "Metamorphic tests: a test not done never raises the risk; normal results")

THRESHOLDS = (0.2, 0.5)  # the model versions' default cut-points (`TrainingConfig.risk_thresholds`)
LEVELS = {"low": 0, "moderate": 1, "high": 2}
SPECS = {spec.code: spec for spec in ANALYTES}
LABS = [f.name for f in FEATURES if f.source in ("lab", "vital") and f.name in SPECS]


@pytest.fixture(scope="module")
def model(trained_artifact):
    directory, name, info = trained_artifact
    return model_loads((directory / name).read_bytes(), expected_sha256=info.sha256,
                       sklearn_version=info.sklearn_version)  # fmt: skip


@pytest.fixture(scope="module")
def unseen():
    """600 patients the model never saw (another seed), as observations and patients frames."""
    observations, patients, _ = cohort_frames(generate_cohort(600, seed=29, today=datetime.date.today()))  # noqa: DTZ011
    return observations, patients


def _levels(model, X: pd.DataFrame) -> np.ndarray:
    """The risk levels the product gives (`predictions.scoring.risk_levels`), as numbers."""
    return np.array([LEVELS[level] for level in risk_levels(model, X, THRESHOLDS)[2]])


def _features(observations, patients) -> pd.DataFrame:
    return build_features(observations, patients, as_of=pd.Timestamp.now(tz="UTC"))


def _normal(X: pd.DataFrame, patients: pd.DataFrame, code: str) -> np.ndarray:
    """Rows whose latest value of `code` lies inside the reference range for the patient's sex and age."""
    sexes = patients.set_index("patient_id").loc[X.index, "sex"].to_numpy()
    return np.array([
        value == value and interpret(SPECS[code], value, sex, int(age) if age == age else 50) == "N"
        for value, sex, age in zip(X[code], sexes, X["age"], strict=True)
    ])  # fmt: skip


def test_removing_a_normal_result_never_raises_the_risk_level(model, unseen):
    observations, patients = unseen
    X = _features(observations, patients)
    scorable = np.array([not missing for missing in missing_inputs(X)])
    before = _levels(model, X)
    raised = []
    for code in LABS:
        normal = _normal(X, patients, code) & scorable
        if not normal.any():
            continue
        ids = set(X.index[normal])
        without = observations[~(observations["patient_id"].isin(ids) & (observations["analyte"] == code))]
        X_without = _features(without, patients)
        still = normal & np.array([not missing for missing in missing_inputs(X_without)])  # else: no score at all
        after = _levels(model, X_without)
        raised += [(code, pid) for pid in X.index[still & (after > before)]]

    assert raised == []


def _in_range(spec, sex: str) -> float:
    """A value inside the adult range for this sex: the middle, or just inside an open range's one limit."""
    ranges = {r.sex: r for r in spec.ranges if r.age_min <= 18}
    r = ranges.get(sex) or ranges.get("")
    if r.low is not None and r.high is not None:
        return (r.low + r.high) / 2
    return r.high * 0.9 if r.high is not None else r.low * 1.1


def test_a_patient_whose_every_measured_value_is_in_range_is_never_high_risk(model, unseen):
    """The same 600 unseen patients, the same tests ordered, every lab and vital put inside its range: none is high
    risk (the model reads only abnormal results; what remains are demographics and lifestyle)."""
    observations, patients = unseen
    sex = patients.set_index("patient_id")["sex"]
    normal = observations.copy()
    ranged = normal["analyte"].isin([code for code in LABS if SPECS[code].ranges])
    pairs = zip(normal.loc[ranged, "analyte"], normal.loc[ranged, "patient_id"], strict=True)
    normal.loc[ranged, "value"] = [_in_range(SPECS[code], sex[pid]) for code, pid in pairs]
    X = _features(normal, patients)
    scorable = np.array([not missing for missing in missing_inputs(X)])
    for code in (code for code in LABS if SPECS[code].ranges):  # weight and height have no range: BMI does
        assert _normal(X, patients, code)[X[code].notna().to_numpy()].all(), code

    levels = _levels(model, X)[scorable]

    assert scorable.sum() > 300
    assert (levels < LEVELS["high"]).all(), np.bincount(levels)


def test_a_patient_with_only_a_few_normal_values_is_never_scored(unseen):
    """The reported case: four normal blood-count values gave "moderate risk". Such a patient lacks HbA1c or
    glucose and creatinine, so no risk estimate is given at all (the product's `missing_inputs` check)."""
    observations, patients = unseen
    one = patients.iloc[:1]
    blood_count = pd.DataFrame({
        "patient_id": one["patient_id"].iloc[0], "analyte": ["hemoglobin", "wbc", "platelets", "mcv"],
        "value": [14.5, 6.0, 250.0, 90.0], "effective_at": pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=3),
    })  # fmt: skip

    assert missing_inputs(_features(blood_count, one)) == [["HbA1c or fasting glucose", "creatinine"]]
