"""One training run: audit, grouped hold-out split, cross-validated comparison, calibrated refit, evaluation.

The order is the point (scikit-learn's "common pitfalls"): the test rows are set aside before anything is
fitted, every candidate is compared by grouped cross-validation on the training part only, the winner is
refitted and calibrated on the training part only, and the test set is used once, at the end.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from mltraining.ml import plots
from mltraining.ml.audit import DataAudit, audit_data
from mltraining.ml.candidates import CANDIDATES, SVC_MAX_ROWS, build_pipeline, native_importance
from mltraining.ml.metrics import (
    bootstrap_ci,
    class_auc_intervals,
    classification_metrics,
    encode_labels,
    permutation_importance_auc,
    risk_levels,
    scalar_metrics,
    subgroup_metrics,
)

CV_METRICS = ("roc_auc_ovr_macro", "balanced_accuracy", "f1_macro", "log_loss", "brier", "accuracy")
LOWER_IS_BETTER = frozenset({"log_loss", "brier"})
METRIC_LABELS = {
    "roc_auc_ovr_macro": "macro ROC-AUC",
    "balanced_accuracy": "balanced accuracy",
    "f1_macro": "macro F1",
    "log_loss": "log loss",
    "brier": "Brier score",
    "accuracy": "accuracy",
}
# The model-choice rule (`choose_candidate`): its calibration score, and its order from the simplest candidate
# (fewest fitted parameters, easiest to explain) to the least simple. A candidate not listed comes last.
CALIBRATION_METRIC = "brier"
SIMPLICITY_ORDER = (
    "logistic_regression", "decision_tree", "random_forest", "hist_gradient_boosting", "lightgbm", "svc", "mlp",
)  # fmt: skip

Log = Callable[[str], None]
Progress = Callable[[float], None]


@dataclass
class TrainingConfig:
    candidates: tuple[str, ...] = tuple(CANDIDATES)
    test_size: float = 0.2
    cv_folds: int = 5
    random_state: int = 0
    calibration: str = "isotonic"  # or "sigmoid"
    bootstrap_rounds: int = 500
    permutation_repeats: int = 5
    selection_metric: str = "roc_auc_ovr_macro"
    risk_thresholds: tuple[float, float] = (0.2, 0.5)  # risk = 1 - P(healthy): < 0.2 low, < 0.5 moderate, else high

    def __post_init__(self) -> None:
        unknown = [name for name in self.candidates if name not in CANDIDATES]
        if unknown:
            raise ValueError(f"Unknown candidates {unknown}; choose from {list(CANDIDATES)}.")
        if self.selection_metric not in CV_METRICS:
            raise ValueError(f"selection_metric must be one of {list(CV_METRICS)}.")
        if self.calibration not in ("isotonic", "sigmoid"):
            raise ValueError('calibration must be "isotonic" or "sigmoid".')
        if not 0 < self.test_size < 0.5:
            raise ValueError("test_size must be between 0 and 0.5.")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["candidates"] = list(self.candidates)
        data["risk_thresholds"] = list(self.risk_thresholds)
        return data


@dataclass
class CandidateResult:
    name: str
    cv_scores: dict[str, list[float]]  # metric -> one score per fold
    cv_mean: dict[str, float]
    cv_std: dict[str, float]
    fit_seconds: float
    error: str = ""  # a candidate that fails is reported, not fatal


@dataclass
class TrainingResult:
    config: TrainingConfig
    audit: DataAudit
    classes: list[str]
    feature_names: list[str]
    numeric: list[str]
    categorical: list[str]
    candidates: list[CandidateResult]
    chosen: str
    reason: str
    model: Any  # fitted and calibrated; predict_proba(raw frame) has columns in `classes` order
    test_metrics: dict[str, Any]
    test_ci: dict[str, tuple[float, float]]
    baseline_test_metrics: dict[str, Any]
    subgroup_metrics: dict[str, dict[str, dict[str, float]]]
    feature_importance: dict[str, float]
    permutation_importance: dict[str, tuple[float, float]]
    plots: dict[str, bytes]
    n_train: int
    n_test: int
    groups_in_split: str
    data_hash: str
    timings: dict[str, float]  # seconds: audit, split, cv, final_fit (the calibrated refit), evaluation, plots, total
    log: list[str]
    train_index: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # positions in X
    test_index: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    test_groups: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # bootstrap unit per test row
    calibrated: bool = True  # False only when calibration was impossible (see the log)

    def summary(self) -> dict:
        """Everything but the model, the plots and the index arrays, as plain JSON (NaN becomes null)."""
        data = {
            "config": self.config.to_dict(),
            "audit": self.audit.to_dict(),
            "candidates": [asdict(c) for c in self.candidates],
        }
        for name in (
            "classes", "feature_names", "numeric", "categorical", "chosen", "reason", "test_metrics", "test_ci",
            "baseline_test_metrics", "subgroup_metrics", "feature_importance", "permutation_importance",
            "n_train", "n_test", "groups_in_split", "data_hash", "timings", "log", "calibrated",
        ):  # fmt: skip
            data[name] = getattr(self, name)
        return _jsonable(data)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    return value


def union_groups(*groupings: np.ndarray | pd.Series | None) -> np.ndarray:
    """One group id per row such that rows sharing a group in ANY of the groupings share one here.

    Connected components over rows linked by each grouping: a patient with a duplicated row pulls the
    duplicate's other owners into the same group, so neither can straddle the split.
    """
    present = [_codes(g) for g in groupings if g is not None]
    if not present:
        raise ValueError("union_groups needs at least one grouping")
    n = len(present[0])
    offset, edges_a, edges_b = n, [], []
    for codes in present:
        edges_a.append(np.arange(n))
        edges_b.append(offset + codes)  # each group is a node; every row links to its group's node
        offset += codes.max() + 1 if n else 0
    a, b = np.concatenate(edges_a), np.concatenate(edges_b)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(offset, offset))
    _, labels = connected_components(graph, directed=False)
    return pd.factorize(labels[:n])[0]


def _codes(grouping) -> np.ndarray:
    """0..k-1 per row; a missing id is a group of its own (unknown is not "the same as another unknown")."""
    codes = pd.factorize(np.asarray(grouping, dtype=object))[0]
    missing = codes < 0
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    return codes


def grouped_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, random_state: int) -> list[tuple[np.ndarray, ...]]:
    """Stratified folds that never split a group; plain stratified folds when every group is one row."""
    if len(np.unique(groups)) < n_folds:
        raise ValueError(f"Only {len(np.unique(groups))} independent groups: too few for {n_folds} folds.")
    if len(np.unique(groups)) == len(groups):
        # Same result as StratifiedGroupKFold with singleton groups, without its per-group Python loop.
        splitter = StratifiedKFold(n_folds, shuffle=True, random_state=random_state)
        return list(splitter.split(np.zeros(len(y)), y))
    splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=random_state)
    return list(splitter.split(np.zeros(len(y)), y, groups))


def holdout_split(y: np.ndarray, groups: np.ndarray, test_size: float, random_state: int) -> tuple[np.ndarray, ...]:
    """(train, test) positions: one fold of a stratified group k-fold with k = round(1 / test_size)."""
    n_folds = max(2, round(1 / test_size))
    train_idx, test_idx = grouped_folds(y, groups, n_folds, random_state)[0]
    return np.sort(train_idx), np.sort(test_idx)


def aligned_proba(model, X: pd.DataFrame, classes: list[str]) -> np.ndarray:
    """predict_proba with one column per class in `classes` (zeros for a class the model never saw)."""
    raw = model.predict_proba(X)
    seen = [str(c) for c in model.classes_]
    if seen == classes:
        return raw
    out = np.zeros((len(X), len(classes)))
    for j, c in enumerate(seen):
        out[:, classes.index(c)] = raw[:, j]
    return out


def data_hash(X: pd.DataFrame, y: pd.Series) -> str:
    """sha256 of the frame as CSV, columns sorted by name and the label last; rows in the order given."""
    frame = X[sorted(X.columns)].copy()
    frame["__label__"] = np.asarray(y, dtype=object)
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


class _Run:
    """The state of one run, so the steps stay short and share the log and the timings."""

    def __init__(self, config: TrainingConfig, log: Log | None, progress: Progress | None) -> None:
        self.config, self._log, self._progress = config, log, progress
        self.lines: list[str] = []
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def say(self, line: str) -> None:
        self.lines.append(line)
        if self._log:
            self._log(line)

    def advance(self, fraction: float) -> None:
        if self._progress:
            self._progress(min(1.0, max(0.0, fraction)))

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        self.timings[name] = round(now - self._clock, 3)
        self._clock = now
        return self.timings[name]


def train(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    groups: pd.Series | None = None,
    numeric: list[str],
    categorical: list[str],
    config: TrainingConfig | None = None,
    log: Log | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Audit, split, compare, refit with calibration, evaluate once on the held-out test set.

    `X` may carry extra raw columns (e.g. "sex", "age" for the subgroup table); the model sees only
    `numeric + categorical`. `groups` (patient ids, aligned with X by position) keeps each patient on one
    side of every split; rows with identical features are kept together as well.
    """
    config = config or TrainingConfig()
    run = _Run(config, log, progress)
    started = time.perf_counter()
    # One thread for BLAS and OpenMP too (HistGradientBoosting): predictable cost, no oversubscription.
    with threadpool_limits(limits=1):
        result = _train(run, X.reset_index(drop=True), y, groups, list(numeric), list(categorical))
    result.timings["total"] = round(time.perf_counter() - started, 3)
    run.say(f"Finished in {result.timings['total']:.1f} s.")
    run.advance(1.0)
    return result


