import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from mltraining.ml.audit import feature_vector_groups
from mltraining.ml.candidates import (
    CANDIDATES,
    ReferenceImputer,
    SubsampledClassifier,
    build_pipeline,
    native_importance,
    output_feature_sources,
    stratified_subsample,
)
from mltraining.ml.train import (
    CandidateResult,
    TrainingConfig,
    aligned_proba,
    choose_candidate,
    data_hash,
    grouped_folds,
    holdout_split,
    paired_standard_error,
    train,
    union_groups,
)

NUMERIC = ["signal", "noise", "age"]
CATEGORICAL = ["sex"]
FAST = {"cv_folds": 3, "bootstrap_rounds": 30, "permutation_repeats": 2}


def cohort(n_patients: int = 260, seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """1-3 rows per patient, 3 classes carried by `signal`, and some rows copied onto other patients."""
    rng = np.random.default_rng(seed)
    per_patient = rng.integers(1, 4, n_patients)
    patient = np.repeat(np.arange(n_patients), per_patient)
    label_of = rng.choice(["anemia", "diabetes", "healthy"], n_patients, p=[0.3, 0.3, 0.4])
    y = label_of[patient]
    n = len(patient)
    centre = pd.Series(y).map({"anemia": -1.5, "diabetes": 1.5, "healthy": 0.0}).to_numpy()
    X = pd.DataFrame(
        {
            "signal": centre + rng.normal(0, 0.8, n),
            "noise": rng.normal(0, 1, n),
            "age": rng.uniform(18, 90, n).round(),
            "sex": rng.choice(["female", "male"], n),
        }
    )
    X.loc[rng.random(n) < 0.08, "noise"] = np.nan
    # Planted exact duplicates: 15 rows copied onto other patients (features and label).
    source = rng.choice(n, 15, replace=False)
    X = pd.concat([X, X.iloc[source]], ignore_index=True)
    y = np.concatenate([y, y[source]])
    patient = np.concatenate([patient, rng.integers(0, n_patients, 15)])
    return X, pd.Series(y), pd.Series(patient)


@pytest.fixture(scope="module")
def trained():
    X, y, patients = cohort()
    lines, fractions = [], []
    config = TrainingConfig(candidates=("dummy", "logistic_regression", "random_forest"), **FAST)
    result = train(
        X,
        y,
        groups=patients,
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        config=config,
        log=lines.append,
        progress=fractions.append,
    )
    return X, y, patients, result, lines, fractions


def test_no_patient_and_no_duplicate_group_is_on_both_sides_of_the_split(trained):
    X, _, patients, result, _, _ = trained
    duplicates = feature_vector_groups(X[NUMERIC + CATEGORICAL])
    train_rows, test_rows = result.train_index, result.test_index

    assert result.groups_in_split == "patient+duplicate"
    assert len(train_rows) + len(test_rows) == len(X)
    assert not set(train_rows) & set(test_rows)
    assert not set(patients.iloc[train_rows]) & set(patients.iloc[test_rows])
    assert not set(duplicates[train_rows]) & set(duplicates[test_rows])
    assert (result.n_train, result.n_test) == (len(train_rows), len(test_rows))
    assert 0.1 < len(test_rows) / len(X) < 0.3


def test_the_chosen_model_beats_the_dummy_on_held_out_patients(trained):
    result = trained[3]

    assert result.chosen != "dummy"
    assert result.test_metrics["roc_auc_ovr_macro"] > result.baseline_test_metrics["roc_auc_ovr_macro"] + 0.2
    assert result.baseline_test_metrics["roc_auc_ovr_macro"] == pytest.approx(0.5)
    assert result.chosen in result.reason
    assert "dummy baseline" in result.reason


def test_every_candidate_has_one_score_per_fold(trained):
    result = trained[3]

    for candidate in result.candidates:
        assert candidate.error == ""
        assert set(candidate.cv_scores) >= {"roc_auc_ovr_macro", "balanced_accuracy", "f1_macro", "log_loss"}
        assert all(len(scores) == 3 for scores in candidate.cv_scores.values())
        assert candidate.cv_mean["roc_auc_ovr_macro"] == pytest.approx(
            np.mean(candidate.cv_scores["roc_auc_ovr_macro"])
        )


def test_the_model_predicts_probabilities_in_class_order_from_a_raw_frame(trained):
    X, _, _, result, _, _ = trained

    proba = result.model.predict_proba(X.head(7))

    assert result.classes == ["anemia", "diabetes", "healthy"]
    assert list(result.model.classes_) == result.classes
    assert proba.shape == (7, 3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert result.feature_names == NUMERIC + CATEGORICAL


def test_the_evaluation_carries_intervals_subgroups_and_importances(trained):
    result = trained[3]

    low, high = result.test_ci["roc_auc_ovr_macro"]
    assert low <= result.test_metrics["roc_auc_ovr_macro"] <= high
    assert set(result.subgroup_metrics) == {"sex", "age_band"}
    assert set(result.subgroup_metrics["sex"]) == {"female", "male"}
    assert next(iter(result.permutation_importance)) == "signal"
    assert set(result.permutation_importance) == set(NUMERIC + CATEGORICAL)
    if result.feature_importance:
        assert set(result.feature_importance) == set(NUMERIC + CATEGORICAL)
        assert sum(result.feature_importance.values()) == pytest.approx(1.0)
    assert set(result.test_metrics["risk_levels"]) == {"low", "moderate", "high"}


def test_the_plots_are_png_images(trained):
    plots = trained[3].plots

    assert set(plots) == {"confusion_matrix", "roc_curves", "calibration", "importances", "cv_comparison"}
    assert all(png.startswith(b"\x89PNG") for png in plots.values())


def test_the_summary_is_plain_json_without_model_or_plots(trained):
    summary = trained[3].summary()

    text = json.dumps(summary, allow_nan=False)
    assert "model" not in summary
    assert "plots" not in summary
    assert summary["audit"]["duplicate_rows"] == 15
    assert summary["config"]["candidates"] == ["dummy", "logistic_regression", "random_forest"]
    assert len(summary["data_hash"]) == 64
    assert "Chosen:" in text


def test_progress_rises_to_one_and_the_log_streams_as_it_goes(trained):
    result, lines, fractions = trained[3], trained[4], trained[5]

    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert lines == result.log
    assert lines[0].startswith("Audit:")
    assert any(line.startswith("Chosen: ") for line in lines)
    assert set(result.timings) >= {"audit", "cv", "final_fit", "evaluation", "plots", "total"}


def test_a_candidate_that_raises_is_reported_and_training_goes_on(monkeypatch):
    class Broken(SubsampledClassifier):
        def fit(self, X, y):
            raise RuntimeError("out of memory")

    monkeypatch.setitem(CANDIDATES, "broken", lambda random_state: Broken(None))
    X, y, patients = cohort(n_patients=120)
    config = TrainingConfig(candidates=("broken", "dummy", "logistic_regression"), **FAST)

    result = train(X, y, groups=patients, numeric=NUMERIC, categorical=CATEGORICAL, config=config)

    broken = result.candidates[0]
    assert broken.name == "broken"
    assert broken.error == "RuntimeError: out of memory"
    assert result.chosen == "logistic_regression"
    assert any("broken: failed" in line for line in result.log)


def test_training_stops_with_a_clear_error_when_every_candidate_fails(monkeypatch):
    def broken(random_state):
        raise ValueError("bad settings")

    monkeypatch.setitem(CANDIDATES, "broken", broken)
    X, y, patients = cohort(n_patients=60)
    config = TrainingConfig(candidates=("broken",), **FAST)

    with pytest.raises(RuntimeError, match="Every candidate failed: broken: ValueError: bad settings"):
        train(X, y, groups=patients, numeric=NUMERIC, categorical=CATEGORICAL, config=config)


def test_a_frame_without_patients_or_duplicates_is_split_by_row():
    X, y, _ = cohort(n_patients=150)
    X, y = X.iloc[:-15], y.iloc[:-15]  # drop the planted copies
    config = TrainingConfig(candidates=("dummy", "logistic_regression"), **FAST)

    result = train(X, y, numeric=NUMERIC, categorical=CATEGORICAL, config=config)

    assert result.groups_in_split == "row"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"candidates": ("nope",)}, "Unknown candidates"),
        ({"selection_metric": "auc"}, "selection_metric"),
        ({"calibration": "magic"}, "calibration"),
        ({"test_size": 0.7}, "test_size"),
    ],
)
def test_a_bad_config_is_refused_on_creation(values, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**values)


