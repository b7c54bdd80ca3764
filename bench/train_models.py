"""Benchmark: the full model comparison (every candidate, 5-fold grouped CV, calibrated refit, evaluation).

    .venv/bin/python bench/train_models.py [--patients 10000] [--seed 0]

Target (DESIGN.md): on 10,000 demo patients, under 2 minutes on 2 cores, single-threaded (OMP_NUM_THREADS=1,
n_jobs=1). No Django and no database: the cohort comes straight from `patients.demo_cohort` and is turned
into one row per patient here (latest value of every analyte, sex, age; the label is the first confirmed
diagnosis in a fixed priority order, else "healthy"). Writes the "Model training" section of bench/RESULTS.md.
"""

from __future__ import annotations

import os

# Before numpy is imported, so OpenMP and BLAS start with one thread (train() also limits them at run time).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results import machine_summary, write_section  # noqa: E402

from mltraining.ml.train import TrainingConfig, TrainingResult, train  # noqa: E402
from patients.demo_cohort import Cohort, generate_cohort  # noqa: E402

LABEL_PRIORITY = (
    "ckd", "diabetes", "thalassemia_trait", "iron_deficiency", "thrombocytopenia", "dyslipidemia", "prediabetes"
)  # fmt: skip
TODAY = datetime.date(2025, 1, 1)  # fixed, so every run builds the same cohort
TARGET_SECONDS = 120


def cohort_frame(cohort: Cohort) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """One row per patient: latest value per analyte, age, sex; the label; the numeric column names."""
    obs = pd.DataFrame(
        {"patient": cohort.obs_patient, "analyte": cohort.obs_analyte, "value": cohort.obs_value, "t": cohort.obs_time}
    )
    latest = obs.sort_values("t").drop_duplicates(["patient", "analyte"], keep="last")
    wide = latest.pivot(index="patient", columns="analyte", values="value").reindex(range(cohort.n_patients))
    analytes = sorted(wide.columns)
    frame = wide[analytes].reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    birth = pd.to_datetime(cohort.birth_date)
    frame["age"] = ((pd.Timestamp(TODAY) - birth).days / 365.25).to_numpy()
    frame["sex"] = cohort.sex
    return frame, cohort_labels(cohort), [str(a) for a in analytes] + ["age"]


def cohort_labels(cohort: Cohort) -> pd.Series:
    labels = np.full(cohort.n_patients, "healthy", dtype=object)
    confirmed = cohort.cond_confirmed.astype(bool)
    # Lowest priority first, so a higher-priority diagnosis overwrites it.
    for key in reversed(LABEL_PRIORITY):
        labels[cohort.cond_patient[confirmed & (cohort.cond_key == key)]] = key
    return pd.Series(labels)


def report(result: TrainingResult, n: int, seconds: float, build_seconds: float) -> str:
    rows = [
        "| candidate | CV macro ROC-AUC (mean ± std) | CV balanced accuracy | CV time s |",
        "|---|---|---|---:|",
    ]
    for c in result.candidates:
        if c.error:
            rows.append(f"| {c.name} | failed: {c.error} | | {c.fit_seconds:.1f} |")
            continue
        auc = f"{c.cv_mean['roc_auc_ovr_macro']:.3f} ± {c.cv_std['roc_auc_ovr_macro']:.3f}"
        bal = f"{c.cv_mean['balanced_accuracy']:.3f} ± {c.cv_std['balanced_accuracy']:.3f}"
        rows.append(f"| {c.name} | {auc} | {bal} | {c.fit_seconds:.1f} |")
    t = result.timings
    test, base, ci = result.test_metrics, result.baseline_test_metrics, result.test_ci["roc_auc_ovr_macro"]
    verdict = "met" if seconds < TARGET_SECONDS else "NOT met"
    return "\n".join(
        [
            machine_summary(),
            "",
            f"Full comparison (`bench/train_models.py`): {n:,} demo patients (one row each: latest value of "
            f"{len(result.numeric) - 1} analytes, age, sex; {len(result.classes)} classes), "
            f"{len(result.candidates)} candidates, {result.config.cv_folds}-fold grouped CV on the "
            f"{result.n_train:,} training rows, calibrated refit of the winner, evaluation on {result.n_test:,} "
            f"held-out patients (bootstrap {result.config.bootstrap_rounds} rounds, permutation importance "
            f"{result.config.permutation_repeats} repeats, 5 plots). OMP_NUM_THREADS=1, n_jobs=1.",
            "",
            *rows,
            "",
            f"Chosen: {result.chosen}. Held-out macro ROC-AUC {test['roc_auc_ovr_macro']:.3f} "
            f"(95 % CI {ci[0]:.3f}-{ci[1]:.3f}) against the dummy's {base['roc_auc_ovr_macro']:.3f}; balanced "
            f"accuracy {test['balanced_accuracy']:.3f} against {base['balanced_accuracy']:.3f}.",
            "",
            "| step | seconds |",
            "|---|---:|",
            *[f"| {k} | {v:.1f} |" for k, v in t.items()],
            f"| building the frame from the cohort (not part of training) | {build_seconds:.1f} |",
            "",
            f"Total training {seconds:.1f} s against the target of {TARGET_SECONDS} s: {verdict} "
            f"({seconds / TARGET_SECONDS:.2f} of the budget).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()

    started = time.perf_counter()
    X, y, numeric = cohort_frame(generate_cohort(args.patients, seed=args.seed, today=TODAY))
    build_seconds = time.perf_counter() - started
    print(f"cohort frame: {X.shape[0]:,} rows x {X.shape[1]} columns in {build_seconds:.1f} s", flush=True)
    print(y.value_counts().to_string(), flush=True)

    started = time.perf_counter()
    result = train(
        X,
        y,
        groups=pd.Series(np.arange(len(X))),
        numeric=numeric,
        categorical=["sex"],
        config=TrainingConfig(random_state=args.seed),
        log=lambda line: print(f"[{time.perf_counter() - started:6.1f} s] {line}", flush=True),
    )
    seconds = time.perf_counter() - started
    test, base = result.test_metrics["roc_auc_ovr_macro"], result.baseline_test_metrics["roc_auc_ovr_macro"]
    print(f"held-out macro ROC-AUC: chosen {result.chosen} {test:.3f}, dummy {base:.3f}")
    print(f"total {seconds:.1f} s (target < {TARGET_SECONDS} s); steps: {result.timings}")
    if not args.no_write:
        write_section("Model training", report(result, len(X), seconds, build_seconds))


if __name__ == "__main__":
    main()
