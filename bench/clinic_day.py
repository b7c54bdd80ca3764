"""A clinic's load, for `bench/load.py --think 5,15`: clinicians who read each page for seconds before the next.

A closed model: each locust user is a clinician who opens a page, reads it for a think time drawn between the two
bounds, then opens the next. For each target (one page kind, or a clinic day's mix of them) the number of
clinicians is stepped up (`--users`); each step is its own locust run, ramped up over `--ramp` seconds with each
clinician's first page delayed by a random part of the longest think time (no burst at the start), measured once
every clinician is in its loop. "Clinicians served" is the largest step answered with p95 under 200 ms and no error;
a target is not stepped further once a step misses it.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SERVED_P95_MS = 200
MAX_SPAWN_RATE = 100  # clinicians started per second; locust warns that faster can misbehave
CPU_ROLES = ("server", "database", "clients", "other")
TARGET_CLINICIANS = 1000
ENTRY_MRN = "LOADBENCH-"  # the patients result entry writes to, made for the benchmark in the demo clinic
ENTRY_PATIENTS = 20
# A small panel of ordinary values (no critical value, so no warning path): hemoglobin g/dL, WBC and platelets 10^9/L.
ENTRY_PANEL = {"hemoglobin": [12.0, 16.0], "wbc": [4.5, 9.5], "platelets": [180.0, 380.0]}

KIND_LABELS = {
    "patient_list": "patient list",
    "patient_detail": "patient page",
    "review_queue": "review queue",
    "review_page": "review page",
    "result_entry": "result entry (POST, CBC of 3)",
    "latest_prediction": "API latest prediction",
}
# A clinic day: most of it reading patients, then the list, the API (an EHR asking for the latest risk), reviewing
# advice, and entering results.
MIX = {
    "patient_detail": 40,
    "patient_list": 20,
    "review_queue": 7.5,
    "review_page": 7.5,
    "result_entry": 10,
    "latest_prediction": 15,
}
SWEEPS = {
    "patient_list": ("patient list `/patients/`", {"patient_list": 1}),
    "patient_detail": ("patient page `/patients/{id}/`", {"patient_detail": 1}),
    "review": ("review: the queue, then a recommendation (half each)", {"review_queue": 1, "review_page": 1}),
    "result_entry": ("result entry `/patients/{id}/results/new/` (POST)", {"result_entry": 1}),
    "latest_prediction": ("API latest prediction", {"latest_prediction": 1}),
    "mix": ("a clinic day's mix", MIX),
}


@dataclass(frozen=True)
class Step:
    users: int
    rps: float
    p50: float
    p95: float
    p99: float
    errors: int
    busy: float | None  # share of the machine's CPU time busy during the measured window (all processes)
    kind_p95: dict[str, float]
    cpu: dict[str, float]  # CPU ms per request in the window: "server", "database", "clients", "other"

    @property
    def served(self) -> bool:
        return self.p95 < SERVED_P95_MS and self.errors == 0


def entry_patients(clinic, doctor) -> list[int]:
    """The patients result entry writes to: made once for the benchmark, never the seeded cohort's."""
    from patients.models import Patient, Sex
    from patients.services import patient_create

    for n in range(1, ENTRY_PATIENTS + 1):
        mrn = f"{ENTRY_MRN}{n:02d}"
        if not Patient.objects.filter(clinic=clinic, mrn=mrn).exists():
            # Named to sort last: the list's first page, which the benchmark opens, must not show the patients whose
            # many entered results it would then read.
            patient_create(by=doctor, register_anyway=True, mrn=mrn, given_name="Load", family_name=f"Zz-bench {n:02d}",
                           birth_date=datetime.date(1970, 1, 1), sex=Sex.FEMALE)  # fmt: skip
    return list(Patient.objects.filter(clinic=clinic, mrn__startswith=ENTRY_MRN).values_list("pk", flat=True))


def waiting_recommendations(doctor) -> list[int]:
    """The first page of the doctor's review queue: the recommendations a reviewer opens from it."""
    from recommendations.selectors import review_queue_for

    return list(review_queue_for(user=doctor).values_list("pk", flat=True)[:25])


