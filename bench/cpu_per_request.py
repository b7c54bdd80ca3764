"""Benchmark: the CPU time one request of each busy page costs, server and PostgreSQL, measured in one process.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench_cpu REDIS_URL=redis://127.0.0.1:6379/0
    .venv/bin/python bench/cpu_per_request.py                       # 200 requests per target
    .venv/bin/python bench/cpu_per_request.py --save var/cpu-before.json          # keep the figures
    .venv/bin/python bench/cpu_per_request.py --baseline var/cpu-before.json      # and show them beside

The load benchmark (`bench/load.py`) measures latency on a shared machine; what a page costs the machine is the CPU
time of one request, which contention moves less (10-25 % between runs here, so compare runs made alternately): a
page that costs C ms of CPU (server and database together) can be served at most 2,000 / C times a second on 2
cores. Here each target's requests are sent one at a time through Django's test client in this process, with the
product's production settings (DEBUG off, sessions and cache on Redis, every read audited, result entry's prediction
queued for a worker that never runs, in a queue of its own that is emptied at the end), against the demo clinic of
`make seed` on PostgreSQL (seeded on the first run, by the same commands `bench/load.py` uses). Per target: this
process's CPU time (`time.process_time`: middleware, session and user, view, queries built, templates, the test
client's own small share) and the CPU time of the PostgreSQL backend that served it (from /proc, so only when
PostgreSQL runs on this machine), per request, after a few warm-up requests; SQL queries of one request.
Writes the "CPU per request" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import clinic_day  # noqa: E402
from results import machine_summary, write_section  # noqa: E402

TITLE = "CPU per request"
BUDGET_MS = 20  # 2 cores / ~100 requests a second (1,000 clinicians reading each page 5-15 s)


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    method: str = "GET"


TARGETS = (
    Target("bare", "bare JSON view `bench/bare/` (ceiling)"),
    Target("audited", "signed-in audited JSON view `bench/audited/` (floor)"),
    Target("patient_list", "patient list `/patients/`"),
    Target("patient_detail", "patient page `/patients/{id}/`"),
    Target("review_queue", "review queue `/advice/review/`"),
    Target("review_page", "review page `/advice/review/{id}/`"),
    Target("result_entry", "result entry `/patients/{id}/results/new/` (POST, CBC of 3)", "POST"),
    Target("latest_prediction", "API latest prediction `/api/v1/patients/{id}/predictions/latest/`"),
)


@dataclass(frozen=True)
class Cost:
    queries: int
    server_ms: float  # this process's CPU time per request
    database_ms: float | None  # the PostgreSQL backend's CPU time per request (None: not readable here)

    @property
    def total_ms(self) -> float | None:
        return None if self.database_ms is None else self.server_ms + self.database_ms


def _environment() -> None:
    url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not url.startswith("postgres") or not redis_url:
        sys.exit("Set DATABASE_URL (PostgreSQL) and REDIS_URL: the figures are the production stack's.")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",  # the bare and audited reference views; a task queue of its own
        DJANGO_ENV="production",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        AUDIT_HMAC_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1,testserver",
        SECURE_SSL_REDIRECT="false",
        VAR_DIR=os.environ.get("VAR_DIR") or str(ROOT / "var" / "bench-cpu"),
        OMP_NUM_THREADS="1",
        API_THROTTLE_USER="100000000/minute",
        CACHE_KEY_PREFIX=f"bench-cpu-{uuid.uuid4().hex[:8]}",  # a cold cache of its own, nobody else's keys
        DATABASE_CONN_MAX_AGE="3600",  # one backend for the whole run, so its CPU time can be read
    )


def _seed(patients: int) -> None:
    """The demo clinic as `bench/load.py` seeds it, in a child process without Redis (tasks run in process)."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env["DJANGO_SETTINGS_MODULE"] = "clinic.settings"
    code = (
        "import django, sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/bench']; django.setup();"
        "from django.core.management import call_command; call_command('migrate', verbosity=0);"
        "import load; load._clinic(int(sys.argv[2]))"
    )
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(patients)], env=env, check=True)  # noqa: S603


