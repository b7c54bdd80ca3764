"""Scoring one patient and whole clinics: stored inputs, explanations, idempotent chunks, clear failures."""

import datetime
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.models import AuditEvent
from conftest import make_model_version
from patients.demo import demo_cohort_load
from patients.models import Patient
from predictions import services, tasks
from predictions.models import BatchStatus, ChunkStatus, Prediction, PredictionBatch, PredictionChunk
from recommendations.models import Recommendation


@pytest.fixture
def cohort(clinic_a):
    demo_cohort_load(clinic=clinic_a, n_patients=120, seed=4)
    return list(Patient.objects.filter(clinic=clinic_a).order_by("pk"))


@pytest.fixture
def start(active_model, django_capture_on_commit_callbacks):
    """Start a batch and run what it enqueues on commit (tasks are eager in tests)."""

    def run(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            batch = services.prediction_batch_start(clinic=active_model.clinic, trigger="portal", **kwargs)
        batch.refresh_from_db()
        return batch

    return run


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    services._loaded.clear()
    yield
    services._loaded.clear()


@pytest.mark.hazard("H6", "A prediction stores its model version, inputs, probabilities, thresholds and explanation")
def test_a_prediction_stores_version_inputs_probabilities_risk_and_explanation(active_model, cohort):
    patient = cohort[0]

    prediction = services.prediction_create(patient_id=patient.pk)

    assert prediction.status == "succeeded"
    assert prediction.model_version == active_model
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert prediction.predicted_class == max(prediction.probabilities, key=prediction.probabilities.get)
    assert prediction.risk_level in {"low", "moderate", "high"}
    assert prediction.risk_thresholds == [0.2, 0.5]
    assert {"hemoglobin", "egfr", "mentzer_index"} <= prediction.inputs.keys()
    assert prediction.explanation_method == "tree_path"
    assert 0 < len(prediction.contributions) <= 6
    top = prediction.contributions[0]
    assert {"feature", "label", "value", "unit", "contribution", "direction", "reference"} <= top.keys()
    assert AuditEvent.objects.filter(action="prediction.create", patient_id=patient.pk).count() == 1


def test_contributions_of_labs_say_where_the_value_lies_against_the_patients_range(active_model, cohort):
    predictions = [services.prediction_create(patient_id=p.pk) for p in cohort[:30]]

    verdicts = {item["reference"] for p in predictions for item in p.contributions if item["analyte"]}

    assert verdicts <= {"below range", "within range", "above range", ""}
    assert verdicts & {"below range", "above range"}


def test_no_active_model_gives_a_failed_prediction_that_keeps_the_inputs(clinic_a, cohort):
    prediction = services.prediction_create(patient_id=cohort[0].pk)

    assert Prediction.objects.get() == prediction
    assert (prediction.status, prediction.model_version, prediction.error) == (
        "failed", None, "the clinic has no active model yet"
    )  # fmt: skip
    assert prediction.inputs["age"] is not None
    assert "hemoglobin" in prediction.inputs
    assert (prediction.risk_level, prediction.probabilities, prediction.contributions) == ("", {}, [])


def test_a_tampered_artifact_fails_the_prediction_with_a_clear_error_and_keeps_earlier_ones(
    active_model, cohort, trained_artifact
):
    patient = cohort[0]
    earlier = services.prediction_create(patient_id=patient.pk)
    directory, name, _ = trained_artifact
    active_model.sha256 = "0" * 64  # what a changed file looks like to the check
    active_model.save()
    services._loaded.clear()

    failed = services.prediction_create(patient_id=patient.pk)

    assert failed.status == "failed"
    assert "cannot be used" in failed.error
    assert Prediction.objects.filter(pk=earlier.pk, status="succeeded").exists()


def test_a_batch_scores_every_patient_once_in_chunks(start, cohort, admin_a, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 50)

    batch = start(by=admin_a)

    assert batch.status == BatchStatus.SUCCEEDED
    assert (batch.total, batch.done, batch.failed, batch.chunks_total) == (120, 120, 0, 3)
    assert Prediction.objects.filter(batch=batch).count() == 120
    assert Prediction.objects.filter(batch=batch).values("patient").distinct().count() == 120
    assert AuditEvent.objects.filter(action="prediction.batch.chunk").count() == 3


@pytest.mark.postgres
def test_a_finished_batch_leaves_the_planner_knowing_how_much_advice_waits(start, cohort, admin_a):
    """The review queue's plan rests on PostgreSQL's statistics: planned for the tables as they were before the
    batch (one waiting recommendation, not 120), a clinic of 100,000 waits 200 ms for its queue instead of 60."""
    with connection.cursor() as cursor:
        # The statistics as they were before the batch: one waiting recommendation, no predictions.
        cursor.execute("ANALYZE recommendations_recommendation, predictions_prediction")
    waiting = Recommendation.objects.filter(clinic=admin_a.clinic, pending__gt=0)

    start(by=admin_a)

    [plan] = json.loads(waiting.explain(format="json"))
    assert waiting.count() == 120
    assert plan["Plan"]["Plan Rows"] >= 60


@pytest.mark.postgres
def test_a_batch_small_beside_its_tables_leaves_their_statistics_to_autovacuum(start, cohort, admin_a):
    """One clinic's nightly batch among a network's: ANALYZE of tables of millions of rows would cost seconds for a
    change of a fraction of a per cent. (The planner is told the predictions table holds ten million rows.)"""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE predictions_prediction")
        cursor.execute("UPDATE pg_class SET reltuples = 1e7 WHERE oid = 'predictions_prediction'::regclass")

    with CaptureQueriesContext(connection) as queries:
        batch = start(by=admin_a)

    assert batch.status == BatchStatus.SUCCEEDED
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith("ANALYZE")]


