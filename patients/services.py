"""Writes to the clinical record. Each function checks the writer's role, validates everything before
writing anything, and records one audit row in the same transaction."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinic import roles
from clinic.audit import audit_record
from clinic.models import Clinic, User
from patients.catalog import catalog
from patients.clinical import InvalidValue, age_on, check_plausible, interpret
from patients.models import (
    ACKNOWLEDGEMENT_NOTE_MAX,
    AMEND_REASON_MAX,
    IMPORTED_CONDITION_SOURCES,
    Allergy,
    Condition,
    Medication,
    Observation,
    ObservationSource,
    ObservationStatus,
    Patient,
    TrustedSource,
    VerificationStatus,
)
from patients.selectors import (
    CRITICAL,
    LikelyDuplicate,
    patient_likely_duplicates,
    patient_mrn_clashes,
    patient_mrn_holder,
)

PATIENT_FIELDS = {
    "mrn", "given_name", "family_name", "birth_date", "sex", "email", "phone", "address",
    "smoking", "alcohol", "physical_activity", "diet",
    "family_history_diabetes", "family_history_cardiovascular", "family_history_anemia",
}  # fmt: skip
CONDITION_FIELDS = {"code", "display", "onset_date", "clinical_status", "verification_status", "note"}


def _ensure(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


def _ensure_same_clinic(by: User, patient: Patient) -> None:
    _ensure(by.is_superuser or by.clinic_id == patient.clinic_id, "This patient belongs to another clinic.")


class LikelyDuplicates(ValidationError):
    """The clinic already has patients who may be this person. Not saved: the user checks them, then registers
    anyway (`register_anyway=True`) if this is someone else. `duplicates` lists them."""

    def __init__(self, duplicates: list[LikelyDuplicate]):
        self.duplicates = duplicates
        super().__init__(
            f"This clinic already has {len(duplicates)} patient(s) who may be this person: check them before "
            "registering another record.",
            code="likely_duplicate",
        )


def _mrn_taken(patient: Patient) -> str:
    holder = patient_mrn_holder(clinic_id=patient.clinic_id, mrn=patient.mrn, exclude_pk=patient.pk)
    if holder is None:
        return ""
    if holder.mrn == patient.mrn:
        return f"A patient with MRN {holder.mrn} already exists in this clinic."
    return (
        f"A patient with MRN {holder.mrn} already exists in this clinic: MRNs are compared without regard to case, "
        f"so {patient.mrn} is the same MRN."
    )


def _validate_patient(patient: Patient) -> None:
    """Every problem at once, the MRN's uniqueness in the clinic (regardless of case) next to the MRN."""
    errors: dict[str, list[str]] = {}
    try:
        # The unique constraint is checked below, with a message that names the MRN already on record.
        patient.full_clean(validate_constraints=False)
    except ValidationError as exc:
        errors = exc.message_dict
    if "mrn" not in errors and (taken := _mrn_taken(patient)):
        errors["mrn"] = [taken]
    if errors:
        raise ValidationError(errors)


def _save_patient(patient: Patient) -> None:
    try:
        with transaction.atomic():  # a savepoint: the MRN can be looked up again after a refusal
            patient.save()
    except IntegrityError:  # the same MRN registered by someone else since it was checked
        raise ValidationError({"mrn": _mrn_taken(patient) or "This MRN was just taken; try again."}) from None


@transaction.atomic
def patient_create(*, by: User, register_anyway: bool = False, **fields: Any) -> Patient:
    """Register a patient in the writer's clinic. Raises LikelyDuplicates when the clinic may already have this
    person, unless `register_anyway`: then the record is saved and the decision audited with their ids."""
    _ensure(roles.can_enter_results(by), "Your role cannot register patients.")
    unknown = set(fields) - PATIENT_FIELDS
    if unknown:
        raise ValidationError(f"Unknown patient fields: {', '.join(sorted(unknown))}.")
    patient = Patient(clinic_id=by.clinic_id, **fields)
    _validate_patient(patient)
    duplicates = patient_likely_duplicates(
        clinic_id=patient.clinic_id,
        given_name=patient.given_name,
        family_name=patient.family_name,
        birth_date=patient.birth_date,
        mrn=patient.mrn,
    )
    if duplicates and not register_anyway:
        raise LikelyDuplicates(duplicates)
    _save_patient(patient)
    audit_record(actor=by, action="patient.create", target=patient, patient_id=patient.pk)
    if duplicates:
        audit_record(
            actor=by,
            action="patient.register_despite_duplicate",
            target=patient,
            patient_id=patient.pk,
            detail={"duplicate_ids": [d.patient.pk for d in duplicates], "reasons": [d.reason for d in duplicates]},
        )
    return patient


