"""Held-out metrics, bootstrap confidence intervals and subgroup figures for a multi-class classifier.

Conventions, the same everywhere in the run (the tests pin them against scikit-learn's own functions):

- `proba` has one column per class, in `classes` order; the predicted class is the most probable one.
- Macro precision / recall / F1 average over every class in `classes`, scoring an undefined ratio
  (a class never predicted, or absent) as 0, as scikit-learn does with `labels=classes, zero_division=0`.
- Balanced accuracy averages recall over the classes present in `y_true` (scikit-learn's definition).
- Macro ROC-AUC is one-vs-rest, averaged over the classes that have both positives and negatives in
  `y_true` (all classes, on any sensible test set: then it equals `roc_auc_score(multi_class="ovr")`).
- `brier` is the multi-class Brier score: the mean over rows of the summed squared error over classes,
  range 0 (perfect) to 2 (`brier_score_loss(labels=classes, scale_by_half=False)`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

SCALAR_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc_ovr_macro",
    "brier",
    "log_loss",
)
AGE_BANDS = ((18, 40, "18-39"), (40, 60, "40-59"), (60, 75, "60-74"), (75, 200, "75+"))
# Permutation importance predicts (features x repeats) times; past this many test rows a random subset of
# this size estimates the same drop at a bounded cost.
PERMUTATION_MAX_ROWS = 1000
# Curve points stored with the metrics, so the dashboard can redraw the curves without the test set.
ROC_MAX_POINTS = 100  # per class; a thinned staircase is indistinguishable from the full one at chart size
CALIBRATION_MIN_POSITIVES = 5  # fewer patients with a diagnosis give no meaningful reliability curve


def encode_labels(y_true, classes: list[str]) -> np.ndarray:
    """Class index per row; a label outside `classes` is an error, not a silent -1."""
    values = pd.Series(np.asarray(y_true, dtype=object).astype(str))
    codes = values.map({str(c): i for i, c in enumerate(classes)})
    if codes.isna().any():
        unknown = sorted(set(values[codes.isna()]))
        raise ValueError(f"Labels not among the classes {list(classes)}: {unknown[:5]}")
    return codes.to_numpy(dtype=np.int64)


def classification_metrics(y_true, proba: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Every figure the model card shows, computed with scikit-learn's own functions."""
    classes = [str(c) for c in classes]
    y = np.asarray(y_true, dtype=object).astype(str)
    proba = np.asarray(proba, dtype=float)
    pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)].astype(str)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=classes, average=None, zero_division=0
    )
    with warnings.catch_warnings():
        # A class predicted but absent from y_true is left out of balanced accuracy, as documented above.
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = float(balanced_accuracy_score(y, pred))
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": balanced,
        "precision_macro": float(np.mean(precision)),
        "recall_macro": float(np.mean(recall)),
        "f1_macro": float(np.mean(f1)),
        "roc_auc_ovr_macro": _roc_auc_sklearn(y, proba, classes),
        "brier": float(brier_score_loss(y, proba, labels=classes, scale_by_half=False)),
        "log_loss": float(log_loss(y, proba, labels=classes)),
        "per_class_recall": {c: float(r) for c, r in zip(classes, recall, strict=True)},
        "confusion_matrix": confusion_matrix(y, pred, labels=classes).tolist(),
        "support": {c: int(s) for c, s in zip(classes, support, strict=True)},
        "n": len(y),
        "curves": curve_points(y, proba, classes),
    }


