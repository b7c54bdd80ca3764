"""Scoring patients: one at a time after new results, or every patient of a clinic in chunked batches.

A batch is split into chunks of at most CHUNK_SIZE patient ids, one Celery task each; a small clinic's batch
into at least MIN_CHUNKS, so that it too is shared by the workers (not at night, when every clinic's batch is
queued at once). A chunk reads its patients' observations in one query, builds the features, scores them with
one `predict_proba` call and writes the predictions in bulk, all in one transaction that also marks the chunk
done. The chunk row is locked while it is scored, so a redelivered or retried task finds it done and writes
nothing twice; the unique (batch, patient) constraint guards the same thing in the database.

The active model is loaded once per worker process and reloaded when the active version changes. A missing
or corrupt artifact fails the prediction with a clear error; there is never a fallback to another model.
"""

from __future__ import annotations

import datetime
import logging
import math
import time
from collections import OrderedDict
from typing import Any

import pandas as pd
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from clinic import roles
from clinic.audit import audit_record
from clinic.bulk import copy_insert, statistics_refresh, statistics_stale
from clinic.models import Clinic, User
from clinic.outbox import outbox_consume, outbox_send
from mltraining.ml.artifact import ArtifactError
from mltraining.ml.features import (
    OBSERVATION_COLUMNS,
    PATIENT_COLUMNS,
    RECENT_DAYS,
    build_features,
    feature_schema,
    missing_inputs,
)
from mltraining.models import ModelVersion
from mltraining.selectors import active_model_for, active_models, model_version_model
from patients import selectors as patient_selectors
from patients.catalog import catalog
from patients.clinical import interpret
from predictions.models import (
    BatchStatus,
    BatchTrigger,
    ChunkStatus,
    Prediction,
    PredictionBatch,
    PredictionChunk,
    PredictionStatus,
)
from predictions.scoring import Scored, input_records, score_frame
from recommendations import services as recommendation_services
from recommendations.models import Recommendation, RecommendationItem

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1000  # patients per chunk: one query, one predict_proba and one COPY each
MIN_CHUNKS = 4  # a batch of a few thousand patients or fewer still keeps several worker processes busy
MIN_CHUNK_SIZE = 100  # below this a chunk's fixed cost (task, transaction, model call) outweighs sharing it
WINDOW_DAYS = 730  # results older than two years do not describe the patient now
NOT_ENOUGH_DATA = "Not enough recent results for a risk estimate"
# clinic id -> (model version id, sha256, fitted model), per worker process, the most recently used last. At most
# MODELS_KEPT clinics' models stay in memory (each with its explainer's tree paths, a few MB): a worker that scores
# the nightly batches of 1,000 clinics would otherwise hold 1,000 models (bench/clinic_network.py). A batch's chunks
# are queued together, so a worker rarely comes back to a clinic it has dropped within one night.
MODELS_KEPT = 8
_loaded: OrderedDict[int, tuple[int, str, Any]] = OrderedDict()


NO_ACTIVE_MODEL = "the clinic has no active model yet"


class ModelUnavailable(Exception):
    """No usable model: none active, or its artifact is missing or fails verification."""


def model_load(*, version: ModelVersion) -> Any:
    """The fitted model of `version`, verified against its stored hash; cached for the life of the process.

    The artifact is read from the database (megabytes) only when this process has not loaded this version yet:
    artifacts never change, so the version's id and sha256 are enough to know the cached model is the same."""
    cached = _loaded.get(version.clinic_id)
    if cached is not None and cached[:2] == (version.pk, version.sha256):
        _loaded.move_to_end(version.clinic_id)
        return cached[2]
    try:
        model = model_version_model(version=version, explainer=True)
    except ArtifactError as exc:
        raise ModelUnavailable(f"Model version {version.version} cannot be used: {exc}") from exc
    _loaded.pop(version.clinic_id, None)  # the clinic's older version goes
    _loaded[version.clinic_id] = (version.pk, version.sha256, model)
    while len(_loaded) > MODELS_KEPT:
        _loaded.popitem(last=False)
    return model


