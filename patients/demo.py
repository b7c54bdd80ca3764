"""Load the synthetic demo cohort (`patients.demo_cohort`) into a clinic, fast enough for 100,000 patients.

Patients and conditions go in with large bulk inserts; observations, the bulk of the rows, with COPY on
PostgreSQL and batched bulk inserts elsewhere. Flags are computed vectorised with the same rules as
single entries (`patients.clinical.interpret_array`).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from clinic.audit import audit_record
from clinic.models import Clinic, Role, User
from patients.catalog import catalog
from patients.clinical import interpret_array
from patients.demo_cohort import CONDITIONS, Cohort, generate_cohort
from patients.models import Condition, ConditionSource, Observation, ObservationSource, Patient, VerificationStatus

Progress = Callable[[str, int, int], None]  # (stage, done, total)
BATCH = 5000
# One result in its critical range for each of a few demo patients (the cohort's own values never are).
DEMO_CRITICAL_RESULTS = [("potassium", 6.9, "mmol/L"), ("glucose", 2.4, "mmol/L"), ("hemoglobin", 6.4, "g/dL")]
OBSERVATION_COLUMNS = [
    "patient_id", "analyte_id", "value", "entered_value", "entered_unit", "effective_at", "source",
    "interpretation", "created_at",
]  # fmt: skip


def _ages(birth: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Whole years between two datetime64 arrays, as `clinical.age_on` counts them."""
    b = birth.astype("datetime64[D]")
    w = when.astype("datetime64[D]")
    by, wy = b.astype("datetime64[Y]"), w.astype("datetime64[Y]")
    years = (wy - by).astype(int)
    before_birthday = (w - wy.astype("datetime64[D]")) < (b - by.astype("datetime64[D]"))
    return years - before_birthday.astype(int)


def _insert_patients(clinic: Clinic, cohort: Cohort, progress: Progress | None) -> np.ndarray:
    fields = ["smoking", "alcohol", "physical_activity", "diet"]
    history = ["family_history_diabetes", "family_history_cardiovascular", "family_history_anemia"]
    ids = np.empty(cohort.n_patients, dtype=np.int64)
    for start in range(0, cohort.n_patients, BATCH):
        stop = min(start + BATCH, cohort.n_patients)
        rows = [
            Patient(
                clinic=clinic,
                mrn=cohort.mrn[i],
                given_name=cohort.given_name[i],
                family_name=cohort.family_name[i],
                birth_date=cohort.birth_date[i].item(),
                sex=cohort.sex[i],
                **{name: getattr(cohort, name)[i] for name in fields},
                **{name: bool(getattr(cohort, name)[i]) for name in history},
            )
            for i in range(start, stop)
        ]
        Patient.objects.bulk_create(rows, batch_size=BATCH)
        ids[start:stop] = [patient.pk for patient in rows]
        if progress:
            progress("patients", stop, cohort.n_patients)
    return ids


def observation_rows(cohort: Cohort, patient_ids: np.ndarray, now: datetime.datetime) -> Iterator[tuple]:
    """Observation rows in OBSERVATION_COLUMNS order, analyte by analyte, flags computed in bulk.

    The catalog is read here, before the first row is asked for: rows are consumed inside a COPY, during
    which the connection cannot run another query.
    """
    return _observation_rows(catalog(), cohort, patient_ids, now)


def _observation_rows(cat, cohort: Cohort, patient_ids: np.ndarray, now: datetime.datetime) -> Iterator[tuple]:
    times = cohort.obs_time.astype("datetime64[us]")
    for code in np.unique(cohort.obs_analyte):
        spec = cat.by_code[code]
        idx = np.flatnonzero(cohort.obs_analyte == code)
        values = np.round(cohort.obs_value[idx], spec.decimals + 2)
        patients = cohort.obs_patient[idx]
        flags = interpret_array(spec, values, cohort.sex[patients], _ages(cohort.birth_date[patients], times[idx]))
        analyte_id = cat.ids[code]
        for pid, value, when, flag in zip(
            patient_ids[patients].tolist(), values.tolist(), times[idx].tolist(), flags, strict=True
        ):
            yield (pid, analyte_id, value, value, spec.unit, when.replace(tzinfo=datetime.UTC),
                   ObservationSource.DEMO, flag, now)  # fmt: skip


