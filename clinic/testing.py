"""Helpers shared by the test suites of every app."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def audit_write_queries() -> int:
    """Queries that writing one audit row costs inside a transaction (a test's, or the change's): on PostgreSQL two
    (`clinic_audit_chain_head` locks the clinic's chain and reads its last hash, then the insert); elsewhere
    savepoint, the previous hash, insert, release. Outside a transaction PostgreSQL adds BEGIN and COMMIT."""
    return 2 if connection.vendor == "postgresql" else 4


def session_read_queries() -> int:
    """Queries that reading the session costs per request: none where sessions are read from Redis
    (`cached_db`, when REDIS_URL is set), else one."""
    return 0 if settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db" else 1


def database_url() -> str:
    """The test database this process uses, so a worker process writes where the test reads."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def worker_start(
    queue: str, *, env: dict[str, str] | None = None, pool: str = "solo", app: str = "clinic"
) -> subprocess.Popen:
    """A real Celery worker on a queue of its own, against this test's database. `app` names the module with
    the Celery app: a test may wrap the clinic's own to inject a fault."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_SETTINGS_MODULE": "clinic.settings",
        **(env or {}),
    }
    return subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
        [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue, "-P", pool, "--without-gossip",
         "--without-mingle", "--loglevel", "INFO", "-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


@contextmanager
def tasks_on_real_workers(*, broker_url: str | None = None) -> Iterator[str]:
    """Send every task this process enqueues to a queue of its own, through Redis, instead of running it
    in-process; yields the queue's name. With `broker_url`, through that Redis instead of REDIS_URL's."""
    from clinic.celery import app

    queue = f"test-{uuid.uuid4().hex[:8]}"
    previous = app.conf.task_always_eager, app.conf.task_routes, app.conf.broker_url
    app.conf.task_always_eager, app.conf.task_routes = False, {"*": {"queue": queue}}
    _router_rebuild(app)
    if broker_url:
        _broker_switch(app, broker_url)
    try:
        yield queue
    finally:
        app.conf.task_always_eager, app.conf.task_routes = previous[:2]
        _router_rebuild(app)
        if broker_url:
            _broker_switch(app, previous[2])


@contextmanager
def tasks_routed_by_kind() -> Iterator[dict[str, str]]:
    """Send each task to the queue of its kind (settings.CELERY_TASK_ROUTES), through Redis, instead of running it
    in-process; the queues are renamed for this test alone (`test-1a2b3c4d-training`). Yields {kind: queue name}."""
    from clinic.celery import app

    prefix = f"test-{uuid.uuid4().hex[:8]}-"
    routes = settings.CELERY_TASK_ROUTES
    queues = {route["queue"]: prefix + route["queue"] for route in routes.values()}
    previous = app.conf.task_always_eager, app.conf.task_routes
    app.conf.task_always_eager = False
    app.conf.task_routes = {name: {"queue": queues[route["queue"]]} for name, route in routes.items()}
    _router_rebuild(app)
    try:
        yield queues
    finally:
        app.conf.task_always_eager, app.conf.task_routes = previous
        _router_rebuild(app)


def _router_rebuild(app) -> None:
    """Celery builds its router from task_routes once, on first use; an earlier test may have built it."""
    app.amqp.flush_routes()
    app.amqp.__dict__.pop("router", None)


def _broker_switch(app, url: str) -> None:
    """Publish to another broker: Celery keeps a connection pool and a producer pool built from the first URL,
    in kombu's registry of pools by connection."""
    from kombu import pools

    pools.reset()
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


def worker_stop(process: subprocess.Popen) -> str:
    """Stop a worker (if it still runs) and return the end of what it printed."""
    if process.poll() is None:
        process.terminate()
    try:
        output = process.communicate(timeout=20)[0] or ""
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0] or ""
    return output[-3000:]


def wait_for(predicate, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


class RedisServer:
    """A redis-server of a test's own on a free port. `persistent`: an append-only file as the compose file keeps
    (what it held survives a restart); otherwise nothing is kept, and what it holds dies with it."""

    def __init__(self, directory: Path, *, persistent: bool):
        self.directory, self.persistent = directory, persistent
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        keep = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.process = subprocess.Popen(  # noqa: S603  (a fixed command line)
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),  # noqa: S607
             *keep, "--save", "", "--logfile", "redis.log"],
        )  # fmt: skip
        if not wait_for(self.answers, seconds=20):
            raise RuntimeError((self.directory / "redis.log").read_text())

    def stop(self) -> None:
        self.process.terminate()  # SIGTERM: Redis shuts down as it would under `docker compose restart`
        self.process.wait(timeout=20)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no shutdown of its own
        self.process.wait(timeout=20)

    def answers(self) -> bool:
        import redis

        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_connect_timeout=1)


def audit_tamper(sql: str, params: list) -> None:
    """Change audit rows as the table's owner could, with its triggers out of the way (the tamper-detection tests)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
