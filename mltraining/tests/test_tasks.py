from celery.schedules import crontab
from django.conf import settings

from mltraining import tasks


def test_the_beat_schedule_retrains_and_checks_drift_weekly():
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    retrain, drift = schedule["mltraining.tasks.scheduled_retraining"], schedule["mltraining.tasks.drift_check_all"]
    assert retrain == crontab(day_of_week="sunday", hour=2, minute=0)
    assert drift == crontab(day_of_week="sunday", hour=1, minute=0)  # before retraining replaces the model


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

    assert calls == [("execute", {"run_id": 7}), ("schedule", {}), ("drift", {})]
