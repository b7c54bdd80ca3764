"""A batch on real workers through Redis and PostgreSQL, including a worker killed in the middle of it."""

import signal

import pytest

from clinic.testing import wait_for, worker_start, worker_stop
from patients.demo import demo_cohort_load
from predictions import services
from predictions.models import BatchStatus, ChunkStatus, Prediction, PredictionBatch, PredictionChunk

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _batch_progress(batch_id):
    return PredictionBatch.objects.values_list("done", "failed", "status").get(pk=batch_id)


@pytest.mark.reliability(16, "SIGKILL of a real worker mid-batch (2,000 patients), then a new one: one prediction each")
def test_a_worker_killed_mid_batch_leaves_exactly_one_prediction_per_patient(
    on_real_workers, active_model, clinic_a, admin_a, trained_artifact, monkeypatch
):
    demo_cohort_load(clinic=clinic_a, n_patients=2000, seed=21)
    monkeypatch.setattr(services, "CHUNK_SIZE", 100)  # 20 chunks, so the kill lands mid-batch
    # The killed worker's unacknowledged chunk comes back after 5 s, found by a sweep every second.
    env = {
        "MODEL_DIR": str(trained_artifact[0]),
        "CELERY_VISIBILITY_TIMEOUT": "5",
        "CELERY_UNACKED_RESTORE_INTERVAL": "1",
    }
    first = worker_start(on_real_workers, env=env)
    try:
        batch = services.prediction_batch_start(clinic=clinic_a, by=admin_a, trigger="portal")
        started = wait_for(lambda: _batch_progress(batch.pk)[0] >= 200, seconds=120)
        assert started, "the first worker scored nothing:\n" + worker_stop(first)
        first.send_signal(signal.SIGKILL)  # mid-chunk, most likely: it works without pause
        first.wait(timeout=20)
        assert _batch_progress(batch.pk)[2] == BatchStatus.RUNNING
    finally:
        worker_stop(first)

    second = worker_start(on_real_workers, env=env)
    try:
        finished = wait_for(lambda: _batch_progress(batch.pk)[2] != BatchStatus.RUNNING, seconds=180)
        assert finished, "the batch did not finish after the restart:\n" + worker_stop(second)
    finally:
        log = worker_stop(second)

    batch.refresh_from_db()
    assert batch.status == BatchStatus.SUCCEEDED, log
    assert (batch.done, batch.failed) == (2000, 0)
    assert Prediction.objects.filter(batch=batch).count() == 2000
    assert Prediction.objects.filter(batch=batch).values("patient").distinct().count() == 2000
    assert not PredictionChunk.objects.filter(batch=batch).exclude(status=ChunkStatus.DONE).exists()