def scoring_warm_up(*, budget_seconds: float = 2.0) -> list[int]:
    """Load the clinics' active models into this process and score one patient with each, writing nothing.

    Called when a worker process starts, so its first chunk does not also pay for loading the model and the
    first-call setup of the scoring libraries (about a second). Stops starting new clinics once the budget is
    spent (Celery gives a starting process 4 seconds). A model that cannot be loaded is skipped here: the
    chunks that need it fail with the reason, as they would without a warm-up. Returns the version ids warmed.
    """
    started, warmed = time.perf_counter(), []
    for version in active_models():
        first_patient = patient_selectors.patient_ids_of_clinic(clinic_id=version.clinic_id, limit=1)
        try:
            model_load(version=version)
            if first_patient:
                _score(first_patient, version=version)
            warmed.append(version.pk)
        except ModelUnavailable as exc:
            logger.warning("Warm-up skipped model version %s: %s", version.pk, exc)
        if time.perf_counter() - started > budget_seconds:
            break
    return warmed


def _features(patient_ids: list[int], *, clinic_id: int, as_of: datetime.datetime) -> pd.DataFrame:
    """Feature rows of the patients, in `patient_ids` order: one query for observations, one for patients."""
    return _features_and_times(patient_ids, clinic_id=clinic_id, as_of=as_of)[0]


def _features_and_times(
    patient_ids: list[int], *, clinic_id: int, as_of: datetime.datetime
) -> tuple[pd.DataFrame, dict[tuple[int, str], pd.Timestamp]]:
    """The feature rows, and the time of each (patient, analyte)'s latest result in the window, however old for
    its own analyte's window, to say when an input the model may not read was last measured. (Not kept in the
    frame's `attrs`: pandas deep-copies those on every operation.)"""
    since = as_of - datetime.timedelta(days=WINDOW_DAYS)
    observations = patient_selectors.observation_frame_for_patients(patient_ids=patient_ids, since=since, until=as_of)
    observations.columns = list(OBSERVATION_COLUMNS)
    codes = {pk: code for code, pk in catalog().ids.items()}
    observations["analyte"] = observations["analyte"].map(codes)
    patients = pd.DataFrame(
        list(patient_selectors.clinic_patient_rows(clinic_id=clinic_id, patient_ids=patient_ids)),
        columns=list(PATIENT_COLUMNS),
    )
    patients = patients.set_index("patient_id").loc[patient_ids].reset_index()
    X = build_features(observations, patients, as_of=pd.Timestamp(as_of), window_days=WINDOW_DAYS)
    return X, observations.groupby(["patient_id", "analyte"])["effective_at"].max().to_dict()


def _not_enough(missing: list[str], *, patient_id: int, required: list[dict], last_seen: dict) -> str:
    """ "Not enough recent results for a risk estimate: no creatinine in the last 365 days (last 2024-01-02); ..." """
    codes_of = {group["name"]: group["any_of"] for group in required}
    parts = []
    for name in missing:
        codes = codes_of[name]
        days = max(RECENT_DAYS.get(code, WINDOW_DAYS) for code in codes)
        last = max((last_seen[(patient_id, c)] for c in codes if (patient_id, c) in last_seen), default=None)
        when = f" (last {last.date().isoformat()})" if last is not None else ""
        parts.append(f"no {name} in the last {days} days{when}")
    return f"{NOT_ENOUGH_DATA}: {'; '.join(parts)}."


_VERDICTS = {"LL": "below range", "L": "below range", "N": "within range", "H": "above range", "HH": "above range"}


def _with_references(scored: Scored, *, sex: str, age: int) -> list[dict[str, Any]]:
    """Each contribution with where its value lies against the patient's reference range (the result flags)."""
    specs = catalog().by_code
    out = []
    for item in scored.contributions:
        spec = specs.get(item["analyte"] or "")
        flag = interpret(spec, item["value"], sex, age) if spec is not None and item["value"] is not None else ""
        out.append({**item, "reference": _VERDICTS.get(flag, "")})
    return out


def _prediction(
    scored: Scored, *, patient_id: int, sex: str, age: int, version: ModelVersion, method: str, now, batch=None
) -> Prediction:
    return Prediction(
        patient_id=patient_id,
        model_version=version,
        batch=batch,
        created_at=now,
        status=PredictionStatus.SUCCEEDED,
        probabilities=scored.probabilities,
        predicted_class=scored.predicted_class,
        risk_score=scored.risk_score,
        risk_level=scored.risk_level,
        risk_thresholds=list(version.risk_thresholds),
        inputs=scored.inputs,
        contributions=_with_references(scored, sex=sex, age=age),
        explanation_method=method,
    )


