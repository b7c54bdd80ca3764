"""Writes of the model registry: request and run training, promote and roll back versions, check drift.

The pure training code lives in `mltraining.ml` (no Django); this module turns the clinic's rows into
DataFrames, results into rows (the artifact and plots as blobs in the database, `clinic.blobs`), and records one
audit row per change in the same transaction. A run writes nothing half-done: its version, artifact and plots
are written by its final transaction, or not at all.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import math
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from clinic import blobs, roles
from clinic.audit import audit_record
from clinic.models import AuditOutcome, BlobKind, Clinic, User
from clinic.outbox import outbox_send
from mltraining import provenance, selectors
from mltraining.ml import artifact as ml_artifact
from mltraining.ml import drift as ml_drift
from mltraining.ml import explain as ml_explain
from mltraining.ml import features as ml_features
from mltraining.ml import labels as ml_labels
from mltraining.ml import train as ml_train
from mltraining.models import (
    DriftBand,
    DriftReport,
    ModelStatus,
    ModelVersion,
    TrainingRun,
    TrainingStatus,
    TrainingTrigger,
)
from patients import selectors as patient_selectors

logger = logging.getLogger(__name__)

SYSTEM = "system"  # the audit trail's name for runs nobody clicked (schedule, command line)
LOOKBACK_DAYS = 730  # results older than this are not features (training, drift and scoring alike)
DRIFT_WINDOW_DAYS = 30
DRIFT_MIN_PATIENTS = 100  # below this, PSI from sampling noise alone reaches the "moderate" band
VISIT_ANALYTES = frozenset(code for code, _label, kind, _unit in ml_features.ANALYTES if kind != "wearable")
OnLog = Callable[[str], None]
OnProgress = Callable[[float], None]

# Progress of a run: share of the bar each stage ends at (training itself fills the space between).
_LOADED, _FEATURES, _TRAINED, _SAVED = 0.05, 0.1, 0.9, 0.97


def _ensure_can_manage(by: User | None, clinic_id: int) -> None:
    """`by=None` is the system itself (schedule, command line); a person must be an admin of that clinic."""
    if by is None:
        return
    if not (roles.can_manage_clinic(by) and (by.is_superuser or by.clinic_id == clinic_id)):
        raise PermissionDenied("Only an admin of this clinic can manage its models.")


# --- Requesting a run -----------------------------------------------------------------------------------


def _config_validate(config: ml_train.TrainingConfig) -> None:
    """What TrainingConfig itself does not check (it refuses unknown candidates and metrics on creation)."""
    if not config.candidates:
        raise ValidationError("Choose at least one candidate model.")
    if config.cv_folds < 2:
        raise ValidationError("Cross-validation needs at least 2 folds.")


def training_config_from_json(data: dict[str, Any]) -> ml_train.TrainingConfig:
    """Rebuild the config a run stored (JSON turned its tuples into lists; unknown keys are ignored)."""
    known = {field.name for field in fields(ml_train.TrainingConfig)}
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items() if key in known}
    return ml_train.TrainingConfig(**values)


@transaction.atomic
def training_run_request(
    *,
    clinic: Clinic,
    by: User | None,
    trigger: str = TrainingTrigger.MANUAL,
    config: ml_train.TrainingConfig | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Queue a training run for the clinic; the Celery task starts once this transaction commits.

    Refused while another run of the clinic is queued or running. `enqueue=False` leaves the run queued for
    the caller to execute in-process (`manage.py train_model --sync`).
    """
    _ensure_can_manage(by, clinic.pk)
    config = config or ml_train.TrainingConfig()
    _config_validate(config)
    _training_runs_expire(clinic_id=clinic.pk)
    busy = selectors.training_run_in_flight(clinic_id=clinic.pk).first()
    if busy is not None:
        raise ValidationError(f"{busy} of this clinic has not finished yet; wait for it before starting another.")
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                clinic=clinic, trigger=trigger, requested_by=by, configuration=config.to_dict()
            )
    except IntegrityError:  # another request won the race for the clinic's one in-flight slot
        raise ValidationError("Another training run of this clinic was just started; wait for it.") from None
    audit_record(
        actor=by,
        action="training_run.request",
        target=run,
        detail={"trigger": trigger, "candidates": list(config.candidates), "cv_folds": config.cv_folds},
        username=SYSTEM,
    )
    if enqueue:
        _dispatch(run.pk)
    return run


def _dispatch(run_id: int) -> None:
    """Run the training once this transaction commits, never inside the request that asked for it.

    Without a broker (`make run`, Celery eager) the task would train in the request (about 44 s on the demo);
    the run goes to a thread of the web process instead, as import jobs do, and its page follows the progress.
    Otherwise through the outbox: a broker that is down delays the run instead of failing the request.
    Tests set `TRAINING_RUNS_IN_THREAD = False` to run it on commit.
    """
    from clinic.celery import app

    if app.conf.task_always_eager and getattr(settings, "TRAINING_RUNS_IN_THREAD", True):
        thread = threading.Thread(target=_run_in_thread, args=(run_id,), name=f"training-run-{run_id}", daemon=True)
        transaction.on_commit(thread.start)
    else:
        outbox_send(task="mltraining.tasks.train_model_task", args=[run_id])


