"""Importing a lab or wearable CSV file into a clinic's observations: all valid rows, or nothing and a report.

`labs_import` is the one entry point of the portal, the API and the `import_labs` command. It reads the
file into a plan (`csv_labs`), checks the plan against the clinic's patients and the results already
stored, and writes the new observations and one audit row in one transaction. Re-importing a file
writes nothing new: a result is the same when patient, analyte, time and value are (the database
enforces it too). With `skip_bad_rows`, a row with any problem is left out whole, so a visit is never
stored half.
"""

from __future__ import annotations

import datetime
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from clinic import roles
from clinic.audit import audit_record
from clinic.models import AuditOutcome, Clinic, User
from patients.catalog import catalog
from patients.clinical import age_on, critical_flag, critical_text, interpret
from patients.imports.csv_labs import Plan, PlannedValue, Problem, UnreadableFile, plan_read
from patients.models import Observation, ObservationSource, Patient

BATCH_SIZE = 2000
_QUERY_CHUNK = 2000  # ids or MRNs per IN (...) list, well under every database's parameter limit
MAX_REPORTED_PROBLEMS = 1000  # in a JSON answer; the CSV report has them all
MAX_REPORTED_CRITICAL = 1000  # in a JSON answer; the patient list's critical filter finds every patient
ACTION = "observation.import"


@dataclass(frozen=True)
class AnalyteCount:
    code: str
    name: str
    values: int  # in valid rows
    new: int
    present: int  # already stored, or repeated in the file


@dataclass(frozen=True)
class CriticalValue:
    """A new value of the file in a critical range: the importer is told at once, with the patient to act on."""

    row: int
    mrn: str
    patient_id: int
    analyte: str
    value: float
    unit: str
    interpretation: str  # LL or HH
    effective_at: str  # ISO 8601
    text: str  # "Potassium 7.0 mmol/L (critically high)"


@dataclass
class ImportReport:
    filename: str
    dry_run: bool
    skip_bad_rows: bool
    format: str = ""
    rows: int = 0
    bad_rows: int = 0
    values: int = 0
    to_create: int = 0
    duplicates: int = 0
    created: int = 0
    patients: int = 0
    refused: bool = False
    error: str = ""  # the whole file was refused, for this reason
    problems: list[Problem] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    unknown_codes: list[str] = field(default_factory=list)
    analytes: list[AnalyteCount] = field(default_factory=list)
    critical: list[CriticalValue] = field(default_factory=list)  # of the new values, in file order

    @property
    def written(self) -> bool:
        return not (self.dry_run or self.refused)

    def summary(
        self, *, max_problems: int | None = MAX_REPORTED_PROBLEMS, max_critical: int | None = MAX_REPORTED_CRITICAL
    ) -> dict[str, Any]:
        """The report as JSON-ready data, problems and critical values capped (their counts are always complete)."""
        data = {name: getattr(self, name) for name in (
            "filename", "format", "dry_run", "skip_bad_rows", "refused", "error", "rows", "bad_rows", "values",
            "to_create", "created", "duplicates", "patients", "unknown_columns", "unknown_codes",
        )}  # fmt: skip
        data["problem_count"] = len(self.problems)
        data["problems"] = [asdict(problem) for problem in self.problems[:max_problems]]
        data["analytes"] = [asdict(count) for count in self.analytes]
        data["critical_count"] = len(self.critical)
        data["critical"] = [asdict(value) for value in self.critical[:max_critical]]
        return data


def _ensure_can_import(by: User | None, clinic: Clinic) -> None:
    """`by` None is the command line, which an operator runs for a clinic they name."""
    if by is None:
        return
    if not roles.can_enter_results(by):
        raise PermissionDenied("Your role cannot import results.")
    if not (by.is_superuser or by.clinic_id == clinic.pk):
        raise PermissionDenied("You can import results only into your own clinic.")


