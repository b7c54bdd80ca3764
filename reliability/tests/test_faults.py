"""Faults on real Celery worker processes, through Redis and PostgreSQL: the broker restarted mid-batch (17), a
task enqueued in a transaction that rolls back (18), the database connection dropped mid-write (19)."""

import datetime
import json
import os
import shutil
import time

import pytest
from django.db import transaction
from django.utils import timezone

from clinic.models import AuditEvent
from clinic.tasks import verify_audit_chain
from clinic.testing import RedisServer, tasks_on_real_workers, wait_for, worker_start, worker_stop
from patients.demo import demo_cohort_load
from patients.models import Observation
from patients.services import ObservationInput, observations_record
from patients.tests.factories import PatientFactory
from predictions import services
from predictions.models import BatchStatus, ChunkStatus, Prediction, PredictionBatch, PredictionChunk

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

CI = os.environ.get("CI", "").lower() == "true"


def _batch_progress(batch_id):
    return PredictionBatch.objects.values_list("done", "failed", "status").get(pk=batch_id)


def _batch_finished(batch_id) -> bool:
    return _batch_progress(batch_id)[2] not in (BatchStatus.QUEUED, BatchStatus.RUNNING)


def _batch_scored_once_per_patient(batch, *, patients: int, log: str) -> None:
    batch.refresh_from_db()
    assert batch.status == BatchStatus.SUCCEEDED, log
    assert (batch.done, batch.failed) == (patients, 0)
    assert Prediction.objects.filter(batch=batch).count() == patients
    assert Prediction.objects.filter(batch=batch).values("patient").distinct().count() == patients
    assert not PredictionChunk.objects.filter(batch=batch).exclude(status=ChunkStatus.DONE).exists()


def _sentinel_runs(queue: str) -> bool:
    """Enqueue a task that leaves an audit row and wait for it: the worker has taken everything queued before."""
    verify_audit_chain.apply_async(queue=queue)
    return wait_for(lambda: AuditEvent.objects.filter(action="audit.verify").exists())


# --- 17: Redis restarted mid-batch ---------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        (pytest.fail if CI else pytest.skip)("the redis-server binary is needed to restart a Redis of the test's own")
    server = RedisServer(tmp_path, persistent=True)  # persisted like the compose file's
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


@pytest.mark.reliability(
    17,
    "Stopped Redis (append-only file on, as in the compose file) with most of a 15-chunk batch queued and one chunk "
    "on a worker, started it again, then enqueued one more task from the web process.",
)
def test_a_batch_completes_when_redis_restarts_mid_batch(
    redis_server, active_model, clinic_a, admin_a, trained_artifact, monkeypatch
):
    demo_cohort_load(clinic=clinic_a, n_patients=1500, seed=17)
    monkeypatch.setattr(services, "CHUNK_SIZE", 100)
    env = {
        "MODEL_DIR": str(trained_artifact[0]),
        "REDIS_URL": redis_server.url,
        "CELERY_VISIBILITY_TIMEOUT": "5",  # a chunk whose acknowledgement was lost with the connection comes back
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    }
    with tasks_on_real_workers(broker_url=redis_server.url) as queue:
        worker = worker_start(queue, env=env)
        try:
            batch = services.prediction_batch_start(clinic=clinic_a, by=admin_a, trigger="portal")
            started = wait_for(lambda: _batch_progress(batch.pk)[0] >= 300, seconds=120)
            assert started, "the worker scored nothing:\n" + worker_stop(worker)
            queued = redis_server.client().llen(queue)
            redis_server.stop()
            time.sleep(2)  # long enough for the worker to find the broker gone and start reconnecting
            redis_server.start()

            finished = wait_for(lambda: _batch_finished(batch.pk), seconds=180)
            assert finished, f"the batch did not finish after the restart ({queued} chunks were queued):\n" + (
                worker_stop(worker)
            )
            assert _sentinel_runs(queue), "no task enqueued after the restart ran:\n" + worker_stop(worker)
        finally:
            log = worker_stop(worker)

    assert queued > 0, "no chunk was waiting in Redis when it stopped, so the restart proved nothing"
    _batch_scored_once_per_patient(batch, patients=1500, log=log)


# --- 18: a task enqueued in a transaction that rolls back ----------------------------------------------------------


class RolledBack(Exception):
    pass


def _results_saved(patient, by, *, then_roll_back: bool) -> None:
    """Save a panel the way the portal does; saving results enqueues the patient's prediction on commit."""
    with transaction.atomic():
        observations_record(
            patient=patient, by=by, entries=[ObservationInput("glucose", 9.1, "mmol/L")],
            effective_at=timezone.now() - datetime.timedelta(hours=1),
        )  # fmt: skip
        if then_roll_back:
            raise RolledBack


