"""A Celery worker for case 19: the clinic's own app, whose batch chunk loses its PostgreSQL connection once.

Started by `reliability/tests/test_faults.py` as `celery -A reliability.tests.faulty_worker worker`. At the
point FAULT_AT names, on its FAULT_AT_CALL-th pass, a second connection terminates this one's server process,
as a database restart or a network drop would:

- `recommendations`: inside a chunk's transaction, once its predictions are inserted and before its
  recommendations are generated;
- `batch_finish`: after a chunk committed, when it closes its batch.

What the chunk's transaction had written, and what another connection could see of it, goes to the file
FAULT_MARKER, whose existence also makes the fault happen only once.
"""

import json
import os
from pathlib import Path

import django

from clinic.celery import app

django.setup()

from django.db import connection, connections  # noqa: E402  (needs the apps loaded)
from django.utils import timezone  # noqa: E402

from predictions import services as prediction_services  # noqa: E402
from predictions.models import Prediction  # noqa: E402
from recommendations import services as recommendation_services  # noqa: E402

__all__ = ["app"]

MARKER = Path(os.environ["FAULT_MARKER"])
FAULT_AT_CALL = int(os.environ.get("FAULT_AT_CALL", "1"))


def _connection_terminate(*, batch_id: int, patient_ids: list[int]) -> dict:
    """Kill this process's database connection from another one; report what each saw of the chunk's rows."""
    written = Prediction.objects.filter(batch_id=batch_id, patient_id__in=patient_ids).count()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [connection.connection.info.backend_pid])
            cursor.execute(
                "SELECT count(*) FROM predictions_prediction WHERE batch_id = %s AND patient_id = ANY(%s)",
                [batch_id, patient_ids],
            )
            visible = cursor.fetchone()[0]
    finally:
        other.close()
    return {"batch_id": batch_id, "patient_ids": patient_ids, "written_in_transaction": written,
            "visible_to_others": visible, "terminated_at": timezone.now().isoformat()}  # fmt: skip


def _losing_the_connection(function, chunk_of):
    """`function`, whose FAULT_AT_CALL-th call loses the connection first; `chunk_of` names the batch and patients."""
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == FAULT_AT_CALL and not MARKER.exists():
            MARKER.write_text(json.dumps(_connection_terminate(**chunk_of(*args, **kwargs))))
        return function(*args, **kwargs)

    return wrapper


if os.environ["FAULT_AT"] == "recommendations":  # inside the chunk's transaction, its predictions inserted
    recommendation_services.recommendations_generate = _losing_the_connection(
        recommendation_services.recommendations_generate,
        lambda *, predictions, clinic_id: {
            "batch_id": predictions[0].batch_id, "patient_ids": [p.patient_id for p in predictions]
        },
    )  # fmt: skip
elif os.environ["FAULT_AT"] == "batch_finish":  # the chunk committed, the batch not yet closed
    prediction_services._batch_finish = _losing_the_connection(
        prediction_services._batch_finish, lambda batch_id: {"batch_id": batch_id, "patient_ids": []}
    )
else:
    raise ValueError(f"Unknown FAULT_AT: {os.environ['FAULT_AT']}")
