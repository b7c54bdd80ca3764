"""Benchmark: the nightly work of a clinic network (many clinics, one database), on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench_network MODEL_DIR=$PWD/var/bench-network-models \
        .venv/bin/python bench/clinic_network.py --clinics 10 100 1000 --patients 5000 500 50

Each shape (clinics x patients per clinic, the two lists taken pairwise) gets a fresh database, copied from a
migrated template: C clinics seeded with `demo_cohort_load` (P synthetic patients each), every clinic given an
active model version that points at one artifact and its explanation paths (trained once per script run, by the
mltraining service, on a clinic of its own), then the nightly work, each kind timed apart (beat runs drift once a
week, on Sunday nights before the retraining; the bench counts it every night, as on a Sunday):

- scoring: `prediction_batch_start_scheduled` (`score_all_clinics`), its batch chunks run in this process
  (Celery eager: no REDIS_URL), with their explanations, advice and audit rows; every batch must succeed;
- dashboard figures: `patients.dashboard.figure_refresh` per clinic for the population dashboard and the radar's
  clinic medians, as the refresh tasks do;
- drift: `drift_check_all_clinics`.

CPU time (this process and its PostgreSQL backend) = a * clinics + b * patients is fitted over the shapes (least
squares): b is the cost per patient, a the fixed cost per clinic. Peak resident memory of the process is read per
kind of work (VmHWM, reset before each).
Writes the "A clinic network" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.pop("REDIS_URL", None)  # chunk tasks in this process (Celery eager), cache in its memory
ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MODEL_DIR", str(ROOT / "var" / "bench-network-models"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

from results import machine_summary, write_section  # noqa: E402

KINDS = ("scoring", "dashboard", "drift")
PROGRESS_EVERY = 50  # clinics: a line on stderr after each group
TRAIN_PATIENTS = 2000
FIXED_COST_BOUND_MS = 250  # per clinic, all nightly work together: 1,000 clinics' fixed costs within about 4 min
# What fits in a few minutes on a 2-core machine. The target, 1,000 x 1,000: about 10 min to seed with
# --seed-jobs 4 and 21 min for the night with --work-jobs 2 on a quiet 2-core machine (bench/RESULTS.md).
DEFAULT = ([4, 40, 100, 100], [1000, 100, 40, 80])
QUICK = ([3, 30, 30], [200, 20, 40])


# --- databases -------------------------------------------------------------------------------------------------


def _server(url: str) -> tuple[str, str]:
    return url.rsplit("/", 1)[0] + "/postgres", url.rsplit("/", 1)[1]


def _recreate(url: str, *, template: str | None = None) -> None:
    """Drop the benchmark's database and create it again (empty, or as a copy of `template`: a file copy, which for
    a seeded database of several GB takes a minute where the default strategy writes it all to the WAL)."""
    import psycopg
    from django.db import connections

    connections.close_all()
    server, name = _server(url)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"' + (f' template "{template}" strategy file_copy' if template else ""))


def _seed_name(url: str, n_clinics: int, patients: int) -> str:
    return f"{_server(url)[1]}_seed_{n_clinics}x{patients}"


def _seed_kept(url: str, n_clinics: int, patients: int) -> float | None:
    """Seconds the kept seeded database of this shape took to seed, or None if there is none."""
    import psycopg

    with psycopg.connect(_server(url)[0], autocommit=True) as conn:
        row = conn.execute(
            "select shobj_description(oid, 'pg_database') from pg_database where datname = %s",
            [_seed_name(url, n_clinics, patients)],
        ).fetchone()
    return float(row[0]) if row and row[0] else None


def _seed_keep(url: str, n_clinics: int, patients: int, seconds: float) -> None:
    """Keep the freshly seeded database as the template of later runs of this shape (`--keep-seed`)."""
    import psycopg
    from django.db import connections

    connections.close_all()
    server, name = _server(url)
    kept = _seed_name(url, n_clinics, patients)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{kept}" with (force)')
        conn.execute(f'create database "{kept}" template "{name}" strategy file_copy')
        conn.execute(f"comment on database \"{kept}\" is '{seconds:.1f}'")


def _template_make(url: str) -> str:
    """A migrated empty database to copy for each shape (a copy takes a second, migrating a minute)."""
    import psycopg
    from django.core.management import call_command
    from django.db import connections

    _recreate(url)
    call_command("migrate", verbosity=0)
    connections.close_all()
    server, name = _server(url)
    template = f"{name}_template"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{template}"')
        conn.execute(f'create database "{template}" template "{name}"')
    return template


def _setup() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database of the benchmark's own: it is dropped and created again.")
    import logging

    import django

    django.setup()
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)  # a line per chunk task otherwise
    return url


# --- the model ------------------------------------------------------------------------------------------------


def _model_train() -> dict:
    """Train one model with the mltraining service on a clinic of its own; the fields its versions share."""
    from clinic import blobs
    from clinic.services import clinic_create
    from mltraining.ml.train import TrainingConfig
    from mltraining.models import ModelVersion
    from mltraining.services import training_run_execute, training_run_request
    from patients.demo import demo_cohort_load

    clinic = clinic_create(name="Network training", slug="network-training", is_demo=True)
    demo_cohort_load(clinic=clinic, n_patients=TRAIN_PATIENTS, seed=7)
    config = TrainingConfig(candidates=("lightgbm",), cv_folds=3, bootstrap_rounds=20, permutation_repeats=1)
    run = training_run_request(clinic=clinic, by=None, config=config, enqueue=False)
    training_run_execute(run_id=run.pk)
    version = ModelVersion.objects.get(training_run_id=run.pk)
    shared = (
        "sha256", "sklearn_version", "library_versions", "feature_schema", "classes", "data_hash",
        "rows", "metrics", "risk_thresholds", "reference_profile", "model_card", "provenance",
    )  # fmt: skip
    fields = {name: getattr(version, name) for name in shared}
    # The bytes: each shape's database stores them.
    fields["artifact"] = blobs.blob_read(blob_id=version.artifact_id)
    fields["explainer"] = blobs.blob_read(blob_id=version.explainer_id) if version.explainer_id else None
    return fields


def _model_share(fields: dict, clinics: list) -> None:
    """Every clinic gets an active version 1 whose artifact is the one trained model: each version points at the
    same blobs in the database (`clinic.Blob`: the artifact and its explanation's preparation), as a shared-nothing
    deployment stores them."""
    from django.utils import timezone

    from clinic.blobs import blob_save
    from clinic.models import BlobKind
    from mltraining.models import ModelStatus, ModelVersion, TrainingRun

    fields = {**fields, **{name: blob_save(kind=BlobKind.ARTIFACT, pieces=[fields[name]]) if fields[name] else None
                           for name in ("artifact", "explainer")}}  # fmt: skip
    runs = TrainingRun.objects.bulk_create(
        TrainingRun(clinic=clinic, status="succeeded", chosen="lightgbm") for clinic in clinics
    )
    ModelVersion.objects.bulk_create(
        ModelVersion(clinic=clinic, version=1, training_run=run, status=ModelStatus.ACTIVE,
                     activated_at=timezone.now(), **fields)
        for clinic, run in zip(clinics, runs, strict=True)
    )  # fmt: skip


# --- one shape ------------------------------------------------------------------------------------------------


def _rss_peak_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from the current resident size


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _backend() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("select pg_backend_pid()")
        return cursor.fetchone()[0]


def _cpu_seconds(backend: int) -> float:
    """CPU time of this process and of its PostgreSQL backend (same machine): unlike wall time, hardly changed by
    what else the shared machine runs."""
    own = os.times()
    fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    return own.user + own.system + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _seed_part(n_clinics: int, patients: int, part: int, parts: int) -> None:
    """Seed the clinics i with i % parts == part (one of the `--seed-jobs` processes)."""
    from clinic.services import clinic_create
    from patients.demo import demo_cohort_load

    for i in range(part, n_clinics, parts):
        clinic = clinic_create(name=f"Network {i + 1}", slug=f"network-{i + 1}", is_demo=True)
        demo_cohort_load(clinic=clinic, n_patients=patients, seed=1000 + i)


def _seed(n_clinics: int, patients: int, jobs: int = 1) -> tuple[list, float]:
    """Seed the clinics, in `jobs` processes at once (each clinic's cohort is independent of the others')."""
    import subprocess

    from django.db import connections

    from clinic.bulk import statistics_refresh
    from clinic.models import Clinic
    from patients.models import Condition, Observation, Patient

    start = time.perf_counter()
    if jobs == 1:
        _seed_part(n_clinics, patients, 0, 1)
    else:
        connections.close_all()
        argv = [sys.executable, __file__, "--seed-part", str(n_clinics), str(patients)]
        procs = [subprocess.Popen([*argv, str(part), str(jobs)]) for part in range(jobs)]  # noqa: S603
        if any([proc.wait() for proc in procs]):  # wait for every one
            sys.exit("seed: a seeding process failed")
    statistics_refresh(Patient, Observation, Condition)
    clinics = list(Clinic.objects.filter(slug__startswith="network-").order_by("pk"))
    return clinics, time.perf_counter() - start


def _scoring(clinic_ids: list[int]) -> None:
    from predictions.models import BatchStatus, PredictionBatch
    from predictions.services import prediction_batch_start_scheduled

    batches = prediction_batch_start_scheduled(clinic_ids=clinic_ids)
    statuses = Counter(PredictionBatch.objects.filter(pk__in=batches).values_list("status", flat=True))
    if len(batches) != len(clinic_ids) or statuses[BatchStatus.SUCCEEDED] != len(clinic_ids):
        sys.exit(f"scoring: {len(batches)} batches for {len(clinic_ids)} clinics, ended {dict(statuses)}")


def _dashboard(clinic_ids: list[int]) -> None:
    from patients import dashboard

    codes = list(dashboard.RADAR_LABS)
    for clinic_id in clinic_ids:
        dashboard.figure_refresh("population", clinic_id, ())
        dashboard.figure_refresh("medians", clinic_id, codes)


def _drift(clinic_ids: list[int]) -> None:
    from mltraining.services import drift_check_all_clinics

    reports = drift_check_all_clinics(clinic_ids=clinic_ids)
    if len(reports) != len(clinic_ids):
        sys.exit(f"drift: {len(reports)} reports for {len(clinic_ids)} clinics")


def _work(clinic_ids: list[int]) -> dict:
    """The night's three kinds of work for these clinics, one after the other, each measured: wall s, CPU s (this
    process and its database backend), resident memory before and at its peak (MB)."""
    from predictions import services as prediction_services

    work = {"scoring": _scoring, "dashboard": _dashboard, "drift": _drift}
    row = {}
    for kind in KINDS:
        _rss_peak_reset()
        before = _rss_mb("VmRSS")
        backend = _backend()
        start, cpu = time.perf_counter(), _cpu_seconds(backend)
        for done in range(0, len(clinic_ids), PROGRESS_EVERY):  # in groups, so that a long night shows progress
            work[kind](clinic_ids[done : done + PROGRESS_EVERY])
            print(f"  pid {os.getpid()}: {kind}, {min(done + PROGRESS_EVERY, len(clinic_ids))} of {len(clinic_ids)} "
                  f"clinics, {time.perf_counter() - start:.0f} s, CPU {_cpu_seconds(backend) - cpu:.1f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
        row[kind] = time.perf_counter() - start
        if _backend() != backend:
            sys.exit(f"{kind}: the database connection changed during the work; its CPU time would be lost")
        row[f"{kind}_cpu"] = _cpu_seconds(backend) - cpu
        row[f"{kind}_rss"] = (before, _rss_mb("VmHWM"))
        if kind == "scoring":
            row["models_cached"] = len(prediction_services._loaded)
    return row


def _work_part(part: int, parts: int) -> None:
    """One of the `--work-jobs` processes (a worker): the work of the clinics i with i % parts == part, its
    measurements printed as a JSON line."""
    import json

    from clinic.models import Clinic

    ids = list(Clinic.objects.filter(slug__startswith="network-").order_by("pk").values_list("pk", flat=True))
    print("WORK " + json.dumps(_work(ids[part::parts])), flush=True)


def _work_jobs(jobs: int) -> dict:
    """The work split over `jobs` processes at once, as a night's batches spread over workers: CPU summed, wall and
    peak memory the largest of the processes'."""
    import json
    import subprocess

    from django.db import connections

    connections.close_all()
    argv = [sys.executable, __file__, "--work-part"]
    procs = [
        subprocess.Popen([*argv, str(part), str(jobs)], stdout=subprocess.PIPE, text=True)  # noqa: S603
        for part in range(jobs)
    ]
    outputs = [proc.communicate()[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        sys.exit("work: a worker process failed")
    parts = [json.loads(line[5:]) for out in outputs for line in out.splitlines() if line.startswith("WORK ")]
    row = {"models_cached": max(p["models_cached"] for p in parts)}
    for kind in KINDS:
        row[kind] = max(p[kind] for p in parts)
        row[f"{kind}_cpu"] = sum(p[f"{kind}_cpu"] for p in parts)
        row[f"{kind}_rss"] = (max(p[f"{kind}_rss"][0] for p in parts), max(p[f"{kind}_rss"][1] for p in parts))
    return row


def _seeded(url: str, template: str, n_clinics: int, patients: int, keep: bool, jobs: int) -> tuple[list, float]:
    """A database of this shape, seeded: a copy of the kept one if `keep` and there is one (migrated to today's
    code), else seeded now (and kept if `keep`)."""
    from django.core.management import call_command

    from clinic.models import Clinic

    seconds = _seed_kept(url, n_clinics, patients) if keep else None
    if seconds is not None:
        _recreate(url, template=_seed_name(url, n_clinics, patients))
        call_command("migrate", verbosity=0)
        return list(Clinic.objects.filter(slug__startswith="network-").order_by("pk")), seconds
    _recreate(url, template=template)
    clinics, seconds = _seed(n_clinics, patients, jobs)
    if keep:
        _seed_keep(url, n_clinics, patients, seconds)
    return clinics, seconds


def shape(
    url: str,
    template: str,
    fields: dict,
    n_clinics: int,
    patients: int,
    keep: bool = False,
    jobs: int = 1,
    work_jobs: int = 1,
) -> dict:
    from predictions import services as prediction_services

    prediction_services._loaded.clear()
    clinics, seeded = _seeded(url, template, n_clinics, patients, keep, jobs)
    if len(clinics) != n_clinics:
        sys.exit(f"seed: {len(clinics)} clinics in the database, {n_clinics} asked for")
    _model_share(fields, clinics)
    row = {"clinics": n_clinics, "patients": patients, "seed": seeded, "work_jobs": work_jobs}
    row.update(_work([c.pk for c in clinics]) if work_jobs == 1 else _work_jobs(work_jobs))
    for kind in KINDS:
        print(f"{n_clinics:>5} x {patients:>5}: {kind} {row[kind]:.1f} s (CPU {row[f'{kind}_cpu']:.1f} s), "
              f"RSS {row[f'{kind}_rss'][0]:.0f} -> peak {row[f'{kind}_rss'][1]:.0f} MB", flush=True)  # fmt: skip
    return row


# --- report ---------------------------------------------------------------------------------------------------


def _fit(rows: list[dict], kind: str) -> tuple[float, float]:
    """CPU seconds per clinic and per patient: least squares of CPU time = a * clinics + b * patients, no
    intercept (CPU, not wall time: on a shared machine the wall time of one shape can double with the load)."""
    import numpy as np

    design = np.array([[r["clinics"], r["clinics"] * r["patients"]] for r in rows], dtype=float)
    times = np.array([r[f"{kind}_cpu"] for r in rows])
    (a, b), *_ = np.linalg.lstsq(design, times, rcond=None)
    return float(a), float(b)


def _report(rows: list[dict], load: tuple[float, float], quick: bool) -> str:
    lines = [
        "Nightly work of a clinic network (`bench/clinic_network.py`) on PostgreSQL, in one process or, where a "
        "shape says so, split over several processes at once (`--work-jobs`: clinic i to process i mod J, as a "
        "night's batches spread over workers; CPU summed over them, wall time and peak memory the largest "
        "process's): the batch chunks run in-process (Celery eager, no broker), so the peak memory is what one worker "
        "process doing its share of a night's chunks holds. Each shape is a fresh database; every clinic has an active "
        "model version pointing at one artifact and its explanation paths (one model, trained once), loaded once per "
        "clinic (scoring, and drift again) as a worker does for each clinic's own model. One run per shape; each "
        "kind of work as "
        "wall seconds / CPU seconds (this process and its PostgreSQL backend: on a shared machine the wall time "
        "follows the load, the CPU time hardly)."
        + (" **Quick run: rough figures, not for committing.**" if quick else ""),
        "",
        "| clinics x patients | patients in all | seed s | scoring s | dashboard s | drift s "
        "| scoring CPU ms / patient | peak RSS MB: scoring / dashboard / drift | models cached |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        total = r["clinics"] * r["patients"]
        shared = f" ({r['work_jobs']} processes)" if r.get("work_jobs", 1) > 1 else ""
        peaks = " / ".join(f"{r[f'{k}_rss'][1]:.0f}" for k in KINDS)
        work = " | ".join(f"{r[k]:.1f} / {r[f'{k}_cpu']:.1f}" for k in KINDS)
        lines.append(
            f"| {r['clinics']:,} x {r['patients']:,}{shared} | {total:,} | {r['seed']:.0f} | {work} "
            f"| {1000 * r['scoring_cpu'] / total:.2f} | {peaks} | {r['models_cached']:,} |"
        )
    fits = {kind: _fit(rows, kind) for kind in KINDS} if len(rows) >= 2 else {}
    if fits:
        lines += ["", "Fit over the shapes, CPU time = a x clinics + b x patients:", "",
                  "| work | a: fixed CPU ms per clinic | b: CPU ms per patient "
                  "| 1,000 clinics x 1,000 patients (arithmetic) |",
                  "|---|---:|---:|---:|"]  # fmt: skip
        for kind, (a, b) in fits.items():
            million = 1000 * a + 1_000_000 * b
            lines.append(f"| {kind} | {1000 * a:.0f} | {1000 * b:.2f} | {million / 60:.0f} CPU min |")
        total_a = sum(a for a, _b in fits.values())
        everything = sum(1000 * a + 1_000_000 * b for a, b in fits.values())
        verdict = "within" if 1000 * total_a <= FIXED_COST_BOUND_MS else "**above**"
        lines += ["", f"Fixed cost per clinic, all nightly work: {1000 * total_a:.0f} CPU ms, {verdict} the bound of "
                  f"{FIXED_COST_BOUND_MS} ms per clinic. One million patients in 1,000 clinics: about "
                  f"{everything / 60:.0f} CPU minutes of nightly work at these costs, spread over the workers' "
                  "cores."]  # fmt: skip
    largest = max(rows, key=lambda r: r["clinics"] * r["patients"])
    lines += ["", f"Largest shape reached: {largest['clinics']:,} clinics x {largest['patients']:,} patients = "
              f"{largest['clinics'] * largest['patients']:,} patients (target: 1,000 clinics, 1 million patients)."
              f" Load average before / after: {load[0]:.1f} / {load[1]:.1f} (a shared machine)."]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clinics", type=int, nargs="+")
    parser.add_argument("--patients", type=int, nargs="+", help="patients per clinic, paired with --clinics")
    parser.add_argument("--quick", action="store_true", help="small shapes, a few minutes")
    parser.add_argument(
        "--keep-seed",
        action="store_true",
        help="keep each shape's seeded database (<db>_seed_CxP) and reuse it on later runs",
    )
    parser.add_argument("--seed-only", action="store_true", help="seed and keep the shapes' databases, then stop")
    parser.add_argument("--seed-jobs", type=int, default=1, help="processes seeding clinics at once")
    parser.add_argument("--seed-part", type=int, nargs=4, help=argparse.SUPPRESS)  # one seeding process's share
    parser.add_argument("--work-jobs", type=int, default=1, help="processes doing the nightly work at once")
    parser.add_argument("--work-part", type=int, nargs=2, help=argparse.SUPPRESS)  # one worker process's share
    args = parser.parse_args()
    if args.seed_part:
        _setup()
        _seed_part(*args.seed_part)
        return
    if args.work_part:
        _setup()
        _work_part(*args.work_part)
        return
    clinics, patients = args.clinics or (QUICK if args.quick else DEFAULT)[0], args.patients or (
        QUICK if args.quick else DEFAULT)[1]  # fmt: skip
    if len(clinics) != len(patients):
        sys.exit("--clinics and --patients are taken pairwise: give as many of each.")
    url = _setup()
    load_before = os.getloadavg()[0]
    template = _template_make(url)
    if args.seed_only:
        for c, p in zip(clinics, patients, strict=True):
            if _seed_kept(url, c, p) is None:
                _recreate(url, template=template)
                _seed_keep(url, c, p, _seed(c, p, args.seed_jobs)[1])
            print(f"{c:>5} x {p:>5}: seeded in {_seed_kept(url, c, p):.0f} s, kept as {_seed_name(url, c, p)}")
        return
    started = time.perf_counter()
    fields = _model_train()
    print(f"model trained in {time.perf_counter() - started:.0f} s", flush=True)
    rows = [
        shape(url, template, fields, c, p, args.keep_seed, args.seed_jobs, args.work_jobs)
        for c, p in zip(clinics, patients, strict=True)
    ]
    body = _report(rows, (load_before, os.getloadavg()[0]), args.quick)
    write_section("A clinic network", machine_summary() + "\n\n" + body)
    print(body)


if __name__ == "__main__":
    main()