def test_the_config_round_trips_through_json():
    config = TrainingConfig(candidates=("dummy", "svc"), risk_thresholds=(0.1, 0.4))

    data = json.loads(json.dumps(config.to_dict()))

    assert data["candidates"] == ["dummy", "svc"]
    assert data["risk_thresholds"] == [0.1, 0.4]


def test_union_groups_links_rows_that_share_a_patient_or_a_duplicate():
    patients = np.array(["p1", "p1", "p2", "p3", "p4", "p4"])
    duplicates = np.array([0, 1, 1, 2, 3, 4])  # rows 1 and 2 are copies: p1 and p2 are now one group

    groups = union_groups(patients, duplicates)

    assert groups[0] == groups[1] == groups[2]
    assert len({groups[0], groups[3], groups[4]}) == 3
    assert groups[4] == groups[5]


def test_grouped_folds_and_the_holdout_never_split_a_group():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 80, 300)
    y = np.array(["a", "b", "c"])[groups % 3]

    for fit, val in grouped_folds(y, groups, 4, random_state=0):
        assert not set(groups[fit]) & set(groups[val])
    train_rows, test_rows = holdout_split(y, groups, 0.2, random_state=0)
    assert not set(groups[train_rows]) & set(groups[test_rows])
    assert sorted(np.concatenate([train_rows, test_rows])) == list(range(300))