def _backend_cpu() -> tuple[int, float | None]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return pid, None
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _requests(clinic, doctor, token: str) -> dict[str, tuple[object, list[str], dict]]:
    """Each target's client, paths (cycled) and extra arguments."""
    from django.test import Client

    from patients.models import Patient

    seeded = Patient.objects.filter(clinic=clinic).exclude(mrn__startswith=clinic_day.ENTRY_MRN).order_by("pk")
    sample = list(seeded.values_list("pk", flat=True)[:50])
    kinds = clinic_day.kinds(
        sample, clinic_day.entry_patients(clinic, doctor), clinic_day.waiting_recommendations(doctor)
    )
    session = Client(HTTP_HOST="127.0.0.1")
    session.force_login(doctor)
    api = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    return {
        "bare": (Client(HTTP_HOST="127.0.0.1"), ["/bench/bare/"], {}),
        "audited": (session, ["/bench/audited/"], {}),
        **{name: (session, kinds[name]["paths"], {}) for name in
           ("patient_list", "patient_detail", "review_queue", "review_page", "result_entry")},
        "latest_prediction": (api, kinds["latest_prediction"]["paths"], {}),
    }  # fmt: skip


def _panel(n: int) -> dict[str, str]:
    """A CBC of three ordinary values drawn at random, at a random past minute of the last month, as the load
    benchmark's clinicians enter it (bench/locustfile.py): a repeat of a stored result would write nothing."""
    import datetime

    minutes = secrets.randbelow(30 * 24 * 60)
    taken = datetime.datetime.now() - datetime.timedelta(days=1, minutes=minutes)  # noqa: DTZ005
    values = {
        code: f"{low + (high - low) * secrets.randbelow(1000) / 1000:.1f}"
        for code, (low, high) in clinic_day.ENTRY_PANEL.items()
    }
    return {"effective_at": taken.strftime("%Y-%m-%dT%H:%M"), **values}


def _measure(target: Target, client, paths: list[str], requests: int) -> Cost:
    from django.db import connection

    def send(n: int):
        path = paths[n % len(paths)]
        if target.method == "POST":
            response = client.post(path, _panel(n))
            expected = 302
        else:
            response = client.get(path)
            expected = 200
        if response.status_code != expected:
            sys.exit(f"{target.method} {path} answered {response.status_code}, not {expected}")

    for n in range(3):  # warm: templates compiled, caches filled, the session's activity stamp set
        send(n)
    queries: list[str] = []  # counted by a wrapper: the test client's request_started signal empties queries_log

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        send(3)
    pid, db_before = _backend_cpu()
    started = time.process_time()
    for n in range(4, 4 + requests):
        send(n)
    server = (time.process_time() - started) * 1000 / requests
    pid_after, db_after = _backend_cpu()
    same = pid == pid_after and db_before is not None and db_after is not None
    return Cost(queries=len(queries), server_ms=server,
                database_ms=(db_after - db_before) * 1000 / requests if same else None)  # fmt: skip