def _train(run: _Run, X: pd.DataFrame, y, groups, numeric: list[str], categorical: list[str]) -> TrainingResult:
    config = run.config
    Xf, labels, classes, audit = _prepare(run, X, y, numeric + categorical)
    split_groups, grouped_by = _split_groups(audit, groups)
    train_idx, test_idx = holdout_split(labels.to_numpy(), split_groups, config.test_size, config.random_state)
    X_train, y_train = Xf.iloc[train_idx].reset_index(drop=True), labels.iloc[train_idx].reset_index(drop=True)
    X_test, y_test = Xf.iloc[test_idx].reset_index(drop=True), labels.iloc[test_idx].reset_index(drop=True)
    folds = grouped_folds(y_train.to_numpy(), split_groups[train_idx], config.cv_folds, config.random_state)
    run.say(
        f"Held-out test set: {len(test_idx):,} rows, training part {len(train_idx):,} rows, split grouped by "
        f"{grouped_by} and stratified by label; {config.cv_folds}-fold grouped cross-validation on the training part."
    )
    run.lap("split")
    run.advance(0.05)

    results, chosen, reason, model = _select(run, X_train, y_train, folds, classes, numeric, categorical)
    run.advance(0.85)

    test_groups = pd.factorize(split_groups[test_idx])[0]
    evaluation = _evaluate(
        run, model, X, X_train, y_train, X_test, y_test, test_idx, test_groups, classes, numeric, categorical
    )
    run.lap("evaluation")
    run.advance(0.95)

    pictures = _plots(evaluation, y_test, classes, results, chosen, config.selection_metric)
    run.lap("plots")
    return TrainingResult(
        config=config,
        audit=audit,
        classes=classes,
        feature_names=numeric + categorical,
        numeric=numeric,
        categorical=categorical,
        candidates=results,
        chosen=chosen,
        reason=reason,
        model=model,
        test_metrics=evaluation["test_metrics"],
        test_ci=evaluation["test_ci"],
        baseline_test_metrics=evaluation["baseline"],
        subgroup_metrics=evaluation["subgroups"],
        feature_importance=native_importance(model),
        permutation_importance=evaluation["permutation"],
        plots=pictures,
        n_train=len(train_idx),
        n_test=len(test_idx),
        groups_in_split=grouped_by,
        data_hash=data_hash(Xf, labels),
        timings=run.timings,
        log=run.lines,
        train_index=train_idx,
        test_index=test_idx,
        test_groups=test_groups,
        calibrated=isinstance(model, CalibratedClassifierCV),
    )


