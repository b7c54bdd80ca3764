"""Benchmark: the portal and the API under load, on gunicorn with concurrent clients, against a bare JSON view.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench_load REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/load.py --duration 30 --runs 3

The database is created and migrated if needed, and the demo clinic seeded once as `make seed` does (the same
management commands: 2,000 synthetic patients, a trained model, every patient scored, advice generated, a
review history), then kept between runs of the script. Then gunicorn serves the product with production
settings (DJANGO_ENV=production, DEBUG off, static files collected and served by WhiteNoise, the cache on
Redis) plus `bench/bare/` and `bench/audited/` (bench/settings.py, bench/urls.py), and locust
(bench/locustfile.py, headless) runs 20 clients with no wait against one target at a time:

- bare: `bench/bare/`, a JSON view through the same middleware, no session, no query: the ceiling;
- audited: `bench/audited/`, the same JSON as the demo doctor, writing one audit row: the floor of any audited
  read of patient data (the session, the user and the audit write, nothing else), to show how much of the
  ceiling's throughput is left before a page does any work of its own;
- the patient list page, page 1, as the demo doctor (a session of its own per client);
- a patient detail page, a random patient per request;
- the API's latest prediction of a random patient (token authentication);
- the review queue page.

Every read of patient data writes its audit row, as in production: that cost is part of the figures. Each
target runs `--warmup` seconds (not counted) then `--duration` seconds; the whole round is repeated `--runs`
times. Writes the "Portal and API under load" section of bench/RESULTS.md: per target requests per second,
latency percentiles, errors, SQL queries per request, and its throughput as a share of the bare view's
measured in the same round; then where one request's time goes, timed in this process before the rounds
(`--split-requests` per target: SQL, the audit write, templates, the rest), beside its machine CPU under load.
Those no-pause rounds are a throughput test, judged by each page's share of the audited floor.

With `--think 5,15`, a clinic's load follows (`bench/clinic_day.py`): clinicians who read each page 5-15 s before
the next, stepped through `--users` (300, 600, 1,000, 1,500) per page kind (the list, the patient page, the review
queue and a recommendation, result entry, the API) and for a clinic day's mix of them; for each step requests per
second, latency percentiles and errors, and per target the most clinicians served with p95 under 200 ms.
`--runs 0` skips the no-pause rounds.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from http.cookies import SimpleCookie
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import clinic_day  # noqa: E402
from results import machine_summary, write_section  # noqa: E402

BIN = Path(sys.executable).parent
# locust from this environment, else from the PATH (a virtualenv of its own, gevent beside the server's packages).
LOCUST = shutil.which("locust", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}") or "locust"
DEMO_SLUG = "demo"
CANDIDATES = "dummy,logistic_regression,random_forest,hist_gradient_boosting,lightgbm"  # as `make seed`
# The no-pause rounds are throughput: each page is judged by its share of the audited floor's requests per second.
FLOOR_SHARE_TARGETS = {"patient_list": 0.5, "latest_prediction": 0.5, "patient_detail": 0.3, "review_queue": 0.3}
SIGNED_IN_BARE = "bare_signed_in"  # the bare view with a session cookie: what reading the session and user costs


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    auth: str  # "none", "session" or "token"


TARGETS = (
    Target("bare", "bare JSON view `bench/bare/` (ceiling)", "none"),
    Target("audited", "signed-in audited JSON view `bench/audited/` (floor)", "session"),
    Target("patient_list", "patient list `/patients/`", "session"),
    Target("patient_detail", "patient detail `/patients/{id}/`", "session"),
    Target("latest_prediction", "API latest prediction `/api/v1/patients/{id}/predictions/latest/`", "token"),
    Target("review_queue", "review queue `/advice/review/`", "session"),
)


@dataclass(frozen=True)
class Measured:
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int


# --- database and clinic -----------------------------------------------------------------------------------------


def _environment() -> dict[str, str]:
    """Production settings for this process and for gunicorn; returns the server's extra variables."""
    url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not url.startswith("postgres") or not redis_url:
        sys.exit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark runs on real services.")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_ENV="production",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_HMAC_KEY=secrets.token_urlsafe(40),  # a benchmark's trail is never verified: a key of each run
        ALLOWED_HOSTS="127.0.0.1,testserver",
        SECURE_SSL_REDIRECT="false",  # plain HTTP on the loopback; a proxy would terminate TLS in production
        VAR_DIR=os.environ.get("VAR_DIR") or str(ROOT / "var" / "bench-load"),
        OMP_NUM_THREADS="1",
        # One account (one token, one session per client) makes every request: the API's throttles still count
        # each one in Redis, as in production, but must not cap what is measured.
        API_THROTTLE_USER="100000000/minute",
        API_THROTTLE_ANON="100000000/minute",
        # Each worker keeps its database connection for the whole run (production: reconnects each minute), so
        # the clinic's load can read its backends' CPU time from /proc before and after a step.
        DATABASE_CONN_MAX_AGE="3600",
    )
    # This process seeds with tasks run in-process (no worker is running); only the server uses Redis, under
    # a key prefix of its own so it neither sees stale entries nor touches anyone else's.
    del os.environ["REDIS_URL"]
    return {"REDIS_URL": redis_url, "CACHE_KEY_PREFIX": f"bench-load-{uuid.uuid4().hex[:8]}"}