def _run_in_thread(run_id: int) -> None:
    try:
        training_run_execute(run_id=run_id)
    except Exception:  # the run's row holds the error; the thread only must not die silently
        logger.exception("Training run %s failed in its thread", run_id)
    finally:
        connection.close()  # the thread's own connection


def _training_runs_expire(*, clinic_id: int) -> None:
    """Mark failed the runs still "running" past the hard time limit: their worker died with them."""
    cutoff = timezone.now() - selectors.training_stale_after()
    stale = TrainingRun.objects.filter(clinic_id=clinic_id, status=TrainingStatus.RUNNING, started_at__lt=cutoff)
    for run in stale:
        run.status, run.finished_at = TrainingStatus.FAILED, timezone.now()
        run.error = "The run stopped reporting and passed the task time limit: its worker was lost."
        run.save(update_fields=["status", "finished_at", "error"])
        audit_record(
            actor=None, action="training_run.expire", target=run, outcome=AuditOutcome.FAILURE, username=SYSTEM
        )


# A queued run whose message was lost (Redis restarted without persistence) would block the clinic's next run for
# good. A periodic sweep sends it again once it has waited RUN_RESEND_AFTER unclaimed (if the first message is only
# late, whichever delivery comes second finds the run claimed and does nothing). After RUN_RESENDS sends, once no
# run of any clinic has started or finished for RUN_RESEND_AFTER either (no worker is working: a run merely queued
# behind others keeps waiting), the run is failed with the reason, which frees the clinic's slot.
RUN_RESEND_AFTER = datetime.timedelta(minutes=30)
RUN_RESENDS = 3


def training_runs_resume_queued() -> list[int]:
    """Send again each run queued unclaimed for RUN_RESEND_AFTER, or fail it after RUN_RESENDS. Returns their ids."""
    cutoff = timezone.now() - RUN_RESEND_AFTER
    waiting = TrainingRun.objects.filter(status=TrainingStatus.QUEUED).filter(
        Q(resent_at__lt=cutoff) | Q(resent_at=None, created_at__lt=cutoff)
    )
    return [run_id for run_id in waiting.values_list("pk", flat=True) if _training_run_resend(run_id, cutoff)]


