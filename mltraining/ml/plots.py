"""PNG figures for the model card, worded for a clinician rather than a data scientist.

Built on `matplotlib.figure.Figure` directly, never pyplot: no global state, so two training runs in
one worker process cannot draw into each other's figures, and no GUI backend is ever touched (PNG is
rendered by Agg).
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import roc_auc_score, roc_curve

DPI = 110
MAX_BARS = 15


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _title(ax, title: str, width: int = 60) -> None:
    ax.set_title("\n".join(textwrap.wrap(title, width)), fontsize=11)


def confusion_matrix_png(matrix: Sequence[Sequence[int]], classes: list[str]) -> bytes:
    """Rows: the recorded diagnosis; columns: the model's most likely class; shade = share of the row."""
    counts = np.asarray(matrix, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = max(4.5, 0.8 * len(classes) + 2)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            colour = "white" if shares[i, j] > 0.6 else "black"
            ax.text(
                j, i, f"{int(counts[i, j])}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=8, color=colour
            )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("Model's most likely diagnosis")
    ax.set_ylabel("Recorded diagnosis")
    _title(ax, "Held-out patients: recorded diagnosis against the model's most likely one (count and row share)")
    fig.colorbar(image, ax=ax, label="Share of patients with that recorded diagnosis")
    return _png(fig)


def roc_curves_png(y_true, proba: np.ndarray, classes: list[str]) -> bytes:
    """One ROC curve per diagnosis against all others, with its area under the curve."""
    y = np.asarray(y_true, dtype=object).astype(str)
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    for j, label in enumerate(classes):
        positive = y == label
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, proba[:, j])
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(positive, proba[:, j]):.2f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="Chance (AUC 0.50)")
    ax.set_xlabel("False positive rate (1 - specificity)")
    ax.set_ylabel("True positive rate (sensitivity)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    _title(ax, "How well the model tells each diagnosis apart from all others (held-out patients)")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def calibration_png(y_true, proba: np.ndarray, classes: list[str]) -> bytes:
    """Reliability diagram: among patients given probability p for a diagnosis, how many had it."""
    y = np.asarray(y_true, dtype=object).astype(str)
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="Perfectly calibrated")
    for j, label in enumerate(classes):
        positive = y == label
        if positive.sum() < 5 or positive.all():
            continue  # too few patients with the diagnosis to draw a meaningful curve
        bins = int(min(10, max(2, positive.sum() // 5)))
        observed, predicted = calibration_curve(positive, proba[:, j], n_bins=bins, strategy="quantile")
        ax.plot(predicted, observed, marker="o", markersize=3, label=label)
    ax.set_xlabel("Predicted probability of the diagnosis")
    ax.set_ylabel("Observed share of patients who had it")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    _title(ax, "Can the probabilities be taken at face value? (held-out patients, grouped by predicted probability)")
    ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def importances_png(importances: dict[str, float], title: str) -> bytes:
    """Horizontal bars, most important at the top; at most MAX_BARS features."""
    items = sorted(importances.items(), key=lambda item: -item[1])[:MAX_BARS]
    fig = Figure(figsize=(7, max(2.5, 0.35 * len(items) + 1.2)))
    ax = fig.subplots()
    if not items:
        ax.text(0.5, 0.5, "No importance figures for this model", ha="center", va="center")
        ax.set_axis_off()
    else:
        names, values = zip(*reversed(items), strict=True)
        ax.barh(names, values, color="#4477aa")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel("Importance (larger = the model relies on it more)")
    _title(ax, title, width=70)
    return _png(fig)


def cv_comparison_png(candidates: list, metric: str = "roc_auc_ovr_macro") -> bytes:
    """Each candidate's score in every cross-validation fold (dots) and its mean with one std (bar)."""
    labels = {"roc_auc_ovr_macro": "Macro ROC-AUC", "balanced_accuracy": "Balanced accuracy", "f1_macro": "Macro F1",
              "log_loss": "Log loss (lower is better)", "accuracy": "Accuracy"}  # fmt: skip
    fig = Figure(figsize=(7.5, 0.45 * max(len(candidates), 3) + 1.5))
    ax = fig.subplots()
    names = []
    for i, result in enumerate(candidates):
        scores = result.cv_scores.get(metric, []) if not result.error else []
        names.append(result.name + (" (failed)" if result.error else ""))
        if not scores:
            continue
        ax.scatter(scores, [i] * len(scores), color="#999999", s=14, zorder=2)
        ax.errorbar(
            result.cv_mean[metric], i, xerr=result.cv_std[metric], fmt="o", color="#cc3311", capsize=4, zorder=3
        )
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel(labels.get(metric, metric))
    _title(ax, "Candidate models compared on the training patients (grouped cross-validation: dots = folds, "
              "red = mean ± 1 std)", width=70)  # fmt: skip
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)
