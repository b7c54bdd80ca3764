"""Redis down: writes that succeed say so and keep the work they call for (the outbox), pages and /healthz answer.

The broker is made unreachable by pointing Celery at a port nobody listens on; the cache, by a Redis cache at the
same port. Neither needs a Redis: the refusal is what an outage looks like to the application.
"""

import datetime
import socket
from unittest import mock

import pytest
from django.core.cache import caches
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from clinic import outbox
from clinic.cache import RedisCache
from clinic.models import OutboxMessage
from clinic.testing import tasks_on_real_workers
from patients.models import Observation
from patients.tests.factories import PatientFactory
from predictions.models import Prediction
from predictions.services import prediction_request
from predictions.tasks import predict_patients

WHEN = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again on leaving: connections to it are refused


@pytest.fixture
def broker_down():
    """Tasks go to a broker that refuses connections, as Redis does while it is down."""
    with tasks_on_real_workers(broker_url=f"redis://127.0.0.1:{_closed_port()}/0"):
        yield
    outbox._broker_down_until = 0.0  # the broker is back for the next test


@pytest.fixture
def cache_down(settings):
    """The default cache and the sessions on a Redis that refuses connections (sessions as with REDIS_URL set)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "clinic.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    assert isinstance(caches["default"], RedisCache)
    return caches["default"]


@pytest.fixture
def patient_a(clinic_a):
    return PatientFactory(clinic=clinic_a)


@pytest.mark.django_db(transaction=True)
@pytest.mark.reliability(22, "POST of lab results with the broker down: 201, results saved, prediction request kept")
def test_results_saved_while_the_broker_is_down_answer_201_and_their_prediction_request_is_kept(
    broker_down, staff_a, patient_a
):
    api = APIClient()
    api.force_authenticate(staff_a)
    body = {"analyte": "glucose", "value": 5.4, "unit": "mmol/L", "effective_at": WHEN.isoformat()}

    response = api.post(reverse("patients-api:observation-list", args=[patient_a.pk]), body, format="json")

    assert response.status_code == 201, response.content
    assert Observation.objects.filter(patient=patient_a).count() == 1
    message = OutboxMessage.objects.get(task="predictions.tasks.predict_patients")
    assert message.args == [[patient_a.pk]]
    assert message.sent_at is None
    assert "Connection refused" in message.last_error
    assert not Prediction.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.reliability(22, "A prediction kept while the broker was down is scored once the drain sends it")
def test_a_kept_prediction_request_is_scored_when_the_drain_sends_it(broker_down, patient_a):
    with transaction.atomic():
        prediction_request(patient_ids=[patient_a.pk])
    assert OutboxMessage.objects.get().sent_at is None

    from clinic.celery import app

    app.conf.task_always_eager = True  # the broker is back; in a test, the tasks it delivers run in-process
    sent = outbox.outbox_drain()

    assert sent == 1
    assert Prediction.objects.filter(patient=patient_a).count() == 1
    message = OutboxMessage.objects.get()
    assert message.sent_at is not None
    assert message.consumed_at is not None


def test_a_prediction_request_delivered_twice_scores_once(patient_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the message is written, not sent
        prediction_request(patient_ids=[patient_a.pk])
    message = OutboxMessage.objects.get()

    predict_patients(patient_ids=[patient_a.pk], message_id=message.pk)
    predict_patients(patient_ids=[patient_a.pk], message_id=message.pk)  # the broker delivered it again

    assert Prediction.objects.filter(patient=patient_a).count() == 1


def test_a_change_that_rolls_back_leaves_no_message(patient_a):
    def results_refused():
        with transaction.atomic():
            prediction_request(patient_ids=[patient_a.pk])
            raise RuntimeError("the results were refused")

    with pytest.raises(RuntimeError):
        results_refused()

    assert not OutboxMessage.objects.exists()
    assert not Prediction.objects.exists()


def test_a_message_another_sender_holds_is_not_sent_twice(patient_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        prediction_request(patient_ids=[patient_a.pk])
    message = OutboxMessage.objects.get()
    assert message.leased_until > timezone.now()  # the sender after commit holds it from the moment it is written
    assert not outbox._lease(message.pk)  # and has not marked it sent yet

    assert outbox.outbox_drain() == 0
    assert not Prediction.objects.exists()

    # That sender died: once its lease has run out, the drain sends the message.
    OutboxMessage.objects.filter(pk=message.pk).update(leased_until=timezone.now() - datetime.timedelta(seconds=1))
    assert outbox.outbox_drain() == 1
    assert Prediction.objects.filter(patient=patient_a).count() == 1


def test_the_sender_after_commit_sends_a_message_it_wrote_without_leasing_it_again(
    patient_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        prediction_request(patient_ids=[patient_a.pk])
    message = OutboxMessage.objects.get()

    with CaptureQueriesContext(connection) as queries:
        for callback in callbacks:
            callback()

    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "clinic_outboxmessage"')]
    set_clauses = [sql.split(" WHERE ")[0] for sql in updates]
    assert not [sql for sql in set_clauses if '"leased_until"' in sql]  # the lease was taken with the row
    assert [sql for sql in set_clauses if '"sent_at"' in sql]  # then marked sent (the task, run here, consumed it)
    message.refresh_from_db()
    assert message.sent_at is not None


def test_a_message_whose_transaction_outlasted_half_its_lease_is_leased_again_before_it_is_sent(
    patient_a, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        prediction_request(patient_ids=[patient_a.pk])
    message = OutboxMessage.objects.get()
    later = timezone.now() + outbox.LEASE * 3 / 4

    with mock.patch("clinic.outbox.timezone.now", return_value=later):
        for callback in callbacks:
            callback()

    message.refresh_from_db()
    assert message.sent_at == later
    assert message.leased_until == later + outbox.LEASE  # leased again, over its own lease


@pytest.mark.django_db(transaction=True)
def test_messages_written_while_the_broker_is_down_are_left_to_the_next_drain(broker_down, patient_a):
    for _ in range(2):  # the first send is refused; the second is not tried while the broker is known down
        with transaction.atomic():
            prediction_request(patient_ids=[patient_a.pk])

    assert outbox._broker_down_until > 0
    assert list(OutboxMessage.objects.values_list("sent_at", "leased_until")) == [(None, None), (None, None)]


def test_the_drain_forgets_messages_sent_a_week_ago_and_keeps_the_unsent(patient_a):
    old = timezone.now() - outbox.KEEP_SENT - datetime.timedelta(hours=1)
    OutboxMessage.objects.create(task="predictions.tasks.predict_patients", args=[[patient_a.pk]], sent_at=old)
    kept = OutboxMessage.objects.create(task="predictions.tasks.predict_patients", args=[[patient_a.pk]])
    OutboxMessage.objects.filter(pk=kept.pk).update(created_at=old)

    outbox.outbox_drain()

    assert list(OutboxMessage.objects.values_list("pk", flat=True)) == [kept.pk]
    assert OutboxMessage.objects.get().sent_at is not None


# --- the cache and the sessions ----------------------------------------------------------------------------------


@pytest.mark.reliability(22, "Every cache call on an unreachable Redis: a miss or a skipped write, never an error")
def test_an_unreachable_cache_answers_misses_instead_of_raising(cache_down):
    cache_down.set("figure", 1, 30)

    assert cache_down.get("figure") is None
    assert cache_down.get("figure", "default") == "default"
    assert cache_down.add("lock", True, 30) is False  # not taken: a caller that needs the lock does not proceed
    assert cache_down.get_many(["a", "b"]) == {}
    assert "figure" not in cache_down
    assert cache_down.delete("figure") is False
    cache_down.delete_many(["a", "b"])
    with pytest.raises(ValueError, match="unavailable"):
        cache_down.incr("counter")


@pytest.mark.reliability(22, "Signed-in pages with Redis down: sessions read from the database, 200, not 500")
def test_signed_in_pages_work_with_the_cache_down_and_sessions_come_from_the_database(
    cache_down, client, doctor_a, patient_a
):
    client.force_login(doctor_a)

    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("patients:detail", args=[patient_a.pk])).status_code == 200


@pytest.mark.reliability(22, "The idle sign-out with Redis down: still signs the user out after 30 idle minutes")
def test_the_idle_timeout_still_signs_out_with_the_cache_down(cache_down, client, doctor_a, settings):
    client.force_login(doctor_a)
    session = client.session
    session["last_activity"] = timezone.now().timestamp() - settings.SESSION_IDLE_TIMEOUT - 60
    session.save()

    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert reverse("login") in response["Location"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.reliability(22, "/healthz with a session cookie while Redis is down: 503 degraded, never 500")
def test_healthz_is_503_degraded_when_redis_is_down(cache_down, broker_down, client, doctor_a):
    client.force_login(doctor_a)

    response = client.get(reverse("healthz"))

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "degraded"
    assert body["database"]["status"] == "ok"
    assert (body["cache"]["status"], body["broker"]["status"]) == ("down", "down")
    assert body["outbox"] == {"status": "ok", "unsent": 0}