def _copy_observations(rows: Iterator[tuple], total: int, progress: Progress | None) -> None:
    columns = ", ".join(OBSERVATION_COLUMNS)
    sql = f"COPY patients_observation ({columns}) FROM STDIN"  # noqa: S608  (constant column list)
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for done, row in enumerate(rows, start=1):
            copy.write_row(row)
            if progress and done % 100_000 == 0:
                progress("observations", done, total)


def _bulk_observations(rows: Iterator[tuple], total: int, progress: Progress | None) -> None:
    from patients.models import Observation

    batch, done = [], 0
    for row in rows:
        batch.append(Observation(**dict(zip(OBSERVATION_COLUMNS, row, strict=True))))
        if len(batch) == BATCH:
            Observation.objects.bulk_create(batch)
            done += len(batch)
            batch = []
            if progress:
                progress("observations", done, total)
    Observation.objects.bulk_create(batch)


def _insert_conditions(cohort: Cohort, patient_ids: np.ndarray) -> int:
    rows = [
        Condition(
            patient_id=int(patient_ids[p]),
            code=CONDITIONS[key][0],
            display=CONDITIONS[key][1],
            source=ConditionSource.DEMO,
            verification_status=VerificationStatus.CONFIRMED if confirmed else VerificationStatus.PROVISIONAL,
        )
        for p, key, confirmed in zip(cohort.cond_patient, cohort.cond_key, cohort.cond_confirmed, strict=True)
    ]
    Condition.objects.bulk_create(rows, batch_size=BATCH)
    return len(rows)


@transaction.atomic
def demo_cohort_load(
    *, clinic: Clinic, n_patients: int, seed: int = 0, link_user: User | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Generate and store `n_patients` synthetic patients with their results and diagnoses, all or nothing."""
    cohort = generate_cohort(n_patients, seed=seed, today=timezone.localdate())
    patient_ids = _insert_patients(clinic, cohort, progress)
    total = len(cohort.obs_value)
    rows = observation_rows(cohort, patient_ids, timezone.now())
    if connection.vendor == "postgresql":
        _copy_observations(rows, total, progress)
    else:
        _bulk_observations(rows, total, progress)
    if progress:
        progress("observations", total, total)
    conditions = _insert_conditions(cohort, patient_ids)
    if link_user is not None and n_patients:
        Patient.objects.filter(pk=int(patient_ids[0])).update(user=link_user)
    counts = {"patients": n_patients, "observations": total, "conditions": conditions}
    audit_record(actor=None, action="demo.seed", target=clinic, detail={**counts, "seed": seed})
    return counts


def demo_critical_results_enter(*, clinic: Clinic, seed: int = 0) -> list[Observation]:
    """The demo clinic's staff member enters one critical result, taken two hours ago, for each of a few patients
    (`DEMO_CRITICAL_RESULTS`), through the portal's own service: flagged, audited, scored and advised once the
    transaction commits, and left unacknowledged, so the demo shows the critical-results banner, the home page's
    count and urgent advice waiting for review. Nothing when the clinic has no staff member or too few patients.
    """
    from patients.services import ObservationInput, observations_record

    staff = User.objects.filter(clinic=clinic, role=Role.STAFF, is_active=True).order_by("pk").first()
    ids = list(Patient.objects.filter(clinic=clinic, user__isnull=True).order_by("pk").values_list("pk", flat=True))
    if staff is None or len(ids) < len(DEMO_CRITICAL_RESULTS):
        return []
    chosen = np.random.default_rng(seed).choice(ids, size=len(DEMO_CRITICAL_RESULTS), replace=False)
    taken = timezone.now() - datetime.timedelta(hours=2)
    entered = []
    with transaction.atomic():
        for pk, (code, value, unit) in zip(chosen.tolist(), DEMO_CRITICAL_RESULTS, strict=True):
            entered += observations_record(
                patient=Patient.objects.get(pk=pk), by=staff, entries=[ObservationInput(code, value, unit)],
                effective_at=taken,
            )  # fmt: skip
    return entered
