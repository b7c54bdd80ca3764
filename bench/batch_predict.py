"""Benchmark: batch scoring on PostgreSQL + Redis with real Celery workers, against its floor and a naive loop.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/batch_predict.py --patients 1000 10000 100000 --runs 3

For each size: a clinic of that many synthetic patients (seeded once, kept between runs of the script) and an
active model trained on a separate synthetic cohort. Then, measured in the same run:

- floor: COPY the clinic's observation rows out, build the features, one `predict_proba` call in memory,
  COPY the prediction rows in. What scoring costs with no framework at all;
- batch: `prediction_batch_start` and the chunk tasks on 2 worker processes (and on 1), start to finish;
- naive, same work: one task per patient doing what a batch chunk does for it (the product's own
  `predictions_create` for one patient: features, predict_proba, explanation, save, advice, audit), on 2,000
  patients, per-patient cost compared with the batch's. The target is judged on this one;
- naive, lighter: the obvious ORM loop (observations through the ORM, features, predict_proba, one save),
  without explanation or advice: less work than the batch does per patient, shown for comparison.

Writes the "Batch scoring" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

from results import machine_summary, write_section  # noqa: E402

NAIVE_PATIENTS = 2000
QUEUE = f"bench-{uuid.uuid4().hex[:6]}"


def _setup() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark runs on real services.")
    from seed_demo import _ensure_database

    _ensure_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _clinic(n: int):
    """A clinic of n synthetic patients, made once and reused by later runs of the script."""
    from clinic.models import Clinic
    from clinic.services import clinic_create
    from patients.demo import demo_cohort_load
    from patients.models import Patient

    slug = f"bench-{n}"
    clinic = Clinic.objects.filter(slug=slug).first() or clinic_create(name=f"Bench {n:,}", slug=slug, is_demo=True)
    if Patient.objects.filter(clinic=clinic).count() != n:
        Patient.objects.filter(clinic=clinic).delete()
        print(f"seeding {n:,} patients", flush=True)
        demo_cohort_load(clinic=clinic, n_patients=n, seed=n)
    return clinic


def _model_for(clinic):
    """Train (once per script run) a model on a separate synthetic cohort and make it the clinic's active one."""
    from clinic.blobs import blob_save
    from clinic.models import BlobKind
    from mltraining.models import ModelStatus, ModelVersion, TrainingRun

    payload, info = _artifact()
    ModelVersion.objects.filter(clinic=clinic, status=ModelStatus.ACTIVE).update(status=ModelStatus.ARCHIVED)
    version = (ModelVersion.objects.filter(clinic=clinic).order_by("-version").values_list("version", flat=True)
               .first() or 0) + 1  # fmt: skip
    run = TrainingRun.objects.create(clinic=clinic, status="succeeded", chosen="lightgbm")
    blob = blob_save(kind=BlobKind.ARTIFACT, pieces=[payload])
    return ModelVersion.objects.create(
        clinic=clinic, version=version, training_run=run, artifact=blob, sha256=info.sha256,
        sklearn_version=info.sklearn_version, classes=info.classes, data_hash=info.data_hash, rows=info.rows,
        risk_thresholds=[0.2, 0.5], status=ModelStatus.ACTIVE,
    )  # fmt: skip


_ARTIFACT = None


def _artifact():
    global _ARTIFACT
    if _ARTIFACT is None:
        import pandas as pd

        from mltraining.ml.artifact import model_dumps
        from mltraining.ml.features import CATEGORICAL, NUMERIC, build_features, feature_schema
        from mltraining.ml.labels import label_patients
        from mltraining.ml.train import TrainingConfig, train
        from patients.demo_cohort import cohort_frames, generate_cohort

        observations, patients, conditions = cohort_frames(generate_cohort(5000, seed=99))
        X = build_features(observations, patients, as_of=pd.Timestamp.now(tz="UTC"))
        y = label_patients(conditions, list(patients["patient_id"]))
        keep = y.notna().to_numpy()
        config = TrainingConfig(candidates=("lightgbm",), cv_folds=3, bootstrap_rounds=10, permutation_repeats=1)
        result = train(X[keep], y[keep].astype(str), groups=pd.Series(X.index[keep], index=X.index[keep]),
                       numeric=NUMERIC, categorical=CATEGORICAL, config=config)  # fmt: skip
        _ARTIFACT = model_dumps(result.model, feature_schema=feature_schema(), data_hash=result.data_hash,
                                rows=result.n_train, classes=result.classes)  # fmt: skip
    return _ARTIFACT