def _setup() -> dict[str, str]:
    server_env = _environment()
    from seed_demo import _ensure_database

    _ensure_database(os.environ["DATABASE_URL"])
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    return server_env


def _command(*args: str) -> None:
    from django.core.management import call_command

    started = time.perf_counter()
    call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    print(f"  {args[0]}: {time.perf_counter() - started:.1f} s", flush=True)


def _clinic(n: int):
    """The demo clinic with n patients, scored and advised, seeded by `make seed`'s commands; reused if ready."""
    from django.db import connection

    from clinic.models import Clinic
    from patients.models import Patient
    from predictions.models import Prediction

    clinic = Clinic.objects.filter(slug=DEMO_SLUG).first()
    seeded = Patient.objects.filter(clinic=clinic).exclude(mrn__startswith=clinic_day.ENTRY_MRN)
    if clinic is not None and seeded.count() != n:
        print(f"replacing the demo clinic's patients by {n:,}", flush=True)
        Patient.objects.filter(clinic=clinic).delete()
    _command("seed_demo", "--patients", str(n))
    clinic = Clinic.objects.get(slug=DEMO_SLUG)
    _command("train_model", "--clinic", DEMO_SLUG, "--sync", "--unless-active", "--candidates", CANDIDATES)
    if not Prediction.objects.filter(patient__clinic=clinic).exists():
        _command("predict_all", "--clinic", DEMO_SLUG)
    _command("seed_demo_reviews", "--clinic", DEMO_SLUG, "--patients", "300")
    with connection.cursor() as cursor:
        cursor.execute("vacuum analyze")  # the planner statistics autovacuum would have gathered by now
    return clinic


def _figures_share(clinic, server_env: dict[str, str]) -> None:
    """The clinic medians the patient page draws, computed into the server's cache as a worker would: no worker
    runs beside the server, whose patient page would otherwise say all run long that they are being computed."""
    from django.test import override_settings

    from patients import dashboard

    cache = {"BACKEND": "clinic.cache.RedisCache", "LOCATION": server_env["REDIS_URL"],
             "KEY_PREFIX": server_env["CACHE_KEY_PREFIX"]}  # fmt: skip
    with override_settings(CACHES={"default": cache}):
        dashboard.figure_refresh("medians", clinic.pk, list(dashboard.RADAR_LABS))


def _doctor_password(clinic) -> tuple[str, str]:
    """A fresh password for the demo doctor (the seeded one was printed once and not kept)."""
    from clinic.models import Role, User
    from clinic.services import user_set_password

    doctor = User.objects.get(clinic=clinic, role=Role.DOCTOR, username="doctor")
    password = secrets.token_urlsafe(18)
    user_set_password(user=doctor, password=password)
    return doctor.username, password


@dataclass(frozen=True)
class Split:
    """Where one request's time goes in process, in milliseconds per request (means over the requests timed)."""

    queries: int  # SQL queries of the first request timed (the first patient's, for a patient target)
    total: float
    sql: float  # time inside the database driver, as the view waits for it (the audit write included)
    audit: float  # of which: writing the audit row
    compile: float  # the ORM turning querysets into SQL (each query's outermost compiler call)
    templates: float  # rendering, less the queries a template's lazy lookups built and ran
    postgres_cpu: float | None  # CPU time of the PostgreSQL backend serving this process (None: not on this machine)

    @property
    def rest(self) -> float:
        return self.total - self.sql - self.compile - self.templates