def test_too_few_groups_for_the_folds_is_a_clear_error():
    with pytest.raises(ValueError, match="too few for 5 folds"):
        grouped_folds(np.array(["a", "b", "a", "b"]), np.array([1, 1, 2, 2]), 5, random_state=0)


def test_the_data_hash_ignores_column_order_but_not_values():
    X, y, _ = cohort(n_patients=30)

    assert data_hash(X, y) == data_hash(X[list(reversed(X.columns))], y)
    changed = X.copy()
    changed.loc[0, "signal"] += 1
    assert data_hash(changed, y) != data_hash(X, y)


def test_the_svc_is_fitted_on_a_stratified_subsample_that_keeps_every_class():
    y = np.array(["a"] * 500 + ["b"] * 95 + ["c"] * 5)

    rows = stratified_subsample(y, 100, random_state=0)

    assert len(rows) == pytest.approx(100, abs=2)
    assert set(y[rows]) == {"a", "b", "c"}
    assert (y[rows] == "b").sum() == pytest.approx(16, abs=1)
    assert len(stratified_subsample(y, 1000, random_state=0)) == 600


def test_the_feature_sources_map_every_transformed_column_back_to_its_raw_column():
    X, y, _ = cohort(n_patients=60)
    pipeline = build_pipeline(CANDIDATES["logistic_regression"](0), NUMERIC, CATEGORICAL).fit(X, y)

    sources = output_feature_sources(pipeline)

    # numeric (no missing-value indicators: absence is not evidence), then one column per sex
    assert sources == ["signal", "noise", "age", "sex", "sex"]
    assert len(sources) == pipeline[:-1].transform(X.head()).shape[1]
    assert set(native_importance(pipeline)) == {"signal", "noise", "age", "sex"}


def test_a_missing_value_is_filled_with_the_median_of_the_patients_without_a_target_condition():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 10.0, 20.0, np.nan], "b": [np.nan] * 6})
    y = np.array(["healthy", "healthy", "healthy", "diabetes", "diabetes", "diabetes"])

    imputer = ReferenceImputer(reference="healthy").fit(X, y)

    assert imputer.statistics_.tolist() == [2.0, 0.0]  # not 3.0, the median of everyone; an empty column: 0
    assert imputer.transform(X)[:, 0].tolist() == [1.0, 2.0, 3.0, 10.0, 20.0, 2.0]


def test_aligned_proba_fills_a_class_the_model_never_saw_with_zeros():
    X, y, _ = cohort(n_patients=60)
    keep = (y != "diabetes").to_numpy()
    pipeline = build_pipeline(CANDIDATES["logistic_regression"](0), NUMERIC, CATEGORICAL).fit(X[keep], y[keep])

    proba = aligned_proba(pipeline, X.head(4), ["anemia", "diabetes", "healthy"])

    assert proba.shape == (4, 3)
    assert (proba[:, 1] == 0).all()