def _median(paths: list[Path]) -> dict[str, dict]:
    """Figures saved by several runs (--save), each target's figures the median of the runs'."""
    runs = [json.loads(path.read_text()) for path in paths]
    median = {}
    for name in dict.fromkeys(name for run in runs for name in run):  # every target of any run, in order
        figures = [run[name] for run in runs if name in run]
        database = [f["database_ms"] for f in figures if f["database_ms"] is not None]
        median[name] = {
            "queries": figures[-1]["queries"],
            "server_ms": statistics.median(f["server_ms"] for f in figures),
            "database_ms": statistics.median(database) if database else None,
        }
    return median


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _report(args, costs: dict[str, Cost], baseline: dict[str, dict] | None) -> str:
    lines = [
        f"`bench/cpu_per_request.py --requests {args.requests}` on the demo clinic of {args.patients:,} patients "
        "(PostgreSQL on this machine, sessions and cache on Redis, production settings, every read audited): each "
        "target's requests sent one at a time through Django's test client in one process, after 3 warm-up "
        "requests. Server: this process's CPU time per request (`time.process_time`: middleware, session and user, "
        "view, building queries, templates, and the test client's small share). Database: the CPU time of the "
        "PostgreSQL backend that served them (/proc, clock ticks of 10 ms over all the requests). CPU time moves "
        "less than latency when the machine is shared, but still by 10-25 % between runs here: compare runs made "
        "alternately, and several of each. Queries: one request's, the audit write "
        "included. A page that costs C ms in all can be served at most 2,000 / C times a second on 2 cores: 1,000 "
        "clinicians reading each page 5-15 s send about 100 requests a second, so about 20 ms each.",
        "",
        machine_summary(),
        "",
    ]
    if baseline:
        lines += [
            f"Before: {args.baseline_label}; after: this branch, measured the same way on the same database.",
            "",
            "| target | queries before | after | server ms before | after | database ms before | after "
            "| in all ms before | after | after / before |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
    else:
        lines += ["| target | queries | server ms | database ms | in all ms |", "|---|---:|---:|---:|---:|"]
    for target in TARGETS:
        cost = costs[target.name]
        if baseline and target.name in baseline:
            before = Cost(**baseline[target.name])
            ratio = f"{cost.total_ms / before.total_ms:.2f}" if cost.total_ms and before.total_ms else "—"
            lines.append(
                f"| {target.label} | {before.queries} | {cost.queries} | {_fmt(before.server_ms)} | "
                f"{_fmt(cost.server_ms)} | {_fmt(before.database_ms)} | {_fmt(cost.database_ms)} | "
                f"{_fmt(before.total_ms)} | {_fmt(cost.total_ms)} | {ratio} |"
            )
        else:
            lines.append(
                f"| {target.label} | {cost.queries} | {_fmt(cost.server_ms)} | {_fmt(cost.database_ms)} | "
                f"{_fmt(cost.total_ms)} |"
            )
    within = [t.label.split(" `")[0] for t in TARGETS[2:] if (costs[t.name].total_ms or BUDGET_MS + 1) <= BUDGET_MS]
    over = [t.label.split(" `")[0] for t in TARGETS[2:] if (costs[t.name].total_ms or BUDGET_MS + 1) > BUDGET_MS]
    lines += [
        "",
        f"Within about {BUDGET_MS} ms in all (1,000 clinicians on 2 cores): {', '.join(within) or 'none'}; over it: "
        f"{', '.join(over) or 'none'}.",
    ]
    if baseline:
        lines.append(
            "The two reference views have the same code before and after: how much they moved is how much the "
            "machine's other work moved the figures between the two runs."
        )
    return "\n".join(lines)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests timed per target (default 200)")
    parser.add_argument("--patients", type=int, default=2000, help="patients of the demo clinic (default 2,000)")
    parser.add_argument("--only", default="", help="comma-separated target names (default: all)")
    parser.add_argument("--save", type=Path, help="write the figures as JSON to this file")
    parser.add_argument("--baseline", type=Path, nargs="+",
                        help="figures of earlier runs (--save), shown beside (median of several)")  # fmt: skip
    parser.add_argument("--baseline-label", default="the figures of --baseline", help="what the baseline was")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    parser.add_argument("--figures", type=Path, nargs="+",
                        help="report saved figures (--save; median of several), not measure")  # fmt: skip
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    baseline = _median(args.baseline) if args.baseline else None
    if args.figures:  # the report of figures measured earlier
        costs = {name: Cost(**cost) for name, cost in _median(args.figures).items()}
        report = _report(args, costs, baseline)
        print(report)
        if not args.no_write:
            write_section(TITLE, report)
        return
    _environment()
    import django
    from django.core.management import call_command

    django.setup()
    from clinic.models import Clinic, User
    from patients.models import Patient

    call_command("migrate", verbosity=0)  # a new database has no tables to ask for the demo clinic
    clinic = Clinic.objects.filter(slug="demo").first()
    seeded = Patient.objects.filter(clinic=clinic).exclude(mrn__startswith=clinic_day.ENTRY_MRN)
    if clinic is None or seeded.count() != args.patients:
        _seed(args.patients)
        clinic = Clinic.objects.get(slug="demo")
    call_command("collectstatic", interactive=False, verbosity=0)  # production settings name hashed static files
    doctor = User.objects.get(clinic=clinic, username="doctor")
    from knox.models import AuthToken

    _instance, token = AuthToken.objects.create(user=doctor)
    import load
    from django.test import override_settings

    load._figures_share(clinic, {"REDIS_URL": os.environ["REDIS_URL"],
                                 "CACHE_KEY_PREFIX": os.environ["CACHE_KEY_PREFIX"]})  # fmt: skip
    wanted = [t for t in TARGETS if not args.only or t.name in args.only.split(",")]
    runs = _requests(clinic, doctor, token)
    costs = {}
    try:
        with override_settings(DEBUG=False):
            for target in wanted:
                client, paths, _ = runs[target.name]
                costs[target.name] = cost = _measure(target, client, paths, args.requests)
                print(f"{target.name:>18}: {cost.queries:3d} queries, server {cost.server_ms:6.1f} ms, "
                      f"database {_fmt(cost.database_ms):>6} ms per request", flush=True)  # fmt: skip
    finally:
        load._forget_queue({"REDIS_URL": os.environ["REDIS_URL"]})
    if args.save:
        args.save.write_text(json.dumps({name: asdict(cost) for name, cost in costs.items()}, indent=1))
    report = _report(args, {**{t.name: Cost(0, 0.0, None) for t in TARGETS}, **costs}, baseline)
    print(report)
    if not args.no_write and len(costs) == len(TARGETS):
        write_section(TITLE, report)


if __name__ == "__main__":
    main()
