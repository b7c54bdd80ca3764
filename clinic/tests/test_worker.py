"""A real Celery worker process, started here, takes a task from Redis and writes to PostgreSQL."""

import uuid

import pytest

from clinic.audit import audit_record
from clinic.models import AuditEvent
from clinic.testing import wait_for, worker_start, worker_stop


@pytest.fixture
def worker_queue():
    """Start a worker on a queue of its own, so no other test or stale message interferes."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    process = worker_start(queue)
    yield queue, process
    worker_stop(process)


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_through_redis_and_writes_to_postgres(worker_queue, doctor_a):
    from clinic.celery import app
    from clinic.health import check_workers
    from clinic.tasks import verify_audit_chain

    queue, process = worker_queue
    app.conf.task_always_eager = False
    audit_record(actor=doctor_a, action="patient.view", patient_id=7)

    verify_audit_chain.apply_async(queue=queue)
    done = wait_for(lambda: AuditEvent.objects.filter(action="audit.verify").exists())

    if not done:
        pytest.fail("the worker did not run the task within 60 s:\n" + worker_stop(process))
    event = AuditEvent.objects.get(action="audit.verify")
    assert event.outcome == "success"
    assert event.detail["checked"] >= 1
    assert any(name.startswith(queue) for name in check_workers(timeout=2)["workers"])