def _backend_cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of a PostgreSQL backend process, from /proc; None when it cannot be read (the
    server runs on another machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _is_audit_write(sql: str) -> bool:
    """The audit row's two statements: the chain's head read under the writers' lock, and the row's INSERT."""
    return "clinic_audit_chain_head" in sql or sql.startswith('INSERT INTO "clinic_auditevent"')


def _time_split(clinic, patient_ids: list[int], token: str, requests: int) -> dict[str, Split]:
    """Time each target's requests in this process, one at a time, split into SQL, the audit write, building the
    SQL, templates and the rest (middleware, session and user, model instances, view code, serialisers)."""
    from contextlib import ExitStack
    from unittest import mock

    from django.db import connection
    from django.db.models.sql import compiler
    from django.template.backends.django import Template
    from django.test import Client

    from clinic.models import User

    spent = {"sql": 0.0, "audit": 0.0, "compile": 0.0, "templates": 0.0, "sql_in_templates": 0.0}
    rendering = [False]
    compiling = [0]  # depth: a subquery's compiler runs inside its query's
    counted: list[int] = []  # queries of each request timed

    def timed_query(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            counted[-1] += 1
            elapsed = time.perf_counter() - started
            spent["sql"] += elapsed
            spent["audit"] += elapsed if _is_audit_write(sql) else 0.0
            spent["sql_in_templates"] += elapsed if rendering[0] else 0.0

    def timed_compiler(as_sql):
        def timed_as_sql(self, *args, **kwargs):
            started, compiling[0] = time.perf_counter(), compiling[0] + 1
            try:
                return as_sql(self, *args, **kwargs)
            finally:
                compiling[0] -= 1
                if not compiling[0]:
                    elapsed = time.perf_counter() - started
                    spent["compile"] += elapsed
                    spent["sql_in_templates"] += elapsed if rendering[0] else 0.0

        return timed_as_sql

    compilers = [compiler.SQLCompiler, compiler.SQLInsertCompiler, compiler.SQLUpdateCompiler,
                 compiler.SQLDeleteCompiler, compiler.SQLAggregateCompiler]  # fmt: skip
    original_render = Template.render

    def timed_render(self, context=None, request=None):
        started, rendering[0] = time.perf_counter(), True
        try:
            return original_render(self, context, request)
        finally:
            rendering[0] = False
            spent["templates"] += time.perf_counter() - started

    doctor = User.objects.get(clinic=clinic, username="doctor")
    session = Client(HTTP_HOST="127.0.0.1")
    session.force_login(doctor)
    anonymous = Client(HTTP_HOST="127.0.0.1")

    def backend() -> tuple[int, float | None]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        return pid, _backend_cpu_seconds(pid)

    def run(client: Client, paths: list[str], headers: dict[str, str]) -> dict[str, float | None]:
        for path in paths[:3]:  # warm: templates compiled, connections open, the session's activity stamp set
            client.get(path, **headers)
        spent.update(dict.fromkeys(spent, 0.0))
        counted.clear()
        pid, cpu_before = backend()
        started = time.perf_counter()
        with ExitStack() as patches:
            patches.enter_context(connection.execute_wrapper(timed_query))
            patches.enter_context(mock.patch.object(Template, "render", timed_render))
            for cls in compilers:  # each class's own as_sql (the subclasses override it)
                patches.enter_context(mock.patch.object(cls, "as_sql", timed_compiler(cls.__dict__["as_sql"])))
            for n in range(requests):
                counted.append(0)
                if client.get(paths[n % len(paths)], **headers).status_code != 200:
                    sys.exit(f"{paths[n % len(paths)]} did not answer 200 in process")
        total = (time.perf_counter() - started) * 1000 / requests
        pid_after, cpu_after = backend()  # the same backend throughout, or its CPU time is not comparable
        same = pid_after == pid and cpu_before is not None and cpu_after is not None
        postgres_cpu = (cpu_after - cpu_before) * 1000 / requests if same else None
        per_request = {key: value * 1000 / requests for key, value in spent.items()}
        return {**per_request, "total": total, "postgres_cpu": postgres_cpu}

    runs = {SIGNED_IN_BARE: (session, ["/bench/bare/"], {})}
    for target in TARGETS:
        headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if target.auth == "token" else {}
        client = {"none": anonymous, "session": session, "token": Client(HTTP_HOST="127.0.0.1")}[target.auth]
        runs[target.name] = (client, _paths(target, patient_ids[:50]), headers)
    splits = {}
    for name, (client, paths, headers) in runs.items():
        spent_here = run(client, paths, headers)
        splits[name] = Split(queries=counted[0], total=spent_here["total"], sql=spent_here["sql"],
                             audit=spent_here["audit"], compile=spent_here["compile"],
                             templates=spent_here["templates"] - spent_here["sql_in_templates"],
                             postgres_cpu=spent_here["postgres_cpu"])  # fmt: skip
    return splits


# --- the server and its clients ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _gunicorn(port: int, workers: int, threads: int, server_env: dict[str, str], worker_class: str) -> subprocess.Popen:
    log = Path(os.environ["VAR_DIR"]) / "gunicorn.log"
    with log.open("w") as errors:
        server = subprocess.Popen(  # noqa: S603
            [str(BIN / "gunicorn"), "clinic.wsgi:application", "--chdir", str(ROOT), "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--threads", str(threads), "--worker-class", worker_class,
             "--no-control-socket"],
            cwd=ROOT, env={**os.environ, **server_env}, stdout=subprocess.DEVNULL, stderr=errors,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn exited with {server.returncode}; see {log}")
        try:
            if _request(port, "GET", "/bench/bare/")[0] == 200:
                return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    sys.exit(f"gunicorn did not answer within 60 s; see {log}")


def _request(port: int, method: str, path: str, body: str = "", headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
        return response.status, response.read().decode(), {name: c.value for name, c in cookies.items()}
    finally:
        connection.close()


def _login(port: int, username: str, password: str) -> dict[str, str]:
    """Sign in through the login form, as a browser does; the session's Cookie header."""
    _, page, cookies = _request(port, "GET", "/accounts/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if csrf is None or "csrftoken" not in cookies:
        sys.exit("The login page has no CSRF token")
    form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": csrf.group(1)})
    status, _, signed_in = _request(port, "POST", "/accounts/login/", form, {
        "Cookie": f"csrftoken={cookies['csrftoken']}", "Content-Type": "application/x-www-form-urlencoded",
    })  # fmt: skip
    if status != 302 or "sessionid" not in signed_in:
        sys.exit(f"Signing in as {username} failed ({status})")
    csrf_token = signed_in.get("csrftoken", cookies["csrftoken"])  # signing in rotates it
    return {"Cookie": f"sessionid={signed_in['sessionid']}; csrftoken={csrf_token}", "X-CSRFToken": csrf_token}


def _token(port: int, username: str, password: str) -> str:
    status, body, _ = _request(port, "POST", "/api/v1/auth/token/", json.dumps(
        {"username": username, "password": password}), {"Content-Type": "application/json"})  # fmt: skip
    if status != 200:
        sys.exit(f"No API token for {username} ({status}): {body[:200]}")
    return json.loads(body)["token"]


def _paths(target: Target, patient_ids: list[int]) -> list[str]:
    return {
        "bare": lambda: ["/bench/bare/"],
        "audited": lambda: ["/bench/audited/"],
        "patient_list": lambda: ["/patients/"],
        "patient_detail": lambda: [f"/patients/{pk}/" for pk in patient_ids],
        "latest_prediction": lambda: [f"/api/v1/patients/{pk}/predictions/latest/" for pk in patient_ids],
        "review_queue": lambda: ["/advice/review/"],
    }[target.name]()


def _measure(port: int, paths: list[str], headers: list[dict], clients: int, warmup: float, duration: float):
    """One locust run against one target: successful requests per second and their latency percentiles, counting
    the requests completed in the measured window (after the warm-up); errors are the others in that window."""
    with tempfile.TemporaryDirectory() as work:
        config, samples = Path(work) / "config.json", Path(work) / "samples.json"
        kind = {"name": "target", "weight": 1, "auth": "client", "method": "GET", "paths": paths, "expect": 200}
        config.write_text(json.dumps({"kinds": [kind], "headers": {"client": headers}, "samples": str(samples)}))
        log = Path(os.environ["VAR_DIR"]) / "locust.log"
        with log.open("w") as errors:
            done = subprocess.run(  # noqa: S603
                [LOCUST, "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "--only-summary",
                 "--users", str(clients), "--spawn-rate", str(clients), "--host", f"http://127.0.0.1:{port}",
                 "--run-time", f"{math.ceil(warmup + duration) + 2}s",  # spawning takes about a second
                 "--exit-code-on-error", "0", "--loglevel", "WARNING"],
                cwd=ROOT, env={**os.environ, "BENCH_LOAD_CONFIG": str(config)}, check=False,
                stdout=subprocess.DEVNULL, stderr=errors,
            )  # fmt: skip
        if done.returncode != 0 or not samples.exists():
            sys.exit(f"locust failed ({done.returncode}); see {log}")
        rows = json.loads(samples.read_text())
    if not rows:
        sys.exit("locust sent no request")
    start = min(started for started, _, _, _ in rows) + warmup
    end = start + duration
    window = [(ms, ok) for started, ms, ok, _ in rows if start <= started + ms / 1000 < end]
    times = sorted(ms for ms, ok in window if ok)
    if len(times) < 2:
        sys.exit(f"no successful request in the measured window ({len(window)} requests)")
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return Measured(rps=len(times) / duration, p50=cuts[49], p95=cuts[94], p99=cuts[98],
                    errors=sum(1 for _, ok in window if not ok))  # fmt: skip


# --- report ------------------------------------------------------------------------------------------------------


def _fmt(values: list[float], digits: int = 1) -> str:
    median = f"{statistics.median(values):,.{digits}f}"
    return median if len(values) == 1 else f"{median} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def _split_table(args, results: dict[str, list[Measured]], splits: dict[str, Split]) -> list[str]:
    cores = os.cpu_count() or 1
    cpu = {name: cores * 1000 / statistics.median(m.rps for m in runs) for name, runs in results.items()}
    labels = {target.name: target.label for target in TARGETS}
    labels[SIGNED_IN_BARE] = "bare JSON view, signed in (the session and the user read)"
    tick = 1000 / os.sysconf("SC_CLK_TCK")
    lines = [
        "",
        f"Where a request's time goes: each target's requests timed in this process, one at a time with the server "
        f"idle ({args.split_requests} requests each, the mean). SQL is the time spent waiting on the database driver "
        "(the audit write included, and shown apart); building SQL is the ORM compiling each query (in Python, before "
        "the driver sends it); templates exclude the queries their lazy lookups built and ran; the rest is "
        "middleware, the session and user, model instances, view code and serialisers. In this process sessions "
        "are read from the database (the server reads them from Redis). PostgreSQL CPU is the user and system time "
        "of the database backend serving this process over those requests (from /proc, counted in clock ticks of "
        f"{tick:.0f} ms, so to within {tick / args.split_requests:.2f} ms per request; — when the server is on another "
        "machine): parsing, planning and running the queries, and committing the audit row. The last column is the "
        "whole machine's CPU "
        f"time per request under load ({cores} cores ÷ requests per second, median round): server, clients and "
        "PostgreSQL together.",
        "",
        "| target | ms per request | SQL ms | audit write ms | building SQL ms | templates ms | rest ms "
        "| PostgreSQL CPU ms | machine CPU ms under load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ["bare", SIGNED_IN_BARE, *(target.name for target in TARGETS if target.name != "bare")]:
        split = splits[name]
        under_load = f"{cpu[name]:.2f}" if name in cpu else "—"
        postgres = f"{split.postgres_cpu:.2f}" if split.postgres_cpu is not None else "—"
        lines.append(
            f"| {labels[name]} | {split.total:.2f} | {split.sql:.2f} | {split.audit:.2f} | {split.compile:.2f} "
            f"| {split.templates:.2f} "
            f"| {split.rest:.2f} | {postgres} | {under_load} |"
        )
    floor = cpu["audited"]
    lines += [
        "",
        f"Signing in and writing the audit row alone take {floor:.2f} ms of the machine's CPU under load (the audited "
        f"floor). Half the floor's throughput leaves a page {floor / 0.5:.1f} ms per request, clients and database "
        f"included, {floor:.1f} ms of it for its own queries, view code and template; 0.3 of it leaves "
        f"{floor / 0.3:.1f} ms.",
    ]
    return lines


def _load_note(load: dict[str, tuple[float, float, float]]) -> str:
    def shown(values: tuple[float, float, float]) -> str:
        return ", ".join(f"{value:.2f}" for value in values)

    return (
        f"Machine load average (1, 5, 15 min) before the run: {shown(load['before'])}; after: "
        f"{shown(load['after'])} (on {os.cpu_count()} cores; other work on the machine shares them)."
    )


def _report(args, results: dict[str, list[Measured]], splits: dict[str, Split], day, load) -> str:
    lines = [machine_summary(), "", _load_note(load)]
    if args.runs:
        lines += ["", *_throughput(args, results, splits)]
    if day:
        lines += clinic_day.report(
            results=day, users=args.users, think=args.think, ramp=args.ramp, duration=args.step_duration,
            sessions=args.clients,
        )  # fmt: skip
    return "\n".join(lines)


def _throughput(args, results: dict[str, list[Measured]], splits: dict[str, Split]) -> list[str]:
    bare = results["bare"]
    lines = [
        "### Throughput: clients with no pause",
        "",
        f"gunicorn {version('gunicorn')} ({args.workers} workers x "
        f"{args.threads} threads, {args.worker_class}) with production settings (DEBUG off, WhiteNoise, cache and "
        f"sessions on Redis, sessions written through to the database, every read audited), {args.clients} "
        f"clients from locust {_locust_version()} "
        f"(headless, FastHttpUser, no wait) on the same machine; the demo clinic of {args.patients:,} patients, "
        f"signed in as its doctor (a session per client; an API token). Each target for {args.duration:.0f} s "
        f"after {args.warmup:.0f} s of warm-up, {args.runs} rounds; median of the rounds (min-max). Ceiling: the "
        'bare JSON view `bench/bare/` on the same server (same middleware, no session, no query); "share of '
        "bare\" is each target's requests per second divided by the bare view's in the same round. Floor: the "
        "signed-in audited JSON view `bench/audited/` (the session and the user read, one audit row written, nothing "
        'else), the least any audited read of patient data costs; "share of floor" divides by its throughput, '
        "and is what these rounds are judged by: a throughput test, not a clinic (below, a clinic's load).",
        "",
        "| target | requests/s | share of bare | share of floor | p50 ms | p95 ms | p99 ms | errors | SQL queries "
        "| target: share of floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    met = []
    for target in TARGETS:
        runs = results[target.name]
        shares = [m.rps / b.rps for m, b in zip(runs, bare, strict=True)]
        of_floor = [m.rps / f.rps for m, f in zip(runs, results["audited"], strict=True)]
        verdict = ""
        if target.name in FLOOR_SHARE_TARGETS:
            wanted = FLOOR_SHARE_TARGETS[target.name]
            met.append(statistics.median(of_floor) >= wanted)
            verdict = f"at least {wanted:g}: {'met' if met[-1] else 'NOT met'}"
        lines.append(
            f"| {target.label} | {_fmt([m.rps for m in runs])} | {_fmt(shares, 2)} | {_fmt(of_floor, 2)} "
            f"| {_fmt([m.p50 for m in runs])} "
            f"| {_fmt([m.p95 for m in runs])} | {_fmt([m.p99 for m in runs])} | {sum(m.errors for m in runs)} "
            f"| {splits[target.name].queries} | {verdict} |"
        )
    lines += [
        "",
        f"Targets: the patient list and the API at least half the audited floor's requests per second, the patient "
        f"page and the review queue at least 0.3 (met: {sum(met)} of {len(met)}; the two reference views are not "
        "judged). Errors are responses other than 200 (a lost session's redirect counts) "
        "in the measured windows. SQL queries: one request in process, the audit "
        "row included, with the session read from the database (the server reads it from Redis: one query "
        "fewer on the session targets). Server, clients and PostgreSQL share the machine's cores.",
        *_split_table(args, results, splits),
    ]
    return lines


def _locust_version() -> str:
    out = subprocess.run([LOCUST, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    found = re.search(r"locust ([\d.]+)", out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def _pair(text: str) -> tuple[float, float]:
    low, high = (float(part) for part in text.split(","))
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError("think time: LOW,HIGH seconds with 0 <= LOW <= HIGH")
    return low, high


def _counts(text: str) -> list[int]:
    return sorted(int(part) for part in text.split(","))


def _sweep_targets(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - set(clinic_day.SWEEPS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown targets {sorted(unknown)}; choose from {list(clinic_day.SWEEPS)}")
    return names


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=2000, help="demo clinic size (default 2000)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients, and sessions (default 20)")
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per target (default 30)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds per target not counted (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="no-pause rounds over every target (default 3; 0: none)")
    # The defaults are the layout docker-compose.yml and the README run: 3 sync workers.
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (default 1)")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class (default sync)")
    parser.add_argument(
        "--split-requests",
        type=int,
        default=200,
        help="requests per target timed in process for where the time goes (default 200)",
    )
    day = parser.add_argument_group("a clinic's load (clinicians with think time)")
    day.add_argument("--think", type=_pair, help="LOW,HIGH seconds between a clinician's pages, e.g. 5,15: runs it")
    day.add_argument("--users", type=_counts, default=[300, 600, 1000, 1500],
                     help="concurrent clinicians, the steps (default 300,600,1000,1500)")  # fmt: skip
    day.add_argument("--step-duration", type=float, default=60, help="measured seconds per step (default 60)")
    day.add_argument("--ramp", type=float, default=5, help="seconds to start a step's clinicians (default 5)")
    day.add_argument("--sweep", type=_sweep_targets, default=list(clinic_day.SWEEPS),
                     help=f"targets, comma-separated (default all: {','.join(clinic_day.SWEEPS)})")  # fmt: skip
    args = parser.parse_args()
    if not args.runs and not args.think:
        parser.error("nothing to measure: --runs 0 and no --think")
    return args


def _forget_queue(server_env: dict[str, str]) -> None:
    """Drop the tasks result entry queued for a worker that never runs (bench/settings.py names the queue)."""
    import redis

    from bench.settings import CELERY_TASK_DEFAULT_QUEUE

    redis.Redis.from_url(server_env["REDIS_URL"]).delete(CELERY_TASK_DEFAULT_QUEUE)


def main() -> None:
    args = _arguments()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # so the server is stopped on the way out
    load = {"before": os.getloadavg()}
    server_env = _setup()
    print(f"demo clinic, {args.patients:,} patients:", flush=True)
    clinic = _clinic(args.patients)
    from clinic.models import User
    from patients.models import Patient

    seeded = Patient.objects.filter(clinic=clinic).exclude(mrn__startswith=clinic_day.ENTRY_MRN)
    patient_ids = list(seeded.values_list("pk", flat=True))
    username, password = _doctor_password(clinic)
    doctor = User.objects.get(clinic=clinic, username=username)
    every_kind = clinic_day.kinds(
        patient_ids, clinic_day.entry_patients(clinic, doctor), clinic_day.waiting_recommendations(doctor)
    )
    _figures_share(clinic, server_env)
    port = _free_port()
    server = _gunicorn(port, args.workers, args.threads, server_env, args.worker_class)
    results: dict[str, list[Measured]] = {target.name: [] for target in TARGETS}
    day = {}
    try:
        sessions = [_login(port, username, password) for _ in range(args.clients)]
        token = _token(port, username, password)
        splits = _time_split(clinic, patient_ids, token, args.split_requests) if args.runs else {}
        headers = {"none": [{}], "session": sessions, "token": [{"Authorization": f"Token {token}"}]}
        for run in range(args.runs):
            for target in TARGETS:
                m = _measure(port, _paths(target, patient_ids), headers[target.auth], args.clients, args.warmup,
                             args.duration)  # fmt: skip
                results[target.name].append(m)
                print(f"round {run + 1} {target.name:>17}: {m.rps:7.1f} req/s, p50 {m.p50:6.1f} ms, "
                      f"p95 {m.p95:6.1f} ms, p99 {m.p99:6.1f} ms, errors {m.errors}", flush=True)  # fmt: skip
        if args.think:
            day = clinic_day.sweep(
                locust=LOCUST, port=port, server=server.pid, targets=args.sweep, every_kind=every_kind, headers=headers,
                users=args.users, think=args.think, ramp=args.ramp, duration=args.step_duration,
            )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
        _forget_queue(server_env)
    load["after"] = os.getloadavg()
    write_section("Portal and API under load", _report(args, results, splits, day, load))


if __name__ == "__main__":
    main()