def kinds(patient_ids: list[int], entry_ids: list[int], review_ids: list[int]) -> dict[str, dict]:
    """Every request kind a clinician sends, as the locustfile reads them (weights set per target)."""
    sample = patient_ids[:500]
    return {
        "patient_list": {"auth": "session", "method": "GET", "paths": ["/patients/"], "expect": 200},
        "patient_detail": {"auth": "session", "method": "GET", "paths": [f"/patients/{pk}/" for pk in sample],
                           "expect": 200},
        "review_queue": {"auth": "session", "method": "GET", "paths": ["/advice/review/"], "expect": 200},
        "review_page": {"auth": "session", "method": "GET", "paths": [f"/advice/review/{pk}/" for pk in review_ids],
                        "expect": 200},
        "result_entry": {"auth": "session", "method": "POST", "expect": 302, "form": ENTRY_PANEL,
                         "paths": [f"/patients/{pk}/results/new/?panel=cbc" for pk in entry_ids]},
        "latest_prediction": {"auth": "token", "method": "GET", "expect": 200,
                              "paths": [f"/api/v1/patients/{pk}/predictions/latest/" for pk in sample]},
    }  # fmt: skip


def _process_cpu(pid: int) -> float:
    """User and system CPU seconds of a process so far, from /proc (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _database_backends() -> list[int]:
    """The PostgreSQL backends serving the benchmark's database, this process's own left out."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _cpu_by_role(server: int, clients: int) -> dict[str, float]:
    """CPU seconds so far of the server's workers, the database's backends and the clients (locust)."""
    return {
        "server": sum(_process_cpu(pid) for pid in _children(server)),
        "database": sum(_process_cpu(pid) for pid in _database_backends()),
        "clients": _process_cpu(clients),
    }