def _prepare(run: _Run, X: pd.DataFrame, y, features: list[str]) -> tuple[pd.DataFrame, pd.Series, list, DataAudit]:
    """The feature columns, the labels as text, the sorted classes and the audit (logged); bad input raises."""
    missing = [c for c in features if c not in X.columns]
    if missing:
        raise ValueError(f"Feature columns missing from X: {missing}")
    labels = pd.Series(np.asarray(y, dtype=object).astype(str))
    if len(labels) != len(X):
        raise ValueError(f"X has {len(X)} rows but y has {len(labels)}.")
    Xf = X[features]
    classes = sorted(labels.unique())
    if len(classes) < 2:
        raise ValueError("Training needs at least two classes in y.")
    audit = audit_data(Xf, labels)
    run.say(f"Audit: {audit.rows:,} rows, {audit.unique_rows:,} unique, {audit.n_features} features, classes "
            + ", ".join(f"{k} {v:,}" for k, v in audit.label_counts.items()) + ".")  # fmt: skip
    for warning in audit.warnings:
        run.say(f"Warning: {warning}")
    run.lap("audit")
    run.advance(0.03)
    return Xf, labels, classes, audit


@dataclass
class Selection:
    """The comparison, the choice and the calibrated refit, on every row given (nothing held out)."""

    audit: DataAudit
    classes: list[str]
    candidates: list[CandidateResult]
    chosen: str
    reason: str
    model: Any  # fitted and calibrated; predict_proba(raw frame) has columns in `classes` order
    groups_in_split: str
    log: list[str]


