"""Benchmark: the project's own TreeSHAP (`mltraining.ml.treeshap`) against shap's TreeExplainer, on demo models.

    .venv/bin/python bench/explainer.py [--patients 2000] [--no-write]

The demo clinic's cohort (`make run` seeds 2,000 patients), one row per patient as `bench/train_models.py` builds
it; each tree candidate (decision tree, random forest, histogram gradient boosting) fitted in the project's
pipeline and calibration wrapper. For each: building the explainer (its own median of 5), explaining one row
(median of 200) and a chunk of 1,000 rows (CHUNK_SIZE of batch scoring, once), both explainers on the same transformed
rows, and the largest absolute difference of their values. Then the import time of the explain path (fresh
interpreter each, median of 5) and the install size of what shap alone brought. shap is measured only when it is
importable (it is no longer a requirement); the section says so otherwise. Writes "Explainer without shap" in
bench/RESULTS.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib.metadata import PackageNotFoundError, distribution  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.calibration import CalibratedClassifierCV  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results import machine_summary, write_section  # noqa: E402
from train_models import TODAY, cohort_frame  # noqa: E402

from mltraining.ml.candidates import CANDIDATES, build_pipeline  # noqa: E402
from mltraining.ml.explain import base_pipeline  # noqa: E402
from mltraining.ml.treeshap import TreeShap  # noqa: E402
from patients.demo_cohort import generate_cohort  # noqa: E402

MODELS = ("decision_tree", "random_forest", "hist_gradient_boosting")
# What installing shap brought that nothing else in the requirements needs (pip show: Required-by).
SHAP_ONLY = ("shap", "numba", "llvmlite", "slicer")


def _median_seconds(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _shap_layout(values, n_classes: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim == 2:
        return np.stack([-values, values], axis=2)
    if values.shape[0] == n_classes and values.shape[2] != n_classes:
        return values.transpose(1, 2, 0)
    return values


def _ours_layout(values: np.ndarray) -> np.ndarray:
    return np.concatenate([-values, values], axis=2) if values.shape[2] == 1 else values


def measure_model(name: str, X, y, numeric: list[str], shap) -> dict:
    model = CalibratedClassifierCV(build_pipeline(CANDIDATES[name](0), numeric, ["sex"]), cv=3, ensemble=False)
    model.fit(X, y)
    pipeline = base_pipeline(model)
    estimator = pipeline.named_steps["model"]
    Xt = np.asarray(pipeline[:-1].transform(X.iloc[:1000]), dtype=float)
    one = Xt[:1]
    ours = TreeShap(estimator, Xt.shape[1])
    row = {
        "name": name,
        "columns": Xt.shape[1],
        "leaves": ours.n_leaves,
        "slots": ours.longest_path,
        "ours_build": _median_seconds(lambda: TreeShap(estimator, Xt.shape[1]), 5),
        "ours_row": _median_seconds(lambda: ours.values(one), 200),
        "ours_chunk": _median_seconds(lambda: ours.values(Xt), 1),
    }
    if shap is not None:
        theirs = shap.TreeExplainer(estimator, model_output="raw")
        row["shap_build"] = _median_seconds(lambda: shap.TreeExplainer(estimator, model_output="raw"), 5)
        row["shap_row"] = _median_seconds(lambda: theirs.shap_values(one, check_additivity=False), 200)
        row["shap_chunk"] = _median_seconds(lambda: theirs.shap_values(Xt, check_additivity=False), 1)
        n_classes = len(estimator.classes_)
        expected = _shap_layout(theirs.shap_values(Xt, check_additivity=False), n_classes)
        row["max_diff"] = float(np.abs(_ours_layout(ours.values(Xt)[1]) - expected).max())
    return row


def import_seconds(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    runs = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)  # noqa: S603
        runs.append(float(out.stdout.strip()))
    return statistics.median(runs)


def installed_mib(names: tuple[str, ...]) -> tuple[float, list[str]]:
    total, missing = 0, []
    for name in names:
        try:
            files = distribution(name).files or []
        except PackageNotFoundError:
            missing.append(name)
            continue
        total += sum(f.locate().stat().st_size for f in files if f.locate().exists())
    return total / 2**20, missing


def report(
    rows: list[dict], n: int, imports: dict, size: tuple[float, list[str]], shap_version: str | None, load: str
) -> str:
    ms = 1e3
    lines = [
        machine_summary(),
        "",
        f"`bench/explainer.py`: {n:,} demo patients, each tree candidate fitted in the project's pipeline; "
        "explainer build (median of 5), one row (median of 200) and a scoring chunk of 1,000 rows (once), "
        f"on the same transformed rows. OMP_NUM_THREADS=1. Load average {load} (start, end of the run): on a "
        "shared machine absolute times are inflated, the ratios compare figures measured side by side.",
        "",
    ]
    if shap_version:
        lines += [
            f"| model | leaves (longest path, distinct features) | build ms: shap {shap_version} / ours | "
            "one row ms: shap / ours | 1,000 rows ms: shap / ours | max abs difference |",
            "|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['name']} | {r['leaves']:,} ({r['slots']}) | {r['shap_build'] * ms:.1f} / {r['ours_build'] * ms:.1f} "
            f"| {r['shap_row'] * ms:.2f} / {r['ours_row'] * ms:.2f} | {r['shap_chunk'] * ms:.0f} / "
            f"{r['ours_chunk'] * ms:.0f} | {r['max_diff']:.1e} |"
            for r in rows
        ]
    else:
        lines += [
            "shap is not installed: only our explainer measured.",
            "",
            "| model | leaves (longest path, distinct features) | build ms | one row ms | 1,000 rows ms |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r['name']} | {r['leaves']:,} ({r['slots']}) | {r['ours_build'] * ms:.1f} | {r['ours_row'] * ms:.2f} "
            f"| {r['ours_chunk'] * ms:.0f} |"
            for r in rows
        ]
    mib, missing = size
    lines += [
        "",
        "| import, fresh interpreter (median of 5) | seconds |",
        "|---|---:|",
        *[f"| {label} | {seconds:.2f} |" for label, seconds in imports.items()],
        "",
        f"Installed size of {', '.join(SHAP_ONLY)} (their files as pip recorded them): {mib:.0f} MiB"
        + (f" (not installed: {', '.join(missing)})" if missing else "")
        + ", no longer installed by `requirements.txt`.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    args = parser.parse_args()

    load = [os.getloadavg()[0]]
    try:
        import shap
    except ImportError:
        shap = None
    X, y, numeric = cohort_frame(generate_cohort(args.patients, seed=args.seed, today=TODAY))
    rows = []
    for name in MODELS:
        rows.append(measure_model(name, X, y, numeric, shap))
        print(rows[-1], flush=True)
    imports = {"the explain path, without shap (now)": import_seconds("import mltraining.ml.explain")}
    if shap is not None:
        imports["the explain path and shap (before: imported at the first tree explanation)"] = import_seconds(
            "import mltraining.ml.explain, shap"
        )
        imports["shap alone"] = import_seconds("import shap")
    print(imports, flush=True)
    size = installed_mib(SHAP_ONLY)
    load.append(os.getloadavg()[0])
    text = report(
        rows, len(X), imports, size, shap.__version__ if shap is not None else None, "{:.1f}, {:.1f}".format(*load)
    )
    print(text)
    if not args.no_write:
        write_section("Explainer without shap", text)


if __name__ == "__main__":
    main()