# --- floor -------------------------------------------------------------------------------------------------------


def floor(clinic, version) -> float:
    """COPY out, features, one predict_proba, COPY in: the least work that scores every patient."""
    import numpy as np
    import pandas as pd
    from django.db import connection, transaction
    from django.utils import timezone
    from psycopg.sql import SQL, Literal

    from mltraining.ml.features import build_features
    from predictions.services import model_load

    model = model_load(version=version)
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        buffer = io.BytesIO()
        sql = SQL(
            "copy (select o.patient_id, a.code, o.value, o.effective_at from patients_observation o "
            "join patients_analyte a on a.id = o.analyte_id join patients_patient p on p.id = o.patient_id "
            "where p.clinic_id = {} and o.status = 'final') to stdout with csv"
        ).format(Literal(clinic.pk))
        with cursor.cursor.copy(sql) as copy:
            for block in copy:
                buffer.write(block)
        buffer.seek(0)
        observations = pd.read_csv(buffer, names=["patient_id", "analyte", "value", "effective_at"])
        observations["effective_at"] = pd.to_datetime(observations["effective_at"], utc=True, format="ISO8601")
        buffer = io.BytesIO()
        sql = SQL(
            "copy (select id, sex, birth_date, smoking, alcohol, physical_activity, diet, family_history_diabetes, "
            "family_history_cardiovascular, family_history_anemia from patients_patient "
            "where clinic_id = {} order by id) to stdout with csv"
        ).format(Literal(clinic.pk))
        with cursor.cursor.copy(sql) as copy:
            for block in copy:
                buffer.write(block)
        buffer.seek(0)
        patients = pd.read_csv(buffer, names=["patient_id", "sex", "birth_date", "smoking", "alcohol",
                                              "physical_activity", "diet", "family_history_diabetes",
                                              "family_history_cardiovascular", "family_history_anemia"])  # fmt: skip
        patients["birth_date"] = pd.to_datetime(patients["birth_date"]).dt.date
        for column in ("family_history_diabetes", "family_history_cardiovascular", "family_history_anemia"):
            patients[column] = patients[column].map({"t": True, "f": False})
        X = build_features(observations, patients, as_of=pd.Timestamp.now(tz="UTC"))
        proba = model.predict_proba(X)
        classes = [str(c) for c in model.classes_]
        predicted = np.asarray(classes)[proba.argmax(axis=1)]
        now = timezone.now()
        cursor.execute("create temporary table floor_prediction (like predictions_prediction including all)")
        columns = (
            "patient_id, model_version_id, created_at, status, probabilities, predicted_class, risk_score, "
            "risk_level, risk_thresholds, inputs, contributions, explanation_method, error"
        )
        inputs = X.astype(object).where(X.notna(), None).to_dict("records")
        healthy = classes.index("healthy")
        with cursor.cursor.copy(f"copy floor_prediction ({columns}) from stdin") as copy:  # noqa: S608
            for pid, p, c, row in zip(X.index.tolist(), proba.round(5).tolist(), predicted.tolist(), inputs,
                                      strict=True):  # fmt: skip
                risk = 1 - p[healthy]
                level = "low" if risk < 0.2 else "moderate" if risk < 0.5 else "high"
                copy.write_row((pid, version.pk, now, "succeeded", json.dumps(dict(zip(classes, p, strict=True))), c,
                                risk, level, "[0.2, 0.5]", json.dumps(row, default=str), "[]", "", ""))  # fmt: skip
        cursor.execute("drop table floor_prediction")
    return time.perf_counter() - start


# --- batch on real workers ---------------------------------------------------------------------------------------


def _workers(queue: str, processes: int, log: Path) -> subprocess.Popen:

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "celery", "-A", "clinic", "worker", "-Q", queue, "-c", str(processes),
             "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", f"{queue}@%h"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _wait_ready(worker: subprocess.Popen, processes: int, log: Path, timeout: float = 120) -> None:
    """Block until the worker answers a ping and each of its pool processes has ended its warm-up (loading the
    active models, predictions.tasks): a worker's start is not the batch's time, as in a clinic's running workers."""
    from clinic.celery import app

    deadline = time.monotonic() + timeout
    while not (
        app.control.ping(destination=[f"{QUEUE}@{socket.gethostname()}"], timeout=0.5)
        and sum("Scoring warm-up" in line for line in log.read_text().splitlines()) >= processes
    ):
        if worker.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the Celery worker did not become ready; its log: {log}")
        time.sleep(0.1)