def _roc_auc_sklearn(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> float:
    present = [i for i, c in enumerate(classes) if 0 < np.sum(y == c) < len(y)]
    if not present:
        return float("nan")
    if len(present) == len(classes) and len(classes) > 2:
        return float(roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
    # A class missing from y_true has no one-vs-rest curve; average the classes that have one.
    return float(np.mean([roc_auc_score(y == classes[i], proba[:, i]) for i in present]))


def curve_points(y_true, proba: np.ndarray, classes: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per class, the one-vs-rest ROC curve and the reliability diagram's bins, as short lists of numbers.

    ROC: `fpr`, `tpr` (thinned to at most ROC_MAX_POINTS, first and last point kept) and `auc`; a class without
    both positives and negatives has none. Calibration: quantile bins of the predicted probability, as in
    `plots.calibration_png` (up to 10, about 5 positives per bin), each with its mean `predicted` probability,
    `observed` share with the diagnosis and `n` patients; none for a class with fewer than
    CALIBRATION_MIN_POSITIVES positives.
    """
    y = np.asarray(y_true, dtype=object).astype(str)
    proba = np.asarray(proba, dtype=float)
    roc, calibration = {}, {}
    for j, label in enumerate(classes):
        positive = y == label
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, proba[:, j])
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_MAX_POINTS)).round().astype(int))
        roc[label] = {"fpr": _rounded(fpr[keep]), "tpr": _rounded(tpr[keep]),
                      "auc": float(roc_auc_score(positive, proba[:, j]))}  # fmt: skip
        if positive.sum() >= CALIBRATION_MIN_POSITIVES:
            calibration[label] = _reliability_bins(positive, proba[:, j], int(min(10, max(2, positive.sum() // 5))))
    return {"roc": roc, "calibration": calibration}


def _reliability_bins(positive: np.ndarray, p: np.ndarray, n_bins: int) -> dict[str, list[float]]:
    """The bins of `sklearn.calibration.calibration_curve(strategy="quantile")`, with the patients per bin."""
    edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
    bins = np.searchsorted(edges[1:-1], p)
    n = np.bincount(bins, minlength=n_bins)
    predicted = np.bincount(bins, weights=p, minlength=n_bins)
    observed = np.bincount(bins, weights=positive.astype(float), minlength=n_bins)
    filled = n > 0
    return {
        "predicted": _rounded(predicted[filled] / n[filled]),
        "observed": _rounded(observed[filled] / n[filled]),
        "n": [int(count) for count in n[filled]],
    }


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 4) for v in values]


def scalar_metrics(y_idx: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """The scalar metrics in plain numpy (same definitions as `classification_metrics`).

    Hundreds of times faster than the scikit-learn calls, which is what makes 500 bootstrap rounds, per-fold
    scores and subgroup tables cheap.
    """
    n, k = proba.shape
    pred = proba.argmax(axis=1)
    cm = np.bincount(y_idx * k + pred, minlength=k * k).reshape(k, k)
    tp, support, predicted = np.diag(cm).astype(float), cm.sum(axis=1), cm.sum(axis=0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(k), where=(support + predicted) > 0)
    onehot = np.zeros_like(proba)
    onehot[np.arange(n), y_idx] = 1.0
    eps = np.finfo(proba.dtype).eps
    p_true = np.clip(proba[np.arange(n), y_idx], eps, 1 - eps)
    return {
        "accuracy": float(tp.sum() / n),
        "balanced_accuracy": float(recall[support > 0].mean()),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
        "f1_macro": float(f1.mean()),
        "roc_auc_ovr_macro": roc_auc_ovr_macro(y_idx, proba),
        "brier": float(((proba - onehot) ** 2).sum(axis=1).mean()),
        "log_loss": float(-np.log(p_true).mean()),
    }


def roc_auc_ovr_macro(y_idx: np.ndarray, proba: np.ndarray) -> float:
    """One-vs-rest AUC per class by the rank (Mann-Whitney) formula, averaged over classes with both sides."""
    aucs = [_one_vs_rest_auc(y_idx == c, proba[:, c]) for c in range(proba.shape[1])]
    aucs = [auc for auc in aucs if not np.isnan(auc)]
    return float(np.mean(aucs)) if aucs else float("nan")


def bootstrap_ci(
    y_true,
    proba: np.ndarray,
    classes: list[str],
    *,
    groups=None,
    rounds: int = 500,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval per scalar metric, resampling independent units rather than rows.

    `groups` names each row's unit (aligned by position): rows of one patient, and rows with identical
    features (whatever their labels), must share one, as `train.union_groups` builds them. Each round
    draws as many units as there are, with replacement, and keeps every row of each unit drawn, so the
    width follows the number of units: a test set of 528 rows holding 15 distinct ones is as uncertain
    as 15 draws, not 528. Without `groups` every row is its own unit (the plain row bootstrap).
    """
    y_idx = encode_labels(y_true, classes)
    proba = np.asarray(proba, dtype=float)
    units = unit_codes(groups, len(y_idx))
    draws = {name: np.empty(rounds) for name in SCALAR_METRICS}
    everyone = np.arange(len(y_idx))
    for r, counts in enumerate(bootstrap_counts(int(units.max(initial=-1)) + 1, rounds=rounds, seed=seed)):
        rows = np.repeat(everyone, counts[units])
        for name, value in scalar_metrics(y_idx[rows], proba[rows]).items():
            draws[name][r] = value
    return {name: percentile_interval(values, level) for name, values in draws.items()}


def class_auc_intervals(
    y_true, proba: np.ndarray, classes: list[str], *, groups=None, rounds: int = 500, seed: int = 0, level: float = 0.95
) -> dict[str, dict[str, float | int]]:
    """Per condition, the one-vs-rest ROC-AUC on the test set with its bootstrap interval (same units as
    `bootstrap_ci`) and the number of patients with it: the macro average hides a condition the model cannot
    tell apart, and a condition with a handful of positives has an interval to match. Classes without both
    positives and negatives in the test set are left out."""
    y_idx = encode_labels(y_true, classes)
    proba = np.asarray(proba, dtype=float)
    units = unit_codes(groups, len(y_idx))
    everyone = np.arange(len(y_idx))
    present = [c for c in range(len(classes)) if 0 < int((y_idx == c).sum()) < len(y_idx)]
    draws = {c: np.empty(rounds) for c in present}
    for r, counts in enumerate(bootstrap_counts(int(units.max(initial=-1)) + 1, rounds=rounds, seed=seed)):
        rows = np.repeat(everyone, counts[units])
        for c in present:
            draws[c][r] = _one_vs_rest_auc(y_idx[rows] == c, proba[rows, c])  # NaN when a draw lacks a side
    result = {}
    for c in present:
        low, high = percentile_interval(draws[c], level)
        result[classes[c]] = {
            "auc": _one_vs_rest_auc(y_idx == c, proba[:, c]),
            "low": float(low),
            "high": float(high),
            "positives": int((y_idx == c).sum()),
        }
    return result


def _one_vs_rest_auc(positive: np.ndarray, score: np.ndarray) -> float:
    n, n_pos = len(positive), int(positive.sum())
    if n_pos in (0, n):
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos)))