def _chunks(items: list, size: int = _QUERY_CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _patients_by_mrn(clinic: Clinic, mrns: set[str]) -> dict[str, Patient]:
    found: dict[str, Patient] = {}
    for chunk in _chunks(sorted(mrns)):
        patients = Patient.objects.filter(clinic=clinic, mrn__in=chunk).only("id", "mrn", "birth_date", "sex")
        found.update((patient.mrn, patient) for patient in patients)
    return found


def _existing_keys(values: list[PlannedValue], patients: dict[str, Patient]) -> set[tuple]:
    """(patient id, analyte id, time, value) of the results already stored that this file could repeat."""
    if not values:
        return set()
    ids = catalog().ids
    earliest = min(value.effective_at for value in values)
    latest = max(value.effective_at for value in values)
    analyte_ids = sorted({ids[value.code] for value in values})
    patient_ids = sorted({patients[value.mrn].pk for value in values})
    keys: set[tuple] = set()
    for chunk in _chunks(patient_ids):  # withdrawn results too: a file sent again never brings one back
        keys.update(
            Observation.all_objects.filter(
                patient_id__in=chunk, analyte_id__in=analyte_ids, effective_at__range=(earliest, latest)
            ).values_list("patient_id", "analyte_id", "effective_at", "value")
        )
    return keys


def _patient_problems(plan: Plan, patients: dict[str, Patient], zone: datetime.tzinfo) -> list[Problem]:
    problems = [
        Problem(
            row,
            "mrn",
            mrn,
            f"No patient with MRN {mrn} in this clinic. A lab import does not register patients: "
            "register the patient first.",
        )
        for row, mrn in plan.mrns.items()
        if mrn not in patients
    ]
    for value in plan.values:
        patient = patients.get(value.mrn)
        if patient and value.effective_at.astimezone(zone).date() < patient.birth_date:
            when = f"{value.effective_at:%Y-%m-%d}"
            problems.append(
                Problem(value.row, plan.time_column, when, "Results cannot be dated before the patient's birth.")
            )
    return problems


def _observation(value: PlannedValue, patient: Patient, by: User | None, zone: datetime.tzinfo) -> Observation:
    spec = catalog().by_code[value.code]
    age = age_on(patient.birth_date, value.effective_at.astimezone(zone).date())
    return Observation(
        patient=patient,
        analyte_id=catalog().ids[value.code],
        value=value.value,
        entered_value=value.entered_value,
        entered_unit=value.entered_unit,
        effective_at=value.effective_at,
        source=ObservationSource.CSV,
        interpretation=interpret(spec, value.value, patient.sex, age),
        entered_by=by,
    )


def _critical(value: PlannedValue, patient: Patient, flag: str) -> CriticalValue:
    spec = catalog().by_code[value.code]
    return CriticalValue(
        row=value.row, mrn=value.mrn, patient_id=patient.pk, analyte=value.code, value=value.value,
        unit=spec.unit, interpretation=flag, effective_at=value.effective_at.isoformat(),
        text=critical_text(spec, value.value, flag),
    )  # fmt: skip


def _plan_check(plan: Plan, report: ImportReport, clinic: Clinic) -> list[tuple[PlannedValue, Patient]]:
    """Fill the report from the plan; return the values to create, of the valid rows only, with their patient."""
    patients = _patients_by_mrn(clinic, set(plan.mrns.values()))
    problems = sorted([*plan.problems, *_patient_problems(plan, patients, clinic.zone)], key=lambda p: p.row or 0)
    bad_rows = {problem.row for problem in problems}
    valid = [value for value in plan.values if value.row not in bad_rows]
    existing = _existing_keys(valid, patients)
    ids = catalog().ids
    new: list[tuple[PlannedValue, Patient]] = []
    critical: list[CriticalValue] = []
    per_analyte: dict[str, Counter] = {}
    by_code = catalog().by_code
    for value in valid:
        patient = patients[value.mrn]
        key = (patient.pk, ids[value.code], value.effective_at, value.value)
        counts = per_analyte.setdefault(value.code, Counter())
        counts["values"] += 1
        if key in existing:
            counts["present"] += 1
            continue
        existing.add(key)  # the same result twice in one file is stored once
        counts["new"] += 1
        new.append((value, patient))
        if flag := critical_flag(by_code[value.code], value.value):
            critical.append(_critical(value, patient, flag))
    order = {code: index for index, code in enumerate(by_code)}
    report.format, report.rows, report.values = plan.format, plan.rows, len(valid)
    report.bad_rows, report.problems = len(bad_rows), problems
    report.unknown_columns, report.unknown_codes = plan.unknown_columns, plan.unknown_codes
    report.to_create, report.duplicates = len(new), len(valid) - len(new)
    report.patients = len({value.mrn for value in valid})
    report.critical = critical
    report.refused = bool(problems) and not report.skip_bad_rows
    report.analytes = [
        AnalyteCount(code, by_code[code].name, c["values"], c["new"], c["present"])
        for code, c in sorted(per_analyte.items(), key=lambda item: order[item[0]])
    ]
    return new


def _write(
    new: list[tuple[PlannedValue, Patient]],
    by: User | None,
    on_progress: Callable[[int, int], None] | None,
    zone: datetime.tzinfo,
) -> None:
    for done, batch in enumerate(_chunks(new, BATCH_SIZE), start=1):
        # ignore_conflicts: a result stored by a concurrent import of the same file is not an error.
        Observation.objects.bulk_create(
            [_observation(value, patient, by, zone) for value, patient in batch], ignore_conflicts=True
        )
        if on_progress:
            on_progress(min(done * BATCH_SIZE, len(new)), len(new))


def _audit(*, by: User | None, clinic: Clinic, report: ImportReport, data: bytes, patient_ids: list[int]) -> None:
    created = Counter({count.code: count.new for count in report.analytes if count.new}) if report.written else {}
    audit_record(
        actor=by,
        username="manage.py import_labs" if by is None else "",
        action=ACTION,
        target=clinic,
        patient_id=patient_ids[0] if len(patient_ids) == 1 else None,
        outcome=AuditOutcome.FAILURE if report.refused else AuditOutcome.SUCCESS,
        detail={
            "filename": report.filename,
            "sha256": hashlib.sha256(data).hexdigest(),
            "format": report.format,
            "rows": report.rows,
            "created": report.created,
            "duplicates": report.duplicates,
            "bad_rows": report.bad_rows,
            "problems": len(report.problems),
            "skip_bad_rows": report.skip_bad_rows,
            "error": report.error,
            "analytes": dict(created),
            "critical": len(report.critical) if report.written else 0,
            "patient_ids": patient_ids,
        },
    )


def labs_import(
    *,
    by: User | None,
    clinic: Clinic,
    data: bytes,
    filename: str = "",
    fmt: str = "auto",
    mrn: str = "",
    skip_bad_rows: bool = False,
    dry_run: bool = False,
    now: datetime.datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import one CSV file for `clinic`. `by` None means the command line. A dry run reads and writes nothing.

    Refused (nothing written): an unreadable file, or any problem without `skip_bad_rows`. Every import
    that is not a dry run is audited once, a refused one with outcome failure.
    """
    _ensure_can_import(by, clinic)
    report = ImportReport(filename=filename, dry_run=dry_run, skip_bad_rows=skip_bad_rows)
    try:
        plan = plan_read(data, lookup=catalog(), tz=clinic.zone, now=now or timezone.now(), fmt=fmt, mrn=mrn)
        if mrn.strip() and not _patients_by_mrn(clinic, {mrn.strip()}):
            raise UnreadableFile(f"No patient with MRN {mrn.strip()} in this clinic.")
    except UnreadableFile as exc:
        report.refused, report.error, report.problems = True, str(exc), [Problem(None, "", "", str(exc))]
        if not dry_run:
            _audit(by=by, clinic=clinic, report=report, data=data, patient_ids=[])
        return report
    if dry_run:
        _plan_check(plan, report, clinic)
        return report
    with transaction.atomic():
        new = _plan_check(plan, report, clinic)
        if not report.refused:
            _write(new, by, on_progress, clinic.zone)
            report.created = len(new)
        patient_ids = sorted({patient.pk for _, patient in new}) if report.written else []
        _audit(by=by, clinic=clinic, report=report, data=data, patient_ids=patient_ids)
        _predictions_request(patient_ids)
    return report


def _predictions_request(patient_ids: list[int]) -> None:
    """Imported results change the patients' risk: score them again once the import commits."""
    from predictions.services import prediction_request  # predictions reads patients; import at call time

    prediction_request(patient_ids=patient_ids)