def select_on_all_rows(
    X: pd.DataFrame,
    y: pd.Series,
    *,
    groups: pd.Series | None = None,
    numeric: list[str],
    categorical: list[str],
    config: TrainingConfig | None = None,
    log: Log | None = None,
) -> Selection:
    """What `train` does before its test set, on all of X: for a test set that comes as a separate file.

    Grouped cross-validation over every row, the choice by `choose_candidate`, and the chosen pipeline
    refitted with calibration on every row.
    """
    run = _Run(config or TrainingConfig(), log, None)
    numeric, categorical = list(numeric), list(categorical)
    with threadpool_limits(limits=1):
        Xf, labels, classes, audit = _prepare(run, X.reset_index(drop=True), y, numeric + categorical)
        split_groups, grouped_by = _split_groups(audit, groups)
        folds = grouped_folds(labels.to_numpy(), split_groups, run.config.cv_folds, run.config.random_state)
        results, chosen, reason, model = _select(run, Xf, labels, folds, classes, numeric, categorical)
    return Selection(audit, classes, results, chosen, reason, model, grouped_by, run.lines)


def _select(run: _Run, X, y, folds, classes, numeric, categorical) -> tuple[list[CandidateResult], str, str, Any]:
    results = _compare(run, X, y, folds, classes, numeric, categorical)
    run.lap("cv")
    chosen, reason = choose_candidate(results, run.config.selection_metric)
    run.say(f"Chosen: {reason}")
    model = _calibrated_refit(run, chosen, X, y, folds, numeric, categorical)
    run.lap("final_fit")
    return results, chosen, reason, model


def _split_groups(audit: DataAudit, groups) -> tuple[np.ndarray, str]:
    """The grouping the split must respect, and its name for the log and the model card."""
    duplicates = audit.duplicate_groups if audit.has_duplicates else None
    if groups is not None and len(groups) != audit.rows:
        raise ValueError(f"groups has {len(groups)} entries for {audit.rows} rows.")
    patients = None if groups is None else np.asarray(groups, dtype=object)
    if patients is not None and duplicates is not None:
        return union_groups(patients, duplicates), "patient+duplicate"
    if patients is not None:
        return union_groups(patients), "patient"
    if duplicates is not None:
        return union_groups(duplicates), "duplicate"
    return np.arange(audit.rows), "row"


