"""Celery tasks of the patients app: ids in, one service call."""

from celery import shared_task

from patients import dashboard

IMPORT_JOB_HOURS = 6  # a 1,000-patient population takes minutes; the default 10-minute limit is for short tasks


@shared_task(acks_late=True)
def dashboard_figure_refresh(kind: str, clinic_id: int | None, codes: list[str]) -> None:
    """Compute a clinic-wide figure again once it is due, while the pages still show the one before."""
    dashboard.figure_refresh(kind, clinic_id, codes)


@shared_task(
    bind=True, acks_late=True, max_retries=None,
    soft_time_limit=IMPORT_JOB_HOURS * 3600, time_limit=IMPORT_JOB_HOURS * 3600 + 60,
)  # fmt: skip
def import_job_run(self, job_id: int) -> None:
    """Run an import job. The row is the truth: a job already finished does nothing; one left running by a lost
    worker is taken over once its heartbeat is stale. A message delivered again while a live worker runs the job
    (the broker's visibility timeout is shorter than a long import) comes back later instead of running it twice."""
    from patients.imports import jobs

    ran = jobs.import_job_execute(job_id=job_id) is not None
    if not ran and not self.request.is_eager and jobs.import_job_busy(job_id=job_id):
        raise self.retry(countdown=int(jobs.STALE_AFTER.total_seconds()))


@shared_task(acks_late=True)
def resume_stalled_import_jobs() -> list[int]:
    """Every ten minutes: import jobs whose message was lost or whose worker died are sent again."""
    from patients.imports import jobs

    return jobs.import_jobs_resume_stalled()


@shared_task(acks_late=True)
def escalate_critical_results() -> int:
    """Every minute: critical results left unacknowledged are e-mailed to the on-duty doctors, then the contact."""
    from patients.escalation import critical_escalations_run

    return len(critical_escalations_run())