@transaction.atomic
def patient_update(*, patient: Patient, by: User, **fields: Any) -> Patient:
    _ensure(roles.can_enter_results(by), "Your role cannot edit patients.")
    _ensure_same_clinic(by, patient)
    unknown = set(fields) - PATIENT_FIELDS
    if unknown:
        raise ValidationError(f"Unknown patient fields: {', '.join(sorted(unknown))}.")
    changed = sorted(name for name, value in fields.items() if getattr(patient, name) != value)
    for name, value in fields.items():
        setattr(patient, name, value)
    _validate_patient(patient)
    _save_patient(patient)
    audit_record(actor=by, action="patient.update", target=patient, patient_id=patient.pk, detail={"changed": changed})
    return patient


@dataclass(frozen=True)
class MrnRename:
    patient: Patient
    old_mrn: str
    kept_by: Patient  # the oldest of its clash, which keeps its MRN


DUPLICATE_MRN_SUFFIX = "-DUP"


def _free_mrn(patient: Patient) -> str:
    """The MRN plus -DUP1, -DUP2, ... : the first that no patient of the clinic has, in any case."""
    number = 0
    while True:
        number += 1
        suffix = f"{DUPLICATE_MRN_SUFFIX}{number}"
        candidate = patient.mrn[: Patient._meta.get_field("mrn").max_length - len(suffix)] + suffix
        if patient_mrn_holder(clinic_id=patient.clinic_id, mrn=candidate) is None:
            return candidate


@transaction.atomic
def patient_mrn_clashes_resolve(*, username: str) -> list[MrnRename]:
    """Give every patient of an MRN clash (MRNs of one clinic equal regardless of case) but the oldest a new MRN,
    one audit row each. For the records stored before MRNs were compared without regard to case (patients 0010).
    """
    renames = []
    for clash in patient_mrn_clashes():
        kept, *others = clash.patients
        # Locked in primary-key order, so that two runs cannot deadlock.
        for patient in Patient.objects.select_for_update().filter(pk__in=[p.pk for p in others]).order_by("pk"):
            old_mrn, patient.mrn = patient.mrn, _free_mrn(patient)
            patient.save(update_fields=["mrn", "updated_at"])
            audit_record(
                actor=None,
                username=username,
                action="patient.mrn_rename",
                target=patient,
                patient_id=patient.pk,
                detail={"old_mrn": old_mrn, "new_mrn": patient.mrn, "clashed_with": kept.pk},
            )
            renames.append(MrnRename(patient, old_mrn, kept))
    return renames


@dataclass(frozen=True)
class ObservationInput:
    analyte: str  # code, LOINC code or name
    value: float
    unit: str


def _build_observation(
    *, patient: Patient, entry: ObservationInput, effective_at: datetime.datetime, source: str, by: User | None
) -> Observation:
    spec = catalog().get(entry.analyte)
    if spec is None:
        raise InvalidValue(f"Unknown analyte {entry.analyte!r}.")
    value = check_plausible(spec, entry.value, entry.unit)
    age = age_on(patient.birth_date, effective_at.date())
    return Observation(
        patient=patient,
        analyte_id=catalog().ids[spec.code],
        value=value,
        entered_value=entry.value,
        entered_unit=entry.unit,
        effective_at=effective_at,
        source=source,
        interpretation=interpret(spec, value, patient.sex, age),
        entered_by=by,
    )


