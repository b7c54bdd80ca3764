import logging

from celery import shared_task
from celery.signals import worker_ready

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def verify_audit_chain(full: bool = False) -> dict[str, object]:
    """Nightly: check the audit chains, from the checkpoint on (every row if `full`), and record the result as an
    audit row."""
    from clinic.services import audit_verify_and_record

    return audit_verify_and_record(full=full)


@shared_task(acks_late=True)
def audit_checkpoint() -> dict[str, object]:
    """Every AUDIT_CHECKPOINT_MINUTES: the audit chains' verified heads, signed, to a file outside the database."""
    from clinic.services import audit_checkpoint_and_record

    return audit_checkpoint_and_record()


@shared_task(acks_late=True)
def audit_partitions_ensure() -> list[str]:
    """Daily, on PostgreSQL: the audit table's partitions for this month and the next AUDIT_PARTITION_MONTHS_AHEAD."""
    from clinic.audit_partitions import audit_partitions_ensure as ensure

    return ensure()


@shared_task(acks_late=True)
def outbox_drain() -> int:
    """Every minute: send the messages the outbox kept while the broker was down."""
    from clinic.outbox import outbox_drain

    return outbox_drain()


@shared_task(acks_late=True)
def nightly_dispatch() -> list[tuple[int, str]]:
    """Every 15 minutes: each clinic's nightly jobs that are due by its own clock (clinic.schedules)."""
    from clinic.schedules import nightly_dispatch

    return nightly_dispatch()


@worker_ready.connect
def _outbox_drain_at_start(**_kwargs) -> None:
    """A worker that starts after an outage sends what waited, without waiting for beat's next minute.

    Never stops the worker from starting: beat's drain sends the rest.
    """
    from django.db import connection

    from clinic.outbox import outbox_drain

    try:
        outbox_drain()
    except Exception:
        logger.exception("Outbox drain at worker start failed; beat's drain will send the messages")
    finally:
        connection.close()  # the worker's main process keeps no connection of its own
