"""Celery tasks of the patients app."""

from celery import shared_task

from patients import dashboard


@shared_task(acks_late=True)
def dashboard_figure_refresh(kind: str, clinic_id: int | None, codes: list[str]) -> None:
    """Compute a clinic-wide figure again once it is due, while the pages still show the one before."""
    dashboard.figure_refresh(kind, clinic_id, codes)
