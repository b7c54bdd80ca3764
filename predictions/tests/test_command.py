"""`manage.py predict_all`: a batch over a clinic, a progress bar, a summary, and a non-zero exit on failure.

Transactional tests: the command commits, so the chunks it enqueues on commit run (eagerly) inside the call.
"""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from clinic.tests.factories import ClinicFactory
from patients.demo import demo_cohort_load
from patients.models import Patient
from predictions import services, tasks
from predictions.management.commands import predict_all
from predictions.models import BatchStatus, Prediction, PredictionBatch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    services._loaded.clear()
    yield
    services._loaded.clear()


@pytest.fixture
def cohort(clinic_a):
    demo_cohort_load(clinic=clinic_a, n_patients=30, seed=17)
    return list(Patient.objects.filter(clinic=clinic_a).order_by("pk"))


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("predict_all", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_command_scores_every_patient_and_prints_a_summary(active_model, cohort, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 10)

    out, err = run("--clinic", "riverside")

    batch = PredictionBatch.objects.get()
    assert (batch.status, batch.trigger, batch.requested_by, batch.done) == ("succeeded", "command", None, 30)
    assert Prediction.objects.filter(batch=batch).count() == 30
    assert f"Batch #{batch.pk} for Riverside Clinic: 30 patients in 3 chunks, model v1." in out
    assert "Succeeded: 30 scored, 0 in failed chunks, 30 patients; batch " in out
    assert "elapsed " in out
    assert f"Batch #{batch.pk} succeeded." in out
    assert "[##############################]         30 / 30  chunks 3/3" in err


def test_the_clinic_may_be_left_out_when_there_is_only_one(active_model, cohort):
    run()

    assert PredictionBatch.objects.get().clinic == active_model.clinic


def test_the_clinic_must_be_named_when_there_are_several(active_model, cohort):
    ClinicFactory(slug="elsewhere")

    with pytest.raises(CommandError, match="--clinic SLUG"):
        run()


def test_an_unknown_clinic_is_refused(active_model):
    with pytest.raises(CommandError, match="No clinic with slug 'nowhere'"):
        run("--clinic", "nowhere")


def test_a_clinic_without_an_active_model_is_refused_clearly(clinic_a, cohort):
    with pytest.raises(CommandError, match="no active model"):
        run("--clinic", "riverside")
    assert not PredictionBatch.objects.exists()


def test_failed_chunks_are_listed_and_the_command_exits_non_zero(active_model, cohort, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 10)
    monkeypatch.setattr(tasks, "RETRY_BACKOFF_SECONDS", 0.0)
    real_score = services._score

    def flaky(patient_ids, **kwargs):
        if cohort[0].pk in patient_ids:
            raise RuntimeError("disk on fire")
        return real_score(patient_ids, **kwargs)

    monkeypatch.setattr(services, "_score", flaky)
    out = StringIO()

    with pytest.raises(CommandError, match=r"finished with 1 failed chunk\(s\); 10 patients were not scored"):
        call_command("predict_all", stdout=out, stderr=StringIO())

    assert "Finished with failed chunks: 20 scored, 10 in failed chunks" in out.getvalue()
    assert "chunk 0 failed: RuntimeError: disk on fire" in out.getvalue()


def test_a_batch_that_failed_entirely_exits_non_zero(active_model, cohort):
    active_model.sha256 = "f" * 64  # the artifact no longer matches: every chunk fails without retrying
    active_model.save()

    with pytest.raises(CommandError, match="failed: no chunk could be scored"):
        run()

    assert PredictionBatch.objects.get().status == BatchStatus.FAILED


def test_the_command_follows_a_batch_that_runs_on_workers(active_model, cohort, monkeypatch):
    """With a broker the chunks run elsewhere: the bar is redrawn from the batch row until it finishes."""
    monkeypatch.setattr(services, "CHUNK_SIZE", 10)
    states = iter([(BatchStatus.QUEUED, 0), (BatchStatus.RUNNING, 10), (BatchStatus.SUCCEEDED, 30)])
    monkeypatch.setattr(services.transaction, "on_commit", lambda callback, *args, **kwargs: None)

    def next_state(seconds):
        status, done = next(states)
        PredictionBatch.objects.update(status=status, done=done, chunks_finished=done // 10)

    monkeypatch.setattr(predict_all.time, "sleep", next_state)

    out, err = run()

    assert err.count("\r  scoring [") == 4  # queued, queued, running, then the finished bar
    assert "[#########.....................]         10 / 30  chunks 1/3" in err
    assert err.endswith("[##############################]         30 / 30  chunks 3/3\n")
    assert "Succeeded: 30 scored" in out


def test_every_patient_is_rescored_nightly_at_the_clinics_local_night():
    import datetime

    from clinic.celery import app
    from clinic.schedules import NIGHTLY_JOBS

    job = NIGHTLY_JOBS["scoring"]

    assert (job.at, job.weekday) == (datetime.time(4, 0), None)
    assert job.task in app.tasks


def test_the_nightly_task_of_one_clinic_starts_a_batch_for_that_clinic_only(active_model, cohort, clinic_b):
    demo_cohort_load(clinic=clinic_b, n_patients=5, seed=3)  # no active model: left alone

    assert tasks.clinic_batch_scoring.delay(clinic_b.pk).get() == []
    batch_ids = tasks.clinic_batch_scoring.delay(active_model.clinic_id).get()

    assert batch_ids == [PredictionBatch.objects.get(clinic=active_model.clinic).pk]


def test_the_nightly_task_starts_a_batch_for_each_clinic_with_an_active_model(active_model, cohort, clinic_b):
    demo_cohort_load(clinic=clinic_b, n_patients=5, seed=3)  # no active model: left alone

    batch_ids = tasks.score_all_clinics.delay().get()

    batch = PredictionBatch.objects.get()
    assert batch_ids == [batch.pk]
    assert (batch.clinic, batch.trigger, batch.status, batch.done) == (
        active_model.clinic,
        "scheduled",
        "succeeded",
        30,
    )