@transaction.atomic
def observations_record(
    *,
    patient: Patient,
    by: User,
    entries: list[ObservationInput],
    effective_at: datetime.datetime,
    source: str = ObservationSource.MANUAL,
) -> list[Observation]:
    """Record a panel of results taken at one time: all of them, or none and every problem at once.

    Errors are keyed by the analyte as entered. Results already recorded (same analyte, time and value)
    are skipped, so entering or importing the same panel twice writes nothing new.
    """
    _ensure(roles.can_enter_results(by), "Your role cannot enter results.")
    _ensure_same_clinic(by, patient)
    if effective_at.tzinfo is None:
        raise ValidationError({"effective_at": "The time of the results needs a time zone."})
    if effective_at > timezone.now() + datetime.timedelta(minutes=5):
        raise ValidationError({"effective_at": "Results cannot be dated in the future."})
    if effective_at.date() < patient.birth_date:
        raise ValidationError({"effective_at": "Results cannot be dated before the patient's birth."})
    observations, errors, seen = [], {}, set()
    for entry in entries:
        try:
            observation = _build_observation(
                patient=patient, entry=entry, effective_at=effective_at, source=source, by=by
            )
        except InvalidValue as exc:
            errors[entry.analyte] = str(exc)
            continue
        if observation.analyte_id in seen:
            errors[entry.analyte] = "This analyte is given twice for the same time; enter it once."
        seen.add(observation.analyte_id)
        observations.append(observation)
    if errors:
        raise ValidationError(errors)
    if not observations:
        raise ValidationError("Enter at least one value.")
    existing = set(  # withdrawn results too: the same panel entered again never brings one back
        Observation.all_objects.filter(patient=patient, effective_at=effective_at).values_list("analyte_id", "value")
    )
    new = [o for o in observations if (o.analyte_id, o.value) not in existing]
    Observation.objects.bulk_create(new)
    audit_record(
        actor=by,
        action="observation.create",
        target=patient,
        patient_id=patient.pk,
        detail={
            "count": len(new),
            "skipped_duplicates": len(observations) - len(new),
            "analytes": sorted({entry.analyte for entry in entries}),
            "source": source,
        },
    )
    if new:
        _predictions_request([patient.pk])
    return new


@transaction.atomic
def observation_amend(
    *,
    observation: Observation,
    by: User | None,
    reason: str,
    value: float | None = None,
    unit: str = "",
    source: str = ObservationSource.MANUAL,
    username: str = "",
) -> Observation | None:
    """Correct a result (`value` and `unit` given) or withdraw it as entered in error (`value` None).

    The result is kept, marked corrected or entered in error with the reason, who and when, and is no longer
    read for care; a correction is a new result at the same time that replaces it. Flags, the prediction and the
    advice that read it are computed again once this commits. Returns the correction (None for a withdrawal).
    Audited with the old and new values. `by` None is a lab's own correction arriving through its interface
    (`labfeed`), which found the result in the lab's clinic and names itself in `username` for the audit row.
    """
    patient = observation.patient
    if by is not None:
        _ensure(roles.can_enter_results(by), "Your role cannot correct results.")
        _ensure_same_clinic(by, patient)
    reason = " ".join(reason.split())
    if not reason:
        raise ValidationError({"reason": "Say why the result is corrected or withdrawn: the reason is kept with it."})
    if len(reason) > AMEND_REASON_MAX:
        raise ValidationError({"reason": f"Keep the reason to {AMEND_REASON_MAX} characters (it has {len(reason)})."})
    current = Observation.all_objects.select_for_update().select_related("analyte").get(pk=observation.pk)
    if current.status != ObservationStatus.FINAL:
        raise ValidationError(f"This result was already {current.get_status_display().lower()}; nothing was changed.")
    correction = None
    if value is not None:
        entry = ObservationInput(analyte=current.analyte.code, value=value, unit=unit or current.analyte.unit)
        try:
            correction = _build_observation(
                patient=patient, entry=entry, effective_at=current.effective_at, source=source, by=by
            )
        except InvalidValue as exc:
            raise ValidationError({"value": str(exc)}) from exc
        taken = Observation.all_objects.filter(
            patient=patient, analyte_id=current.analyte_id, effective_at=current.effective_at, value=correction.value
        )
        if taken.exists():
            raise ValidationError({"value": "That is the value already recorded for this time: nothing to correct."})
        correction.save()
    status = ObservationStatus.CORRECTED if correction else ObservationStatus.ENTERED_IN_ERROR
    Observation.all_objects.filter(pk=current.pk).update(
        status=status, amended_at=timezone.now(), amended_by=by, amend_reason=reason, replaced_by=correction
    )
    audit_record(
        actor=by,
        username=username,
        action="observation.correct" if correction else "observation.entered_in_error",
        target=patient,
        patient_id=patient.pk,
        detail={
            "observation_id": current.pk,
            "analyte": current.analyte.code,
            "effective_at": current.effective_at.isoformat(),
            "old": {"value": current.entered_value, "unit": current.entered_unit},
            "new": {"value": correction.entered_value, "unit": correction.entered_unit} if correction else None,
            "correction_id": correction.pk if correction else None,
            "reason": reason,
        },
    )
    _predictions_request([patient.pk])
    return correction