def test_a_small_clinics_batch_is_still_split_for_several_workers(start, cohort, admin_a, monkeypatch):
    monkeypatch.setattr(services, "MIN_CHUNK_SIZE", 20)  # the cohort's 120 patients stand for a clinic of 1,000

    batch = start(by=admin_a)

    sizes = sorted(len(chunk.patient_ids) for chunk in PredictionChunk.objects.filter(batch=batch))
    assert sizes == [30, 30, 30, 30]  # MIN_CHUNKS chunks, not one chunk a single worker scores alone
    assert (batch.status, batch.done, batch.chunks_total) == (BatchStatus.SUCCEEDED, 120, 4)


def test_the_nightly_run_does_not_split_a_clinic_into_more_chunks_than_chunk_size_needs(
    active_model, cohort, monkeypatch, django_capture_on_commit_callbacks
):
    """Every clinic's batch is queued at once at night, which keeps the workers busy; more chunks would only repeat
    each chunk's fixed cost. (The cohort's 120 patients stand for a clinic of 1,000, CHUNK_SIZE 50 for 1,000.)"""
    monkeypatch.setattr(services, "MIN_CHUNK_SIZE", 20)
    monkeypatch.setattr(services, "CHUNK_SIZE", 50)

    with django_capture_on_commit_callbacks(execute=True):
        (batch_id,) = services.prediction_batch_start_scheduled(clinic_ids=[active_model.clinic_id])

    batch = PredictionBatch.objects.get(pk=batch_id)
    sizes = sorted(len(chunk.patient_ids) for chunk in PredictionChunk.objects.filter(batch=batch))
    assert sizes == [20, 50, 50]  # an admin's batch of the same clinic: 4 chunks of 30 (the test above)
    assert (batch.status, batch.done, batch.trigger) == (BatchStatus.SUCCEEDED, 120, "scheduled")


@pytest.mark.parametrize(("patients", "size"), [(1, 100), (300, 100), (1_000, 250), (4_000, 1_000), (100_000, 1_000)])
def test_chunks_are_at_most_chunk_size_and_at_least_the_minimum(patients, size):
    assert services.chunk_size(patients) == size


@pytest.mark.reliability(16, "A chunk delivered again after it committed: writes nothing")
def test_a_redelivered_chunk_writes_nothing_twice(start, cohort, admin_a, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 50)
    batch = start(by=admin_a)
    chunk = PredictionChunk.objects.filter(batch=batch).first()

    written = services.batch_chunk_score(chunk_id=chunk.pk)

    assert written == 0
    assert Prediction.objects.filter(batch=batch).count() == 120


