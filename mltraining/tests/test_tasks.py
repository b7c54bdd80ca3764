import datetime

from celery.schedules import crontab
from django.conf import settings

from clinic.schedules import NIGHTLY_JOBS, SUNDAY
from mltraining import tasks


def test_each_clinic_retrains_and_checks_drift_weekly_at_its_local_night():
    jobs = {job.task: job for job in NIGHTLY_JOBS.values()}

    retrain, drift = jobs["mltraining.tasks.clinic_retraining"], jobs["mltraining.tasks.clinic_drift_check"]
    assert (retrain.weekday, retrain.at) == (SUNDAY, datetime.time(2, 0))
    assert (drift.weekday, drift.at) == (SUNDAY, datetime.time(1, 0))  # before retraining replaces the model
    assert settings.CELERY_BEAT_SCHEDULE["nightly-dispatch"]["schedule"] == crontab(minute="*/15")


def test_the_scheduled_task_names_match_the_registered_tasks():
    assert tasks.scheduled_retraining.name == "mltraining.tasks.scheduled_retraining"
    assert tasks.drift_check_all.name == "mltraining.tasks.drift_check_all"
    assert tasks.train_model_task.name == "mltraining.tasks.train_model_task"


def test_each_task_is_one_service_call(monkeypatch):
    calls = []
    monkeypatch.setattr("mltraining.services.training_run_execute", lambda **kw: calls.append(("execute", kw)))
    monkeypatch.setattr("mltraining.services.training_run_schedule_all", lambda: calls.append(("schedule", {})))
    monkeypatch.setattr("mltraining.services.drift_check_all_clinics", lambda: calls.append(("drift", {})))

    tasks.train_model_task.delay(7)
    tasks.scheduled_retraining.delay()
    tasks.drift_check_all.delay()
    monkeypatch.setattr("mltraining.services.training_run_schedule_all", lambda **kw: calls.append(("schedule", kw)))
    monkeypatch.setattr("mltraining.services.drift_check_all_clinics", lambda **kw: calls.append(("drift", kw)))
    tasks.clinic_retraining.delay(3)
    tasks.clinic_drift_check.delay(3)

    assert calls == [("execute", {"run_id": 7}), ("schedule", {}), ("drift", {}),
                     ("schedule", {"clinic_ids": [3]}), ("drift", {"clinic_ids": [3]})]  # fmt: skip