def _compare(run: _Run, X, y, folds, classes, numeric, categorical) -> list[CandidateResult]:
    names = run.config.candidates
    largest_fit = max(len(fit) for fit, _ in folds)
    if "svc" in names and largest_fit > SVC_MAX_ROWS:
        run.say(f"svc is fitted on a stratified subsample of {SVC_MAX_ROWS:,} of the {largest_fit:,} rows of each "
                "fit (a kernel SVM's cost grows with the square of the rows); it is scored on all rows.")  # fmt: skip
    results = []
    for i, name in enumerate(names):
        result = cross_validate_candidate(name, X, y, folds, classes, numeric, categorical, run.config.random_state)
        results.append(result)
        if result.error:
            run.say(f"{name}: failed ({result.error}); the comparison goes on without it.")
        else:
            figures = _choice_text(result, run.config.selection_metric)
            run.say(f"{name}: {figures}, fitted in {result.fit_seconds:.1f} s.")
        run.advance(0.05 + 0.65 * (i + 1) / len(names))
    return results


def cross_validate_candidate(
    name: str, X: pd.DataFrame, y: pd.Series, folds, classes: list[str], numeric, categorical, random_state: int
) -> CandidateResult:
    """Per-fold scores of one candidate; an exception becomes `error` instead of ending the run."""
    y_idx = encode_labels(y, classes)
    scores: dict[str, list[float]] = {m: [] for m in CV_METRICS}
    started = time.perf_counter()
    try:
        for fit_idx, val_idx in folds:
            pipeline = build_pipeline(CANDIDATES[name](random_state), numeric, categorical)
            pipeline.fit(X.iloc[fit_idx], y.iloc[fit_idx])
            figures = scalar_metrics(y_idx[val_idx], aligned_proba(pipeline, X.iloc[val_idx], classes))
            for metric in CV_METRICS:
                scores[metric].append(figures[metric])
    except Exception as exc:  # any estimator failure is reported, and the run goes on
        return CandidateResult(
            name, scores, {}, {}, round(time.perf_counter() - started, 3), f"{type(exc).__name__}: {exc}"
        )
    mean = {m: float(np.nanmean(v)) for m, v in scores.items()}
    std = {m: float(np.nanstd(v, ddof=1)) if len(v) > 1 else 0.0 for m, v in scores.items()}
    return CandidateResult(name, scores, mean, std, round(time.perf_counter() - started, 3))


def _score_text(result: CandidateResult, metric: str) -> str:
    return f"{METRIC_LABELS[metric]} {result.cv_mean[metric]:.3f} ± {result.cv_std[metric]:.3f}"


def _choice_text(result: CandidateResult, metric: str) -> str:
    """The three figures the choice is made and judged by."""
    shown = [f"{METRIC_LABELS[m]} {result.cv_mean[m]:.3f}" for m in (CALIBRATION_METRIC, "balanced_accuracy")]
    return ", ".join([_score_text(result, metric), *shown])


