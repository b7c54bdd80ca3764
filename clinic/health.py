"""Checks behind /healthz: each answers a small dict and never raises."""

import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.utils.crypto import constant_time_compare

from clinic.celery import app as celery_app


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001  (a health check reports any failure)
        return {"status": "down", "error": exc.__class__.__name__}
    return {"status": "ok", "vendor": connection.vendor}


def check_cache() -> dict[str, Any]:
    key, value = "healthz", uuid.uuid4().hex
    try:
        cache.set(key, value, timeout=10)
        ok = cache.get(key) == value
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "error": exc.__class__.__name__}
    return {"status": "ok" if ok else "down", "backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def check_broker() -> dict[str, Any]:
    if celery_app.conf.task_always_eager:
        return {"status": "ok", "mode": "eager (tasks run in-process)"}
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "error": exc.__class__.__name__}
    return {"status": "ok", "mode": "redis"}


def check_workers(timeout: float = 0.5) -> dict[str, Any]:
    if celery_app.conf.task_always_eager:
        return {"status": "ok", "mode": "eager (tasks run in-process)", "count": 0}
    try:
        replies = celery_app.control.ping(timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "error": exc.__class__.__name__, "count": 0}
    names = sorted(name for reply in replies for name in reply)
    return {"status": "ok" if names else "down", "count": len(names), "workers": names}


def check_outbox() -> dict[str, Any]:
    """Messages kept while the broker was down (clinic.outbox): they wait for the broker, they are not lost."""
    from clinic.outbox import outbox_unsent_count

    try:
        unsent = outbox_unsent_count()
    except Exception as exc:  # noqa: BLE001
        return {"status": "down", "error": exc.__class__.__name__}
    return {"status": "ok", "unsent": unsent}


def health_report(*, detailed: bool) -> tuple[dict[str, Any], int]:
    """'down' (HTTP 503) without the database: nothing can be served. 'degraded' (HTTP 503) without Redis: pages
    and writes work (sessions from the database, the cache a miss, tasks kept in the outbox) but background work
    waits, so a load balancer or an operator must know. 'degraded' (HTTP 200) when only the workers are missing.

    Worker names are host names of the deployment: only a `detailed` report (for admins and monitoring) has them.
    """
    checks = {"database": check_database(), "cache": check_cache(), "broker": check_broker()}
    if checks["database"]["status"] != "ok":
        return {"status": "down", **checks}, 503
    checks |= {"workers": check_workers(), "outbox": check_outbox()}
    if any(checks[name]["status"] != "ok" for name in ("cache", "broker", "outbox")):
        status, http_status = "degraded", 503
    elif checks["workers"]["status"] != "ok":
        status, http_status = "degraded", 200
    else:
        status, http_status = "ok", 200
    if not detailed:
        checks["workers"].pop("workers", None)
    return {"status": status, **checks}, http_status


def healthz_response(request: HttpRequest, *, staff: bool) -> JsonResponse:
    """/healthz's answer: public, the details (worker host names) for admins (`staff`) and for monitoring that
    sends `X-Healthz-Token: <HEALTHZ_TOKEN>`."""
    token = request.headers.get("X-Healthz-Token", "")
    by_monitoring = bool(settings.HEALTHZ_TOKEN) and constant_time_compare(token, settings.HEALTHZ_TOKEN)
    report, status = health_report(detailed=by_monitoring or staff)
    response = JsonResponse(report, status=status)
    add_never_cache_headers(response)
    return response