@pytest.mark.filterwarnings("ignore:The least populated class", "ignore:Number of classes in training fold")
def test_a_class_held_by_one_group_keeps_the_model_uncalibrated_and_says_so():
    X, y, _ = cohort(n_patients=150)
    X, y = X.iloc[:-15].reset_index(drop=True), y.iloc[:-15].replace("diabetes", "healthy").reset_index(drop=True)
    rare = [0, 1, 2]
    X.loc[rare, :] = X.loc[0].to_numpy()  # three identical rows: one duplicate group, so one fold never fits it
    y.iloc[rare] = "rare"
    config = TrainingConfig(candidates=("logistic_regression",), **FAST)

    result = train(X, y, numeric=NUMERIC, categorical=CATEGORICAL, config=config)

    assert "rare" not in set(y.iloc[result.test_index])  # the split keeps the group on the training side
    assert not result.calibrated
    assert any("calibration was not possible" in line for line in result.log)
    assert result.model.predict_proba(X.head(3)).shape == (3, 3)


def test_rows_without_a_patient_id_are_each_their_own_group():
    groups = union_groups(np.array(["p1", None, None, "p1"], dtype=object))

    assert groups[0] == groups[3]
    assert len({groups[0], groups[1], groups[2]}) == 3


def test_the_held_out_interval_resamples_the_splits_groups_not_its_rows(trained):
    result, lines = trained[3], trained[4]

    assert len(result.test_groups) == result.n_test
    units = len(np.unique(result.test_groups))
    assert units < result.n_test  # patients with several rows are one unit each
    assert any(f"bootstrap over its {units:,} independent groups of {result.n_test:,} rows" in line for line in lines)


# The model-choice rule: hand-built comparisons, five grouped folds each.


def _candidate(name: str, auc: list[float], brier: list[float], balanced: float = 0.5) -> CandidateResult:
    scores = {"roc_auc_ovr_macro": auc, "brier": brier, "balanced_accuracy": [balanced] * len(auc)}
    mean = {metric: float(np.mean(values)) for metric, values in scores.items()}
    std = {metric: float(np.std(values, ddof=1)) for metric, values in scores.items()}
    return CandidateResult(name, scores, mean, std, fit_seconds=0.1)


def test_within_the_noise_of_the_best_auc_the_better_calibrated_model_is_chosen_over_a_simpler_one():
    overconfident = _candidate("logistic_regression", [0.80, 0.62, 0.75, 0.66, 0.73], [1.2, 0.9, 1.1, 0.8, 1.15], 0.65)
    calibrated = _candidate("hist_gradient_boosting", [0.74, 0.66, 0.70, 0.72, 0.715], [0.70, 0.62, 0.68, 0.66, 0.71])

    chosen, reason = choose_candidate([overconfident, calibrated])

    assert overconfident.cv_mean["roc_auc_ovr_macro"] > calibrated.cv_mean["roc_auc_ovr_macro"]  # AUC alone: LR
    assert chosen == "hist_gradient_boosting"
    assert "Within noise of the lowest Brier score (hist_gradient_boosting): hist_gradient_boosting." in reason


def test_the_rule_passes_over_the_best_auc_when_its_balanced_accuracy_and_calibration_are_much_worse():
    # The reproduced case: LightGBM first by ROC-AUC at balanced accuracy 0.649, a random forest at 0.742.
    lightgbm = _candidate("lightgbm", [0.80, 0.62, 0.75, 0.66, 0.73], [1.2, 0.9, 1.1, 0.8, 1.15], balanced=0.649)
    forest = _candidate("random_forest", [0.74, 0.66, 0.70, 0.72, 0.715], [0.70, 0.62, 0.68, 0.66, 0.71], 0.742)

    chosen, reason = choose_candidate([lightgbm, forest])

    assert chosen == "random_forest"
    assert "balanced accuracy 0.649" in reason
    assert "balanced accuracy 0.742" in reason