def choose_candidate(results: list[CandidateResult], metric: str = "roc_auc_ovr_macro") -> tuple[str, str]:
    """The model-choice rule: discrimination, then calibration, then simplicity, each within its noise.

    1. Discrimination: keep the candidates whose mean cross-validated `metric` (macro ROC-AUC unless
       configured) is within one standard error of the best mean.
    2. Calibration: of those, keep the ones whose mean cross-validated Brier score is within one standard
       error of the lowest among them. The Brier score is a proper score: it rewards probabilities that
       are both sharp and right, and risk levels are read off the probabilities.
    3. Simplicity: of those, the first in SIMPLICITY_ORDER (the one-standard-error rule of Breiman et al.,
       "Classification and Regression Trees", 1984, and Hastie, Tibshirani and Friedman, "The Elements of
       Statistical Learning", 2009, section 7.10: what the data cannot tell apart, take the simplest of).
    A standard error is that of the paired fold-by-fold differences from the leader (every candidate is
    scored on the same grouped folds; see `paired_standard_error`). The dummy is the yardstick
    every model must beat, never the choice, unless nothing else ran. Balanced accuracy is reported beside
    each candidate, so a choice that trades a rare class away is in plain sight. Returns (name, reason);
    the reason states the rule and the figures.
    """
    ok = [r for r in results if not r.error and np.isfinite(r.cv_mean.get(metric, np.nan))]
    if not ok:
        raise RuntimeError("Every candidate failed: " + "; ".join(f"{r.name}: {r.error}" for r in results))
    eligible = [r for r in ok if r.name != "dummy"] or ok
    sign = -1 if metric in LOWER_IS_BETTER else 1
    best = max(eligible, key=lambda r: sign * r.cv_mean[metric])
    band = _within_noise(eligible, best, metric, sign)
    best_calibrated = min(band, key=lambda r: _nan_last(r.cv_mean.get(CALIBRATION_METRIC, np.nan)))
    tied = _within_noise(band, best_calibrated, CALIBRATION_METRIC, -1) or [best_calibrated]  # a NaN Brier score
    chosen = min(tied, key=_simplicity)
    label = METRIC_LABELS[metric]
    reason = (
        f"{chosen.name}, by the rule: of the candidates within one standard error of the best mean cross-validated "
        f"{label}, those within one standard error of the lowest Brier score, the simplest. "
        f"Within noise of the best {label} ({best.name}, {len(best.cv_scores[metric])} grouped folds): "
        + "; ".join(f"{r.name} ({_choice_text(r, metric)})" for r in band)
        + f". Within noise of the lowest Brier score ({best_calibrated.name}): "
        + ", ".join(r.name for r in tied)
    )
    outside = [r for r in eligible if r not in band]
    if outside:
        reason += f". Outside the {label} band: " + ", ".join(f"{r.name} ({r.cv_mean[metric]:.3f})" for r in outside)
    dummy = next((r for r in ok if r.name == "dummy"), None)
    if dummy and chosen.name != "dummy":
        reason += f". The dummy baseline scored {label} {dummy.cv_mean[metric]:.3f}"
    return chosen.name, reason + "."


def _within_noise(results: list[CandidateResult], leader: CandidateResult, metric: str, sign: int) -> list:
    """The results no worse than the leader on `metric` by more than one paired standard error (leader included)."""
    return [
        r
        for r in results
        if sign * (leader.cv_mean[metric] - r.cv_mean[metric])
        <= paired_standard_error(leader.cv_scores[metric], r.cv_scores[metric])
    ]


def _simplicity(result: CandidateResult) -> int:
    return SIMPLICITY_ORDER.index(result.name) if result.name in SIMPLICITY_ORDER else len(SIMPLICITY_ORDER)


def paired_standard_error(a: list[float], b: list[float]) -> float:
    """Standard error of the mean fold-by-fold difference a - b, corrected for folds that share training rows.

    The k fits of a cross-validation train on overlapping rows, so their scores are correlated and
    std / sqrt(k) is too small. Nadeau and Bengio's corrected variance ("Inference for the Generalization
    Error", Machine Learning 52, 2003), with test / training rows = 1 / (k - 1) for k folds, gives
    std * sqrt(1/k + 1/(k - 1)). Folds where either score is undefined are left out; 0 below two folds.
    """
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    diff = diff[np.isfinite(diff)]
    k = len(diff)
    if k < 2:
        return 0.0
    return float(np.std(diff, ddof=1) * math.sqrt(1 / k + 1 / (k - 1)))


def _nan_last(value: float) -> float:
    return value if np.isfinite(value) else math.inf


