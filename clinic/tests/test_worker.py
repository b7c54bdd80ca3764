"""A real Celery worker process, started here, takes a task from Redis and writes to PostgreSQL."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from clinic.audit import audit_record
from clinic.models import AuditEvent

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    """The test database this process uses, so the worker writes where the test reads."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker_queue():
    """Start a worker on a queue of its own, so no other test or stale message interferes."""
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": _database_url(), "DJANGO_SETTINGS_MODULE": "clinic.settings"}
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "clinic", "worker", "-Q", queue, "-P", "solo",
         "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", f"{queue}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    yield queue, process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _wait_for(predicate, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


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
    done = _wait_for(lambda: AuditEvent.objects.filter(action="audit.verify").exists())

    if not done:
        process.terminate()
        pytest.fail("the worker did not run the task within 60 s:\n" + process.communicate(timeout=20)[0][-3000:])
    event = AuditEvent.objects.get(action="audit.verify")
    assert event.outcome == "success"
    assert event.detail["checked"] >= 1
    assert any(name.startswith(queue) for name in check_workers(timeout=2)["workers"])
