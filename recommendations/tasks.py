"""Celery tasks: ids in, one service call."""

from celery import shared_task

from recommendations import services


@shared_task(acks_late=True)
def rebuild_ranker(clinic_id: int) -> int | None:
    snapshot = services.ranker_rebuild(clinic_id=clinic_id)
    return snapshot.version if snapshot else None


@shared_task(acks_late=True)
def rebuild_rankers() -> list[int]:
    """Nightly: every clinic with review decisions gets its ranker refitted."""
    return services.rankers_rebuild_all()