def _peak_rss_mb(parent: int) -> float:
    """Largest peak resident memory (VmHWM) among the worker's child processes."""
    peaks = []
    children = Path(f"/proc/{parent}/task/{parent}/children")
    pids = children.read_text().split() if children.exists() else []
    for pid in [str(parent), *pids]:
        status = Path(f"/proc/{pid}/status")
        if status.exists():
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


def batch(clinic, processes: int) -> tuple[float, float]:
    """Seconds from the start of a batch to its end on `processes` worker processes, and worker peak memory."""
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from clinic.celery import app
    from predictions.models import BatchStatus, PredictionBatch
    from predictions.services import prediction_batch_start
    from recommendations.models import Recommendation

    # Every run generates every patient's advice (unchanged advice would otherwise be skipped after the first).
    Recommendation.objects.filter(clinic=clinic).delete()
    # Then clear what that delete and the earlier runs left behind, as autovacuum would between a clinic's batches
    # (it may be off on a benchmark machine's PostgreSQL): without it the dead rows pile up run after run, and the
    # lookup of each patient's latest advice scans them (a 1,000-patient chunk's advice took 0.30 s, 0.14 s after).
    with connection.cursor() as cursor:
        cursor.execute("vacuum analyze")
    # One queue for the whole run: Celery builds its router from task_routes once, on first use.
    app.conf.task_always_eager, app.conf.task_routes = False, {"predictions.tasks.*": {"queue": QUEUE}}
    log = Path(settings.VAR_DIR) / f"bench-worker-{processes}.log"
    worker = _workers(QUEUE, processes, log)
    try:
        _wait_ready(worker, processes, log)
        # The end is the batch's own finished_at (written by the worker that closed it, same clock), not when this
        # loop next looks: a 50 ms poll would add up to 50 ms to a 1,000-patient batch of a few tenths of a second.
        start = timezone.now()
        started = prediction_batch_start(clinic=clinic, by=None, trigger="command")
        peak = 0.0
        while True:
            row = PredictionBatch.objects.values("status", "done", "failed", "finished_at").get(pk=started.pk)
            peak = max(peak, _peak_rss_mb(worker.pid))
            if row["status"] not in (BatchStatus.QUEUED, BatchStatus.RUNNING):
                break
            time.sleep(0.05)
        elapsed = (row["finished_at"] - start).total_seconds()
        if row["status"] != BatchStatus.SUCCEEDED:
            sys.exit(f"batch {started.pk} ended {row['status']}: {row}")
        return elapsed, peak
    finally:
        worker.terminate()
        worker.wait(timeout=60)


# --- naive ---------------------------------------------------------------------------------------------------------


def naive_same_work(clinic, n: int) -> float:
    """Seconds per patient when each patient is scored alone, as one task per patient would: the same steps as a
    chunk (features, predict_proba, explanation, one bulk INSERT, advice, audit row), committed per patient."""
    from patients.models import Patient
    from predictions.models import Prediction
    from predictions.services import predictions_create

    ids = list(Patient.objects.filter(clinic=clinic).order_by("pk").values_list("pk", flat=True)[:n])
    predictions_create(patient_ids=ids[:1])  # model load outside the measurement
    start = time.perf_counter()
    for pid in ids:  # what the body of one task per patient runs, minus the broker round trip
        predictions_create(patient_ids=[pid])
    elapsed = time.perf_counter() - start
    Prediction.objects.filter(patient_id__in=ids, batch__isnull=True).delete()  # their advice goes with them
    return elapsed / len(ids)