def test_discrimination_comes_first_a_clearly_worse_auc_is_not_rescued_by_its_calibration():
    sharp = _candidate("lightgbm", [0.90, 0.91, 0.90, 0.91, 0.90], [0.40, 0.41, 0.40, 0.41, 0.40])
    vague = _candidate("logistic_regression", [0.80, 0.81, 0.80, 0.81, 0.80], [0.20, 0.21, 0.20, 0.21, 0.20])

    chosen, reason = choose_candidate([vague, sharp])

    assert chosen == "lightgbm"
    assert "Outside the macro ROC-AUC band: logistic_regression (0.804)" in reason


def test_what_the_folds_cannot_tell_apart_on_both_scores_goes_to_the_simplest():
    forest = _candidate("random_forest", [0.84, 0.80, 0.86, 0.79, 0.83], [0.30, 0.36, 0.29, 0.37, 0.31])
    linear = _candidate("logistic_regression", [0.83, 0.81, 0.84, 0.80, 0.82], [0.31, 0.35, 0.30, 0.36, 0.33])

    chosen, reason = choose_candidate([forest, linear])

    assert forest.cv_mean["brier"] < linear.cv_mean["brier"]
    assert chosen == "logistic_regression"
    assert "Within noise of the lowest Brier score (random_forest): random_forest, logistic_regression." in reason


def test_the_dummy_is_the_yardstick_never_the_choice_unless_it_ran_alone():
    dummy = _candidate("dummy", [0.5] * 5, [0.40] * 5)
    weak = _candidate("logistic_regression", [0.58, 0.45, 0.62, 0.50, 0.52], [0.50, 0.47, 0.52, 0.49, 0.51])

    assert choose_candidate([dummy, weak])[0] == "logistic_regression"
    assert "The dummy baseline scored macro ROC-AUC 0.500" in choose_candidate([dummy, weak])[1]
    assert choose_candidate([dummy])[0] == "dummy"


def test_the_reason_states_the_rule():
    _, reason = choose_candidate([_candidate("random_forest", [0.8] * 5, [0.3] * 5)])

    assert reason.startswith(
        "random_forest, by the rule: of the candidates within one standard error of the best mean cross-validated "
        "macro ROC-AUC, those within one standard error of the lowest Brier score, the simplest."
    )


def test_the_standard_error_is_that_of_the_paired_fold_differences_corrected_for_overlapping_folds():
    # std of the differences 1, three folds: sqrt(1/3 + 1/2), not the uncorrected 1/sqrt(3)
    assert paired_standard_error([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]) == pytest.approx(np.sqrt(1 / 3 + 1 / 2))
    assert paired_standard_error([0.7, np.nan, 0.9], [0.6, 0.5, 0.6]) == pytest.approx(
        np.std([0.1, 0.3], ddof=1) * np.sqrt(1 / 2 + 1)
    )
    assert paired_standard_error([0.7], [0.6]) == 0.0


class _Overconfident(ClassifierMixin, BaseEstimator):
    """Logistic regression with its probabilities sharpened: the same ranking (and AUC), worse calibration."""

    def fit(self, X, y):
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        p = self.model_.predict_proba(X) ** 3
        return p / p.sum(axis=1, keepdims=True)


def test_on_a_small_frame_an_overconfident_model_tied_on_auc_loses_on_calibration(monkeypatch):
    monkeypatch.setitem(CANDIDATES, "overconfident", lambda random_state: _Overconfident())
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"signal": rng.normal(size=300), "noise": rng.normal(size=300)})
    y = pd.Series(np.where(X["signal"] + rng.normal(0, 1.0, 300) > 0, "diabetes", "healthy"))
    config = TrainingConfig(candidates=("overconfident", "logistic_regression"), **FAST)

    result = train(X, y, numeric=["signal", "noise"], categorical=[], config=config)

    first, second = result.candidates
    # Listed first and tied on ROC-AUC, the overconfident model was what ROC-AUC alone picked.
    assert first.cv_mean["roc_auc_ovr_macro"] == pytest.approx(second.cv_mean["roc_auc_ovr_macro"])
    assert first.cv_mean["brier"] > second.cv_mean["brier"]
    assert result.chosen == "logistic_regression"
    assert "Within noise of the lowest Brier score (logistic_regression): logistic_regression." in result.reason