def _cpu_times() -> tuple[int, int] | None:
    """Busy and total jiffies of the whole machine, from /proc/stat (None elsewhere)."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def _step(locust: str, port: int, server: int, config: dict, users: int, think: tuple[float, float], ramp: float,
          duration: float) -> Step:  # fmt: skip
    """One locust run: `users` clinicians, measured once every one of them is past its first think time."""
    ramp = max(ramp, users / MAX_SPAWN_RATE)
    warm = ramp + think[1] + 2  # locust starts in about a second
    with tempfile.TemporaryDirectory() as work:
        config_path, samples = Path(work) / "config.json", Path(work) / "samples.json"
        config_path.write_text(json.dumps({**config, "think": list(think), "samples": str(samples)}))
        log = Path(os.environ["VAR_DIR"]) / "locust.log"
        started = time.time()
        with log.open("w") as errors:
            process = subprocess.Popen(  # noqa: S603
                [locust, "-f", str(Path(__file__).with_name("locustfile.py")), "--headless", "--only-summary",
                 "--users", str(users), "--spawn-rate", f"{users / ramp:.1f}", "--host", f"http://127.0.0.1:{port}",
                 "--run-time", f"{math.ceil(warm + duration) + 1}s", "--exit-code-on-error", "0",
                 "--loglevel", "WARNING"],
                env={**os.environ, "BENCH_LOAD_CONFIG": str(config_path)}, stdout=subprocess.DEVNULL, stderr=errors,
            )  # fmt: skip
            time.sleep(max(0.0, started + warm - time.time()))
            before, ours_before = _cpu_times(), _cpu_by_role(server, process.pid)
            time.sleep(max(0.0, started + warm + duration - time.time()))
            after, ours_after = _cpu_times(), _cpu_by_role(server, process.pid)
            process.wait()
        if process.returncode != 0 or not samples.exists():
            sys.exit(f"locust failed ({process.returncode}); see {log}")
        rows = json.loads(samples.read_text())
    start, end = started + warm, started + warm + duration
    window = [(ms, ok, kind) for began, ms, ok, kind in rows if start <= began + ms / 1000 < end]
    times = sorted(ms for ms, ok, _ in window if ok)
    if len(times) < 2:
        sys.exit(f"no successful request in the measured window ({len(window)} requests)")
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    per_request = 1000 / max(len(window), 1)
    cpu = {role: (ours_after[role] - ours_before[role]) * per_request for role in ours_after}
    busy = None
    if before is not None and after is not None and after[1] > before[1]:
        busy = (after[0] - before[0]) / (after[1] - before[1])
        # jiffies of the whole machine (all cores) busy in the window, less ours: whatever else ran
        machine = (after[0] - before[0]) / os.sysconf("SC_CLK_TCK")
        cpu["other"] = max(0.0, machine * per_request - sum(cpu.values()))
    kind_p95 = {}
    for kind in {kind for _, _, kind in window}:
        own = [ms for ms, ok, name in window if ok and name == kind]
        if len(own) >= 2:
            kind_p95[kind] = statistics.quantiles(own, n=100, method="inclusive")[94]
    return Step(users=users, rps=len(times) / duration, p50=cuts[49], p95=cuts[94], p99=cuts[98],
                errors=sum(1 for _, ok, _ in window if not ok), busy=busy, kind_p95=kind_p95, cpu=cpu)  # fmt: skip


def sweep(
    *,
    locust: str,
    port: int,
    server: int,
    targets: list[str],
    every_kind: dict[str, dict],
    headers: dict[str, list],
    users: list[int],
    think: tuple[float, float],
    ramp: float,
    duration: float,
) -> dict[str, list[Step]]:
    """Each target stepped through the user counts, stopping at the first step that misses p95 < 200 ms."""
    results: dict[str, list[Step]] = {}
    for target in targets:
        weights = SWEEPS[target][1]
        config = {
            "kinds": [{"name": name, "weight": weight, **every_kind[name]} for name, weight in weights.items()],
            "headers": headers,
        }
        results[target] = []
        for count in users:
            step = _step(locust, port, server, config, count, think, ramp, duration)
            results[target].append(step)
            busy = f"{step.busy:.0%}" if step.busy is not None else "—"
            cpu = ", ".join(f"{role} {ms:.1f}" for role, ms in step.cpu.items())
            print(f"{target:>17} {count:>5} clinicians: {step.rps:6.1f} req/s, p50 {step.p50:7.1f} ms, "
                  f"p95 {step.p95:7.1f} ms, p99 {step.p99:7.1f} ms, errors {step.errors}, CPU busy {busy} "
                  f"(ms/request: {cpu})", flush=True)  # fmt: skip
            if not step.served:
                break
    return results


def report(*, results: dict[str, list[Step]], users: list[int], think: tuple[float, float], ramp: float,
           duration: float, sessions: int) -> list[str]:  # fmt: skip
    """The section's part on a clinic's load: every step, then clinicians served per target and the arithmetic of
    the CPU a page would need where it falls short."""
    low, high = think
    lines = [
        "",
        "### A clinic's load",
        "",
        f"Clinicians who read each page for {low:g}-{high:g} s (locust `between({low:g}, {high:g})`) before opening "
        f"the next: a closed model, {', '.join(f'{n:,}' for n in users)} concurrent clinicians per target, each step "
        f"a locust run of its own, its clinicians started over {ramp:g} s or at {MAX_SPAWN_RATE} a second if more "
        f"(each one's first page after a random part of {high:g} s), measured for {duration:g} s once every "
        f"clinician is in its loop ({high + 2:g} s after the last has started). The clinicians share "
        f"{sessions} sessions of the demo doctor, signed in through the login "
        "form (a session is read from Redis whoever holds it), and its API token. Result entry POSTs a CBC of "
        "three ordinary values "
        f"(hemoglobin, WBC, platelets) taken at a random past time, to {ENTRY_PATIENTS} patients made for the "
        f"benchmark (MRN `{ENTRY_MRN}NN`): each writes three results, its audit row and a prediction request "
        "(queued, no worker runs); its success is the redirect to the patient page. A review step opens the queue or "
        "one of its recommendations, half each. The mix is a clinic day: "
        + ", ".join(f"{KIND_LABELS[name]} {weight:g} %" for name, weight in MIX.items())
        + f". A target is not stepped further once a step misses p95 < {SERVED_P95_MS} ms. CPU busy is the whole "
        "machine's during the window; beside it, the CPU time per request in the window (from /proc) of the "
        "server's workers, the database's backends (kept for the whole run: `DATABASE_CONN_MAX_AGE` is raised for "
        "the benchmark's server), the clients (locust), and the rest of the machine's busy time: Redis, and other "
        "work on the shared machine, which the benchmark does not control.",
        "",
        "| target | clinicians | requests/s | p50 ms | p95 ms | p99 ms | errors | CPU busy | CPU ms/request: server "
        "| database | clients | other work |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for target, steps in results.items():
        for step in steps:
            busy = f"{step.busy:.0%}" if step.busy is not None else "—"
            cpu = " | ".join(f"{step.cpu[role]:.1f}" if role in step.cpu else "—" for role in CPU_ROLES)
            lines.append(
                f"| {SWEEPS[target][0]} | {step.users:,} | {step.rps:,.1f} | {step.p50:,.1f} | {step.p95:,.1f} "
                f"| {step.p99:,.1f} | {step.errors} | {busy} | {cpu} |"
            )
    lines += _served(results, users)
    if "mix" in results:
        lines += _mix_kinds(results["mix"])
    lines += _arithmetic(results, think)
    return lines


def _served(results: dict[str, list[Step]], users: list[int]) -> list[str]:
    lines = [
        "",
        f"Clinicians served: the largest step with p95 under {SERVED_P95_MS} ms and no error (target: at least "
        f"{TARGET_CLINICIANS:,} on every page and on the mix).",
        "",
        "| target | clinicians served | target |",
        "|---|---:|---|",
    ]
    for target, steps in results.items():
        served = max((step.users for step in steps if step.served), default=0)
        shown = f"{served:,}" if served else f"fewer than {users[0]:,}"
        if served == users[-1]:
            shown = f"{served:,} or more (the largest step)"
        verdict = "met" if served >= TARGET_CLINICIANS else "NOT met"
        lines.append(f"| {SWEEPS[target][0]} | {shown} | {verdict} |")
    return lines


def _mix_kinds(steps: list[Step]) -> list[str]:
    names = list(MIX)
    lines = [
        "",
        "In the mix, each kind's own p95 (ms):",
        "",
        "| clinicians | " + " | ".join(KIND_LABELS[name] for name in names) + " |",
        "|---:|" + "---:|" * len(names),
    ]
    for step in steps:
        cells = " | ".join(f"{step.kind_p95[name]:,.1f}" if name in step.kind_p95 else "—" for name in names)
        lines.append(f"| {step.users:,} | {cells} |")
    return lines


def _arithmetic(results: dict[str, list[Step]], think: tuple[float, float]) -> list[str]:
    """What the target asks of the machine's CPU, for the targets that fall short of it: the requests per second
    1,000 clinicians send times the CPU each request took (server, database and clients, measured in the target's
    largest step; other work left out), against what the cores have."""
    cores = os.cpu_count() or 1
    mean_think = sum(think) / 2
    needed = TARGET_CLINICIANS / mean_think  # requests per second, less the pages' own time
    lines = []
    for target, steps in results.items():
        served = max((step.users for step in steps if step.served), default=0)
        if served >= TARGET_CLINICIANS:
            continue
        own = sum(steps[-1].cpu.get(role, 0.0) for role in ("server", "database", "clients"))
        at_most = cores * 1000 / own * mean_think
        lines.append(
            f"- {SWEEPS[target][0]}: {TARGET_CLINICIANS:,} clinicians reading {mean_think:g} s on average send about "
            f"{needed:.0f} requests/s; at {own:.1f} ms of CPU per request ({steps[-1].users:,} clinicians: server "
            f"{steps[-1].cpu.get('server', 0):.1f}, database {steps[-1].cpu.get('database', 0):.1f}, clients "
            f"{steps[-1].cpu.get('clients', 0):.1f}) that is {needed * own:,.0f} ms of CPU per second, against "
            f"{cores * 1000:,} on {cores} cores: even with the whole machine busy, and no queue, about "
            f"{at_most:,.0f} clinicians."
        )
    if lines:
        lines = ["", "Where a target falls short, the arithmetic:", "", *lines]
    return lines