_COPY_COLUMNS = (
    "patient_id", "model_version_id", "batch_id", "created_at", "status", "probabilities", "predicted_class",
    "risk_score", "risk_level", "risk_thresholds", "inputs", "contributions", "explanation_method", "error",
)  # fmt: skip


def _predictions_insert(predictions: list[Prediction]) -> None:
    """Write a chunk's predictions: COPY on PostgreSQL (several times faster than a bulk INSERT of JSON rows)."""
    copy_insert(Prediction, predictions, _COPY_COLUMNS)


def _with_ids(predictions: list[Prediction], *, batch_id: int) -> list[Prediction]:
    """Give COPY-inserted predictions their primary keys (one query); bulk_create already set them."""
    if all(p.pk is not None for p in predictions):
        return predictions
    ids = dict(
        Prediction.objects.filter(batch_id=batch_id, patient_id__in=[p.patient_id for p in predictions]).values_list(
            "patient_id", "pk"
        )
    )
    for p in predictions:
        p.pk = ids[p.patient_id]
    return predictions


def _score(patient_ids: list[int], *, version: ModelVersion, batch=None) -> list[Prediction]:
    """Score the patients who have every input the version needs (`missing_inputs`); the others get a prediction
    that says what is missing or too old, with their inputs for the rules, and no score."""
    now = timezone.now()
    model = model_load(version=version)
    X, last_seen = _features_and_times(patient_ids, clinic_id=version.clinic_id, as_of=now)
    required = (version.feature_schema or {}).get("required") or feature_schema()["required"]
    missing = missing_inputs(X, required)
    ready = [not absent for absent in missing]
    scored, method = score_frame(model, X[ready], thresholds=version.risk_thresholds) if any(ready) else ([], "")
    scored_rows = iter(scored)
    ages = [0 if pd.isna(age) else int(age) for age in X["age"]]
    records = input_records(X)
    predictions = []
    for pid, absent, sex, age, inputs in zip(patient_ids, missing, X["sex"], ages, records, strict=True):
        if absent:
            error = _not_enough(absent, patient_id=pid, required=required, last_seen=last_seen)
            predictions.append(Prediction(
                patient_id=pid, model_version=version, batch=batch, created_at=now,
                status=PredictionStatus.INSUFFICIENT, error=error, inputs=inputs,
                risk_thresholds=list(version.risk_thresholds),
            ))  # fmt: skip
        else:
            predictions.append(_prediction(next(scored_rows), patient_id=pid, sex=sex, age=age, version=version,
                                           method=method, now=now, batch=batch))  # fmt: skip
    return predictions


def _unscored(patient_ids: list[int], *, clinic_id: int, version: ModelVersion | None, error: str) -> list[Prediction]:
    """Failed predictions that say why and keep the values the model would have been given: the guideline rules
    still read them, so a critical value gets its advice while the model cannot be used, or before the clinic
    has one (`version` None)."""
    now = timezone.now()
    X = _features(patient_ids, clinic_id=clinic_id, as_of=now)
    return [
        Prediction(patient_id=pid, model_version=version, created_at=now, status=PredictionStatus.FAILED, error=error,
                   inputs=inputs)
        for pid, inputs in zip(patient_ids, input_records(X), strict=True)
    ]  # fmt: skip


def _attempt(patient_ids: list[int], *, clinic_id: int) -> tuple[ModelVersion | None, list[Prediction]]:
    """The clinic's active model version and its predictions of these patients (unsaved): scored, or failed with
    the reason and their inputs when there is no active model or it cannot be used."""
    version = active_model_for(clinic=clinic_id)
    if version is None:
        return None, _unscored(patient_ids, clinic_id=clinic_id, version=None, error=NO_ACTIVE_MODEL)
    try:
        return version, _score(patient_ids, version=version)
    except ModelUnavailable as exc:
        return version, _unscored(patient_ids, clinic_id=clinic_id, version=version, error=str(exc))


# --- one patient ---------------------------------------------------------------------------------------------