@transaction.atomic
def critical_results_acknowledge(*, patient: Patient, by: User, note: str = "") -> list[Observation]:
    """A doctor acknowledges the patient's values in a critical range not yet acknowledged: seen and taken on,
    with what they did about it (`note`, optional: "patient called, repeat potassium at the ED").

    Returns those acknowledged (none waiting is not an error, and writes nothing). Audited with their ids.
    """
    _ensure(roles.can_acknowledge_critical_results(by), "Only a doctor can acknowledge critical results.")
    _ensure_same_clinic(by, patient)
    note = " ".join(note.split())
    if len(note) > ACKNOWLEDGEMENT_NOTE_MAX:
        raise ValidationError(
            f"Keep the note to {ACKNOWLEDGEMENT_NOTE_MAX} characters (it has {len(note)}): nothing was acknowledged."
        )
    waiting = list(
        Observation.objects.select_for_update()
        .filter(patient=patient, interpretation__in=CRITICAL, acknowledged_at__isnull=True)
        .order_by("effective_at", "pk")
    )
    if not waiting:
        return []
    now = timezone.now()
    Observation.objects.filter(pk__in=[o.pk for o in waiting]).update(
        acknowledged_at=now, acknowledged_by=by, acknowledgement_note=note
    )
    for observation in waiting:
        observation.acknowledged_at, observation.acknowledged_by, observation.acknowledgement_note = now, by, note
    audit_record(
        actor=by,
        action="observation.critical.acknowledge",
        target=patient,
        patient_id=patient.pk,
        detail={"observation_ids": [o.pk for o in waiting], "note": note},
    )
    return waiting


def _predictions_request(patient_ids: list[int]) -> None:
    """New results change the patient's risk: score them again once this transaction commits."""
    from predictions.services import prediction_request  # predictions reads patients; import at call time

    prediction_request(patient_ids=patient_ids)


def _check_verification(by: User, status: str) -> None:
    if status == VerificationStatus.CONFIRMED:
        _ensure(roles.can_confirm_diagnosis(by), "Only a doctor can confirm a diagnosis.")


@transaction.atomic
def condition_record(*, patient: Patient, by: User, **fields: Any) -> Condition:
    _ensure(roles.can_enter_results(by), "Your role cannot record conditions.")
    _ensure_same_clinic(by, patient)
    unknown = set(fields) - CONDITION_FIELDS
    if unknown:
        raise ValidationError(f"Unknown condition fields: {', '.join(sorted(unknown))}.")
    _check_verification(by, fields.get("verification_status", VerificationStatus.PROVISIONAL))
    condition = Condition(patient=patient, recorded_by=by, verified_by=by, verified_at=timezone.now(), **fields)
    condition.code = condition.code.strip().upper()
    condition.full_clean()
    condition.save()
    audit_record(actor=by, action="condition.create", target=condition, patient_id=patient.pk)
    return condition


@transaction.atomic
def condition_update(*, condition: Condition, by: User, **fields: Any) -> Condition:
    _ensure(roles.can_enter_results(by), "Your role cannot edit conditions.")
    _ensure_same_clinic(by, condition.patient)
    unknown = set(fields) - CONDITION_FIELDS
    if unknown:
        raise ValidationError(f"Unknown condition fields: {', '.join(sorted(unknown))}.")
    verifies = "verification_status" in fields and fields["verification_status"] != condition.verification_status
    if verifies:
        _check_verification(by, fields["verification_status"])
    changed = sorted(name for name, value in fields.items() if getattr(condition, name) != value)
    for name, value in fields.items():
        setattr(condition, name, value)
    if verifies:  # a clinician decided: their status counts now, not what an import's file said
        condition.verified_by, condition.verified_at = by, timezone.now()
    condition.full_clean()
    condition.save()
    audit_record(
        actor=by,
        action="condition.update",
        target=condition,
        patient_id=condition.patient_id,
        detail={"changed": changed},
    )
    return condition


CONFIRM_BATCH_MAX = 500  # diagnoses confirmed in one submission (one audit row lists them all)


