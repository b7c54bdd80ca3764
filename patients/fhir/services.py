"""FHIR import and export as services: one transaction and one audit row each.

Clinically wrong content is all-or-nothing, as in the CSV import (`patients.imports`): if any resource holds an
implausible value, a unit the catalog does not accept, or a result dated in the future or before birth, nothing is
written and every problem is listed; with `skip_bad` those resources are skipped, listed in the summary, and the rest
is written. One unreadable resource never costs the file: a resource that is not valid FHIR, lacks what the record
needs (an identifier, a name, a time, a number) or refers to a patient not in the file is skipped and listed with its
id and reason (with `strict`, it refuses the file instead). A Patient's contact details are not clinical: one that
fails validation (an e-mail that is not an address, a phone number too long) is dropped with a warning and the
patient imported. A refused file is audited too, with outcome failure.

Patients are matched on their medical record number within the clinic (the identifier typed MR, else
the first identifier). A matched patient keeps the demographics on record and is reported as matched. MRNs
are unique in a clinic regardless of case, so one written in another case than on record refuses the file,
as does a new patient's birth date in the future or more than 120 years ago.
Re-importing a file writes nothing new: observations are unique on (patient, analyte, time, value), and a condition
is stored once per episode: an EHR restates an ongoing diagnosis at every encounter (Synthea: prediabetes at each
yearly visit), so a condition whose code the patient already has, active, or with the same onset date, counts as
a restatement (`Condition.encounters`, `last_recorded_on`), not a new diagnosis; a restatement dated no later than
the last one counted is one already counted. Conditions come in unconfirmed whatever their verificationStatus says
(that is kept beside): only a doctor confirms a diagnosis.

The import runs a fixed number of queries plus one INSERT per batch of observations: existing
patients, observation keys and conditions are each loaded in one query, and rows go in with bulk inserts.
"""

from __future__ import annotations

import datetime
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Upper
from django.utils import timezone

from clinic import roles
from clinic.audit import audit_record
from clinic.models import AuditOutcome, Clinic, User
from patients.catalog import catalog
from patients.clinical import CRITICAL_LABELS, age_on, critical_text, interpret, with_lab_critical_call
from patients.fhir.exporter import patient_bundle
from patients.fhir.importer import Collected, ConditionData, Measurement, collect
from patients.fhir.reader import Format, read_fhir
from patients.models import (
    ClinicalStatus,
    Condition,
    ConditionSource,
    Observation,
    ObservationSource,
    Patient,
    VerificationStatus,
)

IMPORT_ACTION = "fhir.import"
OBSERVATION_BATCH = 2000
MAX_LISTED = 50  # problems listed in a refusal or a summary; the count is always complete
MAX_CRITICAL_LISTED = 1000  # new values in a critical range listed in a summary; the count is always complete
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)
# A Patient's fields that no care decision reads: one that fails validation is dropped with a warning.
CONTACT_FIELDS = ("email", "phone", "address")
ONGOING = {ClinicalStatus.ACTIVE, ClinicalStatus.RECURRENCE}