def test_a_chunk_that_keeps_failing_is_reported_and_the_others_complete(start, cohort, admin_a, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 50)
    real_score = services._score

    def flaky(patient_ids, **kwargs):
        if cohort[0].pk in patient_ids:
            raise RuntimeError("disk on fire")
        return real_score(patient_ids, **kwargs)

    monkeypatch.setattr(services, "_score", flaky)
    monkeypatch.setattr(tasks, "RETRY_BACKOFF_SECONDS", 0.0)

    batch = start(by=admin_a)

    assert batch.status == BatchStatus.PARTIAL
    assert (batch.done, batch.failed) == (70, 50)
    failed = PredictionChunk.objects.get(batch=batch, status=ChunkStatus.FAILED)
    assert "disk on fire" in failed.error
    assert failed.attempts == tasks.CHUNK_ATTEMPTS  # each try counted, though its work rolled back


def test_a_chunk_that_fails_once_is_logged_and_scored_on_its_next_try(start, cohort, admin_a, monkeypatch, caplog):
    real_score, failures = services._score, []

    def fails_once(patient_ids, **kwargs):
        if not failures:
            failures.append(1)
            raise RuntimeError("connection reset by peer")
        return real_score(patient_ids, **kwargs)

    monkeypatch.setattr(services, "_score", fails_once)
    monkeypatch.setattr(tasks, "RETRY_BACKOFF_SECONDS", 0.0)

    batch = start(by=admin_a)

    assert batch.status == BatchStatus.SUCCEEDED
    retried = [chunk.attempts for chunk in PredictionChunk.objects.filter(batch=batch).order_by("index")]
    assert retried[0] == 2  # the first chunk failed once, then succeeded
    assert set(retried[1:]) <= {1}
    (record,) = [r for r in caplog.records if "try 1 of 3 failed" in r.getMessage()]
    assert "connection reset by peer" in record.getMessage()
    assert record.exc_info is not None  # the traceback, for whoever reads the worker's log


def test_a_corrupt_artifact_fails_every_chunk_without_retrying(start, active_model, cohort, admin_a, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 50)
    active_model.sha256 = "f" * 64
    active_model.save()

    batch = start(by=admin_a)

    assert batch.status == BatchStatus.FAILED
    assert "cannot be used" in batch.error
    assert not Prediction.objects.exists()


def test_only_admins_of_the_clinic_start_a_batch(active_model, cohort, doctor_a, admin_b):
    with pytest.raises(PermissionDenied):
        services.prediction_batch_start(clinic=active_model.clinic, by=doctor_a, trigger="portal")
    with pytest.raises(PermissionDenied):
        services.prediction_batch_start(clinic=active_model.clinic, by=admin_b, trigger="portal")
    assert not PredictionBatch.objects.exists()


def test_a_batch_needs_an_active_model(clinic_a, cohort, admin_a):
    with pytest.raises(ValidationError, match="no active model"):
        services.prediction_batch_start(clinic=clinic_a, by=admin_a, trigger="portal")


def test_a_new_active_version_is_loaded_instead_of_the_cached_one(active_model, cohort, trained_artifact):
    services.prediction_create(patient_id=cohort[0].pk)
    active_model.status = "archived"
    active_model.save()
    newer = make_model_version(active_model.clinic, trained_artifact, version=2)

    prediction = services.prediction_create(patient_id=cohort[0].pk)

    assert prediction.model_version == newer
    assert [(clinic, cached[0]) for clinic, cached in services._loaded.items()] == [(newer.clinic_id, newer.pk)]


def test_a_worker_keeps_only_the_most_recently_used_clinics_models(
    active_model, clinic_b, trained_artifact, monkeypatch
):
    from clinic.models import Clinic

    monkeypatch.setattr(services, "MODELS_KEPT", 2)
    clinic_c = Clinic.objects.create(name="Clinic C", slug="clinic-c")
    other, third = make_model_version(clinic_b, trained_artifact), make_model_version(clinic_c, trained_artifact)

    services.model_load(version=active_model)
    services.model_load(version=other)
    services.model_load(version=active_model)  # used again: the other clinic's is now the oldest
    services.model_load(version=third)

    # a worker scoring 1,000 clinics' nightly batches holds a bounded number of models, not one per clinic
    assert list(services._loaded) == [active_model.clinic_id, clinic_c.pk]