def _calibrated_refit(run: _Run, name: str, X, y, folds, numeric, categorical):
    """The chosen pipeline, refitted on the whole training part, calibrated on its out-of-fold predictions.

    `ensemble=False`: the calibrator learns from out-of-fold predictions over the grouped training folds,
    and the one pipeline fitted on all training rows serves predictions (and its native importances).
    A class that lives in a single group of the training part is missing from one fold's fit, which
    calibration on decision values cannot handle; then the refitted pipeline is kept uncalibrated, and the
    log says so.
    """
    pipeline = build_pipeline(CANDIDATES[name](run.config.random_state), numeric, categorical)
    model = CalibratedClassifierCV(pipeline, method=run.config.calibration, cv=folds, ensemble=False)
    started = time.perf_counter()
    try:
        model.fit(X, y)
    except ValueError as exc:
        run.say(f"Warning: calibration was not possible ({exc}); the model's own probabilities are used uncalibrated.")
        return clone(pipeline).fit(X, y)
    run.say(
        f"Refitted {name} on all {len(X):,} training rows with {run.config.calibration} calibration on "
        f"out-of-fold predictions from the same {len(folds)} grouped folds ({time.perf_counter() - started:.1f} s)."
    )
    return model


def _evaluate(
    run: _Run, model, X_raw, X_train, y_train, X_test, y_test, test_idx, test_groups, classes, numeric, categorical
):
    """Score the calibrated model once on the held-out set; the dummy beside it for scale.

    The intervals resample the split's groups (patients, identical rows), not rows: copies are not evidence.
    """
    config = run.config
    proba = aligned_proba(model, X_test, classes)
    test_metrics = classification_metrics(y_test, proba, classes)
    levels = risk_levels(y_test, proba, classes, config.risk_thresholds)
    if levels:
        test_metrics["risk_levels"] = levels
    dummy = build_pipeline(CANDIDATES["dummy"](config.random_state), numeric, categorical).fit(X_train, y_train)
    baseline = classification_metrics(y_test, aligned_proba(dummy, X_test, classes), classes)
    ci = bootstrap_ci(
        y_test, proba, classes, groups=test_groups, rounds=config.bootstrap_rounds, seed=config.random_state
    )
    test_metrics["class_roc_auc"] = class_auc_intervals(
        y_test, proba, classes, groups=test_groups, rounds=config.bootstrap_rounds, seed=config.random_state
    )
    auc, (low, high) = test_metrics["roc_auc_ovr_macro"], ci["roc_auc_ovr_macro"]
    units = len(np.unique(test_groups))
    run.say(
        f"Held-out test: macro ROC-AUC {auc:.3f} (95 % CI {low:.3f}-{high:.3f}, bootstrap over its {units:,} "
        f"independent groups of {len(test_groups):,} rows), balanced accuracy "
        f"{test_metrics['balanced_accuracy']:.3f}, accuracy {test_metrics['accuracy']:.3f}; dummy baseline macro "
        f"ROC-AUC {baseline['roc_auc_ovr_macro']:.3f}, accuracy {baseline['accuracy']:.3f}."
    )
    permutation = permutation_importance_auc(
        lambda frame: aligned_proba(model, frame, classes),
        X_test,
        encode_labels(y_test, classes),
        repeats=config.permutation_repeats,
        seed=config.random_state,
    )
    return {
        "proba": proba,
        "test_metrics": test_metrics,
        "test_ci": ci,
        "baseline": baseline,
        "subgroups": subgroup_metrics(X_raw.iloc[test_idx].reset_index(drop=True), y_test, proba, classes),
        "permutation": permutation,
    }


def _plots(
    evaluation: dict, y_test: pd.Series, classes: list[str], results, chosen: str, metric: str
) -> dict[str, bytes]:
    proba = evaluation["proba"]
    importances = {k: v[0] for k, v in evaluation["permutation"].items()}
    return {
        "confusion_matrix": plots.confusion_matrix_png(evaluation["test_metrics"]["confusion_matrix"], classes),
        "roc_curves": plots.roc_curves_png(y_test, proba, classes),
        "calibration": plots.calibration_png(y_test, proba, classes),
        "importances": plots.importances_png(
            importances, f"Which values the {chosen} model relies on (drop in macro ROC-AUC when shuffled)"
        ),
        "cv_comparison": plots.cv_comparison_png(results, metric),
    }
