"""Benchmark: seeding the synthetic demo cohort into PostgreSQL, against a raw COPY of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clinic_bench .venv/bin/python bench/seed_demo.py \
        --patients 100000 --runs 3

The database is created and migrated if needed; its patients are deleted before each run. Each run:

- seed: `demo_cohort_load` end to end (generate the cohort with numpy, insert patients, COPY the
  observations, insert the diagnoses, audit), in one transaction, as `manage.py seed_demo --patients N`;
- floor: the same observation rows, already built in memory, COPYed into the observation table with its
  indexes and foreign-key checks, then rolled back; nothing else. The floor is what PostgreSQL itself needs
  to store those rows.

Writes a section of bench/RESULTS.md (replacing the one from an earlier run of this script).
"""

from __future__ import annotations

import argparse
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


def _ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    server = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
            conn.execute(f'create database "{name}"')


def _setup() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database the benchmark may fill and empty.")
    _ensure_database(url)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # A database of its own: everything the patients point at goes.
        cursor.execute("truncate patients_patient cascade")


def _seed(clinic, n: int, seed: int) -> tuple[float, int]:
    from patients.demo import demo_cohort_load

    start = time.perf_counter()
    counts = demo_cohort_load(clinic=clinic, n_patients=n, seed=seed)
    return time.perf_counter() - start, counts["observations"]


def _floor(rows: list[tuple]) -> float:
    """COPY prepared rows into patients_observation itself, foreign keys checked, then roll back."""
    from django.db import connection, transaction

    from patients.demo import OBSERVATION_COLUMNS

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("truncate patients_observation")  # inside the transaction: undone by the rollback
        columns = ", ".join(OBSERVATION_COLUMNS)
        start = time.perf_counter()
        with cursor.cursor.copy(f"copy patients_observation ({columns}) from stdin") as copy:  # noqa: S608
            for row in rows:
                copy.write_row(row)
        cursor.execute("set constraints all immediate")  # the deferred foreign-key checks a commit would run
        elapsed = time.perf_counter() - start
        transaction.set_rollback(True)
    return elapsed


def _floor_rows(clinic, n: int, seed: int) -> list[tuple]:
    """The observation rows of the cohort the last seed run stored, with that run's patient ids."""
    import numpy as np
    from django.utils import timezone

    from patients.demo import observation_rows
    from patients.demo_cohort import generate_cohort
    from patients.models import Patient

    cohort = generate_cohort(n, seed=seed, today=timezone.localdate())
    ids = dict(Patient.objects.filter(clinic=clinic).values_list("mrn", "pk"))
    patient_ids = np.array([ids[mrn] for mrn in cohort.mrn], dtype=np.int64)
    return list(observation_rows(cohort, patient_ids, timezone.now()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, nargs="+", default=[100_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    _setup()
    from clinic.models import Clinic
    from clinic.services import clinic_create

    clinic = Clinic.objects.filter(slug="bench-seed").first() or clinic_create(
        name="Bench seed", slug="bench-seed", is_demo=True
    )
    lines = [
        "Seeding the demo cohort (`bench/seed_demo.py`): `demo_cohort_load` end to end (numpy generation, "
        "patients, COPY of observations, diagnoses, audit) against its floor, a bare COPY of the same prepared "
        "observation rows into the same table (indexes and foreign-key checks included, then rolled back). "
        "Rates are observation rows per second.",
        "",
        "| patients | observations | seed s (median, min-max) | seed rows/s | floor COPY s | floor rows/s "
        "| seed / floor |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for n in args.patients:
        seeds, floors, rows_count = [], [], 0
        for run in range(args.runs):
            _empty()
            elapsed, rows_count = _seed(clinic, n, seed=run)
            seeds.append(elapsed)
            rows = _floor_rows(clinic, n, seed=run)
            floors.append(_floor(rows))
            print(f"{n:>7} patients run {run + 1}: seed {elapsed:.1f} s, floor COPY {floors[-1]:.1f} s", flush=True)
        _empty()
        seed_s, floor_s = statistics.median(seeds), statistics.median(floors)
        lines.append(
            f"| {n:,} | {rows_count:,} | {seed_s:.1f} ({min(seeds):.1f}-{max(seeds):.1f}) "
            f"| {rows_count / seed_s:,.0f} | {floor_s:.1f} ({min(floors):.1f}-{max(floors):.1f}) "
            f"| {rows_count / floor_s:,.0f} | {floor_s / seed_s:.2f} |"
        )
    lines += ["", f"Runs per size: {args.runs}. Target: 100,000 patients in under 120 s on 2 cores.", ""]
    write_section("Demo seeding", machine_summary() + "\n\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