def test_a_chunk_runs_the_same_number_of_queries_for_10_or_100_patients(active_model, cohort, admin_a, monkeypatch):
    counts = []
    for size in (10, 100):
        monkeypatch.setattr(services, "CHUNK_SIZE", size)
        batch = services.prediction_batch_start(clinic=active_model.clinic, by=admin_a, trigger="portal")
        chunk = PredictionChunk.objects.filter(batch=batch).first()
        services.batch_chunk_score(chunk_id=chunk.pk)  # warm up: model load, analyte catalog
        # As it was before the warm-up, so the timed chunk does not close the batch (closing it is once a batch)
        PredictionChunk.objects.filter(pk=chunk.pk).update(status="pending")
        PredictionBatch.objects.filter(pk=batch.pk).update(chunks_finished=0, done=0)
        Prediction.objects.filter(batch=batch).delete()

        with CaptureQueriesContext(connection) as queries:
            services.batch_chunk_score(chunk_id=chunk.pk)

        assert Prediction.objects.filter(batch=batch).count() == size
        # SQLite caps the parameters of one statement, so its bulk insert comes in several statements; every other
        # query, the reads above all, must not depend on the number of patients.
        counts.append(sum(not q["sql"].startswith("INSERT") for q in queries.captured_queries))
        PredictionBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.SUCCEEDED)  # one open batch per clinic
    assert counts[0] == counts[1]


def test_entering_results_scores_the_patient_once_the_transaction_commits(
    active_model, cohort, staff_a, django_capture_on_commit_callbacks
):
    import datetime

    from django.utils import timezone

    from patients.services import ObservationInput, observations_record

    patient = cohort[0]
    with django_capture_on_commit_callbacks(execute=True):
        observations_record(
            patient=patient, by=staff_a, entries=[ObservationInput("glucose", 11.2, "mmol/L")],
            effective_at=timezone.now() - datetime.timedelta(hours=1),
        )  # fmt: skip

    prediction = Prediction.objects.get(patient=patient)
    assert prediction.inputs["glucose"] == pytest.approx(11.2)
    assert AuditEvent.objects.filter(action="prediction.create", patient_id=patient.pk).exists()


def test_an_import_of_many_patients_is_scored_in_bulk(active_model, cohort, django_capture_on_commit_callbacks):
    ids = [p.pk for p in cohort]

    with django_capture_on_commit_callbacks(execute=True) as tasks:
        services.prediction_request(patient_ids=ids)

    assert Prediction.objects.count() == len(ids)
    # 120 patients: two tasks of MIN_CHUNK_SIZE at most, each scoring its patients at once (one audit row each)
    assert len(tasks) == 2
    assert AuditEvent.objects.filter(action="prediction.create").count() == 2


def test_the_warm_up_loads_each_active_model_and_writes_nothing(active_model, cohort, clinic_b, trained_artifact):
    other = make_model_version(clinic_b, trained_artifact)  # a clinic without patients: loaded, nobody scored
    audit_rows = AuditEvent.objects.count()

    warmed = services.scoring_warm_up()

    assert warmed == [active_model.pk, other.pk]
    assert {clinic: cached[0] for clinic, cached in services._loaded.items()} == {
        active_model.clinic_id: active_model.pk,
        other.clinic_id: other.pk,
    }
    assert not Prediction.objects.exists()
    assert AuditEvent.objects.count() == audit_rows


def test_the_warm_up_skips_an_unusable_model_and_stops_once_its_budget_is_spent(
    active_model, cohort, clinic_b, trained_artifact
):
    active_model.sha256 = "0" * 64  # clinic A's artifact fails its check
    active_model.save()
    make_model_version(clinic_b, trained_artifact)

    assert services.scoring_warm_up(budget_seconds=0) == []  # A skipped; the budget is spent before B
    assert services.scoring_warm_up() == [services.active_model_for(clinic=clinic_b).pk]
    with pytest.raises(services.ModelUnavailable):  # the chunks of A still fail with the reason
        services.model_load(version=active_model)


def test_a_worker_process_starts_when_its_warm_up_fails(monkeypatch, caplog):
    def broken(**_kwargs):
        raise RuntimeError("database unreachable")

    monkeypatch.setattr(services, "scoring_warm_up", broken)

    tasks._scoring_warm_up()

    assert "Scoring warm-up failed" in caplog.text