@transaction.atomic
def prediction_create(*, patient_id: int, by: User | None = None) -> Prediction:
    """Score one patient with the clinic's active model.

    With no active model, or one that cannot be loaded, the prediction is a failed one that says why, and the
    advice comes from the guideline rules alone; earlier predictions stay.
    """
    patient = patient_selectors.patient_by_id(pk=patient_id)
    if by is not None and not roles.can_view_patients(by):
        raise PermissionDenied("Your role cannot request predictions.")
    version, (prediction,) = _attempt([patient.pk], clinic_id=patient.clinic_id)
    prediction.save()
    advice = recommendation_services.recommendations_generate(predictions=[prediction], clinic_id=patient.clinic_id)
    audit_record(
        actor=by,
        action="prediction.create",
        target=prediction,
        patient_id=patient.pk,
        outcome="success" if prediction.status == PredictionStatus.SUCCEEDED else "failure",
        detail={
            "model_version": version.version if version else None,
            "risk_level": prediction.risk_level,
            "error": prediction.error,
            "recommendations": len(advice),
        },
    )
    return prediction


def prediction_request(*, patient_ids: list[int]) -> None:
    """Enqueue predictions for these patients once the current transaction commits (new results came in).

    Split as a batch is (`chunk_size`), so a large import is scored in bulk, not one task per patient, and
    shared by the workers. Through the outbox: the request is written with the results, so a broker that is down
    delays it instead of losing it, and a message delivered twice scores once (`predictions_create`).
    """
    ids = sorted(set(patient_ids))
    size = chunk_size(len(ids))
    for start in range(0, len(ids), size):
        outbox_send(task="predictions.tasks.predict_patients", args=[ids[start : start + size]], once=True)


@transaction.atomic
def predictions_create(*, patient_ids: list[int], message_id: int | None = None) -> int:
    """Score these patients (after new results), each with their clinic's active model, in bulk.

    Patients of a clinic without an active model get failed predictions that keep their inputs, so the guideline
    rules still give advice (`_attempt`). One audit row per clinic. `message_id`: the outbox message that asked
    for it; delivered again, it writes nothing.
    """
    if not outbox_consume(message_id=message_id):
        return 0
    written = 0
    for clinic_id, ids in patient_selectors.patient_ids_by_clinic(patient_ids=patient_ids).items():
        version, predictions = _attempt(ids, clinic_id=clinic_id)
        Prediction.objects.bulk_create(predictions, batch_size=CHUNK_SIZE)
        advice = recommendation_services.recommendations_generate(predictions=predictions, clinic_id=clinic_id)
        written += len(predictions)
        audit_record(
            actor=None, action="prediction.create", target=version or Clinic(pk=clinic_id),  # the row reads its id
            patient_id=ids[0] if len(ids) == 1 else None,
            detail={"patients": len(ids), "patient_ids": ids[:50],
                    "model_version": version.version if version else None,
                    "failed": sum(p.status == PredictionStatus.FAILED for p in predictions),
                    "not_enough_data": sum(p.status == PredictionStatus.INSUFFICIENT for p in predictions),
                    "recommendations": len(advice)},
        )  # fmt: skip
    return written


# --- batches -------------------------------------------------------------------------------------------------


def chunk_size(patients: int, *, spread: bool = True) -> int:
    """Patients per chunk of a batch of this many: CHUNK_SIZE, or, when `spread`, fewer so that there are MIN_CHUNKS
    chunks, but not below MIN_CHUNK_SIZE (1,000 patients: 4 chunks of 250; 300: 3 of 100; 100,000: 100 of 1,000).

    The nightly run does not spread: it queues every clinic's batch at once, which keeps the workers busy by itself,
    and each chunk repeats a fixed cost (its transaction, the clinic's advice catalogue and ranker, the model's
    calls): about 80 ms of CPU, a sixth of the night's scoring of a clinic of 1,000 split in four (bench/RESULTS.md)."""
    if not spread:
        return CHUNK_SIZE
    return min(CHUNK_SIZE, max(MIN_CHUNK_SIZE, math.ceil(patients / MIN_CHUNKS)))