@pytest.mark.reliability(
    18,
    "Saved results for two patients the way the portal does (each save enqueues a prediction on commit): one in "
    "a transaction that then rolled back, one committed; a worker took the queue until a task enqueued after both "
    "had run.",
)
def test_a_prediction_enqueued_in_a_rolled_back_transaction_never_runs(
    on_real_workers, active_model, clinic_a, staff_a, trained_artifact
):
    rolled_back, committed = PatientFactory(clinic=clinic_a), PatientFactory(clinic=clinic_a)
    worker = worker_start(on_real_workers, env={"MODEL_DIR": str(trained_artifact[0])})
    try:
        with pytest.raises(RolledBack):
            _results_saved(rolled_back, staff_a, then_roll_back=True)
        _results_saved(committed, staff_a, then_roll_back=False)  # the control: the same path does enqueue

        assert _sentinel_runs(on_real_workers), "the worker ran nothing:\n" + worker_stop(worker)
    finally:
        worker_stop(worker)

    assert Prediction.objects.filter(patient=committed).count() == 1
    assert not Observation.objects.filter(patient=rolled_back).exists()
    assert not Prediction.objects.filter(patient=rolled_back).exists()


# --- 19: the PostgreSQL connection dropped mid-write ---------------------------------------------------------------


def _batch_on_faulty_worker(queue, *, clinic, by, model_dir, marker, fault_at: str, at_call: int):
    """Run a batch on a worker whose connection is terminated once at `fault_at`; returns it with the worker's log."""
    env = {"MODEL_DIR": str(model_dir), "FAULT_MARKER": str(marker), "FAULT_AT": fault_at,
           "FAULT_AT_CALL": str(at_call)}  # fmt: skip
    worker = worker_start(queue, env=env, app="reliability.tests.faulty_worker")
    try:
        batch = services.prediction_batch_start(clinic=clinic, by=by, trigger="portal")
        finished = wait_for(lambda: _batch_finished(batch.pk), seconds=120)
        assert finished, "the batch did not finish:\n" + worker_stop(worker)
    finally:
        log = worker_stop(worker)
    assert marker.exists(), "the fault was never injected:\n" + log
    return batch, json.loads(marker.read_text()), log


@pytest.mark.reliability(
    19,
    "Terminated a worker's PostgreSQL connection from the server side in the middle of a chunk's transaction, "
    "after its predictions were inserted and before its recommendations.",
)
def test_a_chunk_whose_connection_drops_mid_write_rolls_back_and_retries(
    on_real_workers, active_model, clinic_a, admin_a, trained_artifact, monkeypatch, tmp_path
):
    demo_cohort_load(clinic=clinic_a, n_patients=500, seed=19)
    monkeypatch.setattr(services, "CHUNK_SIZE", 100)

    batch, fault, log = _batch_on_faulty_worker(
        on_real_workers, clinic=clinic_a, by=admin_a, model_dir=trained_artifact[0], marker=tmp_path / "fault.json",
        fault_at="recommendations", at_call=3,
    )  # fmt: skip

    assert fault["written_in_transaction"] == 100  # the chunk had written its predictions when the connection died
    assert fault["visible_to_others"] == 0
    _batch_scored_once_per_patient(batch, patients=500, log=log)
    # The chunk's predictions are the retry's: the interrupted try left nothing behind but its attempt count.
    chunk = PredictionChunk.objects.get(batch=batch, patient_ids=fault["patient_ids"])
    retried = Prediction.objects.filter(batch=batch, patient_id__in=fault["patient_ids"])
    assert retried.filter(created_at__gt=datetime.datetime.fromisoformat(fault["terminated_at"])).count() == 100
    assert chunk.attempts == 2


@pytest.mark.reliability(
    19,
    "Terminated a worker's PostgreSQL connection right after the batch's last chunk committed, as it closed the batch.",
)
def test_a_connection_dropped_after_the_last_chunk_commits_still_closes_the_batch(
    on_real_workers, active_model, clinic_a, admin_a, trained_artifact, monkeypatch, tmp_path
):
    demo_cohort_load(clinic=clinic_a, n_patients=100, seed=20)
    monkeypatch.setattr(services, "CHUNK_SIZE", 100)

    batch, _fault, log = _batch_on_faulty_worker(
        on_real_workers, clinic=clinic_a, by=admin_a, model_dir=trained_artifact[0], marker=tmp_path / "fault.json",
        fault_at="batch_finish", at_call=1,
    )  # fmt: skip

    _batch_scored_once_per_patient(batch, patients=100, log=log)
