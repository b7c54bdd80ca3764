"""Audit and honestly evaluate any labelled CSV; where it has duplicate rows, the naive (leaky) figure beside.

    python -m mltraining.ml.evaluate_csv FILE --target COLUMN [--test FILE] [--candidates a,b] [--folds 5]
        [--seed 0] [--calibration auto|isotonic|sigmoid]
    python manage.py evaluate_csv FILE --target COLUMN [...]  (the same)

Every numeric column except the target is a feature. The candidates are compared by cross-validation
grouped by identical rows (no copy of a row on both sides) and chosen by `train.choose_candidate`.
Without `--test`, `train` holds out a grouped fifth of FILE and reports on it. With `--test`, the choice
and the calibrated refit use all of FILE, and the figures are those on the test file. Intervals resample
the independent units (distinct rows), not the rows. Only when FILE has duplicate rows are naive figures
(rows shuffled into folds without grouping, as most tutorials do) shown, labelled as inflated by leakage.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split
from threadpoolctl import threadpool_limits

from mltraining.ml.audit import DataAudit, feature_vector_groups
from mltraining.ml.candidates import CANDIDATES, build_pipeline
from mltraining.ml.metrics import bootstrap_ci, classification_metrics, scalar_metrics
from mltraining.ml.train import (
    CandidateResult,
    Selection,
    TrainingConfig,
    TrainingResult,
    aligned_proba,
    cross_validate_candidate,
    select_on_all_rows,
    train,
)

DEFAULT_CANDIDATES = tuple(CANDIDATES)
BOOTSTRAP_ROUNDS = 500
# `--calibration auto` follows scikit-learn's advice (CalibratedClassifierCV): isotonic calibration overfits with
# far fewer than 1,000 calibration samples, so the sigmoid (Platt) below that. Isotonic steps also tie scores:
# on Pima's 200 training rows they cost the chosen model 0.005 of test ROC-AUC (bench/README.md).
ISOTONIC_MIN_ROWS = 1000
CALIBRATIONS = ("auto", "isotonic", "sigmoid")


@dataclass
class HeldOut:
    """The chosen model's figures on rows it never saw, with intervals over independent units."""

    source: str  # "a held-out part of FILE" or the test file's name
    rows: int
    units: int  # distinct rows: what the bootstrap resamples
    metrics: dict[str, Any]
    ci: dict[str, tuple[float, float]]  # resampling units
    row_ci: dict[str, tuple[float, float]] | None  # resampling rows, as if copies were independent (duplicates only)
    baseline: dict[str, Any]  # the dummy, fitted on the same training rows
    seen_in_training: int | None = None  # test-file rows whose features occur in the training file


@dataclass
class Naive:
    cv: list[CandidateResult]  # the same candidates, rows shuffled into folds without grouping
    holdout_accuracy: float  # the chosen candidate on a random 80/20 split


@dataclass
class CsvEvaluation:
    path: Path
    target: str
    trained: TrainingResult | Selection  # the audit, the comparison and the choice
    calibration: str  # of the chosen model's refit
    held_out: HeldOut
    naive: Naive | None  # only when FILE has duplicate rows