def naive(clinic, version, n: int) -> float:
    """Seconds per patient of the obvious lighter code: ORM objects, predict_proba, one save each; no
    explanation, no advice (less work per patient than the batch does)."""
    import pandas as pd
    from django.utils import timezone

    from mltraining.ml.features import build_features
    from patients.models import Observation, Patient
    from predictions.models import Prediction
    from predictions.services import model_load

    model = model_load(version=version)
    patients = list(Patient.objects.filter(clinic=clinic).order_by("pk")[:n])
    start = time.perf_counter()
    for patient in patients:  # what one task per patient does, minus the broker round trip
        rows = [
            (o.patient_id, o.analyte.code, o.value, o.effective_at)
            for o in Observation.objects.filter(patient=patient).select_related("analyte")
        ]
        observations = pd.DataFrame(rows, columns=["patient_id", "analyte", "value", "effective_at"])
        profile = pd.DataFrame([{
            "patient_id": patient.pk, "sex": patient.sex, "birth_date": patient.birth_date,
            "smoking": patient.smoking, "alcohol": patient.alcohol, "physical_activity": patient.physical_activity,
            "diet": patient.diet, "family_history_diabetes": patient.family_history_diabetes,
            "family_history_cardiovascular": patient.family_history_cardiovascular,
            "family_history_anemia": patient.family_history_anemia,
        }])  # fmt: skip
        X = build_features(observations, profile, as_of=pd.Timestamp.now(tz="UTC"))
        proba = model.predict_proba(X)[0]
        classes = [str(c) for c in model.classes_]
        Prediction.objects.create(
            patient=patient, model_version=version, created_at=timezone.now(),
            probabilities=dict(zip(classes, proba.tolist(), strict=True)),
            predicted_class=classes[int(proba.argmax())],
        )  # fmt: skip
    elapsed = time.perf_counter() - start
    Prediction.objects.filter(patient__in=patients, batch__isnull=True).delete()
    return elapsed / len(patients)


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    _setup()
    lines = [
        "Batch scoring (`bench/batch_predict.py`) on PostgreSQL + Redis with real Celery workers (prefork). "
        "Seconds, median of the runs (min-max). Floor: COPY observations out, features, one predict_proba, COPY "
        "predictions in, in one process, no explanations. Batch: `prediction_batch_start` to the batch's end (its "
        "`finished_at`), on a worker already started (each pool process has loaded the model, as in a clinic's "
        "running workers), chunks of at most 1,000 patients (at least 4 chunks of 100 or more: 1,000 patients are "
        "4 chunks of 250), each scored with one predict_proba call, explained (tree-path contributions), "
        "written with COPY, and each patient's recommendation generated (rules, ranking, COPY of the items; the "
        "clinic's earlier recommendations are deleted before each run, so every run writes them all, then the "
        "database is vacuumed, as autovacuum would have done between two batches).",
        "",
        "| patients | floor s | batch, 2 workers s | batch / floor | batch, 1 worker s | 1 / 2 workers "
        "| per patient, batch (2 w.) ms | worker peak RSS MB |",
        "|---:|---|---|---:|---|---:|---:|---:|",
    ]
    naive_line = ""
    for n in args.patients:
        clinic = _clinic(n)
        version = _model_for(clinic)
        floors, two, one, peaks = [], [], [], []
        for _ in range(args.runs):
            floors.append(floor(clinic, version))
            elapsed, peak = batch(clinic, 2)
            two.append(elapsed)
            peaks.append(peak)
            elapsed, peak = batch(clinic, 1)
            one.append(elapsed)
            print(f"{n:>7}: floor {floors[-1]:.1f} s, 2 workers {two[-1]:.1f} s, 1 worker {one[-1]:.1f} s", flush=True)
        f2, o1 = statistics.median(two), statistics.median(one)
        lines.append(
            f"| {n:,} | {_fmt(floors)} | {_fmt(two)} | {f2 / statistics.median(floors):.2f} | {_fmt(one)} "
            f"| {o1 / f2:.2f} | {1000 * f2 / n:.2f} | {max(peaks):.0f} |"
        )
        if n >= NAIVE_PATIENTS and not naive_line:
            same, lighter = naive_same_work(clinic, NAIVE_PATIENTS), naive(clinic, version, NAIVE_PATIENTS)
            batch_per_patient = f2 / n
            naive_line = (
                f"Naive paths, one task per patient ({NAIVE_PATIENTS:,} patients of the {n:,} clinic, no broker round "
                f"trip counted), against the batch path's {1000 * batch_per_patient:.2f} ms per patient (2 workers): "
                f"same work as a chunk does per patient (`predictions_create` for one patient: features, "
                f"predict_proba, explanation, save, advice, audit, a commit each) {1000 * same:.1f} ms, "
                f"**{same / batch_per_patient:.0f}x**; the lighter ORM loop (predict_proba and one save, no "
                f"explanation or advice) {1000 * lighter:.1f} ms, {lighter / batch_per_patient:.0f}x."
            )
            print(naive_line, flush=True)
    lines += ["", naive_line, "", "Targets: batch within 3x the floor; naive (same work) at least 50x the batch per "
              "patient; 2 workers faster than 1.", ""]  # fmt: skip
    write_section("Batch scoring", machine_summary() + "\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