def test_a_read_prediction_carries_its_versions_number_but_not_its_large_json(
    active_model, cohort, doctor_a, django_assert_num_queries
):
    from mltraining.selectors import VERSION_DETAIL_FIELDS
    from predictions import selectors

    services.prediction_create(patient_id=cohort[0].pk)

    latest = selectors.prediction_latest_for(user=doctor_a, patient=cohort[0])

    assert set(VERSION_DETAIL_FIELDS) <= latest.model_version.get_deferred_fields()
    with django_assert_num_queries(0):
        assert latest.model_version.version == active_model.version
    with django_assert_num_queries(1):  # still there when something asks for it
        assert latest.model_version.metrics == active_model.metrics


def test_a_batch_shows_running_from_its_first_chunks_start_even_if_that_try_fails(
    active_model, cohort, admin_a, monkeypatch
):
    # Marked outside the chunk's transaction: inside it, the batch row stayed locked while the chunk was scored
    # and every other worker's first chunk waited for it.
    batch = services.prediction_batch_start(clinic=active_model.clinic, by=admin_a, trigger="portal")
    chunk = PredictionChunk.objects.filter(batch=batch).first()

    def broken(*_args, **_kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "_score", broken)
    with pytest.raises(RuntimeError):
        services.batch_chunk_score(chunk_id=chunk.pk)

    batch.refresh_from_db()
    chunk.refresh_from_db()
    assert batch.status == BatchStatus.RUNNING
    assert batch.started_at is not None
    assert chunk.status == ChunkStatus.PENDING  # the chunk's own work rolled back, to be tried again


@pytest.fixture
def lost_batch(active_model, cohort, admin_a, monkeypatch, django_capture_on_commit_callbacks):
    """A batch whose chunk messages were lost: started, but what it enqueues on commit never runs."""
    monkeypatch.setattr(services, "CHUNK_SIZE", 50)
    with django_capture_on_commit_callbacks(execute=False):
        batch = services.prediction_batch_start(clinic=active_model.clinic, by=admin_a, trigger="portal")
    return batch


def _quiet_for(batch, minutes):
    """Pretend nothing happened to the batch for `minutes`."""
    past = timezone.now() - datetime.timedelta(minutes=minutes)
    batches = PredictionBatch.objects.filter(pk=batch.pk)
    batches.update(created_at=past)
    for stamp in ("started_at", "resent_at"):
        batches.exclude(**{stamp: None}).update(**{stamp: past})
    PredictionChunk.objects.filter(batch=batch).exclude(finished_at=None).update(finished_at=past)
    batch.refresh_from_db()


@pytest.mark.reliability(16, "Chunk messages lost (Redis restarted empty): sent again by the sweep, each scored once")
def test_a_batch_whose_messages_were_lost_is_sent_again_and_finishes(lost_batch):
    _quiet_for(lost_batch, minutes=20)

    resumed = tasks.resume_stalled_batches.delay().get()

    lost_batch.refresh_from_db()
    assert resumed == [lost_batch.pk]
    assert lost_batch.status == BatchStatus.SUCCEEDED
    assert (lost_batch.done, lost_batch.resends) == (120, 1)
    assert Prediction.objects.filter(batch=lost_batch).values("patient").distinct().count() == 120
    assert AuditEvent.objects.get(action="prediction.batch.stalled").detail["outcome"] == "sent again"


def test_a_batch_that_is_young_or_progressing_is_left_alone(lost_batch):
    assert services.batches_resume_stalled() == []  # created a moment ago

    first = PredictionChunk.objects.filter(batch=lost_batch).order_by("index").first()
    services.batch_chunk_score(chunk_id=first.pk)  # a chunk finishes now...
    PredictionBatch.objects.filter(pk=lost_batch.pk).update(created_at=timezone.now() - datetime.timedelta(hours=1))

    assert services.batches_resume_stalled() == []  # ...so the hour-old batch is still making progress
    assert not AuditEvent.objects.filter(action="prediction.batch.stalled").exists()


