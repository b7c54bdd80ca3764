import pytest
from django.urls import reverse


def test_healthz_reports_database_cache_broker_and_workers(client, db):
    response = client.get(reverse("healthz"))

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["database"]["status"] == "ok"
    assert body["cache"]["status"] == "ok"
    assert {"broker", "workers"} <= body.keys()


def test_healthz_is_down_with_503_when_the_database_is_unreachable(client, db, monkeypatch):
    from clinic import health

    monkeypatch.setattr(health, "check_database", lambda: {"status": "down", "error": "OperationalError"})

    response = client.get(reverse("healthz"))

    assert response.status_code == 503
    assert response.json()["status"] == "down"


@pytest.mark.redis
def test_healthz_reaches_redis_as_broker_and_cache(client, db, settings):
    from clinic import health
    from clinic.celery import app

    app.conf.task_always_eager = False

    assert health.check_broker() == {"status": "ok", "mode": "redis"}
    assert health.check_cache()["backend"] == "RedisCache"
