import io

import pytest
from django.core.management import CommandError, call_command

from mltraining.models import ModelStatus, TrainingRun, TrainingStatus
from patients.demo import demo_cohort_load


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    return settings.MODEL_DIR


def _run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("train_model", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


ARGS = ["--clinic", "riverside", "--candidates", "dummy,logistic_regression", "--folds", "3"]


def _assert_trained_and_summarised(out: str, err: str) -> None:
    run = TrainingRun.objects.get()
    assert run.status == TrainingStatus.SUCCEEDED
    assert run.configuration["cv_folds"] == 3
    assert run.model_version.status == ModelStatus.ACTIVE
    assert "Chosen model: logistic_regression" in out
    assert "Reason: " in out
    assert "Held-out macro ROC-AUC: 0." in out
    assert "(dummy baseline 0.500)" in out
    assert "Read 300 patients" in out
    assert "] 100%" in err


def test_train_model_sync_trains_in_process_and_prints_the_summary(demo_clinic_a):
    demo_cohort_load(clinic=demo_clinic_a, n_patients=300, seed=4)

    out, err = _run(*ARGS, "--sync")

    _assert_trained_and_summarised(out, err)
    assert "Trained on: Trained on synthetic demo data (" in out


@pytest.mark.django_db(transaction=True)  # the task is sent on commit, which a test transaction never reaches
def test_train_model_queues_the_run_and_follows_it_to_the_end(demo_clinic_a):
    demo_cohort_load(clinic=demo_clinic_a, n_patients=300, seed=4)

    out, err = _run(*ARGS)

    _assert_trained_and_summarised(out, err)


def test_train_model_on_the_demo_cohort_of_a_real_clinic_registers_a_candidate_and_fails_with_the_reason(clinic_a):
    demo_cohort_load(clinic=clinic_a, n_patients=300, seed=4)

    with pytest.raises(CommandError, match="not activated: it was trained on synthetic demo data and Riverside"):
        _run(*ARGS, "--sync")

    assert TrainingRun.objects.get().model_version.status == ModelStatus.CANDIDATE


def test_train_model_refuses_an_unknown_candidate(clinic_a):
    with pytest.raises(CommandError, match="Unknown candidates"):
        _run("--clinic", "riverside", "--candidates", "dummy,oracle")


def test_train_model_wants_a_clinic_when_there_are_several(clinic_a, clinic_b):
    with pytest.raises(CommandError, match="--clinic"):
        _run()


def test_train_model_reports_a_failed_run(clinic_a):
    with pytest.raises(CommandError, match="nothing to learn from"):
        _run("--clinic", "riverside", "--sync")


def test_train_model_unless_active_leaves_a_clinic_with_an_active_model_alone(demo_clinic_a):
    demo_cohort_load(clinic=demo_clinic_a, n_patients=300, seed=4)
    _run(*ARGS, "--sync", "--unless-active")

    out, _ = _run(*ARGS, "--sync", "--unless-active")

    assert "has an active model already" in out
    assert TrainingRun.objects.count() == 1