@pytest.mark.reliability(16, "No worker ever takes a batch's chunks: after three resends they fail with the reason")
def test_a_batch_no_worker_takes_fails_with_the_reason_after_its_resends(lost_batch, monkeypatch):
    monkeypatch.setattr(tasks.score_chunk, "delay", lambda chunk_id: None)  # every message is lost again
    for _ in range(services.BATCH_RESENDS):
        _quiet_for(lost_batch, minutes=20)
        assert services.batches_resume_stalled() == [lost_batch.pk]
        lost_batch.refresh_from_db()
        assert lost_batch.status == BatchStatus.QUEUED

    _quiet_for(lost_batch, minutes=20)
    services.batches_resume_stalled()

    lost_batch.refresh_from_db()
    assert lost_batch.status == BatchStatus.FAILED
    assert (lost_batch.resends, lost_batch.failed, lost_batch.done) == (services.BATCH_RESENDS, 120, 0)
    assert "start the Celery workers" in lost_batch.error
    assert set(PredictionChunk.objects.filter(batch=lost_batch).values_list("status", flat=True)) == {"failed"}
    assert services.batches_resume_stalled() == []  # finished: nothing more to do


def test_a_batch_sent_often_enough_waits_while_workers_score_other_chunks(lost_batch, clinic_b):
    PredictionBatch.objects.filter(pk=lost_batch.pk).update(resends=services.BATCH_RESENDS)
    _quiet_for(lost_batch, minutes=20)
    other = PredictionBatch.objects.create(clinic=clinic_b, trigger="portal", status=BatchStatus.RUNNING)
    PredictionChunk.objects.create(batch=other, index=0, patient_ids=[1], status=ChunkStatus.DONE,
                                   finished_at=timezone.now())  # fmt: skip

    acted = services.batches_resume_stalled()

    lost_batch.refresh_from_db()
    assert acted == []
    assert lost_batch.status == BatchStatus.QUEUED  # queued behind busy workers, not failed
    assert not PredictionChunk.objects.filter(batch=lost_batch, status=ChunkStatus.FAILED).exists()


def test_a_batch_whose_chunks_all_finished_but_was_left_open_is_closed(start, cohort, admin_a, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 50)
    batch = start(by=admin_a)
    PredictionBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.RUNNING, finished_at=None)
    _quiet_for(batch, minutes=20)  # the worker died between its chunk's commit and closing the batch

    services.batches_resume_stalled()

    batch.refresh_from_db()
    assert batch.status == BatchStatus.SUCCEEDED
    assert batch.resends == 0


# --- chunks whose worker was lost ------------------------------------------------------------------------------


def _heartbeat(chunk, *, seconds_ago: float | None) -> None:
    at = None if seconds_ago is None else timezone.now() - datetime.timedelta(seconds=seconds_ago)
    PredictionChunk.objects.filter(pk=chunk.pk).update(heartbeat_at=at)


@pytest.mark.reliability(24, "Chunks started by workers that all died: sent again by the next minute's sweep, scored")
def test_a_chunk_started_by_a_worker_that_died_is_sent_again_within_minutes(
    lost_batch, django_capture_on_commit_callbacks
):
    lost, alive, queued, *_ = PredictionChunk.objects.filter(batch=lost_batch).order_by("index")
    _heartbeat(lost, seconds_ago=services.CHUNK_LOST_AFTER.total_seconds() + 30)  # its worker was killed
    _heartbeat(alive, seconds_ago=30)  # started half a minute ago: may still be running
    _heartbeat(queued, seconds_ago=None)  # no worker took it yet: the queue still holds its message

    with django_capture_on_commit_callbacks(execute=True):  # the sweep's message is sent (and run in-process)
        requeued = tasks.requeue_lost_chunks.delay().get()

    assert requeued == [lost.pk]
    lost.refresh_from_db()
    assert (lost.status, lost.requeues) == (ChunkStatus.DONE, 1)
    assert Prediction.objects.filter(batch=lost_batch, patient_id__in=lost.patient_ids).count() == len(lost.patient_ids)
    assert AuditEvent.objects.get(action="prediction.batch.chunk_lost").detail["chunk"] == lost.index
    assert services.chunks_requeue_lost() == []  # nothing else is lost; the alive one is left to its worker