def unit_codes(groups, n: int) -> np.ndarray:
    """0..k-1 per row for the bootstrap's units; every row its own unit when `groups` is None."""
    if groups is None:
        return np.arange(n)
    codes = pd.factorize(np.asarray(groups, dtype=object))[0]
    if len(codes) != n or (codes < 0).any():
        raise ValueError(f"groups needs one id per row ({n} rows), none missing.")
    return codes


def bootstrap_counts(n_units: int, *, rounds: int, seed: int) -> Iterator[np.ndarray]:
    """Per resample, how many times each unit is drawn in n_units draws with replacement (one round at a time)."""
    rng = np.random.default_rng(seed)
    for _ in range(rounds):
        yield np.bincount(rng.integers(0, max(n_units, 1), n_units), minlength=n_units)


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """The central `level` share of the finite replicates; NaN for both ends when there are none."""
    finite = np.asarray(replicates, dtype=float)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return (float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return (float(low), float(high))


def age_band(age: pd.Series) -> pd.Series:
    """18-39, 40-59, 60-74, 75+; "under 18" and "unknown" for the rest."""
    age = pd.to_numeric(age, errors="coerce")
    bands = pd.Series("unknown", index=age.index, dtype=object)
    bands[age < 18] = "under 18"
    for low, high, label in AGE_BANDS:
        bands[(age >= low) & (age < high)] = label
    return bands


def subgroup_metrics(
    X: pd.DataFrame, y_true, proba: np.ndarray, classes: list[str]
) -> dict[str, dict[str, dict[str, float]]]:
    """Test-set figures by sex and by age band, when X carries raw "sex" / "age" columns.

    A small subgroup gets wide error bars, so `n` is reported beside every figure; a metric that cannot
    be computed in a subgroup (no class contrast) is NaN.
    """
    y_idx = encode_labels(y_true, classes)
    proba = np.asarray(proba, dtype=float)
    splits: dict[str, pd.Series] = {}
    if "sex" in X.columns:
        splits["sex"] = X["sex"].astype(object).where(X["sex"].notna(), "unknown").astype(str)
    if "age" in X.columns:
        splits["age_band"] = age_band(X["age"])
    result: dict[str, dict[str, dict[str, float]]] = {}
    for split, labels in splits.items():
        labels = labels.to_numpy()
        result[split] = {}
        for value in sorted(set(labels)):
            rows = labels == value
            figures = scalar_metrics(y_idx[rows], proba[rows])
            result[split][str(value)] = {
                "n": float(rows.sum()),
                **{k: figures[k] for k in ("accuracy", "balanced_accuracy", "roc_auc_ovr_macro", "brier")},
            }
    return result


def risk_levels(y_true, proba: np.ndarray, classes: list[str], thresholds: tuple[float, float]) -> dict[str, Any]:
    """Patients per risk level (risk = 1 - P(healthy)) and how many of them were in fact not healthy.

    Empty when there is no "healthy" class. A well-calibrated model shows a rising observed share.
    """
    lowered = [c.lower() for c in classes]
    if "healthy" not in lowered:
        return {}
    healthy = lowered.index("healthy")
    risk = 1.0 - np.asarray(proba, dtype=float)[:, healthy]
    ill = encode_labels(y_true, classes) != healthy
    low, high = thresholds
    levels = np.select([risk < low, risk < high], ["low", "moderate"], "high")
    table = {}
    for level in ("low", "moderate", "high"):
        rows = levels == level
        table[level] = {
            "n": int(rows.sum()),
            "mean_predicted_risk": float(risk[rows].mean()) if rows.any() else float("nan"),
            "observed_not_healthy": float(ill[rows].mean()) if rows.any() else float("nan"),
        }
    return table


def permutation_importance_auc(
    predict: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame, y_idx: np.ndarray, *, repeats: int, seed: int
) -> dict[str, tuple[float, float]]:
    """Mean and std drop in macro ROC-AUC when one raw column is shuffled, per column, most important first.

    Raw columns (not one-hot or indicator columns), so the figure answers "how much does the model lean on
    this lab value". All repeats of one column are predicted in one call.
    """
    rng = np.random.default_rng(seed)
    if len(X) > PERMUTATION_MAX_ROWS:
        keep = np.sort(rng.choice(len(X), PERMUTATION_MAX_ROWS, replace=False))
        X, y_idx = X.iloc[keep].reset_index(drop=True), y_idx[keep]
    if repeats < 1 or len(X) == 0:
        return {}
    base = roc_auc_ovr_macro(y_idx, predict(X))
    n = len(X)
    stacked = pd.concat([X] * repeats, ignore_index=True)
    drops: dict[str, tuple[float, float]] = {}
    for column in X.columns:
        shuffled = stacked.copy()
        values = X[column].to_numpy()
        shuffled[column] = np.concatenate([values[rng.permutation(n)] for _ in range(repeats)])
        proba = predict(shuffled)
        scores = [base - roc_auc_ovr_macro(y_idx, proba[r * n : (r + 1) * n]) for r in range(repeats)]
        drops[column] = (float(np.mean(scores)), float(np.std(scores)))
    return dict(sorted(drops.items(), key=lambda item: -item[1][0]))