def load_csv(path: Path, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric feature columns and the label; rows without a label are dropped."""
    frame = pd.read_csv(path)
    if target not in frame.columns:
        raise ValueError(f"Column {target!r} not in {path.name}; columns: {', '.join(frame.columns)}")
    frame = frame[frame[target].notna()]
    X = frame.drop(columns=[target]).select_dtypes(include="number")
    if X.shape[1] == 0:
        raise ValueError(f"{path.name} has no numeric feature columns besides {target!r}.")
    return X.reset_index(drop=True), frame[target].astype(str).reset_index(drop=True)


def evaluate(
    path: Path,
    target: str,
    *,
    test: Path | None = None,
    candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
    folds: int = 5,
    seed: int = 0,
    calibration: str = "auto",
) -> CsvEvaluation:
    X, y = load_csv(Path(path), target)
    numeric = list(X.columns)
    if calibration == "auto":
        distinct = len(np.unique(feature_vector_groups(X)))  # copies add no calibration samples
        calibration = "isotonic" if distinct >= ISOTONIC_MIN_ROWS else "sigmoid"
    config = TrainingConfig(
        candidates=tuple(candidates), cv_folds=folds, random_state=seed, bootstrap_rounds=BOOTSTRAP_ROUNDS,
        permutation_repeats=2, calibration=calibration,
    )  # fmt: skip
    if test is None:
        trained: TrainingResult | Selection = train(X, y, numeric=numeric, categorical=[], config=config)
        held_out = _held_out_part(trained, X, y, Path(path), seed)
    else:
        trained = select_on_all_rows(X, y, numeric=numeric, categorical=[], config=config)
        held_out = _test_file(trained, X, y, Path(test), target, seed)
    naive = _naive(trained, X, y, folds, seed) if trained.audit.has_duplicates else None
    return CsvEvaluation(Path(path), target, trained, config.calibration, held_out, naive)


def _held_out_part(result: TrainingResult, X: pd.DataFrame, y: pd.Series, path: Path, seed: int) -> HeldOut:
    """The figures `train` measured on its grouped held-out part, and the row bootstrap beside them."""
    y_test = y.iloc[result.test_index]
    proba = aligned_proba(result.model, X.iloc[result.test_index][result.feature_names], result.classes)
    return HeldOut(
        source=f"a held-out part of {path.name}",
        rows=result.n_test,
        units=len(np.unique(result.test_groups)),
        metrics=result.test_metrics,
        ci=result.test_ci,
        row_ci=_row_ci(y_test, proba, result.classes, result.test_groups, seed),
        baseline=result.baseline_test_metrics,
    )


def _test_file(selection: Selection, X: pd.DataFrame, y: pd.Series, test: Path, target: str, seed: int) -> HeldOut:
    """The selected model and the dummy, both fitted on all of FILE, scored on the test file."""
    X_test, y_test = load_csv(test, target)
    missing = [c for c in X.columns if c not in X_test.columns]
    if missing:
        raise ValueError(f"{test.name} lacks feature columns of the training file: {', '.join(missing)}")
    X_test = X_test[list(X.columns)]
    units = feature_vector_groups(X_test)
    # Hashed together so that both files' values have one dtype per column.
    together = feature_vector_groups(pd.concat([X, X_test], ignore_index=True))
    seen = int(np.isin(together[len(X) :], together[: len(X)]).sum())
    classes = selection.classes
    proba = aligned_proba(selection.model, X_test, classes)
    dummy = build_pipeline(CANDIDATES["dummy"](seed), list(X.columns), []).fit(X, y)
    return HeldOut(
        source=test.name,
        rows=len(X_test),
        units=len(np.unique(units)),
        metrics=classification_metrics(y_test, proba, classes),
        ci=bootstrap_ci(y_test, proba, classes, groups=units, rounds=BOOTSTRAP_ROUNDS, seed=seed),
        row_ci=_row_ci(y_test, proba, classes, units, seed),
        baseline=classification_metrics(y_test, aligned_proba(dummy, X_test, classes), classes),
        seen_in_training=seen,
    )


def _row_ci(y_true, proba, classes, units: np.ndarray, seed: int) -> dict[str, tuple[float, float]] | None:
    """The plain row bootstrap, for contrast, when some rows are copies (otherwise it is the same interval)."""
    if len(np.unique(units)) == len(units):
        return None
    return bootstrap_ci(y_true, proba, classes, rounds=BOOTSTRAP_ROUNDS, seed=seed)


def _naive(trained: TrainingResult | Selection, X: pd.DataFrame, y: pd.Series, folds: int, seed: int) -> Naive:
    numeric = list(X.columns)
    with threadpool_limits(limits=1):
        naive_folds = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y))
        cv = [
            cross_validate_candidate(r.name, X, y, naive_folds, trained.classes, numeric, [], seed)
            for r in trained.candidates
            if not r.error
        ]
        fit_rows, test_rows = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
        model = build_pipeline(CANDIDATES[trained.chosen](seed), numeric, [])
        model.fit(X.iloc[fit_rows], y.iloc[fit_rows])
        proba = aligned_proba(model, X.iloc[test_rows], trained.classes)
    codes = pd.Categorical(y.iloc[test_rows], categories=trained.classes).codes.astype(np.int64)
    return Naive(cv, scalar_metrics(codes, proba)["accuracy"])


def format_report(evaluation: CsvEvaluation) -> str:
    """Plain text: the data, the audit's warnings, the grouped figures, then the naive ones (duplicates only)."""
    lines = _data_lines(evaluation) + _honest_lines(evaluation) + _held_out_lines(evaluation)
    return "\n".join(lines + _naive_lines(evaluation)) + "\n"


def distinct_rows(audit: DataAudit) -> int:
    """Distinct feature vectors (rows identical in every feature are one, whatever their labels)."""
    return len(np.unique(audit.duplicate_groups))


def _data_lines(evaluation: CsvEvaluation) -> list[str]:
    audit = evaluation.trained.audit
    share = audit.duplicate_rows / audit.rows
    lines = [
        f"Evaluation of {evaluation.path.name} (target: {evaluation.target})",
        "",
        f"Rows: {audit.rows:,}. Unique rows: {audit.unique_rows:,}. Exact duplicates of an earlier row: "
        f"{audit.duplicate_rows:,} ({share:.1%}).",
    ]
    distinct = distinct_rows(audit)
    if distinct < audit.unique_rows:
        lines.append(f"Distinct feature rows: {distinct:,} (some identical feature rows carry different labels).")
    if share > 0.5:
        lines.append(f"Most rows are duplicates: {share:.0%} of the rows repeat an earlier row exactly.")
    lines += [f"Features: {audit.n_features} numeric columns.", "", "Label        rows  unique  duplicate share"]
    for label, count in audit.label_counts.items():
        unique = audit.unique_rows_per_label.get(label, 0)
        lines.append(f"{label[:10]:<10} {count:>6} {unique:>7} {(count - unique) / count:>16.1%}")
    lines += ["", "Audit warnings:"]
    lines += [f"- {w}" for w in audit.warnings] or ["- none"]
    return lines


def _cv_table(results: list[CandidateResult]) -> list[str]:
    metrics = ("accuracy", "balanced_accuracy", "roc_auc_ovr_macro", "brier")
    lines = [f"{'candidate':<24} {'accuracy':>15} {'balanced acc.':>15} {'macro ROC-AUC':>15} {'Brier score':>15}"]
    for r in results:
        if r.error:
            lines.append(f"{r.name:<24} failed: {r.error}")
            continue
        cells = [f"{r.cv_mean[m]:.3f} ± {r.cv_std[m]:.3f}" for m in metrics]
        lines.append(f"{r.name:<24} " + " ".join(f"{c:>15}" for c in cells))
    return lines


def _honest_lines(evaluation: CsvEvaluation) -> list[str]:
    trained = evaluation.trained
    chosen = next(r for r in trained.candidates if r.name == trained.chosen)
    folds = len(chosen.cv_scores["accuracy"])
    part = "held-out split and cross-validation"
    if isinstance(trained, Selection):
        part = "cross-validation over all of it"
    if trained.groups_in_split == "row":
        grouping = "by row (no two rows share their features, so no copy can sit on both sides)"
    else:
        grouping = f"by {trained.groups_in_split} (no copy of a row on both sides)"
    lines = ["", f"HONEST: {part}, {folds}-fold, grouped {grouping}"]
    lines += _cv_table(trained.candidates)
    scores = ", ".join(f"{s:.2f}" for s in chosen.cv_scores["accuracy"])
    lines += [
        f"Chosen: {trained.reason}",
        f"Grouped CV accuracy ({trained.chosen}): {chosen.cv_mean['accuracy']:.3f} (folds: {scores})",
    ]
    return lines


def _held_out_lines(evaluation: CsvEvaluation) -> list[str]:
    held_out, chosen = evaluation.held_out, evaluation.trained.chosen
    m, ci = held_out.metrics, held_out.ci
    resampled = "the distinct rows, each with all its copies" if held_out.units < held_out.rows else "the rows"
    lines = [
        "",
        f"Test on {held_out.source}: {held_out.rows:,} rows, {held_out.units:,} distinct. The model: {chosen} "
        f"with {evaluation.calibration} calibration (--calibration auto: sigmoid below {ISOTONIC_MIN_ROWS:,} distinct "
        "training rows). "
        f"The 95 % intervals resample {resampled}.",
    ]
    if held_out.seen_in_training is not None:
        lines.append(f"Test rows whose features also occur in the training file: {held_out.seen_in_training:,}.")
    lines += [f"{'figure':<18} {'chosen model':>12} {'95 % CI':>13} {'dummy':>7}"]
    for name, label in (
        ("accuracy", "accuracy"), ("balanced_accuracy", "balanced acc."), ("roc_auc_ovr_macro", "macro ROC-AUC"),
        ("brier", "Brier score"),
    ):  # fmt: skip
        low, high = ci[name]
        lines.append(f"{label:<18} {m[name]:>12.3f} {f'{low:.3f}-{high:.3f}':>13} {held_out.baseline[name]:>7.3f}")
    if held_out.row_ci:
        lines.append(_width_line(held_out))
    return lines


def _width_line(held_out: HeldOut) -> str:
    (glow, ghigh), (rlow, rhigh) = held_out.ci["roc_auc_ovr_macro"], held_out.row_ci["roc_auc_ovr_macro"]
    return (
        f"Resampling the {held_out.rows:,} rows as if each were independent would give a macro ROC-AUC interval of "
        f"{rlow:.3f}-{rhigh:.3f} (width {rhigh - rlow:.3f}) instead of {glow:.3f}-{ghigh:.3f} (width "
        f"{ghigh - glow:.3f}) over the {held_out.units:,} distinct rows: copies are not evidence."
    )


def _naive_lines(evaluation: CsvEvaluation) -> list[str]:
    trained, naive = evaluation.trained, evaluation.naive
    audit = trained.audit
    if naive is None:
        return [
            "",
            f"No duplicate rows: all {audit.rows:,} rows are distinct, so shuffling rows into folds without "
            "grouping would give the same figures; there is no naive comparison to show.",
        ]
    lines = [
        "",
        f"NAIVE (INFLATED BY LEAKAGE): rows shuffled into folds without grouping, so copies of the "
        f"{distinct_rows(audit):,} distinct rows among {audit.rows:,} sit on both sides",
    ]
    lines += _cv_table(naive.cv)
    chosen = next((r for r in naive.cv if r.name == trained.chosen), None)
    if chosen:
        lines.append(f"Naive CV accuracy ({trained.chosen}): {chosen.cv_mean['accuracy']:.3f}")
    lines.append(f"Naive random 80/20 split accuracy ({trained.chosen}): {naive.holdout_accuracy:.3f}")
    if chosen:
        honest_acc = next(r for r in trained.candidates if r.name == trained.chosen).cv_mean["accuracy"]
        lines += [
            "",
            f"The naive figure is {chosen.cv_mean['accuracy'] - honest_acc:+.3f} accuracy above the grouped one. "
            "Report the grouped figure; the naive one measures how well the model remembers rows it has "
            "already seen.",
        ]
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options, shared by `python -m` and the management command."""
    parser.add_argument("file", type=Path, help="the labelled CSV to train (and, without --test, to test) on")
    parser.add_argument("--target", required=True, help="the label column")
    parser.add_argument("--test", type=Path, help="a separate labelled CSV to report on (same columns)")
    parser.add_argument("--candidates", default=",".join(DEFAULT_CANDIDATES), help=f"from: {', '.join(CANDIDATES)}")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--calibration", choices=CALIBRATIONS, default="auto", help="of the chosen model's refit (default: by size)"
    )


def report(
    *, file: Path, target: str, test: Path | None, candidates: str, folds: int, seed: int, calibration: str = "auto"
) -> str:
    """The report for parsed options; bad input (no such file, column or candidate) raises ValueError."""
    names = tuple(n.strip() for n in candidates.split(",") if n.strip())
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidates {unknown}; choose from {', '.join(CANDIDATES)}")
    for path in (file, test):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"no such file: {path}")
    test = Path(test) if test else None
    evaluation = evaluate(
        Path(file), target, test=test, candidates=names, folds=folds, seed=seed, calibration=calibration
    )
    return format_report(evaluation)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        text = report(**vars(args))
    except ValueError as exc:  # bad input (no such column, too few rows for the folds): a message, not a traceback
        parser.error(str(exc))
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