def test_a_lost_chunk_is_sent_again_a_bounded_number_of_times(lost_batch):
    chunk = PredictionChunk.objects.filter(batch=lost_batch).order_by("index").first()
    for _ in range(services.CHUNK_REQUEUES + 1):
        _heartbeat(chunk, seconds_ago=services.CHUNK_LOST_AFTER.total_seconds() + 30)
        services.chunks_requeue_lost()

    chunk.refresh_from_db()
    assert chunk.requeues == services.CHUNK_REQUEUES  # after that, the stalled-batch sweep decides
    assert chunk.status == ChunkStatus.PENDING


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.reliability(24, "A chunk a live worker is still scoring past the heartbeat age: not sent again")
def test_a_chunk_a_live_worker_holds_is_not_sent_again(active_model, cohort, admin_a, monkeypatch):
    import threading

    from django.db import connections, transaction

    monkeypatch.setattr(services, "CHUNK_SIZE", 50)
    monkeypatch.setattr("clinic.outbox._send_all", lambda messages: 0)  # the chunks' messages are lost
    batch = services.prediction_batch_start(clinic=active_model.clinic, by=admin_a, trigger="portal")
    chunk = PredictionChunk.objects.filter(batch=batch).order_by("index").first()
    _heartbeat(chunk, seconds_ago=services.CHUNK_LOST_AFTER.total_seconds() + 30)
    holding, done = threading.Event(), threading.Event()

    def slow_worker():
        try:
            with transaction.atomic():  # as batch_chunk_score holds its chunk while scoring it
                PredictionChunk.objects.select_for_update().get(pk=chunk.pk)
                holding.set()
                done.wait(30)
        finally:
            connections.close_all()

    worker = threading.Thread(target=slow_worker)
    worker.start()
    try:
        assert holding.wait(30)
        assert services.chunks_requeue_lost() == []
    finally:
        done.set()
        worker.join()
    assert services.chunks_requeue_lost() == [chunk.pk]  # once no worker holds it, it is lost


# --- one batch per clinic at a time -------------------------------------------------------------------------------


@pytest.mark.reliability(29, "Started a second batch for a clinic while its first was queued: refused, nothing written")
def test_a_second_batch_for_a_clinic_is_refused_while_one_is_open(lost_batch, admin_a):
    with pytest.raises(ValidationError, match=f"Batch #{lost_batch.pk} for this clinic is still queued"):
        services.prediction_batch_start(clinic=lost_batch.clinic, by=admin_a, trigger="portal")

    assert list(PredictionBatch.objects.all()) == [lost_batch]


def test_another_clinic_starts_its_batch_while_one_runs_elsewhere(lost_batch, clinic_b, trained_artifact, admin_b):
    make_model_version(clinic_b, trained_artifact)

    batch = services.prediction_batch_start(clinic=clinic_b, by=admin_b, trigger="portal")

    assert batch.clinic == clinic_b


def test_a_new_batch_starts_once_the_previous_one_finished(lost_batch, admin_a):
    _quiet_for(lost_batch, minutes=20)
    services.batches_resume_stalled()  # its chunks sent again and scored: the batch finishes
    lost_batch.refresh_from_db()
    assert lost_batch.status == BatchStatus.SUCCEEDED

    assert services.prediction_batch_start(clinic=lost_batch.clinic, by=admin_a, trigger="portal").pk != lost_batch.pk


def test_the_nightly_run_skips_a_clinic_whose_batch_still_runs(lost_batch, caplog):
    assert services.prediction_batch_start_scheduled() == []
    assert "still queued" in caplog.text


@pytest.mark.reliability(29, "A chunk whose first try failed and second succeeded: attempts says 2")
def test_a_retried_chunk_counts_each_try(start, cohort, admin_a, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 50)
    real_score, tries = services._score, []

    def fails_first_time(patient_ids, **kwargs):
        tries.append(patient_ids[0])
        if tries.count(patient_ids[0]) == 1 and patient_ids[0] == cohort[0].pk:
            raise RuntimeError("connection reset by peer")
        return real_score(patient_ids, **kwargs)

    monkeypatch.setattr(services, "_score", fails_first_time)
    monkeypatch.setattr(tasks, "RETRY_BACKOFF_SECONDS", 0.0)

    batch = start(by=admin_a)

    attempts = {chunk.patient_ids[0]: chunk.attempts for chunk in PredictionChunk.objects.filter(batch=batch)}
    assert attempts.pop(cohort[0].pk) == 2
    assert set(attempts.values()) == {1}
