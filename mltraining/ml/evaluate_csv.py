"""Audit and honestly evaluate any labelled CSV, with the naive (leaky) figure beside it for contrast.

    python -m mltraining.ml.evaluate_csv FILE --target COLUMN [--candidates a,b] [--folds 5] [--seed 0]

Every numeric column except the target is a feature. The honest figures come from `train`: its split
and cross-validation are grouped by identical rows, so no copy of a row sits on both sides. The naive
figures shuffle rows without grouping, as most tutorials do, and are labelled as inflated by leakage.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split
from threadpoolctl import threadpool_limits

from mltraining.ml.candidates import CANDIDATES, build_pipeline
from mltraining.ml.metrics import scalar_metrics
from mltraining.ml.train import (
    CandidateResult,
    TrainingConfig,
    TrainingResult,
    aligned_proba,
    cross_validate_candidate,
    train,
)

DEFAULT_CANDIDATES = tuple(CANDIDATES)


@dataclass
class CsvEvaluation:
    path: Path
    target: str
    honest: TrainingResult
    naive_cv: list[CandidateResult]  # the same candidates, rows shuffled into folds without grouping
    naive_holdout_accuracy: float  # the chosen candidate on a random 80/20 split


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
    path: Path, target: str, *, candidates: tuple[str, ...] = DEFAULT_CANDIDATES, folds: int = 5, seed: int = 0
) -> CsvEvaluation:
    X, y = load_csv(Path(path), target)
    numeric = list(X.columns)
    config = TrainingConfig(
        candidates=tuple(candidates), cv_folds=folds, random_state=seed, bootstrap_rounds=200, permutation_repeats=2
    )
    honest = train(X, y, numeric=numeric, categorical=[], config=config)
    with threadpool_limits(limits=1):
        naive_folds = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y))
        naive = [
            cross_validate_candidate(r.name, X, y, naive_folds, honest.classes, numeric, [], seed)
            for r in honest.candidates
            if not r.error
        ]
        fit_rows, test_rows = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
        model = build_pipeline(CANDIDATES[honest.chosen](seed), numeric, [])
        model.fit(X.iloc[fit_rows], y.iloc[fit_rows])
        proba = aligned_proba(model, X.iloc[test_rows], honest.classes)
    codes = pd.Categorical(y.iloc[test_rows], categories=honest.classes).codes.astype(np.int64)
    holdout = scalar_metrics(codes, proba)["accuracy"]
    return CsvEvaluation(Path(path), target, honest, naive, holdout)


def format_report(evaluation: CsvEvaluation) -> str:
    """Plain text: the data, the audit's warnings, the grouped figures, then the naive ones."""
    return "\n".join(_data_lines(evaluation) + _honest_lines(evaluation) + _naive_lines(evaluation)) + "\n"


def _data_lines(evaluation: CsvEvaluation) -> list[str]:
    audit = evaluation.honest.audit
    share = audit.duplicate_rows / audit.rows
    lines = [
        f"Evaluation of {evaluation.path.name} (target: {evaluation.target})",
        "",
        f"Rows: {audit.rows:,}. Unique rows: {audit.unique_rows:,}. Exact duplicates of an earlier row: "
        f"{audit.duplicate_rows:,} ({share:.1%}).",
    ]
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
    lines = [f"{'candidate':<24} {'accuracy':>15} {'balanced acc.':>15} {'macro ROC-AUC':>15}"]
    for r in results:
        if r.error:
            lines.append(f"{r.name:<24} failed: {r.error}")
            continue
        cells = [
            f"{r.cv_mean[m]:.3f} ± {r.cv_std[m]:.3f}" for m in ("accuracy", "balanced_accuracy", "roc_auc_ovr_macro")
        ]
        lines.append(f"{r.name:<24} " + " ".join(f"{c:>15}" for c in cells))
    return lines


def _honest_lines(evaluation: CsvEvaluation) -> list[str]:
    result = evaluation.honest
    chosen = next(r for r in result.candidates if r.name == result.chosen)
    test, ci = result.test_metrics, result.test_ci
    folds = len(chosen.cv_scores["accuracy"])
    lines = [
        "",
        f"HONEST: split and {folds}-fold cross-validation grouped by {result.groups_in_split} "
        "(no copy of a row on both sides)",
    ]
    lines += _cv_table(result.candidates)
    scores = ", ".join(f"{s:.2f}" for s in chosen.cv_scores["accuracy"])
    lines += [
        f"Chosen: {result.reason}",
        f"Grouped CV accuracy ({result.chosen}): {chosen.cv_mean['accuracy']:.3f} (folds: {scores})",
        f"Held-out test ({result.n_test:,} rows, calibrated {result.chosen}): accuracy {test['accuracy']:.3f} "
        f"(95 % CI {ci['accuracy'][0]:.2f}-{ci['accuracy'][1]:.2f}), balanced accuracy "
        f"{test['balanced_accuracy']:.3f}, macro ROC-AUC {test['roc_auc_ovr_macro']:.3f}; "
        f"dummy accuracy {result.baseline_test_metrics['accuracy']:.3f}",
    ]
    return lines


def _naive_lines(evaluation: CsvEvaluation) -> list[str]:
    result = evaluation.honest
    naive = next((r for r in evaluation.naive_cv if r.name == result.chosen), None)
    lines = ["", "NAIVE (INFLATED BY LEAKAGE): rows shuffled into folds without grouping, copies on both sides"]
    lines += _cv_table(evaluation.naive_cv)
    if naive:
        lines.append(f"Naive CV accuracy ({result.chosen}): {naive.cv_mean['accuracy']:.3f}")
    lines.append(f"Naive random 80/20 split accuracy ({result.chosen}): {evaluation.naive_holdout_accuracy:.3f}")
    if naive:
        honest_acc = next(r for r in result.candidates if r.name == result.chosen).cv_mean["accuracy"]
        gap = naive.cv_mean["accuracy"] - honest_acc
        lines += [
            "",
            f"The naive figure is {gap:+.3f} accuracy above the grouped one. Report the grouped figure; the naive "
            "one measures how well the model remembers rows it has already seen.",
        ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--target", required=True, help="the label column")
    parser.add_argument("--candidates", default=",".join(DEFAULT_CANDIDATES), help=f"from: {', '.join(CANDIDATES)}")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = tuple(n.strip() for n in args.candidates.split(",") if n.strip())
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown}; choose from {', '.join(CANDIDATES)}")
    if not args.file.is_file():
        parser.error(f"no such file: {args.file}")
    try:
        evaluation = evaluate(args.file, args.target, candidates=names, folds=args.folds, seed=args.seed)
    except ValueError as exc:  # bad input (no such column, too few rows for the folds): a message, not a traceback
        parser.error(str(exc))
    sys.stdout.write(format_report(evaluation))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