@transaction.atomic
def prediction_batch_start(*, clinic: Clinic, by: User | None, trigger: str) -> PredictionBatch:
    """Create a batch over every patient of the clinic, split into chunks, and enqueue them on commit."""
    if by is not None and not (by.is_superuser or (roles.can_manage_clinic(by) and by.clinic_id == clinic.pk)):
        raise PermissionDenied("Only the clinic's admins can score all patients.")
    version = active_model_for(clinic=clinic)
    if version is None:
        raise ValidationError("The clinic has no active model yet: train one and activate it first.")
    # One batch per clinic at a time: two would score every patient twice and race for the same advice. The
    # clinic's row is locked so that two starts at once cannot both find none running.
    Clinic.objects.select_for_update().filter(pk=clinic.pk).first()
    running = PredictionBatch.objects.filter(clinic=clinic, status__in=_OPEN).order_by("pk").first()
    if running is not None:
        raise ValidationError(
            f"Batch #{running.pk} for this clinic is still {running.status} ({running.chunks_finished:,} of "
            f"{running.chunks_total:,} chunks finished): wait for it to finish, then start a new one."
        )
    ids = patient_selectors.patient_ids_of_clinic(clinic_id=clinic.pk)
    size = chunk_size(len(ids), spread=trigger != BatchTrigger.SCHEDULED)
    batch = PredictionBatch.objects.create(
        clinic=clinic, model_version=version, requested_by=by, trigger=trigger, scope={"clinic": clinic.slug},
        total=len(ids), chunks_total=math.ceil(len(ids) / size),
    )  # fmt: skip
    chunks = PredictionChunk.objects.bulk_create(
        PredictionChunk(batch=batch, index=i, patient_ids=ids[start : start + size])
        for i, start in enumerate(range(0, len(ids), size))
    )
    audit_record(
        actor=by, action="prediction.batch.start", target=batch,
        detail={"patients": len(ids), "chunks": len(chunks), "model_version": version.version, "trigger": trigger},
    )  # fmt: skip
    if not ids:
        _batch_finish(batch.pk)
    for chunk in chunks:  # through the outbox: with the broker down the batch waits for it, and the request succeeds
        outbox_send(task="predictions.tasks.score_chunk", args=[chunk.pk])
    return batch


def batch_chunk_score(*, chunk_id: int) -> int:
    """Score one chunk, all or nothing; a chunk already done is left alone. Returns the predictions written."""
    started = time.perf_counter()
    # Mark the batch running in a transaction of its own: inside the chunk's, the batch row would stay locked
    # until the chunk commits, and the other workers' first chunks would wait for this one to finish.
    PredictionBatch.objects.filter(chunks=chunk_id, status=BatchStatus.QUEUED).update(
        status=BatchStatus.RUNNING, started_at=timezone.now()
    )
    # Counted as the try begins, outside its transaction: a try that fails rolls back its work, not its count. The
    # heartbeat tells the sweep a worker holds it.
    PredictionChunk.objects.filter(pk=chunk_id, status=ChunkStatus.PENDING).update(
        attempts=F("attempts") + 1, heartbeat_at=timezone.now()
    )
    with transaction.atomic():
        chunk = (
            PredictionChunk.objects.select_for_update(of=("self",))
            .select_related("batch__model_version")
            .get(pk=chunk_id)
        )
        if chunk.status != ChunkStatus.PENDING:
            # Done by an earlier delivery or try, which may have died between its commit and closing the batch.
            transaction.on_commit(lambda: _batch_finish(chunk.batch_id))
            return 0
        batch = chunk.batch
        predictions = _score(chunk.patient_ids, version=batch.model_version, batch=batch)
        _predictions_insert(predictions)
        advice = recommendation_services.recommendations_generate(
            predictions=_with_ids(predictions, batch_id=batch.pk), clinic_id=batch.clinic_id
        )
        PredictionChunk.objects.filter(pk=chunk.pk).update(
            status=ChunkStatus.DONE, seconds=time.perf_counter() - started,
            finished_at=timezone.now(),
        )  # fmt: skip
        PredictionBatch.objects.filter(pk=batch.pk).update(
            done=F("done") + len(predictions), chunks_finished=F("chunks_finished") + 1
        )
        audit_record(
            actor=None, action="prediction.batch.chunk", target=batch,
            detail={"chunk": chunk.index, "patients": len(predictions), "recommendations": len(advice),
                    "first_patient_id": chunk.patient_ids[0],
                    "last_patient_id": chunk.patient_ids[-1]},
        )  # fmt: skip
    _batch_finish(batch.pk)
    return len(predictions)


