"""Queues by kind of work, on real workers through Redis and PostgreSQL: a training run holds the training worker,
and what a clinician waits for is answered meanwhile."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from sklearn.dummy import DummyClassifier

from clinic.testing import tasks_routed_by_kind, wait_for, worker_start, worker_stop
from mltraining.ml.candidates import CANDIDATES
from mltraining.ml.features import missing_inputs
from mltraining.ml.train import TrainingConfig
from mltraining.models import TrainingRun, TrainingStatus
from mltraining.services import training_run_request
from patients.demo import demo_cohort_load
from patients.models import Patient
from predictions.models import Prediction, PredictionStatus
from predictions.services import _features

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queues():
    with tasks_routed_by_kind() as by_kind:
        yield by_kind


def _run_status(run_id: int) -> str:
    return TrainingRun.objects.values_list("status", flat=True).get(pk=run_id)


def _a_patient_the_model_can_score(clinic) -> Patient:
    """The first patient with every input the model needs (a demo patient may lack a recent panel)."""
    ids = list(Patient.objects.filter(clinic=clinic).order_by("pk").values_list("pk", flat=True))
    absent = missing_inputs(_features(ids, clinic_id=clinic.pk, as_of=timezone.now()))
    return Patient.objects.get(pk=next(pk for pk, missing in zip(ids, absent, strict=True) if not missing))


def test_a_clinicians_scoring_is_answered_while_a_training_run_holds_the_training_worker(
    queues, active_model, clinic_a, admin_a, staff_a, doctor_a, trained_artifact, client, monkeypatch, tmp_path
):
    demo_cohort_load(clinic=clinic_a, n_patients=400, seed=33)
    patient = _a_patient_the_model_can_score(clinic_a)
    # The worker's `held` candidate waits for the gate (clinic.tests.held_training_worker); here only its name counts.
    monkeypatch.setitem(CANDIDATES, "held", lambda seed: DummyClassifier())
    gate, started = tmp_path / "gate", tmp_path / "started"
    env = {"MODEL_DIR": str(trained_artifact[0]), "HELD_TRAINING_GATE": str(gate),
           "HELD_TRAINING_STARTED": str(started)}  # fmt: skip
    training = worker_start(queues["training"], env=env, app="clinic.tests.held_training_worker")
    interactive = worker_start(queues["interactive"], env=env)
    logs = {}
    try:
        config = TrainingConfig(candidates=("held", "dummy", "logistic_regression"), cv_folds=2, bootstrap_rounds=20,
                                permutation_repeats=1)  # fmt: skip
        run = training_run_request(clinic=clinic_a, by=admin_a, config=config)
        assert wait_for(started.exists, seconds=120), "the run never started:\n" + worker_stop(training)
        assert _run_status(run.pk) == TrainingStatus.RUNNING

        # Staff save new results through the portal: the patient's prediction is the interactive worker's.
        client.force_login(staff_a)
        when = timezone.now() - datetime.timedelta(minutes=10)
        saved = client.post(
            reverse("patients:panel", args=[patient.pk]) + "?panel=metabolic",
            {"effective_at": f"{when:%Y-%m-%dT%H:%M}", "glucose": "7.9", "glucose__unit": "mmol/L"},
        )
        assert saved.status_code == 302
        answered = wait_for(lambda: Prediction.objects.filter(patient=patient).exists(), seconds=90)
        assert answered, "no prediction while the run trained:\n" + worker_stop(interactive)
        assert _run_status(run.pk) == TrainingStatus.RUNNING  # still held: the answer did not wait for it
        assert Prediction.objects.get(patient=patient).status == PredictionStatus.SUCCEEDED

        # "Score now" answers in the request itself, whatever the workers are doing.
        client.force_login(doctor_a)
        scored = client.post(reverse("predictions:score", args=[patient.pk]))
        assert scored.status_code == 302
        assert Prediction.objects.filter(patient=patient).count() == 2
        assert _run_status(run.pk) == TrainingStatus.RUNNING

        gate.touch()
        finished = wait_for(lambda: _run_status(run.pk) != TrainingStatus.RUNNING, seconds=180)
        assert finished, "the run did not finish once released:\n" + worker_stop(training)
    finally:
        logs = {"training": worker_stop(training), "interactive": worker_stop(interactive)}

    assert _run_status(run.pk) == TrainingStatus.SUCCEEDED, logs["training"]
    assert "Task predictions.tasks.predict_patients[" in logs["interactive"]
    assert "Task predictions.tasks.predict_patients[" not in logs["training"]
