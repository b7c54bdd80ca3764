"""Redis killed mid-traffic (22): a Redis of the test's own, without persistence, is the cache, the session cache and
the broker; signed-in pages, lab results posted through the API and /healthz are requested before, during and
after it is down. Counted: responses that were errors although the request succeeded or could have (none), and
prediction requests that never reached the broker (none). The test itself takes the messages off the queue as a
worker would, so that killing Redis loses nothing already delivered."""

import base64
import datetime
import json
import os
import shutil

import pytest
from django.core.cache import caches
from django.urls import reverse

from clinic import outbox
from clinic.cache import RedisCache
from clinic.models import OutboxMessage
from clinic.testing import RedisServer, tasks_on_real_workers
from patients.models import Observation
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)  # results commit, so their messages are sent on commit

CI = os.environ.get("CI", "").lower() == "true"
ROUNDS = 6  # rounds of traffic in each phase: Redis up, down, up again


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        (pytest.fail if CI else pytest.skip)("the redis-server binary is needed to kill a Redis of the test's own")
    server = RedisServer(tmp_path, persistent=False)  # what it holds dies with it
    server.start()
    yield server
    if server.process.poll() is None:
        server.kill()


def _take_prediction_requests(server: RedisServer, queue: str) -> list[int]:
    """Pop every message off the queue, as a worker would, and return the patient ids of the prediction requests."""
    patients = []
    client = server.client()
    while (raw := client.rpop(queue)) is not None:
        message = json.loads(raw)
        if message["headers"]["task"] == "predictions.tasks.predict_patients":
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            patients.extend(args[0])
    return patients


@pytest.mark.reliability(22, "Redis killed and restarted mid-traffic (pages, lab results, /healthz): 0 false errors, "
                         "0 prediction requests lost")  # fmt: skip
def test_redis_killed_mid_traffic_costs_no_false_error_and_no_prediction_request(
    private_redis, settings, client, staff_a, clinic_a
):
    settings.CACHES = {
        "default": {
            "BACKEND": "clinic.cache.RedisCache",
            "LOCATION": private_redis.url,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
    assert isinstance(caches["default"], RedisCache)
    patients = PatientFactory.create_batch(3, clinic=clinic_a)
    client.force_login(staff_a)
    false_errors, posted, received = [], [], []
    start = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)

    def traffic(phase: str, round_: int) -> None:
        patient = patients[round_ % len(patients)]
        for name, args in (("home", []), ("patients:detail", [patient.pk])):
            response = client.get(reverse(name, args=args))
            if response.status_code != 200:
                false_errors.append((phase, name, response.status_code))
        body = {
            "analyte": "glucose", "value": 5.0 + round_ / 10, "unit": "mmol/L",
            "effective_at": (start + datetime.timedelta(minutes=len(posted))).isoformat(),
        }  # fmt: skip
        response = client.post(
            reverse("patients-api:observation-list", args=[patient.pk]), body, content_type="application/json"
        )
        if response.status_code == 201:
            posted.append(patient.pk)
        else:
            false_errors.append((phase, "observation POST", response.status_code))

    def healthz(phase: str, expected: set[int]) -> None:
        response = client.get(reverse("healthz"))
        if response.status_code not in expected:
            false_errors.append((phase, "healthz", response.status_code))

    with tasks_on_real_workers(broker_url=private_redis.url) as queue:
        for round_ in range(ROUNDS):
            traffic("up", round_)
            received += _take_prediction_requests(private_redis, queue)
        healthz("up", {200})

        private_redis.kill()
        for round_ in range(ROUNDS):
            traffic("down", round_)
        healthz("down", {503})  # degraded, never 500
        kept = OutboxMessage.objects.filter(sent_at=None).count()

        private_redis.start()
        for round_ in range(ROUNDS):
            traffic("back", round_)
            received += _take_prediction_requests(private_redis, queue)
        outbox.outbox_drain()  # beat's minute, or a worker starting
        received += _take_prediction_requests(private_redis, queue)

    assert false_errors == []
    assert Observation.objects.count() == len(posted) == 3 * ROUNDS
    assert kept >= ROUNDS  # the requests of the outage waited in the database
    assert sorted(received) == sorted(posted)  # every prediction request reached the broker, once
    assert not OutboxMessage.objects.filter(sent_at=None).exists()