def batch_chunk_fail(*, chunk_id: int, error: str) -> None:
    """Give up on a chunk (its retries are spent, or its model is unusable): report it, keep the others."""
    with transaction.atomic():
        chunk = PredictionChunk.objects.select_for_update().get(pk=chunk_id)
        if chunk.status != ChunkStatus.PENDING:
            return
        PredictionChunk.objects.filter(pk=chunk.pk).update(
            status=ChunkStatus.FAILED, error=error[:2000], finished_at=timezone.now()
        )
        PredictionBatch.objects.filter(pk=chunk.batch_id).update(
            failed=F("failed") + len(chunk.patient_ids), chunks_finished=F("chunks_finished") + 1, error=error[:2000]
        )
        PredictionBatch.objects.filter(pk=chunk.batch_id, status=BatchStatus.QUEUED).update(
            status=BatchStatus.RUNNING, started_at=timezone.now()
        )
    logger.warning("Prediction chunk %s failed for good: %s", chunk_id, error)
    _batch_finish(chunk.batch_id)


def _batch_finish(batch_id: int) -> None:
    """Close the batch once every chunk is done or failed; conditional, so only one caller closes it."""
    unfinished = PredictionBatch.objects.filter(
        pk=batch_id, chunks_finished=F("chunks_total"), status__in=[BatchStatus.QUEUED, BatchStatus.RUNNING]
    )
    now = timezone.now()
    closed = unfinished.filter(failed=0).update(
        status=BatchStatus.SUCCEEDED, finished_at=now, started_at=Coalesce(F("started_at"), F("created_at"))
    )
    closed += unfinished.filter(done=0, failed__gt=0).update(status=BatchStatus.FAILED, finished_at=now)
    closed += unfinished.filter(done__gt=0, failed__gt=0).update(status=BatchStatus.PARTIAL, finished_at=now)
    if not closed:
        return
    # A prediction, a recommendation and its items per patient were just written: without fresh statistics the
    # review queue of a clinic of 100,000 is planned for the tables as they were (bench/README.md). The three tables
    # grow together: refreshed when the predictions table's statistics are stale by autovacuum's rule, not after
    # every batch (one clinic's night among 1,000 changes tables of millions of rows by a sliver, and their ANALYZE
    # takes seconds: bench/RESULTS.md).
    written = PredictionBatch.objects.values_list("done", flat=True).get(pk=batch_id)
    if statistics_stale(Prediction, written=written):
        statistics_refresh(Prediction, Recommendation, RecommendationItem)


# A batch whose chunk messages were lost (Redis restarted without persistence, a queue purged) would stay queued or
# running for ever. A periodic sweep sends its pending chunks again; after BATCH_RESENDS sends, once no chunk of any
# batch has finished for BATCH_STALL_AFTER either (no worker is working: a batch merely queued behind others keeps
# waiting), it fails them with the reason, so every batch finishes. Chunks are idempotent: sent twice, scored once.
BATCH_STALL_AFTER = datetime.timedelta(minutes=15)
BATCH_RESENDS = 3
_OPEN = [BatchStatus.QUEUED, BatchStatus.RUNNING]


def batches_resume_stalled() -> list[int]:
    """Each open batch with no progress for BATCH_STALL_AFTER: its pending chunks sent again, or after
    BATCH_RESENDS sends failed with the reason; a batch whose chunks all finished is closed. Returns their ids."""
    cutoff = timezone.now() - BATCH_STALL_AFTER
    candidates = PredictionBatch.objects.filter(status__in=_OPEN, created_at__lt=cutoff).values_list("pk", flat=True)
    return [batch_id for batch_id in candidates if _batch_resume_if_stalled(batch_id, cutoff)]


