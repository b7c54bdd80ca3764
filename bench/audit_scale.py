"""Benchmark: audited writes per second on PostgreSQL, one clinic alone against 50 clinics writing at once.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench_audit .venv/bin/python bench/audit_scale.py \
        --duration 10 --runs 3

Each writer is a process of its own with its own connection, writing audit rows as an audited read does (one
transaction: the chain's head under its lock, the row's INSERT, COMMIT), as fast as it can for `--duration` seconds
after a common start. Scenarios, measured in the same run:

- one clinic alone: 1 writer;
- 50 clinics at once: 50 writers, each its own clinic (its own chain and lock);
- 50 writers in one clinic: all on one chain, so one lock (the most a single clinic can have);
- 50 clinics under one global lock: as the 50 clinics, each transaction first taking the one lock every writer took
  before the per-clinic chains (`pg_advisory_xact_lock(7316220401)`): what the trail allowed before.

Then the cost of checking the trail: the full check (every row) and the check since the checkpoint after 1,000 new
rows, in microseconds per row. Writes the "Audit trail at scale" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

from results import machine_summary, write_section  # noqa: E402

CLINICS = 50
OLD_GLOBAL_LOCK = 7_316_220_401  # the key of the one lock every writer took before migration clinic 0010


def _setup() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database the benchmark may fill.")
    from seed_demo import _ensure_database

    _ensure_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _clinic_users() -> list[int]:
    """One clinic and one doctor per writer, made once and kept between runs; their ids."""
    from clinic.models import Clinic, Role, User

    users = []
    for n in range(CLINICS):
        clinic, _ = Clinic.objects.get_or_create(slug=f"bench-audit-{n}", defaults={"name": f"Bench audit {n}"})
        user, _ = User.objects.get_or_create(
            username=f"bench-audit-{n}", defaults={"clinic": clinic, "role": Role.DOCTOR}
        )
        users.append(user.pk)
    return users


def _writer(user_id: int, global_lock: bool, start_at: float, stop_at: float, counts) -> None:
    from django.db import connection, transaction

    from clinic import audit
    from clinic.models import User

    user = User.objects.get(pk=user_id)
    written, locked = 0, 0.0
    chain_head = audit._chain_head

    def timed_chain_head(clinic_id):
        nonlocal locked
        started = time.perf_counter()
        try:
            return chain_head(clinic_id)
        finally:
            locked += time.perf_counter() - started

    audit._chain_head = timed_chain_head
    while time.time() < start_at:
        time.sleep(0.01)
    started = time.perf_counter()
    while time.time() < stop_at:
        with transaction.atomic():
            if global_lock:
                waited = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [OLD_GLOBAL_LOCK])
                locked += time.perf_counter() - waited
            audit.audit_record(actor=user, action="patient.view", patient_id=written)
        written += 1
    counts.append((written, locked / (time.perf_counter() - started)))
    connection.close()


def _run(user_ids: list[int], *, global_lock: bool, duration: float) -> tuple[float, float]:
    """Audited writes per second of all writers together, and the share of their time spent taking the lock and
    reading the chain's head (mostly waiting for the lock)."""
    from django.db import connections

    connections.close_all()  # each forked writer opens its own
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        counts = manager.list()
        start_at = time.time() + 3 + len(user_ids) * 0.05  # every writer connected and waiting
        processes = [
            context.Process(target=_writer, args=(pk, global_lock, start_at, start_at + duration, counts))
            for pk in user_ids
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        return sum(n for n, _ in counts) / duration, statistics.mean(share for _, share in counts)


def _verification_cost() -> tuple[int, float, float, int]:
    """(rows, µs per row of the full check, µs per new row of the check since the checkpoint after 1,000 rows)."""
    from django.conf import settings
    from django.test.utils import override_settings

    from clinic.audit import audit_checkpoint, audit_record, audit_verify
    from clinic.models import AuditEvent, User

    with override_settings(AUDIT_CHECKPOINT_PATH=Path(settings.VAR_DIR) / "bench-audit-checkpoint.json"):
        started = time.perf_counter()
        full = audit_verify()
        full_seconds = time.perf_counter() - started
        if not full.intact:
            sys.exit(f"The trail does not check out: {full.breaks[:3] or full.problems}")
        audit_checkpoint()
        users = list(User.objects.filter(username__startswith="bench-audit-")[:10])
        for n in range(1000):
            audit_record(actor=users[n % len(users)], action="patient.view", patient_id=n)
        started = time.perf_counter()
        since = audit_verify(since_checkpoint=True)
        since_seconds = time.perf_counter() - started
        if not since.intact or since.checked != 1000:
            sys.exit(f"The check since the checkpoint read {since.checked} rows: {since.breaks[:3] or since.problems}")
    rows = AuditEvent.objects.count()
    return full.checked, full_seconds / full.checked * 1e6, since_seconds / since.checked * 1e6, rows


def _durability() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        settings = []
        for name in ("synchronous_commit", "fsync", "commit_delay"):
            cursor.execute(f"SHOW {name}")
            settings.append(f"{name} = {cursor.fetchone()[0]}")
    return ", ".join(settings)


def _figure(rates: list[float]) -> str:
    return f"{statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="measured seconds per scenario and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    options = parser.parse_args()
    _setup()
    users = _clinic_users()
    scenarios = {
        "one clinic alone (1 writer)": ([users[0]], False),
        f"{CLINICS} clinics at once (a writer each)": (users, False),
        f"{CLINICS} writers in one clinic (one chain, one lock)": ([users[0]] * CLINICS, False),
        f"{CLINICS} clinics under one global lock (as before)": (users, True),
    }
    rates: dict[str, list[float]] = {name: [] for name in scenarios}
    waits: dict[str, list[float]] = {name: [] for name in scenarios}
    load_before = os.getloadavg()[0]
    for run in range(options.runs):
        for name, (writers, global_lock) in scenarios.items():
            rate, wait = _run(writers, global_lock=global_lock, duration=options.duration)
            rates[name].append(rate)
            waits[name].append(wait)
            print(f"run {run + 1}: {name}: {rate:,.0f} writes/s, {wait:.0%} of the time on the lock", flush=True)
    load_after = os.getloadavg()[0]
    durability = _durability()
    checked, full_us, since_us, rows = _verification_cost()
    alone = statistics.median(rates["one clinic alone (1 writer)"])
    lines = [
        "| scenario | audited writes per second, median (min-max) | against one clinic alone | writers' time on "
        "the lock and head |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name in scenarios:
        ratio = statistics.median(rates[name]) / alone
        lines.append(f"| {name} | {_figure(rates[name])} | {ratio:.2f} | {statistics.median(waits[name]):.0%} |")
    body = "\n".join(
        [
            "`bench/audit_scale.py`: writer processes, each with its own connection, write audit rows as an audited "
            "read does (one transaction: the chain's head under its lock, the INSERT, the COMMIT) as fast as they "
            f"can for {options.duration:g} s after a common start; {options.runs} runs of each scenario, "
            "interleaved. PostgreSQL on the same machine, the audit table partitioned by month.",
            "",
            *lines,
            "",
            "The last column is the share of the writers' time spent in the statement that takes the chain's lock "
            "and reads its head: under one lock (one clinic's 50 writers, or every clinic as before) it is waiting "
            "for the others; with a lock per clinic no writer waits for another's lock, and what remains is the "
            "statement itself on cores that are all busy. The 50 clinics' rate is then bounded by the CPU the "
            "machine had left, no longer by a lock.",
            "",
            f"PostgreSQL: {durability}. Each COMMIT waits for its WAL flush; under one lock for every writer those "
            "waits queue one behind the other, with a lock per clinic the flushes of different clinics are shared "
            "(group commit) and their chains' work overlaps.",
            "",
            f"Checking the trail ({checked:,} rows then): the full check {full_us:.0f} µs a row; the check since the "
            f"checkpoint {since_us:.0f} µs per new row (1,000 new rows among {rows:,}), reading only those.",
            "",
            f"Caveat: the machine was shared with other work while this ran (load average {load_before:.1f} before, "
            f"{load_after:.1f} after, on 2 cores), and writers, PostgreSQL and that work share the same 2 cores: "
            "absolute rates are low and noisy; compare the rows with each other, not with other sections.",
            "",
            machine_summary(),
        ]
    )
    print(body)
    if not options.no_write:
        write_section("Audit trail at scale", body)


if __name__ == "__main__":
    main()