@transaction.atomic
def imported_conditions_confirm(*, by: User, condition_ids: list[int]) -> list[Condition]:
    """A doctor confirms imported diagnoses in bulk: each becomes confirmed by them, and so a training label.

    The caller resolved the ids through `patients.selectors.imported_conditions_awaiting_for` (the doctor's clinic,
    still awaiting a doctor); one already verified meanwhile is left as it is. One audit row lists the batch.
    """
    _ensure(roles.can_confirm_diagnosis(by), "Only a doctor can confirm a diagnosis.")
    if len(condition_ids) > CONFIRM_BATCH_MAX:
        raise ValidationError(f"Confirm at most {CONFIRM_BATCH_MAX} diagnoses at a time.")
    waiting = list(
        Condition.objects.select_for_update()
        .filter(pk__in=condition_ids, source__in=IMPORTED_CONDITION_SOURCES, verified_by__isnull=True)
        .select_related("patient__clinic")
        .order_by("pk")
    )
    for condition in waiting:
        _ensure_same_clinic(by, condition.patient)
    now = timezone.now()
    for condition in waiting:
        condition.verification_status = VerificationStatus.CONFIRMED
        condition.verified_by, condition.verified_at, condition.updated_at = by, now, now
    Condition.objects.bulk_update(waiting, ["verification_status", "verified_by", "verified_at", "updated_at"])
    if waiting:
        audit_record(
            actor=by,
            action="condition.confirm_imported",
            target=waiting[0].patient.clinic,
            detail={"condition_ids": [c.pk for c in waiting], "patient_ids": sorted({c.patient_id for c in waiting})},
        )
    return waiting


@transaction.atomic
def trusted_source_add(*, clinic: Clinic, source: str, by: User, reason: str) -> TrustedSource:
    """A clinic admin takes an import source's diagnoses as training labels (see `TrustedSource`)."""
    _ensure(roles.can_manage_clinic(by) and (by.is_superuser or by.clinic_id == clinic.pk),
            "Only an admin of this clinic can trust an import source.")  # fmt: skip
    trusted = TrustedSource(clinic=clinic, source=source, trusted_by=by, reason=reason.strip())
    trusted.full_clean()
    trusted.save()
    audit_record(actor=by, action="trusted_source.add", target=clinic, detail={"source": source, "reason": reason})
    return trusted


@transaction.atomic
def trusted_source_remove(*, trusted: TrustedSource, by: User) -> None:
    """Its diagnoses wait for a doctor again (the next training run reads them so)."""
    _ensure(roles.can_manage_clinic(by) and (by.is_superuser or by.clinic_id == trusted.clinic_id),
            "Only an admin of this clinic can stop trusting an import source.")  # fmt: skip
    audit_record(actor=by, action="trusted_source.remove", target=trusted.clinic, detail={"source": trusted.source})
    trusted.delete()


@transaction.atomic
def medication_add(*, patient: Patient, by: User, name: str, dose: str = "", started_on=None) -> Medication:
    _ensure(roles.can_enter_results(by), "Your role cannot record medications.")
    _ensure_same_clinic(by, patient)
    medication = Medication(patient=patient, name=name, dose=dose, started_on=started_on, recorded_by=by)
    medication.full_clean()
    medication.save()
    audit_record(actor=by, action="medication.create", target=medication, patient_id=patient.pk)
    return medication


@transaction.atomic
def medication_stop(*, medication: Medication, by: User, stopped_on: datetime.date) -> Medication:
    _ensure(roles.can_enter_results(by), "Your role cannot change medications.")
    _ensure_same_clinic(by, medication.patient)
    if medication.started_on and stopped_on < medication.started_on:
        raise ValidationError({"stopped_on": "A medication cannot stop before it started."})
    medication.stopped_on = stopped_on
    medication.save(update_fields=["stopped_on"])
    audit_record(actor=by, action="medication.stop", target=medication, patient_id=medication.patient_id)
    return medication


@transaction.atomic
def allergy_add(
    *, patient: Patient, by: User, substance: str, reaction: str = "", severity: str = "unknown"
) -> Allergy:
    _ensure(roles.can_enter_results(by), "Your role cannot record allergies.")
    _ensure_same_clinic(by, patient)
    allergy = Allergy(patient=patient, substance=substance, reaction=reaction, severity=severity, recorded_by=by)
    allergy.full_clean()
    allergy.save()
    audit_record(actor=by, action="allergy.create", target=allergy, patient_id=patient.pk)
    return allergy