def _batch_resume_if_stalled(batch_id: int, cutoff: datetime.datetime) -> bool:
    from predictions.tasks import score_chunk

    with transaction.atomic():
        batch = PredictionBatch.objects.select_for_update().get(pk=batch_id)
        chunks = PredictionChunk.objects.filter(batch_id=batch_id)
        activity = [batch.created_at, batch.started_at, batch.resent_at, chunks.aggregate(at=Max("finished_at"))["at"]]
        if batch.status not in _OPEN or max(at for at in activity if at is not None) >= cutoff:
            return False
        pending = list(chunks.filter(status=ChunkStatus.PENDING).order_by("index").values_list("pk", flat=True))
        resend = bool(pending) and batch.resends < BATCH_RESENDS
        if pending and not resend and PredictionChunk.objects.filter(finished_at__gte=cutoff).exists():
            return False  # sent often enough, and workers are busy with other chunks: its turn will come
        give_up = bool(pending) and not resend
        if resend:
            PredictionBatch.objects.filter(pk=batch_id).update(resends=F("resends") + 1, resent_at=timezone.now())
        audit_record(
            actor=None, action="prediction.batch.stalled", target=batch,
            detail={"pending_chunks": len(pending), "resends": batch.resends + resend,
                    "outcome": "failed" if give_up else "sent again" if resend else "closed"},
        )  # fmt: skip
    if give_up:
        minutes = int(BATCH_STALL_AFTER.total_seconds() // 60)
        error = (
            f"No worker scored this chunk within {minutes} minutes, {BATCH_RESENDS + 1} times over (its messages were "
            "lost or no worker is running): start the Celery workers and run the batch again."
        )
        for chunk_id in pending:
            batch_chunk_fail(chunk_id=chunk_id, error=error)
    elif resend:
        logger.warning("Prediction batch %s stalled: %s pending chunks sent again", batch_id, len(pending))
        for chunk_id in pending:
            score_chunk.delay(chunk_id)
    else:  # every chunk finished, but the batch was not closed (a worker died in between)
        _batch_finish(batch_id)
    return True


# A worker killed mid-chunk (the whole group at once, say) holds its chunk's message unacknowledged until the
# broker's visibility timeout (over 20 minutes) and the stalled-batch sweep (15). A chunk a worker is scoring is
# locked by it; a lost worker's lock goes with its connection. So every minute a sweep sends again each pending
# chunk started more than CHUNK_LOST_AFTER ago that no one holds, up to CHUNK_REQUEUES times (after that the
# stalled-batch sweep decides). Chunks are idempotent: the late redelivery of the first message finds it done.
CHUNK_LOST_AFTER = datetime.timedelta(minutes=2)
CHUNK_REQUEUES = 3


def chunks_requeue_lost() -> list[int]:
    """Send again every pending chunk whose worker was lost (see above). Returns their ids."""
    cutoff = timezone.now() - CHUNK_LOST_AFTER
    stale = PredictionChunk.objects.filter(
        status=ChunkStatus.PENDING, heartbeat_at__lt=cutoff, requeues__lt=CHUNK_REQUEUES,
        batch__status__in=_OPEN,
    ).order_by("pk")  # fmt: skip
    return [chunk_id for chunk_id in stale.values_list("pk", flat=True) if _chunk_requeue_if_lost(chunk_id, cutoff)]


@transaction.atomic
def _chunk_requeue_if_lost(chunk_id: int, cutoff: datetime.datetime) -> bool:
    # skip_locked: a chunk a live worker is scoring (however long it takes) is not ours to send.
    chunk = (
        PredictionChunk.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=chunk_id, status=ChunkStatus.PENDING, heartbeat_at__lt=cutoff)
        .select_related("batch")
        .first()
    )
    if chunk is None:
        return False
    PredictionChunk.objects.filter(pk=chunk.pk).update(heartbeat_at=timezone.now(), requeues=F("requeues") + 1)
    audit_record(
        actor=None, action="prediction.batch.chunk_lost", target=chunk.batch,
        detail={"chunk": chunk.index, "requeues": chunk.requeues + 1, "last_heartbeat": chunk.heartbeat_at.isoformat()},
    )  # fmt: skip
    outbox_send(task="predictions.tasks.score_chunk", args=[chunk.pk])
    logger.warning("Prediction chunk %s lost its worker: sent again", chunk.pk)
    return True


def prediction_batch_start_scheduled(*, clinic_ids: list[int] | None = None) -> list[int]:
    """The nightly run: a batch for every clinic (of `clinic_ids`, if given) that has patients and an active model.
    Returns batch ids."""
    batches = []
    clinics = Clinic.objects.filter(pk__in=patient_selectors.clinic_ids_with_patients()).order_by("pk")
    if clinic_ids is not None:
        clinics = clinics.filter(pk__in=clinic_ids)
    for clinic in clinics:
        if active_model_for(clinic=clinic) is None:
            continue
        try:
            batches.append(prediction_batch_start(clinic=clinic, by=None, trigger="scheduled").pk)
        except ValidationError as exc:  # its previous batch still runs: tonight's would score the same patients
            logger.warning("No scheduled batch for clinic %s: %s", clinic.slug, " ".join(exc.messages))
    return batches
