"""Celery tasks: ids in, one service call. The chunk row, not the message, says whether work is done."""

import logging
import time

from celery import shared_task
from celery.signals import worker_init, worker_process_init
from django.db import DatabaseError, close_old_connections, connection

from mltraining.ml import artifact
from predictions import services

logger = logging.getLogger(__name__)

CHUNK_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = 2.0


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=3)
def predict_patients(patient_ids: list[int], message_id: int | None = None) -> int:
    return services.predictions_create(patient_ids=patient_ids, message_id=message_id)


@shared_task(acks_late=True)
def score_chunk(chunk_id: int) -> int:
    """Score a chunk, trying again on errors (each try rolls back whole); after the last, report it failed.

    The tries happen inside the task rather than as Celery retries so that they behave the same whether
    tasks run on a worker or in-process; a worker killed mid-chunk is covered by late acknowledgement.
    """
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            return services.batch_chunk_score(chunk_id=chunk_id)
        except services.ModelUnavailable as exc:  # trying again cannot fix a missing or corrupt artifact
            services.batch_chunk_fail(chunk_id=chunk_id, error=str(exc))
            return 0
        except Exception as exc:
            logger.warning("Prediction chunk %s, try %s of %s failed: %s", chunk_id, attempt, CHUNK_ATTEMPTS, exc,
                           exc_info=True)  # fmt: skip
            _connection_drop_if_broken()
            if attempt == CHUNK_ATTEMPTS:
                services.batch_chunk_fail(chunk_id=chunk_id, error=f"{type(exc).__name__}: {exc}")
                return 0
            time.sleep(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))
    return 0


def _connection_drop_if_broken() -> None:
    """A connection the database dropped stays broken until closed, and every later try would fail on it.

    Not inside an atomic block (a test running the task in-process): the caller's transaction owns it then.
    """
    if not connection.in_atomic_block:
        close_old_connections()


@shared_task(acks_late=True)
def score_all_clinics() -> list[int]:
    """Nightly: one batch per clinic that has an active model."""
    return services.prediction_batch_start_scheduled()


@shared_task(acks_late=True)
def clinic_batch_scoring(clinic_id: int) -> list[int]:
    """At the clinic's local night (clinic.schedules): its nightly batch, if it has an active model."""
    return services.prediction_batch_start_scheduled(clinic_ids=[clinic_id])


@shared_task(acks_late=True)
def resume_stalled_batches() -> list[int]:
    """Every few minutes: batches whose chunk messages were lost are sent again, or finished with the reason."""
    return services.batches_resume_stalled()


@shared_task(acks_late=True)
def requeue_lost_chunks() -> list[int]:
    """Every minute: chunks whose worker died mid-chunk are sent again (see services.chunks_requeue_lost)."""
    return services.chunks_requeue_lost()


@worker_init.connect
def _model_libraries_import(**_kwargs) -> None:
    """The worker's parent imports the model loader's libraries once, before it forks its pool processes, so
    they share them instead of each spending seconds importing them before its warm-up."""
    artifact.import_libraries()


@worker_process_init.connect
def _scoring_warm_up(**_kwargs) -> None:
    """Each new worker process loads the active models before its first task (see services.scoring_warm_up).

    Never stops the process from starting: without the warm-up, the first chunk loads the model itself.
    """
    started = time.perf_counter()
    try:
        warmed = services.scoring_warm_up()
        logger.info("Scoring warm-up: model versions %s loaded in %.1f s", warmed, time.perf_counter() - started)
    except Exception:
        logger.exception("Scoring warm-up failed; the first task loads the model itself")
    finally:
        connection.close()  # the forked process's first task opens its own