def _ensure(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


def _listed(problems: list[str]) -> list[str]:
    more = len(problems) - MAX_LISTED
    return problems[:MAX_LISTED] + ([f"... and {more} more."] if more > 0 else [])


@dataclass
class _Plan:
    """What the file will write once every resource has been checked."""

    new_patients: list[Patient] = field(default_factory=list)
    matched_patients: list[Patient] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    observation_duplicates: int = 0
    conditions: list[Condition] = field(default_factory=list)
    condition_duplicates: int = 0
    restated: dict[int, Condition] = field(default_factory=dict)  # stored conditions an encounter restated, by id
    restatements: int = 0
    downgraded: int = 0
    warnings: list[str] = field(default_factory=list)


def _validated(patient: Patient, where: str, plan: _Plan) -> None:
    """Validate a new patient; contact details that fail are dropped with a warning, anything else raises."""
    try:
        # The clinic exists and the MRN is new (both just looked up): skip those checks' queries.
        patient.full_clean(exclude=["clinic"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        contact = {name: errors for name, errors in exc.message_dict.items() if name in CONTACT_FIELDS}
        if not contact or len(contact) < len(exc.message_dict):
            raise
        for name, errors in contact.items():
            plan.warnings.append(f"{where}: {name} {getattr(patient, name)!r} not stored: {' '.join(errors)}")
            setattr(patient, name, "")
        _validated(patient, where, plan)


def _resolve_patients(clinic: Clinic, collected: Collected, plan: _Plan, problems: _Problems) -> dict[str, Patient]:
    """Patients of the file by MRN: those on record in the clinic (one query) and new, validated ones.

    MRNs are unique in a clinic regardless of case: an MRN that is one on record, or another of the file, in
    another case is an error of the file (which of the two is meant?), not a new patient. A new patient that does
    not validate (a birth date in the future) is a clinical problem: it refuses the file unless skipping, and then
    goes with its resources.
    """
    patients = collected.patients
    keyed = Patient.objects.alias(mrn_key=Upper("mrn"))
    on_record = {p.mrn.upper(): p for p in keyed.filter(clinic=clinic, mrn_key__in={d.mrn.upper() for d in patients})}
    by_mrn: dict[str, Patient] = {}
    in_file: dict[str, str] = {}  # upper-cased MRN -> the MRN as this file first wrote it
    errors = []
    for data in patients:
        if data.mrn in by_mrn:
            continue
        key = data.mrn.upper()
        stored = on_record.get(key)
        if stored is not None and stored.mrn == data.mrn:
            by_mrn[data.mrn] = stored
            plan.matched_patients.append(stored)
            continue
        if stored is not None or key in in_file:
            other = f"MRN {stored.mrn} of a patient on record" if stored else f"MRN {in_file[key]} of this file"
            errors.append(
                f"{data.where}: MRN {data.mrn} differs only in case from {other}; "
                "MRNs are unique in a clinic regardless of case."
            )
            continue
        patient = Patient(clinic=clinic, mrn=data.mrn, **data.fields)
        try:
            _validated(patient, data.where, plan)
        except ValidationError as exc:
            problems.clinical.append(f"{data.where}: {' '.join(exc.messages)}")
            collected.skipped_patient_refs.update(data.refs)
            continue
        by_mrn[data.mrn] = patient
        in_file[key] = data.mrn
        plan.new_patients.append(patient)
    if errors:
        raise ValidationError(errors, code="invalid_fhir")
    return by_mrn


class _SkippedSubject(ValueError):
    """The resource belongs to a Patient of the file that could not be read: it goes with its patient."""


class _Subjects:
    """Resolves an observation's or condition's subject reference to a patient of the same file."""

    def __init__(self, collected: Collected, by_mrn: dict[str, Patient]):
        patients = [p for p in collected.patients if p.mrn in by_mrn]
        self.by_ref = {ref: by_mrn[p.mrn] for p in patients for ref in p.refs}
        self.skipped = collected.skipped_patient_refs
        mrns = {p.mrn for p in patients}
        self.only = by_mrn[mrns.pop()] if len(mrns) == 1 and not self.skipped else None

    def get(self, reference: str | None) -> Patient:
        if reference is None:
            if self.only is None:
                raise ValueError("has no subject, and the file does not hold exactly one patient.")
            return self.only
        # An absolute reference (https://server/fhir/Patient/123) names the same resource as Patient/123.
        short = "/".join(reference.split("/")[-2:])
        patient = self.by_ref.get(reference) or self.by_ref.get(short)
        if patient is None and (reference in self.skipped or short in self.skipped):
            raise _SkippedSubject
        if patient is None:
            raise ValueError(f"refers to {reference}, which is not a Patient in this file.")
        return patient


def _subject(subjects: _Subjects, reference: str | None, where: str, plan_skipped: Counter, unreadable: list[str]):
    """The resource's patient, or None when it cannot have one (counted or listed as unreadable)."""
    try:
        return subjects.get(reference)
    except _SkippedSubject:
        plan_skipped["resource of a Patient that could not be read"] += 1
    except ValueError as exc:
        unreadable.append(f"{where}: {exc}")
    return None


def _plan_observations(
    measurements: list[Measurement], subjects: _Subjects, plan: _Plan, by: User | None, problems: _Problems
) -> None:
    mrn_of = {p.pk: p.mrn for p in plan.matched_patients}
    seen = {
        (mrn_of[pid], analyte_id, when, value)
        # withdrawn results too: a file sent again never brings one back
        for pid, analyte_id, when, value in Observation.all_objects.filter(patient_id__in=list(mrn_of)).values_list(
            "patient_id", "analyte_id", "effective_at", "value"
        )
    }
    ids, latest = catalog().ids, timezone.now() + FUTURE_TOLERANCE
    for m in measurements:
        patient = _subject(subjects, m.subject, m.where, problems.skipped, problems.unreadable)
        if patient is None:
            continue
        day = f"{m.effective_at:%Y-%m-%d}"
        if m.effective_at > latest:
            problems.clinical.append(f"{m.where}: {m.spec.name} is dated in the future ({day}).")
            continue
        if m.effective_at.date() < patient.birth_date:
            problems.clinical.append(f"{m.where}: {m.spec.name} is dated before the patient's birth ({day}).")
            continue
        key = (patient.mrn, ids[m.spec.code], m.effective_at, m.value)
        if key in seen:
            plan.observation_duplicates += 1
            continue
        seen.add(key)
        age = age_on(patient.birth_date, m.effective_at.date())
        plan.observations.append(
            Observation(
                patient=patient,
                analyte_id=ids[m.spec.code],
                value=m.value,
                entered_value=m.entered_value,
                entered_unit=m.entered_unit,
                effective_at=m.effective_at,
                source=ObservationSource.FHIR,
                interpretation=with_lab_critical_call(interpret(m.spec, m.value, patient.sex, age), m.lab_flag),
                entered_by=by,
            )
        )


def _plan_conditions(
    conditions: list[ConditionData], subjects: _Subjects, plan: _Plan, by: User | None, problems: _Problems
) -> None:
    """New conditions, one per episode; restatements of one already stored (or earlier in the file) are counted."""
    stored: dict[tuple[str, str], list[Condition]] = {}
    by_mrn = {p.pk: p.mrn for p in plan.matched_patients}
    for condition in Condition.objects.filter(patient_id__in=list(by_mrn)).order_by("onset_date", "id"):
        stored.setdefault((by_mrn[condition.patient_id], condition.code), []).append(condition)
    # Earliest first, so the first record of an episode is the one kept and later encounters restate it.
    for c in sorted(conditions, key=lambda c: c.fields["onset_date"] or datetime.date.min):
        patient = _subject(subjects, c.subject, c.where, problems.skipped, problems.unreadable)
        if patient is None:
            continue
        episodes = stored.setdefault((patient.mrn, c.fields["code"]), [])
        onset = c.fields["onset_date"]
        same = next((e for e in episodes if e.onset_date == onset or e.clinical_status in ONGOING), None)
        if same is not None:
            _restate(same, onset, plan)
            continue
        fields = dict(c.fields)
        # Only a doctor confirms a diagnosis here, and confirmed diagnoses are training labels: whatever the file
        # says (kept as `source_verification_status`), a diagnosis comes in unconfirmed until a doctor confirms it on
        # the imported diagnoses page, or the clinic trusts FHIR imports (`TrustedSource`). A doctor importing the
        # file has not reviewed each diagnosis in it either.
        said = fields["verification_status"]
        if said == VerificationStatus.CONFIRMED:
            fields["verification_status"] = VerificationStatus.PROVISIONAL
            plan.downgraded += 1
        condition = Condition(patient=patient, recorded_by=by, source=ConditionSource.FHIR,
                              source_verification_status=said, **fields)  # fmt: skip
        episodes.append(condition)
        plan.conditions.append(condition)


def _restate(condition: Condition, onset: datetime.date | None, plan: _Plan) -> None:
    """Count an encounter's restatement once: one dated no later than the last counted was counted already."""
    last = condition.last_recorded_on or condition.onset_date
    if onset is None or (last is not None and onset <= last):
        plan.condition_duplicates += 1
        return
    condition.encounters += 1
    condition.last_recorded_on = onset
    plan.restatements += 1
    if condition.pk is not None:
        plan.restated[condition.pk] = condition


def _coded(counter: Counter) -> list[dict[str, Any]]:
    rows = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [{"system": s, "code": c, "display": d, "count": n} for (s, c, d), n in rows]


def _critical(observations: list[Observation]) -> list[dict[str, Any]]:
    """The new values in a critical range, as the CSV import lists them: the importer is told at once."""
    spec_of = catalog().by_id
    critical = []
    for o in observations:
        if o.interpretation in CRITICAL_LABELS:
            spec = spec_of[o.analyte_id]
            critical.append({
                "mrn": o.patient.mrn, "analyte": spec.code, "value": o.value, "unit": spec.unit,
                "interpretation": o.interpretation, "effective_at": o.effective_at.isoformat(),
                "text": critical_text(spec, o.value, o.interpretation),
            })  # fmt: skip
    return critical


def _summary(name: str, collected: Collected, plan: _Plan, problems: _Problems) -> dict[str, Any]:
    spec_of = catalog().by_id
    critical = _critical(plan.observations)
    return {
        "file": name,
        "format": collected.kind,
        "resources": collected.resources,
        "patients": {
            "created": [p.mrn for p in plan.new_patients],
            "matched": [p.mrn for p in plan.matched_patients],
        },
        "observations": {
            "created": len(plan.observations),
            "duplicates": plan.observation_duplicates,
            "by_analyte": dict(sorted(Counter(spec_of[o.analyte_id].code for o in plan.observations).items())),
            "critical_count": len(critical),
            "critical": critical[:MAX_CRITICAL_LISTED],
        },
        "laboratory": {
            "numeric_results": collected.lab_numeric,
            "recognised": collected.lab_recognised,
            "recognised_share": round(collected.lab_recognised / collected.lab_numeric, 4)
            if collected.lab_numeric
            else None,
        },
        "conditions": {
            "created": len(plan.conditions),
            "restatements": plan.restatements,
            "duplicates": plan.condition_duplicates,
            "mapped_from_snomed": collected.mapped_from_snomed,
            "downgraded_to_provisional": plan.downgraded,
        },
        "skipped_resource_types": dict(sorted(collected.skipped_types.items())),
        "skipped": dict(sorted((collected.skipped + problems.skipped).items())),
        "unknown_codes": _coded(collected.unknown_codes),
        "unmapped_conditions": _coded(collected.unmapped_conditions),
        "unreadable_skipped": len(problems.unreadable),
        "unreadable": _listed(problems.unreadable),
        "warnings": _listed(plan.warnings),
        "problems_skipped": len(problems.clinical),
        "problems": _listed(problems.clinical),
    }


def _audit_detail(summary: dict[str, Any], patients: list[Patient]) -> dict[str, Any]:
    return {
        "file": summary["file"],
        "format": summary["format"],
        "resources": summary["resources"],
        "patient_ids": sorted(p.pk for p in patients),
        "patients_created": len(summary["patients"]["created"]),
        "patients_matched": len(summary["patients"]["matched"]),
        "observations_created": summary["observations"]["created"],
        "observation_duplicates": summary["observations"]["duplicates"],
        "observations_critical": summary["observations"]["critical_count"],
        "conditions_created": summary["conditions"]["created"],
        "conditions_restated": summary["conditions"]["restatements"],
        "skipped_resource_types": summary["skipped_resource_types"],
        "unknown_codes": sum(row["count"] for row in summary["unknown_codes"]),
        "problems_skipped": summary["problems_skipped"],
        "unreadable_skipped": summary["unreadable_skipped"],
    }


def _import_clinic(by: User | None, clinic: Clinic | None) -> Clinic:
    if by is not None:
        _ensure(roles.can_enter_results(by), "Your role cannot import results.")
        clinic = clinic or by.clinic
        _ensure(by.is_superuser or by.clinic_id == getattr(clinic, "pk", None), "You can import only into your clinic.")
    if clinic is None:
        raise ValidationError("Choose the clinic to import into.")
    return clinic


@dataclass
class _Problems:
    clinical: list[str]  # refuse the file unless skip_bad
    unreadable: list[str]  # skipped and listed unless strict
    skipped: Counter = field(default_factory=Counter)  # resources that went with a Patient that could not be read


def _refusal(problems: _Problems, *, skip_bad: bool, strict: bool) -> ValidationError | None:
    if problems.clinical and not skip_bad:
        headline = (
            f"Nothing was imported: {len(problems.clinical)} resource(s) cannot be stored. "
            "Correct the file, or import with skip_bad to store the rest."
        )
        return ValidationError([headline, *_listed(problems.clinical)], code="invalid_fhir")
    if problems.unreadable and strict:
        headline = (
            f"Nothing was imported (strict): {len(problems.unreadable)} resource(s) cannot be read. "
            "Correct the file, or import without strict to skip them."
        )
        return ValidationError([headline, *_listed(problems.unreadable)], code="invalid_fhir")
    return None


@transaction.atomic
def _import(
    *, by: User | None, clinic: Clinic, data: bytes, name: str, fmt: Format | None, skip_bad: bool, strict: bool,
    username: str,
) -> dict[str, Any]:  # fmt: skip
    collected = collect(read_fhir(data, fmt=fmt))
    plan, problems = _Plan(), _Problems(list(collected.problems), list(collected.unreadable))
    by_mrn = _resolve_patients(clinic, collected, plan, problems)
    subjects = _Subjects(collected, by_mrn)
    _plan_observations(collected.measurements, subjects, plan, by, problems)
    _plan_conditions(collected.conditions, subjects, plan, by, problems)
    if refusal := _refusal(problems, skip_bad=skip_bad, strict=strict):
        raise refusal

    try:
        Patient.objects.bulk_create(plan.new_patients)
    except IntegrityError:
        raise ValidationError("Another import created one of these patients meanwhile; import again.") from None
    # Pre-filtered against stored keys above; ignore_conflicts covers a concurrent import of the same file.
    Observation.objects.bulk_create(plan.observations, batch_size=OBSERVATION_BATCH, ignore_conflicts=True)
    Condition.objects.bulk_create(plan.conditions)
    Condition.objects.bulk_update(plan.restated.values(), ["encounters", "last_recorded_on"], batch_size=500)
    summary = _summary(name, collected, plan, problems)
    patients = plan.new_patients + plan.matched_patients
    audit_record(
        actor=by,
        username=username,
        action=IMPORT_ACTION,
        target=patients[0] if len(patients) == 1 else clinic,
        patient_id=patients[0].pk if len(patients) == 1 else None,
        detail={**_audit_detail(summary, patients), "sha256": hashlib.sha256(data).hexdigest()},
    )
    if plan.observations:
        from predictions.services import prediction_request  # predictions reads patients; import at call time

        prediction_request(patient_ids=sorted({o.patient_id for o in plan.observations}))
    return summary


def fhir_import(
    *,
    by: User | None,
    data: bytes,
    clinic: Clinic | None = None,
    name: str = "",
    fmt: Format | None = None,
    skip_bad: bool = False,
    strict: bool = False,
    username: str = "",
) -> dict[str, Any]:
    """Import one FHIR file (Bundle or NDJSON) into a clinic and return its summary.

    Clinically wrong resources refuse the file unless `skip_bad`; unreadable ones are skipped and listed unless
    `strict` (see the module's docstring).

    `by` is the user importing (into their own clinic); None for a management command, which names the
    clinic and passes `username` for the audit row. A refused file raises ValidationError after the
    refusal is audited (outcome failure), as the CSV import does: nothing of the file is written.
    """
    clinic = _import_clinic(by, clinic)
    try:
        return _import(
            by=by, clinic=clinic, data=data, name=name, fmt=fmt, skip_bad=skip_bad, strict=strict, username=username
        )
    except ValidationError as exc:
        audit_record(
            actor=by,
            username=username,
            action=IMPORT_ACTION,
            target=clinic,
            outcome=AuditOutcome.FAILURE,
            detail={"file": name, "sha256": hashlib.sha256(data).hexdigest(), "error": exc.messages[0]},
        )
        raise


@transaction.atomic
def fhir_export(*, by: User | None, patient: Patient, username: str = "") -> dict[str, Any]:
    """The patient's record as a FHIR R4 Bundle; the caller got `patient` through a scoped selector."""
    # Predictions are decision support for clinicians: a patient's own download leaves them out.
    bundle = patient_bundle(patient, include_decision_support=by is None or roles.can_view_patients(by))
    audit_record(
        actor=by,
        username=username,
        action="fhir.export",
        target=patient,
        patient_id=patient.pk,
        detail={"resources": dict(Counter(e["resource"]["resourceType"] for e in bundle["entry"]))},
    )
    return bundle
