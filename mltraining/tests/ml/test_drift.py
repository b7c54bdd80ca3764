"""Drift by PSI: unit changes and shifted class mixes are caught, resampling is not (no database)."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from mltraining.ml.drift import MAJOR, MODERATE, NO_DATA, STABLE, band, drift_report, psi, reference_profile

NUMERIC = ["creatinine", "glucose", "steps"]
CATEGORICAL = ["sex"]


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Creatinine in umol/L and fasting glucose in mmol/L as the demo cohort draws them; steps full of ties."""
    steps = np.where(rng.random(n) < 0.7, np.nan, np.round(rng.lognormal(np.log(7000), 0.4, n), -2))
    return pd.DataFrame(
        {
            "creatinine": rng.normal(78, 13, n),
            "glucose": np.where(rng.random(n) < 0.1, np.nan, rng.normal(5.0, 0.5, n)),
            "steps": steps,
            "sex": rng.choice(["female", "male"], n),
        }
    )


@pytest.fixture
def reference() -> dict:
    X = _frame(np.random.default_rng(0), 5000)
    predicted = pd.Series(np.random.default_rng(1).choice(["healthy", "diabetes"], 5000, p=[0.8, 0.2]))
    # Stored as JSON with the model version, so every test reads it back the same way.
    return json.loads(json.dumps(reference_profile(X, numeric=NUMERIC, categorical=CATEGORICAL, predicted=predicted)))


def _json(report: dict) -> dict:
    return json.loads(json.dumps(report, allow_nan=False))


def test_psi_matches_a_hand_computed_value():
    # (0.6 - 0.5) ln(0.6/0.5) + (0.4 - 0.5) ln(0.4/0.5) = 0.01823 + 0.02231
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.040546, abs=1e-6)
    assert psi({"a": 0.5, "b": 0.5}, {"b": 0.4, "a": 0.6}) == pytest.approx(0.040546, abs=1e-6)
    assert psi([1, 2, 1], [10, 20, 10]) == pytest.approx(0.0)  # counts are normalised


def test_psi_of_an_empty_bin_is_large_but_finite():
    value = psi({"a": 1.0}, {"a": 0.5, "b": 0.5})

    assert math.isfinite(value)
    assert value > 1


def test_psi_refuses_mismatched_bins_and_empty_shares():
    with pytest.raises(ValueError, match="same bins"):
        psi([0.5, 0.5], [1.0])
    with pytest.raises(ValueError, match="positive"):
        psi([0.0, 0.0], [0.5, 0.5])


@pytest.mark.parametrize(
    ("value", "expected"), [(0.0, STABLE), (0.099, STABLE), (0.1, MODERATE), (0.25, MODERATE), (0.2501, MAJOR)]
)
def test_bands_follow_the_conventional_cut_points(value, expected):
    assert band(value) == expected


def test_the_same_distribution_resampled_is_stable(reference):
    report = _json(drift_report(reference, _frame(np.random.default_rng(42), 3000)))

    assert {name: f["band"] for name, f in report["features"].items()} == dict.fromkeys(NUMERIC + CATEGORICAL, STABLE)
    assert report["overall_band"] == STABLE
    assert report["n_recent"] == 3000
    assert report["predictions"] is None


def test_creatinine_arriving_in_mg_dl_is_major_drift_on_creatinine_only(reference):
    recent = _frame(np.random.default_rng(42), 3000)
    recent["creatinine"] = recent["creatinine"] / 88.42  # mg/dL numbers stored as if umol/L

    report = _json(drift_report(reference, recent))

    assert report["features"]["creatinine"]["band"] == MAJOR
    assert report["features"]["glucose"]["band"] == STABLE
    assert report["worst"][0] == "creatinine"
    assert report["overall_band"] == MAJOR


def test_glucose_arriving_in_mg_dl_is_major_drift(reference):
    recent = _frame(np.random.default_rng(42), 3000)
    recent["glucose"] = recent["glucose"] * 18.016  # mg/dL numbers stored as if mmol/L

    report = drift_report(reference, recent)

    assert report["features"]["glucose"]["band"] == MAJOR
    assert report["features"]["creatinine"]["band"] == STABLE