@transaction.atomic
def _training_run_resend(run_id: int, cutoff: datetime.datetime) -> bool:
    from mltraining.tasks import train_model_task

    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    if run.status != TrainingStatus.QUEUED or (run.resent_at or run.created_at) >= cutoff:
        return False  # claimed or sent again meanwhile
    if run.resends >= RUN_RESENDS:
        if TrainingRun.objects.filter(Q(started_at__gte=cutoff) | Q(finished_at__gte=cutoff)).exists():
            return False  # sent often enough, and workers are busy with other runs: its turn will come
        minutes = int(RUN_RESEND_AFTER.total_seconds() // 60)
        run.status, run.finished_at = TrainingStatus.FAILED, timezone.now()
        run.error = (
            f"No worker started this run within {minutes} minutes, {RUN_RESENDS + 1} times over (its message was "
            "lost or no worker is running): start the Celery workers and request the run again."
        )
        run.save(update_fields=["status", "finished_at", "error"])
        audit_record(
            actor=None, action="training_run.expire", target=run, outcome=AuditOutcome.FAILURE, username=SYSTEM,
            detail={"reason": "never started", "resends": run.resends},
        )  # fmt: skip
        return True
    run.resends, run.resent_at = run.resends + 1, timezone.now()
    run.save(update_fields=["resends", "resent_at"])
    audit_record(actor=None, action="training_run.resend", target=run, username=SYSTEM, detail={"resends": run.resends})
    logger.warning("Training run %s waited %s unclaimed: its message was sent again", run_id, RUN_RESEND_AFTER)
    transaction.on_commit(lambda: train_model_task.delay(run_id))
    return True


def training_run_schedule_all(*, clinic_ids: list[int] | None = None) -> list[TrainingRun]:
    """The weekly retraining: one run per clinic (of `clinic_ids`, if given) with patients, skipping clinics with a
    run in flight."""
    runs = []
    clinics = Clinic.objects.filter(pk__in=patient_selectors.clinic_ids_with_patients()).order_by("pk")
    if clinic_ids is not None:
        clinics = clinics.filter(pk__in=clinic_ids)
    for clinic in clinics:
        try:
            runs.append(training_run_request(clinic=clinic, by=None, trigger=TrainingTrigger.SCHEDULED))
        except ValidationError as exc:
            logger.info("Scheduled retraining of %s skipped: %s", clinic.slug, exc.messages[0])
    return runs


# --- Executing a run ------------------------------------------------------------------------------------


class _RunRecorder:
    """Appends log lines and progress to the run's row while it trains.

    Training runs outside any transaction, so each write commits at once and the admin page shows it.
    Progress alone is written at most once a second; a log line is written immediately.
    """

    def __init__(self, run_id: int, *, on_log: OnLog | None = None, on_progress: OnProgress | None = None):
        self.run_id = run_id
        self.lines: list[str] = []
        self.fraction = 0.0
        self._on_log, self._on_progress = on_log, on_progress
        self._written_at = 0.0

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def log(self, message: str) -> None:
        for line in str(message).splitlines() or [""]:
            stamped = f"{timezone.now():%H:%M:%S} {line}"
            self.lines.append(stamped)
            if self._on_log:
                self._on_log(stamped)
        self._write()

    def progress(self, fraction: float) -> None:
        fraction = min(max(float(fraction), self.fraction), 1.0)  # never backwards
        self.fraction = fraction
        if self._on_progress:
            self._on_progress(fraction)
        if time.monotonic() - self._written_at >= 1.0:
            self._write()

    def finish(self) -> None:
        """Complete the bar for the observer; the row itself gets progress 1.0 with the run's final write."""
        self.fraction = 1.0
        if self._on_progress:
            self._on_progress(1.0)

    def stage(self, start: float, end: float) -> OnProgress:
        """A progress callback for a sub-task, mapping its 0..1 onto start..end of the whole run."""

        def report(fraction: float) -> None:
            self.progress(start + (end - start) * min(max(float(fraction), 0.0), 1.0))

        return report

    def _write(self) -> None:
        self._written_at = time.monotonic()
        TrainingRun.objects.filter(pk=self.run_id).update(log=self.text, progress=self.fraction)


def _training_run_claim(run_id: int) -> TrainingRun | None:
    """queued -> running with one conditional UPDATE: a redelivered task finds nothing to claim."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingStatus.QUEUED).update(
        status=TrainingStatus.RUNNING, started_at=timezone.now(), progress=0.0
    )
    return TrainingRun.objects.select_related("clinic").get(pk=run_id) if claimed else None


@dataclass
class _Trained:
    """What a successful fit leaves behind before anything is committed."""

    result: Any  # ml.train.TrainingResult
    data_summary: dict[str, Any]
    provenance: dict[str, Any]
    artifact: Any  # ml.artifact.ArtifactInfo
    payload: bytes  # the model's skops bytes, stored with the version's row
    explainer: bytes | None  # its explanation's preparation (`ml_explain.prepared_dumps`), stored beside them
    plots: dict[str, bytes]  # name -> PNG
    reference_profile: dict[str, Any]
    timings: dict[str, float]


def training_run_execute(
    *, run_id: int, on_log: OnLog | None = None, on_progress: OnProgress | None = None
) -> TrainingRun | None:
    """Train the run's clinic model, register the version and apply the promotion gate.

    Returns None when the run was not queued (already claimed by another delivery of the task). Any
    failure marks the run failed with its error and leaves no artifact, plot or version behind.
    """
    run = _training_run_claim(run_id)
    if run is None:
        logger.info("Training run %s is not queued any more; nothing to do.", run_id)
        return None
    recorder = _RunRecorder(run.pk, on_log=on_log, on_progress=on_progress)
    try:
        trained = _train(run, recorder)
        run = _training_run_succeed(run, recorder, trained)
        recorder.finish()
        return run
    except Exception as exc:  # any failure fails the run, whatever raised it
        logger.exception("Training run %s failed", run.pk)
        return _training_run_fail(run, recorder, exc)


def _observation_frame(*, clinic_id: int, since=None) -> pd.DataFrame:
    rows = patient_selectors.clinic_observation_rows(clinic_id=clinic_id, since=since).iterator(chunk_size=20_000)
    frame = pd.DataFrame.from_records(list(rows), columns=list(ml_features.OBSERVATION_COLUMNS))
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
    frame["effective_at"] = pd.to_datetime(frame["effective_at"], utc=True)
    return frame


def _patient_frame(*, clinic_id: int) -> pd.DataFrame:
    rows = list(patient_selectors.clinic_patient_rows(clinic_id=clinic_id))
    return pd.DataFrame.from_records(rows, columns=["patient_id", *patient_selectors.PATIENT_PROFILE_FIELDS])[
        list(ml_features.PATIENT_COLUMNS)
    ]


def _condition_frame(*, clinic_id: int) -> pd.DataFrame:
    """Diagnoses as training reads them: only a doctor's confirmation, or a trusted source's, makes a positive
    label (`patients.selectors.clinic_condition_rows`); `origin` says whose it is."""
    rows = patient_selectors.clinic_condition_rows(clinic_id=clinic_id)
    columns = ["patient_id", "code", "verification_status", "clinical_status", "origin"]
    return pd.DataFrame.from_records(rows, columns=columns)


def _provenance(clinic_id: int, X: pd.DataFrame, conditions: pd.DataFrame, sources: dict[str, int]) -> dict[str, Any]:
    """Where the rows the model learns from came from, and who vouches for their diagnoses (`mltraining.provenance`)."""
    learned = conditions[conditions["patient_id"].isin(X.index)]
    codes = learned["code"].astype(str)
    confirmed = learned[(learned["verification_status"] == "confirmed") & codes.map(ml_labels.class_of_code).notna()]
    return provenance.provenance_build(
        patient_ids=X.index,
        patient_sources=patient_selectors.clinic_patient_sources(clinic_id=clinic_id),
        observation_sources=sources,
        label_origins={str(k): int(v) for k, v in confirmed["origin"].value_counts().items()},
        trusted_sources=patient_selectors.clinic_trusted_sources(clinic_id=clinic_id),
    )


def _training_table(run: TrainingRun, recorder: _RunRecorder, timings: dict[str, float]):
    """(X, y, data summary, provenance): one feature row per labelled patient, read with one query per table."""
    started = time.perf_counter()
    clinic_id = run.clinic_id
    as_of = pd.Timestamp(timezone.now())
    observations = _observation_frame(clinic_id=clinic_id, since=as_of - pd.Timedelta(days=LOOKBACK_DAYS))
    patients = _patient_frame(clinic_id=clinic_id)
    conditions = _condition_frame(clinic_id=clinic_id)
    sources = patient_selectors.clinic_observation_source_counts(clinic_id=clinic_id)
    timings["load_data"] = time.perf_counter() - started
    recorder.log(
        f"Read {len(patients):,} patients, {len(observations):,} observations and {len(conditions):,} conditions."
    )
    recorder.progress(_LOADED)

    started = time.perf_counter()
    X = ml_features.build_features(observations, patients, as_of=as_of, window_days=LOOKBACK_DAYS)
    labels = ml_labels.label_patients(conditions, X.index)
    # A patient without results in the lookback carries no signal; "healthy" with every value missing is noise.
    has_results = X.index.isin(observations["patient_id"].unique())
    # The model learns only from patients it would be allowed to score: every required input, recent enough.
    sufficient = np.array([not missing for missing in ml_features.missing_inputs(X)], dtype=bool)
    usable = labels.notna().to_numpy()
    keep = has_results & sufficient & usable
    X, y = X.loc[keep], labels.loc[keep].astype(str)
    timings["features"] = time.perf_counter() - started
    total_observations = sum(sources.values())
    summary = {
        "as_of": as_of.isoformat(),
        "patients": len(patients),
        "rows": len(X),
        "excluded": int((has_results & ~usable).sum()),
        "without_results": int((~has_results).sum()),
        "not_enough_data": int((has_results & ~sufficient).sum()),
        "observations": len(observations),
        "conditions": len(conditions),
        "labels": {str(k): int(v) for k, v in y.value_counts().items()},
        "sources": sources,
        "synthetic_share": (sources.get("demo", 0) / total_observations) if total_observations else 0.0,
    }
    recorder.log(
        f"{len(X):,} labelled patients to learn from; {summary['excluded']:,} excluded (uncertain label), "
        f"{summary['without_results']:,} without results in the last {LOOKBACK_DAYS} days, "
        f"{summary['not_enough_data']:,} without a recent value of each input the model needs."
    )
    if len(X) == 0:
        raise ValidationError("No patient has both results and a usable label; there is nothing to learn from.")
    trained_on = _provenance(clinic_id, X, conditions, sources)
    recorder.log(provenance.provenance_sentence(trained_on))
    recorder.progress(_FEATURES)
    return X, y, summary, trained_on


def _train(run: TrainingRun, recorder: _RunRecorder) -> _Trained:
    timings: dict[str, float] = {}
    config = training_config_from_json(run.configuration)
    recorder.log(f"Training run #{run.pk} for {run.clinic}: candidates {', '.join(config.candidates)}.")
    X, y, summary, trained_on = _training_table(run, recorder, timings)

    started = time.perf_counter()
    result = ml_train.train(
        X,
        y,
        groups=pd.Series(X.index, index=X.index),  # one row per patient: each patient on one side of a split
        numeric=list(ml_features.NUMERIC),
        categorical=list(ml_features.CATEGORICAL),
        config=config,
        log=recorder.log,
        progress=recorder.stage(_FEATURES, _TRAINED),
    )
    timings["train"] = time.perf_counter() - started

    started = time.perf_counter()
    payload, info = ml_artifact.model_dumps(
        result.model,
        feature_schema=ml_features.feature_schema(),
        data_hash=result.data_hash,
        rows=len(X),
        classes=list(result.classes),
    )
    profile = ml_drift.reference_profile(
        X[list(result.feature_names)] if result.feature_names else X,
        numeric=list(result.numeric),
        categorical=list(result.categorical),
        predicted=pd.Series(result.model.predict(X), index=X.index),
    )
    explainer = _explainer_bytes(payload, sha256=info.sha256, sklearn_version=info.sklearn_version)
    timings["save"] = time.perf_counter() - started
    recorder.log(f"Serialised the artifact ({len(payload):,} bytes, {info.sha256[:12]}...), {len(result.plots)} plots.")
    recorder.progress(_SAVED)
    return _Trained(
        result=result,
        data_summary=summary,
        provenance=_jsonable(trained_on),
        artifact=info,
        payload=payload,
        explainer=explainer,
        plots=dict(result.plots),
        reference_profile=_jsonable(profile),
        timings=timings,
    )


def _explainer_bytes(payload: bytes, *, sha256: str, sklearn_version: str) -> bytes | None:
    """The explanation paths of the model in `payload` (`ml_explain.prepared_dumps`), prepared from the model as
    every worker loads it, so what is stored is what they would prepare; None for a model that needs none."""
    model = ml_artifact.model_loads(payload, expected_sha256=sha256, sklearn_version=sklearn_version)
    return ml_explain.prepared_dumps(model)


def _jsonable(value: Any) -> Any:
    """NaN and infinities become None (JSON has no such numbers); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Promotion:
    activate: bool
    reason: str


def promotion_decide(
    *, candidate_auc: float | None, baseline_auc: float | None, active: ModelVersion | None, tolerance: float
) -> Promotion:
    """The gate: activate a new version when nothing is active, or when it is not worse than the active one by
    more than `tolerance` in held-out macro ROC-AUC. A model no better than the dummy is never activated."""
    if candidate_auc is None:
        return Promotion(False, "it has no held-out macro ROC-AUC, so it waits for an admin to activate it")
    if baseline_auc is not None and candidate_auc <= baseline_auc:
        return Promotion(
            False,
            f"its held-out macro ROC-AUC {candidate_auc:.3f} is no better than the dummy baseline's "
            f"{baseline_auc:.3f}, so it waits for an admin",
        )
    if active is None:
        return Promotion(True, "no version was active")
    active_auc = active.roc_auc
    if active_auc is None:
        return Promotion(True, f"the active v{active.version} has no held-out macro ROC-AUC to compare with")
    if candidate_auc < active_auc - tolerance:
        return Promotion(
            False,
            f"its held-out macro ROC-AUC {candidate_auc:.3f} is worse than active v{active.version}'s "
            f"{active_auc:.3f} by more than the tolerance {tolerance:g}, so it waits for an admin to activate it",
        )
    return Promotion(
        True,
        f"its held-out macro ROC-AUC {candidate_auc:.3f} is within {tolerance:g} of (or above) "
        f"active v{active.version}'s {active_auc:.3f}",
    )


LIMITATIONS = [
    "Each patient gets one label although conditions co-occur: the training labels reduce several confirmed "
    "diagnoses to one class, so a second condition of the same patient is not learned from.",
    "Labels are the clinic's recorded diagnoses: missing, late or wrong diagnoses (label noise) are learned as "
    "truth, and patients never tested for a condition count as not having it.",
    "Probabilities are calibrated on the training data of this clinic; they drift when the population, the "
    "laboratory or its units change (see the drift reports).",
    "Performance is measured on a held-out split of the same clinic and period, not on an external population.",
]
INTENDED_USE = (
    "Decision support for clinicians caring for adult outpatients: it ranks the likelihood of common "
    "conditions from routine blood results, vitals and lifestyle data, to prompt review and further testing. "
    "It is not a diagnosis."
)
OUT_OF_SCOPE = [
    "Diagnosing, ruling out or treating any condition without a clinician's review.",
    "Children and adolescents (under 18), pregnancy, emergency and inpatient care.",
    "Patients of another clinic, laboratory or population than the one it was trained on.",
    "Decisions about insurance, employment or anything other than the patient's own care.",
]


def _model_card(run: TrainingRun, trained: _Trained, config: ml_train.TrainingConfig) -> dict[str, Any]:
    summary, trained_on = trained.data_summary, trained.provenance
    limitations = list(LIMITATIONS)
    if provenance.is_synthetic(trained_on):
        limitations.insert(
            0,
            f"{summary.get('synthetic_share', 0):.0%} of the training results are synthetic demo data: the figures "
            "describe the generator, not real patients. Do not use this version for care; it can be active only in "
            "a demo clinic.",
        )
    trusted = (trained_on.get("labels") or {}).get("trusted", 0)
    if trusted:
        limitations.insert(
            0,
            f"Labels from a trusted import source: {trusted:,} diagnoses count as confirmed because the clinic trusts "
            f"their source ({', '.join(trained_on.get('trusted_sources') or [])}), not because a doctor here "
            "confirmed each one.",
        )
    if config.calibration:
        limitations.append(f"Probabilities were calibrated with the {config.calibration} method on training folds.")
    return {
        "intended_use": INTENDED_USE,
        "out_of_scope": OUT_OF_SCOPE,
        "limitations": limitations,
        "classes": {key: ml_labels.CLASS_DISPLAY.get(key, key) for key in trained.result.classes},
        "model": trained.result.chosen,
        "reason": trained.result.reason,
        "training_data": provenance.provenance_sentence(trained_on),
    }


def _training_run_succeed(run: TrainingRun, recorder: _RunRecorder, trained: _Trained) -> TrainingRun:
    """Register the version, apply the gate and close the run, all in one transaction."""
    result, summary = trained.result, _jsonable(trained.result.summary())
    config = training_config_from_json(run.configuration)
    metrics = _jsonable(
        {
            "test": result.test_metrics,
            "ci": {name: list(interval) for name, interval in result.test_ci.items()},
            # The dummy's curves are the chance line and its flat prior: not worth storing with every version.
            "baseline": {key: value for key, value in result.baseline_test_metrics.items() if key != "curves"},
            "subgroups": result.subgroup_metrics,
            "n_train": result.n_train,
            "n_test": result.n_test,
        }
    )
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().select_related("clinic").get(pk=run.pk)
        if run.status != TrainingStatus.RUNNING:
            raise RuntimeError("The run was marked lost while it trained; its result is discarded.")
        # Lock the clinic's versions in pk order (the order activation uses too) before numbering and promoting.
        versions = list(ModelVersion.objects.select_for_update().filter(clinic_id=run.clinic_id).order_by("pk"))
        active = next((version for version in versions if version.status == ModelStatus.ACTIVE), None)
        baseline_auc = (metrics.get("baseline") or {}).get("roc_auc_ovr_macro")
        refusal = activation_refusal(trained_on=trained.provenance, clinic=run.clinic)
        decision = Promotion(False, refusal) if refusal else promotion_decide(
            candidate_auc=metrics["test"].get("roc_auc_ovr_macro"),
            baseline_auc=baseline_auc,
            active=active,
            tolerance=settings.MODEL_PROMOTION_TOLERANCE,
        )  # fmt: skip
        info = trained.artifact
        version = ModelVersion.objects.create(
            clinic_id=run.clinic_id,
            version=max((v.version for v in versions), default=0) + 1,
            training_run=run,
            # In this transaction: the version exists exactly when its artifact does, on every host.
            artifact=blobs.blob_save(kind=BlobKind.ARTIFACT, pieces=[trained.payload]),
            explainer=blobs.blob_save(kind=BlobKind.ARTIFACT, pieces=[trained.explainer])
            if trained.explainer
            else None,
            sha256=info.sha256,
            sklearn_version=info.sklearn_version,
            library_versions=_jsonable(info.library_versions),
            feature_schema=_jsonable(info.feature_schema),
            classes=list(result.classes),
            data_hash=info.data_hash,
            rows=info.rows,
            metrics=metrics,
            risk_thresholds=list(config.risk_thresholds),
            reference_profile=trained.reference_profile,
            model_card=_jsonable(_model_card(run, trained, config)),
            provenance=trained.provenance,
        )
        if decision.activate:
            _activate(version, active, by=None)
            recorder.log(f"Registered v{version.version} and activated it: {decision.reason}.")
        else:
            recorder.log(f"Registered v{version.version} as a candidate: {decision.reason}.")
        run.status, run.finished_at, run.progress = TrainingStatus.SUCCEEDED, timezone.now(), 1.0
        run.data_summary = _jsonable(trained.data_summary)
        run.audit = summary.get("audit") or {}
        run.candidates = summary.get("candidates") or []
        run.chosen, run.reason = result.chosen, result.reason
        run.metrics = metrics
        run.importances = _jsonable({"model": result.feature_importance, "permutation": result.permutation_importance})
        run.plots = {name: blobs.blob_save(kind=BlobKind.PLOT, pieces=[png]).pk for name, png in trained.plots.items()}
        run.timings = {name: round(seconds, 3) for name, seconds in {**result.timings, **trained.timings}.items()}
        run.log = recorder.text
        run.save()
        audit_record(
            actor=None,
            action="training_run.succeed",
            target=run,
            detail={
                "model_version": version.pk,
                "version": version.version,
                "chosen": result.chosen,
                "roc_auc_ovr_macro": metrics["test"].get("roc_auc_ovr_macro"),
                "activated": decision.activate,
                "gate": decision.reason,
                "training_data": provenance.provenance_sentence(trained.provenance),
            },
            username=SYSTEM,
        )
    return run


def _training_run_fail(run: TrainingRun, recorder: _RunRecorder, exc: BaseException) -> TrainingRun:
    message = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    recorder.log(f"Failed: {type(exc).__name__}: {message}")
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        run.status, run.finished_at = TrainingStatus.FAILED, timezone.now()
        run.error = f"{type(exc).__name__}: {message}\n\n{''.join(traceback.format_exception(exc))}"
        run.log = recorder.text
        run.save(update_fields=["status", "finished_at", "error", "log"])
        audit_record(
            actor=None,
            action="training_run.fail",
            target=run,
            outcome=AuditOutcome.FAILURE,
            detail={"error": f"{type(exc).__name__}: {message}"[:500]},
            username=SYSTEM,
        )
    return run


# --- Activation and rollback ----------------------------------------------------------------------------


def _activate(version: ModelVersion, active: ModelVersion | None, *, by: User | None, reason: str = "") -> None:
    """Archive the active version first, then activate: the partial unique index never sees two."""
    now = timezone.now()
    if active is not None and active.pk != version.pk:
        active.status = ModelStatus.ARCHIVED
        active.save(update_fields=["status"])
    version.status, version.activated_at, version.activated_by = ModelStatus.ACTIVE, now, by
    version.activation_reason = reason
    version.save(update_fields=["status", "activated_at", "activated_by", "activation_reason"])


def model_version_verify(*, version: ModelVersion) -> None:
    """Load the artifact with its hash check; ValidationError with the reason when it is missing or altered."""
    try:
        selectors.model_version_model(version=version)
    except ml_artifact.ArtifactError as exc:
        raise ValidationError(f"{version} cannot be activated: its artifact failed verification ({exc}).") from exc


def _versions_lock(*, version: ModelVersion) -> tuple[ModelVersion, ModelVersion | None]:
    """Lock the target and the clinic's active version in pk order, the order every writer of versions uses."""
    locked = list(
        ModelVersion.objects.select_for_update()
        .filter(clinic_id=version.clinic_id)
        .filter(Q(pk=version.pk) | Q(status=ModelStatus.ACTIVE))
        .order_by("pk")
    )
    target = next(v for v in locked if v.pk == version.pk)
    return target, next((v for v in locked if v.status == ModelStatus.ACTIVE), None)


def activation_refusal(*, trained_on: dict[str, Any], clinic: Clinic) -> str:
    """Why a version with this provenance may not be active in the clinic, or "" when it may.

    A model trained on the synthetic demo cohort learned the generator, not patients: it scores only a demo
    clinic's (synthetic) patients, never a real clinic's.
    """
    if not provenance.is_synthetic(trained_on) or clinic.is_demo:
        return ""
    return (
        f"it was trained on synthetic demo data and {clinic} is not a demo clinic; a model trained on synthetic "
        "data never scores real patients. Train a version on this clinic's own records"
    )


def _model_version_switch(
    *, version: ModelVersion, by: User, reason: str, action: str, allowed: tuple[str, ...]
) -> ModelVersion:
    """Switch the clinic's live model. A person's switch carries their reason: it is what the next admin (or an
    auditor) reads in the version history to know why the clinic's patients are scored by this version."""
    _ensure_can_manage(by, version.clinic_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give a reason for switching the clinic's model; nothing was changed.", code="reason")
    if version.status not in allowed:
        raise ValidationError(
            f"{version} is {version.get_status_display().lower()}; only a {' or '.join(allowed)} "
            "version can be switched to here."
        )
    refusal = activation_refusal(trained_on=version.provenance, clinic=version.clinic)
    if refusal:
        raise ValidationError(f"{version} cannot be activated: {refusal}. Nothing was changed.", code="synthetic")
    model_version_verify(version=version)  # before the transaction: loading an artifact takes a moment
    with transaction.atomic():
        target, active = _versions_lock(version=version)
        if target.status not in allowed:  # changed while the artifact was checked
            raise ValidationError(f"{target} changed status meanwhile; reload the page.")
        _activate(target, active, by=by, reason=reason)
        audit_record(
            actor=by,
            action=action,
            target=target,
            detail={"version": target.version, "previous_active": active.version if active else None, "reason": reason},
        )
    return target


def model_version_activate(*, version: ModelVersion, by: User, reason: str) -> ModelVersion:
    """Make a candidate (or an archived version) the clinic's active model; the active one is archived."""
    return _model_version_switch(
        version=version,
        by=by,
        reason=reason,
        action="model_version.activate",
        allowed=(ModelStatus.CANDIDATE, ModelStatus.ARCHIVED),
    )


def model_version_rollback(*, version: ModelVersion, by: User, reason: str) -> ModelVersion:
    """Re-activate an archived, formerly active version in one step; the current one is archived."""
    return _model_version_switch(
        version=version, by=by, reason=reason, action="model_version.rollback", allowed=(ModelStatus.ARCHIVED,)
    )


# --- Drift ----------------------------------------------------------------------------------------------


def _predict_labels(version: ModelVersion, X: pd.DataFrame) -> tuple[pd.Series | None, str]:
    """The active model's predicted class per recent patient, or (None, why) when its artifact cannot be used."""
    try:
        model = selectors.model_version_model(version=version)
    except ml_artifact.ArtifactError as exc:
        return None, str(exc)
    return pd.Series(model.predict(X), index=X.index).astype(str), ""


def drift_check(
    *, clinic: Clinic, by: User | None = None, window_days: int = DRIFT_WINDOW_DAYS, now=None
) -> DriftReport:
    """Compare what the active version sees now with what it was trained on, and store the result.

    "Now" is the feature rows, built exactly as for training, of the patients with a result in the last
    `window_days`: a laboratory that changed its units shows up in their latest values.
    """
    _ensure_can_manage(by, clinic.pk)
    version = selectors.active_model_for(clinic=clinic)
    if version is None:
        raise ValidationError(f"{clinic} has no active model to check for drift.")
    now = pd.Timestamp(now or timezone.now())
    window_start = now - pd.Timedelta(days=window_days)
    observations = _observation_frame(clinic_id=clinic.pk, since=now - pd.Timedelta(days=LOOKBACK_DAYS))
    # Recent patients are those with a lab or vital in the window: wearables send data daily without any visit,
    # and counting them would make the sample mostly tracker wearers.
    visit = observations["analyte"].isin(VISIT_ANALYTES) & (observations["effective_at"] >= window_start)
    recent_ids = observations.loc[visit, "patient_id"].unique()
    report: dict[str, Any] = {"window_start": window_start.isoformat()}
    predicted_mix: dict[str, float] = {}
    if len(recent_ids) == 0:
        band, n_recent = DriftBand.NO_DATA, 0
    else:
        patients = _patient_frame(clinic_id=clinic.pk)
        patients = patients[patients["patient_id"].isin(recent_ids)]
        X = ml_features.build_features(observations, patients, as_of=now, window_days=LOOKBACK_DAYS)
        predicted, artifact_error = _predict_labels(version, X)
        result = ml_drift.drift_report(version.reference_profile, X, predicted_recent=predicted)
        report.update(_jsonable(result))
        if artifact_error:
            report["artifact_error"] = artifact_error
        if len(X) < DRIFT_MIN_PATIENTS:
            report["note"] = (
                f"Only {len(X)} recent patients: with so few, PSI is noisy (about 10 / n from sampling alone), "
                "so read a moderate or major band as a prompt to look, not as proof of a shift."
            )
        if predicted is not None:
            predicted_mix = {str(k): float(v) for k, v in predicted.value_counts(normalize=True).items()}
        band, n_recent = result["overall_band"], int(result["n_recent"])
    with transaction.atomic():
        drift = DriftReport.objects.create(
            clinic=clinic,
            model_version=version,
            window_days=window_days,
            n_recent=n_recent,
            overall_band=band,
            report=report,
            predicted_mix=predicted_mix,
        )
        audit_record(
            actor=by,
            action="drift.check",
            target=drift,
            detail={"version": version.version, "band": band, "n_recent": n_recent, "worst": report.get("worst", [])},
            username=SYSTEM,
        )
    return drift


def drift_check_all_clinics(*, clinic_ids: list[int] | None = None) -> list[DriftReport]:
    """The weekly drift check: one report per clinic (of `clinic_ids`, if given) with an active model; one clinic's
    failure skips only it."""
    reports = []
    clinics = selectors.clinics_with_active_model()
    if clinic_ids is not None:
        clinics = clinics.filter(pk__in=clinic_ids)
    for clinic in clinics:
        try:
            reports.append(drift_check(clinic=clinic))
        except Exception:  # one broken clinic must not stop the others' checks
            logger.exception("Drift check of %s failed", clinic.slug)
    return reports


# --- Model files from before artifacts moved into the database ------------------------------------------------


def _legacy_file(directory: Path, relative: str) -> Path | None:
    """A file under `directory` named by a row; None for a path that leaves it or a file that is not there."""
    root = directory.resolve()
    path = (root / relative).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def model_files_import(*, directory: Path) -> list[str]:
    """Move the artifacts and plots that versions and runs still name by path under `directory` (the old
    MODEL_DIR) into the database, one transaction and one audit row per version or run; an artifact with the
    explanation paths training now stores beside it, where this server can load it. An artifact whose file is
    missing or does not match the version's recorded sha256 is left out and reported: it was never usable.
    Running it again imports only what is still missing. Returns one line per version or run, for the command."""
    lines = []
    for version in ModelVersion.objects.filter(artifact__isnull=True).exclude(artifact_path="").order_by("pk"):
        path = _legacy_file(directory, version.artifact_path)
        payload = path.read_bytes() if path else None
        if payload is None or hashlib.sha256(payload).hexdigest() != version.sha256:
            problem = "is missing" if payload is None else "does not match the version's recorded sha256"
            lines.append(f"{version} of {version.clinic}: {version.artifact_path} {problem}; not imported.")
            continue
        try:
            explainer = _explainer_bytes(payload, sha256=version.sha256, sklearn_version=version.sklearn_version)
        except ml_artifact.ArtifactError:  # imported all the same: scoring with it says why it cannot be used
            explainer = None
        with transaction.atomic():
            version.artifact = blobs.blob_save(kind=BlobKind.ARTIFACT, pieces=[payload])
            version.explainer = blobs.blob_save(kind=BlobKind.ARTIFACT, pieces=[explainer]) if explainer else None
            version.save(update_fields=["artifact", "explainer"])
            audit_record(actor=None, action="model_version.artifact_import", target=version, username=SYSTEM,
                         detail={"from": version.artifact_path, "bytes": len(payload)})  # fmt: skip
        lines.append(f"{version} of {version.clinic}: imported {len(payload):,} bytes from {version.artifact_path}.")
    for run in TrainingRun.objects.exclude(plots={}).only("pk", "plots").order_by("pk"):
        paths = {name: value for name, value in run.plots.items() if isinstance(value, str)}
        if not paths:
            continue
        with transaction.atomic():
            files = {name: _legacy_file(directory, value) for name, value in paths.items()}
            # A plot whose file is gone is dropped from the run: its page says there is none rather than break.
            stored = {name: blobs.blob_save(kind=BlobKind.PLOT, pieces=[f.read_bytes()]).pk
                      for name, f in files.items() if f}  # fmt: skip
            run.plots = {**{k: v for k, v in run.plots.items() if k not in paths}, **stored}
            run.save(update_fields=["plots"])
            audit_record(actor=None, action="training_run.plots_import", target=run, username=SYSTEM,
                         detail={"imported": sorted(stored), "missing": sorted(set(paths) - set(stored))})  # fmt: skip
        lines.append(f"{run}: imported {len(stored)} of {len(paths)} plots.")
    return lines
