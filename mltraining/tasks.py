"""Celery tasks of the model registry: ids in, one service call, nothing else. The rows are the truth."""

from celery import shared_task


@shared_task(acks_late=True)
def train_model_task(run_id: int) -> None:
    """Train one queued run. A redelivered message finds the run claimed already and does nothing."""
    from mltraining.services import training_run_execute

    training_run_execute(run_id=run_id)


@shared_task(acks_late=True)
def resume_queued_runs() -> list[int]:
    """Every few minutes: a run queued unclaimed for long is sent again, or failed with the reason."""
    from mltraining.services import training_runs_resume_queued

    return training_runs_resume_queued()


@shared_task(acks_late=True)
def scheduled_retraining() -> None:
    """Weekly: request a run for every clinic with patients (each run then goes through the promotion gate)."""
    from mltraining.services import training_run_schedule_all

    training_run_schedule_all()


@shared_task(acks_late=True)
def drift_check_all() -> None:
    """Weekly: compare each clinic's recent inputs with its active model's training profile."""
    from mltraining.services import drift_check_all_clinics

    drift_check_all_clinics()


@shared_task(acks_late=True)
def clinic_retraining(clinic_id: int) -> None:
    """Weekly at the clinic's local night (clinic.schedules): request a run for the clinic, if it has patients."""
    from mltraining.services import training_run_schedule_all

    training_run_schedule_all(clinic_ids=[clinic_id])


@shared_task(acks_late=True)
def clinic_drift_check(clinic_id: int) -> None:
    """Weekly at the clinic's local night (clinic.schedules), before its retraining: the clinic's drift report."""
    from mltraining.services import drift_check_all_clinics

    drift_check_all_clinics(clinic_ids=[clinic_id])
