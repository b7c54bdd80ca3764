"""Benchmark: the HL7 v2 lab interface over a real MLLP socket, against the CSV import of the same results.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench .venv/bin/python bench/hl7_feed.py \
        --messages 2000 --results 10 --runs 3

The database is created and migrated if needed (PostgreSQL; any other DATABASE_URL, SQLite for a smoke run, is
used as it is). A clinic of its own (`bench-hl7`, `--patients` patients) and a lab connection are created once;
the clinic's results and messages are deleted before each run. Each run:

- hl7: `manage.py hl7_listen` in a subprocess on a free loopback port (its log is `var/bench-hl7.log`); N
  ORU^R01 messages of M final numeric results each (LOINC-coded, normal values, one specimen time per message),
  sent over one connection, each after the ACK of the one before, as a lab's interface engine sends them. Every
  ACK must be AA. Timed from the first byte sent to the last ACK read: messages and results per second.
- csv: the same N x M results as one long CSV file through `labs_import`, in process, in one transaction: what the
  same results cost through the clinic's bulk path. Per result, the ratio of the two is the price of one
  transaction, one log row, one audit row and one ACK per message.

Both paths request the patients' predictions once they commit. With REDIS_URL (as `make bench` runs it) that is
an enqueue, and the queue is purged after each run (no worker scores the bench clinic); without it Celery runs
tasks eagerly, so each message's ACK also waits for its patient to be scored (the embedded default).

Writes the "HL7 lab feed" section of bench/RESULTS.md. BENCH_QUICK=1: 50 messages of 5 results, one run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

from results import machine_summary, write_section  # noqa: E402

FACILITY = "BENCH LAB"
AUTHORITY = "BENCH"
QUICK = os.environ.get("BENCH_QUICK") == "1"
ANALYTES = ("potassium", "sodium", "creatinine", "glucose", "hemoglobin", "wbc", "platelets", "alt", "ast",
            "hdl", "ldl", "triglycerides", "total_cholesterol", "crp", "hba1c")  # fmt: skip


def _setup() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        from seed_demo import _ensure_database

        _ensure_database(url)
    else:
        print("DATABASE_URL is not PostgreSQL: a smoke run, its figures are not the benchmark's.")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _clinic(patients: int):
    """The bench clinic, its lab connection and patients (created once, kept between runs)."""
    from clinic.models import Clinic
    from clinic.services import clinic_create
    from labfeed.models import LabConnection
    from patients.models import Patient

    clinic = Clinic.objects.filter(slug="bench-hl7").first() or clinic_create(
        name="Bench HL7", slug="bench-hl7", is_demo=True
    )
    LabConnection.objects.get_or_create(
        clinic=clinic, sending_facility=FACILITY, defaults={"name": "Bench lab", "assigning_authority": AUTHORITY}
    )
    have = Patient.objects.filter(clinic=clinic).count()
    Patient.objects.bulk_create(
        Patient(clinic=clinic, mrn=f"BH{n:06d}", given_name="Bench", family_name=f"Patient {n}",
                birth_date=datetime.date(1960 + n % 40, 1 + n % 12, 1 + n % 28), sex="female" if n % 2 else "male")
        for n in range(have, patients)
    )  # fmt: skip
    return clinic


def _empty(clinic) -> None:
    from labfeed.models import HL7Message, UnmatchedResult
    from patients.models import Observation

    UnmatchedResult.objects.filter(clinic=clinic).delete()
    HL7Message.objects.filter(sending_facility=FACILITY).delete()
    Observation.all_objects.filter(patient__clinic=clinic).update(replaced_by=None)
    Observation.all_objects.filter(patient__clinic=clinic).delete()


def _results(messages: int, per_message: int, patients: int) -> list[tuple[str, list[tuple]]]:
    """Per message: (MRN, [(analyte spec, value, specimen time)]) with normal values and a time of its own."""
    from django.utils import timezone

    from patients.catalog import catalog

    specs = [catalog().by_code[code] for code in ANALYTES if code in catalog().by_code][:per_message]
    if len(specs) < per_message:
        sys.exit(f"--results at most {len(specs)} (the analytes this bench sends).")
    start = timezone.now().replace(microsecond=0, second=0) - datetime.timedelta(minutes=messages + 10)
    values = []
    for spec in specs:
        ranges = [r for r in spec.ranges if r.low is not None and r.high is not None]
        low, high = (ranges[0].low, ranges[0].high) if ranges else (spec.plausible_low, spec.plausible_high)
        values.append(round((low + high) / 2, spec.decimals))
    return [
        (f"BH{n % patients:06d}", [(spec, value, start + datetime.timedelta(minutes=n))
                                   for spec, value in zip(specs, values, strict=True)])
        for n in range(messages)
    ]  # fmt: skip


def _oru(number: int, mrn: str, results: list[tuple]) -> str:
    taken = results[0][2].astimezone(datetime.UTC)
    segments = [
        f"MSH|^~\\&|LIS|{FACILITY}|CLINIC|BENCH|{taken:%Y%m%d%H%M%S}||ORU^R01^ORU_R01|BENCH{number:08d}|P|2.5.1",
        f"PID|1||{mrn}^^^{AUTHORITY}^MR||Patient^Bench",
        f"OBR|1|ORD{number}|LAB{number}|PANEL^Bench panel|||{taken:%Y%m%d%H%M%S}+0000",
    ]
    for index, (spec, value, _when) in enumerate(results, start=1):
        segments.append(f"OBX|{index}|NM|{spec.loinc[0]}^{spec.name}^LN||{value}|{spec.unit}|||||F")
    return "\r".join(segments) + "\r"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _listener():
    port = _free_port()
    log_path = ROOT / "var" / "bench-hl7.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, str(ROOT / "manage.py"), "hl7_listen", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        try:
            for _attempt in range(300):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if process.poll() is not None:
                    sys.exit(f"hl7_listen exited ({process.returncode}); see {log_path}.")
                time.sleep(0.1)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=60)


def _run_hl7(messages: list[str]) -> float:
    from labfeed import hl7v2
    from labfeed.listener import send

    with _listener() as port:
        start = time.perf_counter()
        acks = send("127.0.0.1", port, messages, timeout=120)
        elapsed = time.perf_counter() - start
    codes = {hl7v2.ack_code_of(ack) for ack in acks}
    if codes != {"AA"} or len(acks) != len(messages):
        sys.exit(f"Not every message was accepted: {sorted(codes)}; see var/bench-hl7.log.")
    return elapsed


def _run_csv(clinic, plan: list[tuple[str, list[tuple]]]) -> float:
    from patients.imports.services import labs_import

    lines = ["mrn,analyte,value,unit,time"]
    for mrn, results in plan:
        lines += [f"{mrn},{spec.loinc[0]},{value},{spec.unit},{when.isoformat()}" for spec, value, when in results]
    data = ("\n".join(lines) + "\n").encode()
    start = time.perf_counter()
    report = labs_import(by=None, clinic=clinic, data=data, filename="bench.csv", fmt="long")
    elapsed = time.perf_counter() - start
    if report.refused or report.created != len(lines) - 1:
        sys.exit(f"The CSV import did not store every result: {report.error or report.created}.")
    return elapsed


def _purge_queue() -> None:
    """The predictions the runs enqueued: no worker runs here, and none should score the bench clinic later."""
    if os.environ.get("REDIS_URL"):
        from clinic.celery import app

        app.control.purge()


def _row(name: str, times: list[float], results: int, messages: int | None) -> str:
    median = statistics.median(times)
    per_second = f"{messages / median:,.0f}" if messages else "(one file)"
    return (f"| {name} | {median:.2f} s ({min(times):.2f}-{max(times):.2f}) | {per_second} | {results / median:,.0f} | "
            f"{median / results * 1e3:.2f} ms |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50 if QUICK else 2000)
    parser.add_argument("--results", type=int, default=5 if QUICK else 10, help="OBX per message")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1 if QUICK else 3)
    args = parser.parse_args()
    _setup()
    from django.db import connection

    clinic = _clinic(args.patients)
    plan = _results(args.messages, args.results, args.patients)
    messages = [_oru(number, mrn, results) for number, (mrn, results) in enumerate(plan)]
    total = args.messages * args.results
    hl7_times, csv_times = [], []
    for run in range(args.runs):
        _empty(clinic)
        connection.close()  # the listener writes the same database: no transaction of ours stays open meanwhile
        hl7_times.append(_run_hl7(messages))
        _empty(clinic)
        csv_times.append(_run_csv(clinic, plan))
        _purge_queue()
        print(f"run {run + 1}: hl7 {hl7_times[-1]:.2f} s, csv {csv_times[-1]:.2f} s")
    _empty(clinic)
    ratio = statistics.median(hl7_times) / statistics.median(csv_times)
    body = "\n".join([
        f"`bench/hl7_feed.py --messages {args.messages} --results {args.results} --runs {args.runs}` on "
        f"{connection.vendor}: {args.messages:,} ORU^R01 messages of {args.results} final results each, sent over "
        "one MLLP connection to `manage.py hl7_listen` in a subprocess, each after the ACK (AA, after commit) of "
        "the one before; against the same results as one long CSV file through `labs_import` in process (one "
        "transaction, bulk inserts). Predictions "
        + ("enqueued to Redis." if os.environ.get("REDIS_URL") else "scored in process before each ACK (no Redis).")
        + " Median of the runs (min-max).",
        "",
        machine_summary(),
        "",
        "| path | time | messages/s | results/s | per result |",
        "| --- | --- | --- | --- | --- |",
        _row("HL7 over MLLP", hl7_times, total, args.messages),
        _row("CSV import", csv_times, total, None),
        "",
        f"Per result, the HL7 path costs {ratio:.1f}x the CSV import: each message is its own transaction with its "
        "log row, audit row and ACK round trip, as a lab's feed needs (nothing acknowledged before it is stored).",
    ])  # fmt: skip
    write_section("HL7 lab feed", body)
    print(body)


if __name__ == "__main__":
    main()