def test_one_laboratory_in_three_switching_units_is_still_major(reference):
    recent = _frame(np.random.default_rng(42), 3000)
    recent.loc[:999, "creatinine"] *= 88.42  # umol/L values converted once more, as if they were mg/dL

    assert drift_report(reference, recent)["features"]["creatinine"]["band"] == MAJOR


def test_a_shifted_class_mix_is_detected(reference):
    recent = _frame(np.random.default_rng(42), 3000)
    same = pd.Series(np.random.default_rng(2).choice(["healthy", "diabetes"], 3000, p=[0.8, 0.2]))
    shifted = pd.Series(np.random.default_rng(2).choice(["healthy", "diabetes", "ckd"], 3000, p=[0.5, 0.4, 0.1]))

    stable = _json(drift_report(reference, recent, predicted_recent=same))["predictions"]
    report = _json(drift_report(reference, recent, predicted_recent=shifted))

    assert stable["band"] == STABLE
    assert report["predictions"]["band"] == MAJOR
    assert report["predictions"]["reference"] == pytest.approx({"healthy": 0.8, "diabetes": 0.2}, abs=0.02)
    assert set(report["predictions"]["recent"]) == {"healthy", "diabetes", "ckd"}
    assert report["overall_band"] == MAJOR
    assert "predictions" not in report["worst"]


def test_a_lab_that_stops_arriving_is_drift_through_its_missing_share(reference):
    recent = _frame(np.random.default_rng(42), 3000)
    recent.loc[:1999, "glucose"] = np.nan

    feature = _json(drift_report(reference, recent))["features"]["glucose"]

    assert feature["band"] == MAJOR
    assert feature["missing_share"] == pytest.approx(recent["glucose"].isna().mean())  # 2/3 + 10 % of the rest
    assert feature["n"] == recent["glucose"].notna().sum()


def test_ties_and_constant_columns_do_not_crash():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "constant": np.full(1000, 5.0),
            "mostly_zero": np.where(rng.random(1000) < 0.85, 0.0, rng.integers(1, 4, 1000)),
            "all_missing": np.full(1000, np.nan),
            "category_missing": [None] * 1000,
        }
    )
    reference = reference_profile(
        X, numeric=["constant", "mostly_zero", "all_missing"], categorical=["category_missing"]
    )
    recent = X.sample(frac=0.5, random_state=1)

    report = _json(drift_report(json.loads(json.dumps(reference)), recent))

    assert reference["numeric"]["constant"]["edges"] == [5.0]
    assert reference["numeric"]["all_missing"] == {"edges": [], "shares": [0.0], "missing_share": 1.0}
    assert {f["band"] for f in report["features"].values()} == {STABLE}
    assert report["features"]["all_missing"]["n"] == 0


def test_a_category_never_seen_in_training_is_drift(reference):
    recent = _frame(np.random.default_rng(42), 300)
    recent["sex"] = np.where(np.arange(300) < 90, "other", recent["sex"])

    assert drift_report(reference, recent)["features"]["sex"]["band"] == MAJOR


def test_no_recent_rows_is_no_data_not_an_error(reference):
    report = _json(drift_report(reference, _frame(np.random.default_rng(0), 0), predicted_recent=pd.Series([])))

    assert report["overall_band"] == NO_DATA
    assert report["worst"] == []
    assert report["features"]["creatinine"] == {"psi": None, "band": NO_DATA, "n": 0, "missing_share": None}
    assert report["predictions"]["band"] == NO_DATA


def test_recent_rows_must_carry_every_profiled_feature(reference):
    with pytest.raises(ValueError, match="creatinine"):
        drift_report(reference, _frame(np.random.default_rng(0), 10).drop(columns="creatinine"))


def test_the_profile_keeps_deciles_and_shares():
    X = pd.DataFrame({"x": np.arange(1, 101, dtype=float), "c": ["a"] * 75 + ["b"] * 24 + [None]})

    profile = reference_profile(X, numeric=["x"], categorical=["c"])

    assert len(profile["numeric"]["x"]["edges"]) == 9
    assert profile["numeric"]["x"]["shares"] == pytest.approx([0.1] * 10)
    # Shares are of the values present; the missing share is kept apart, as for numeric features.
    assert profile["categorical"]["c"] == {"shares": {"a": 75 / 99, "b": 24 / 99}, "missing_share": pytest.approx(0.01)}
    assert profile["predicted"] is None
    assert profile["n"] == 100
