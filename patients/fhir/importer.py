"""FHIR resources to the clinical record's terms: patients, measurements in canonical units, ICD-10 conditions.

Nothing here writes; `patients.fhir.services.fhir_import` resolves patients against the database and
stores what this module collected. Resources are validated with the fhir.resources R4B models (R4B's
Patient, Observation and Condition accept R4 JSON unchanged), and only those that would be stored:
an Observation whose codes are all unknown is counted without being validated, which keeps a
generator's bundle of thousands of observations fast.

What is not stored is reported, never silently dropped:
- resources of other types: counted per type;
- observations with LOINC codes outside the analyte catalog: listed with their display and count, and the share of
  the file's numeric laboratory results the catalog recognised is given (`laboratory`);
- conditions without an ICD-10 coding (Synthea codes conditions in SNOMED CT only): counted as skipped
  with reason "no ICD-10 coding" and listed, unless the SNOMED CT code is mapped in `patients.fhir.snomed`.

Two kinds of problem with a single resource are collected, and the service treats them differently:
- `problems`: clinically wrong content (an implausible value, a unit the catalog does not accept, a result dated
  in the future or before birth). The file is refused unless asked to skip them: rule 6, bad values are never
  half-imported silently.
- `unreadable`: a resource that cannot be read (not valid FHIR, no identifier or name, no time, a value that is not
  a number, a subject not in the file). It is skipped and listed with its id and reason, so one bad resource never
  costs the rest of the file; a strict import refuses the file instead. A Patient that cannot be read takes its
  resources with it (counted, not stored: they would have nowhere to go).
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from fhir.resources.R4B.condition import Condition as FhirCondition
from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError as PydanticError

from patients.catalog import catalog
from patients.catalog_data import AnalyteSpec
from patients.clinical import InvalidValue, check_plausible, unit_of
from patients.fhir.exporter import INTERPRETATION
from patients.fhir.reader import FhirFile, Item
from patients.fhir.snomed import SNOMED_TO_ICD10
from patients.models import ClinicalStatus, Sex, VerificationStatus, icd10_code

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10_SYSTEMS = {"http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm"}
SKIPPED_OBSERVATION_STATUSES = {"entered-in-error", "cancelled"}
# Not final yet: the lab's feed keeps such a result apart and never reads it for care (labfeed); in an export or a
# prefetch it is an Observation whose status says so. It is counted and named, never taken as a final result.
NOT_FINAL_OBSERVATION_STATUSES = {"registered", "preliminary"}
# UCUM annotations of questionnaire scores and counts. Synthea files questionnaires (PHQ-2, GAD-7, AUDIT-C, household
# size) under the "laboratory" category; they are not laboratory measurements, so they are not in the coverage figure.
SCORE_UNITS = {"{score}", "{#}", "{count}"}
GENDER_TO_SEX = {"female": Sex.FEMALE, "male": Sex.MALE, "other": Sex.OTHER, "unknown": Sex.UNKNOWN}
CLINICAL_STATUS = {
    "active": ClinicalStatus.ACTIVE,
    "recurrence": ClinicalStatus.RECURRENCE,
    "relapse": ClinicalStatus.RECURRENCE,
    "inactive": ClinicalStatus.INACTIVE,
    "remission": ClinicalStatus.REMISSION,
    "resolved": ClinicalStatus.RESOLVED,
}
VERIFICATION_STATUS = {
    "unconfirmed": VerificationStatus.PROVISIONAL,
    "provisional": VerificationStatus.PROVISIONAL,
    "differential": VerificationStatus.PROVISIONAL,
    "confirmed": VerificationStatus.CONFIRMED,
    "refuted": VerificationStatus.REFUTED,
    "entered-in-error": VerificationStatus.ENTERED_IN_ERROR,
}
_PARTIAL_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


class ResourceProblem(ValueError):
    """One resource that cannot be read; the message is for the person who sent the file."""


class ClinicalProblem(ResourceProblem):
    """One resource that was read and is clinically wrong (an impossible value, a unit that is not the analyte's)."""


@dataclass(frozen=True)
class PatientData:
    where: str
    refs: tuple[str, ...]  # what observations and conditions may call it: its fullUrl, "Patient/<id>"
    mrn: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Measurement:
    where: str
    subject: str | None
    spec: AnalyteSpec
    value: float  # canonical unit
    entered_value: float
    entered_unit: str
    effective_at: datetime.datetime
    lab_flag: str = ""  # the source's own interpretation (HH, LL, AA, ...), for `with_lab_critical_call`


@dataclass(frozen=True)
class ConditionData:
    where: str
    subject: str | None
    fields: dict[str, Any]


@dataclass
class Collected:
    kind: str
    resources: int = 0
    patients: list[PatientData] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)
    conditions: list[ConditionData] = field(default_factory=list)
    skipped_types: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    unknown_codes: Counter = field(default_factory=Counter)  # (system, code, display) -> count
    not_final: Counter = field(default_factory=Counter)  # (status, system, code, display) -> count
    unmapped_conditions: Counter = field(default_factory=Counter)
    mapped_from_snomed: int = 0
    problems: list[str] = field(default_factory=list)  # clinically wrong: refuse the file unless skipping
    unreadable: list[str] = field(default_factory=list)  # skipped and listed, unless the import is strict
    skipped_patient_refs: set[str] = field(default_factory=set)  # what the unreadable Patients' resources call them
    lab_numeric: int = 0  # numeric laboratory results in the file (questionnaire scores aside)
    lab_recognised: int = 0  # of which the catalog knows the code


# --- small readers of FHIR datatypes -------------------------------------------------------------------


# Validation allows null for any element, and the unknown resources are not validated: read defensively.
def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in _list(value) if isinstance(v, dict)]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in _list(concept.get("coding")) if isinstance(c, dict) and isinstance(c.get("code"), str)]


def _first_code(concept: Any, systems: set[str]) -> dict[str, Any] | None:
    return next((c for c in _codings(concept) if c.get("system") in systems), None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _label(concept: Any, preferred: str) -> tuple[str, str, str]:
    """(system, code, display) naming a concept in the summary: its coding in `preferred`, else its first."""
    codings = _codings(concept)
    coding = _first_code(concept, {preferred}) or (codings[0] if codings else {})
    text = concept.get("text") if isinstance(concept, dict) else ""
    return _text(coding.get("system")), _text(coding.get("code")), _text(coding.get("display")) or _text(text)


def parse_datetime(value: Any) -> datetime.datetime:
    """A FHIR dateTime or instant as an aware UTC datetime; a date without a time is midnight UTC."""
    if not isinstance(value, str):
        raise ResourceProblem("has no effective time.")
    try:
        if _PARTIAL_DATE.match(value):
            year, month, day = (int(part) for part in (value.split("-") + ["1", "1"])[:3])
            return datetime.datetime(year, month, day, tzinfo=datetime.UTC)
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ResourceProblem(f"time {value!r} is not a FHIR dateTime.") from None
    if parsed.tzinfo is None:
        raise ResourceProblem(f"time {value!r} has no time zone.")
    try:
        return parsed.astimezone(datetime.UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is in year 0 in UTC
        raise ResourceProblem(f"time {value!r} is outside the calendar.") from None


def _parse_date(value: Any) -> datetime.date | None:
    """The calendar date as written (a dateTime's date in its own time zone)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.date.fromisoformat(value[:10])
    except ValueError:
        raise ResourceProblem(f"date {value!r} is not a full date.") from None


def _validate(model: type, item: Item) -> None:
    try:
        model.model_validate(item.resource)
    except PydanticError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'resource'}: {error['msg']}" for error in exc.errors()[:3]
        )
        raise ResourceProblem(f"is not a valid FHIR {model.__name__}: {details}") from None


# --- Patient ---------------------------------------------------------------------------------------


def _mrn(resource: dict[str, Any]) -> str:
    identifiers = [i for i in _dicts(resource.get("identifier")) if _text(i.get("value")).strip()]
    for identifier in identifiers:
        if any(c.get("code") == "MR" for c in _codings(identifier.get("type"))):
            return identifier["value"].strip()
    if identifiers:
        return identifiers[0]["value"].strip()
    raise ResourceProblem("has no identifier (medical record number) to match the patient on.")


def _name(resource: dict[str, Any]) -> tuple[str, str]:
    names = _dicts(resource.get("name"))
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = " ".join(_text(g) for g in _list(name.get("given"))).strip()
    family = _text(name.get("family")).strip()
    if not family or not given:
        raise ResourceProblem("needs a given and a family name.")
    return given, family


def _address(resource: dict[str, Any]) -> str:
    address = next(iter(_dicts(resource.get("address"))), {})
    if _text(address.get("text")):
        return address["text"]
    place = " ".join(_text(address.get(key)) for key in ("city", "state", "postalCode") if _text(address.get(key)))
    lines = [_text(line) for line in _list(address.get("line"))]
    return ", ".join(p for p in (*lines, place, _text(address.get("country"))) if p)


def _telecom(resource: dict[str, Any], system: str) -> str:
    return next(
        (t["value"] for t in _dicts(resource.get("telecom")) if t.get("system") == system and _text(t.get("value"))), ""
    )


def _refs(item: Item) -> tuple[str, ...]:
    """What the file's other resources may call this Patient: its fullUrl and "Patient/<id>"."""
    refs = [item.full_url] if item.full_url else []
    if _text(item.resource.get("id")):
        refs.append(f"Patient/{item.resource['id']}")
    return tuple(refs)


def _patient(item: Item) -> PatientData:
    _validate(FhirPatient, item)
    resource = item.resource
    birth = resource.get("birthDate")
    if not isinstance(birth, str) or len(birth) != 10:
        raise ResourceProblem("needs a full birthDate (YYYY-MM-DD).")
    given, family = _name(resource)
    return PatientData(
        where=item.where,
        refs=_refs(item),
        mrn=_mrn(resource),
        fields={
            "given_name": given,
            "family_name": family,
            "birth_date": datetime.date.fromisoformat(birth),
            "sex": GENDER_TO_SEX.get(_text(resource.get("gender")), Sex.UNKNOWN),
            "email": _telecom(resource, "email"),
            "phone": _telecom(resource, "phone"),
            "address": _address(resource),
        },
    )


# --- Observation -------------------------------------------------------------------------------------


def _has_value(part: dict[str, Any]) -> bool:
    return any(key.startswith("value") for key in part) or "dataAbsentReason" in part


def _parts(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """The coded values of an observation: a panel's components (blood pressure) and its own value."""
    components = [c for c in _list(resource.get("component")) if isinstance(c, dict)]
    own = [resource] if _has_value(resource) or not components else []
    return own + components


def _known(part: dict[str, Any]) -> AnalyteSpec | None:
    by_loinc = catalog().by_loinc
    codes = (c["code"] for c in _codings(part.get("code")) if c.get("system") == LOINC)
    return next((by_loinc[code] for code in codes if code in by_loinc), None)


def _effective(resource: dict[str, Any]) -> datetime.datetime:
    period = _dict(resource.get("effectivePeriod"))
    for value in (resource.get("effectiveDateTime"), resource.get("effectiveInstant"), period.get("start")):
        if value is not None:
            return parse_datetime(value)
    return parse_datetime(resource.get("issued"))


def _measurement(item: Item, part: dict[str, Any], spec: AnalyteSpec, when: datetime.datetime) -> Measurement:
    quantity = part.get("valueQuantity")
    if not isinstance(quantity, dict) or quantity.get("value") is None:
        raise ResourceProblem(f"{spec.name} has no valueQuantity.")
    if quantity.get("comparator"):
        raise ResourceProblem(f"{spec.name} {quantity['comparator']}{quantity.get('value')} is not an exact value.")
    value, unit = quantity.get("value"), unit_of(spec, quantity.get("code"), quantity.get("unit"))
    try:
        canonical = check_plausible(spec, value, unit)
    except InvalidValue as exc:
        raise ClinicalProblem(str(exc)) from None
    subject = _text(_dict(item.resource.get("subject")).get("reference")) or None
    return Measurement(item.where, subject, spec, canonical, float(value), unit, when, _interpretation(part))


def _interpretation(part: dict[str, Any]) -> str:
    """The source's own flag of a value (HL7 v3 ObservationInterpretation: H, HH, AA, ...), or ""."""
    concepts = _list(part.get("interpretation"))
    return next((c["code"] for concept in concepts for c in _codings(concept) if c.get("system") == INTERPRETATION), "")


def _is_laboratory(resource: dict[str, Any]) -> bool:
    return any(c["code"] == "laboratory" for concept in _list(resource.get("category")) for c in _codings(concept))


def _is_lab_measurement(part: dict[str, Any]) -> bool:
    quantity = part.get("valueQuantity")
    if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), int | float):
        return False
    return not {quantity.get("code"), quantity.get("unit")} & SCORE_UNITS


def _observation(item: Item, collected: Collected) -> None:
    resource = item.resource
    status = _text(resource.get("status"))
    if status in SKIPPED_OBSERVATION_STATUSES:
        collected.skipped[f"Observation with status {status}"] += 1
        return
    if status in NOT_FINAL_OBSERVATION_STATUSES:
        collected.skipped[f"Observation with status {status} (not final)"] += 1
        for part in _parts(resource):
            collected.not_final[(status, *_label(part.get("code"), LOINC))] += 1
        return
    known = []
    laboratory = _is_laboratory(resource)
    for part in _parts(resource):
        spec = _known(part)
        if laboratory and _is_lab_measurement(part):
            collected.lab_numeric += 1
            collected.lab_recognised += spec is not None
        if spec is None:
            collected.unknown_codes[_label(part.get("code"), LOINC)] += 1
        elif "valueQuantity" not in part and "dataAbsentReason" in part:
            collected.skipped["Observation without a value (dataAbsentReason)"] += 1
        else:
            known.append((part, spec))
    if not known:
        return
    _validate(FhirObservation, item)
    when = _effective(resource)
    # Build all before keeping any: a panel with one bad component is one problem, not half a panel.
    collected.measurements.extend([_measurement(item, part, spec, when) for part, spec in known])


# --- Condition ---------------------------------------------------------------------------------------


def _icd10(code: str) -> str:
    code = code.strip().upper()
    if "." not in code and len(code) > 3:
        code = f"{code[:3]}.{code[3:]}"
    try:
        icd10_code(code)
    except ValidationError:
        raise ResourceProblem(f"{code!r} is not an ICD-10 code.") from None
    return code


def _status(concept: Any, mapping: dict[str, str], default: str) -> str:
    for coding in _codings(concept):
        if coding["code"] in mapping:
            return mapping[coding["code"]]
    return default


def _condition_code(resource: dict[str, Any], collected: Collected) -> tuple[str, str, str] | None:
    """(ICD-10 code, display, note) or None when the condition has no ICD-10 coding and no mapping."""
    concept = resource.get("code")
    coding = _first_code(concept, ICD10_SYSTEMS)
    if coding is not None:
        return _icd10(coding["code"]), _text(coding.get("display")) or _text(concept.get("text")), ""
    snomed = _first_code(concept, {SNOMED})
    if snomed is not None and snomed["code"] in SNOMED_TO_ICD10:
        code, display = SNOMED_TO_ICD10[snomed["code"]]
        collected.mapped_from_snomed += 1
        source = _text(snomed.get("display")) or _text(concept.get("text"))
        return code, display, f"Imported from FHIR: SNOMED CT {snomed['code']} ({source}) recorded as ICD-10 {code}."
    collected.skipped["Condition: no ICD-10 coding"] += 1
    collected.unmapped_conditions[_label(concept, SNOMED)] += 1
    return None


def _onset(resource: dict[str, Any]) -> datetime.date | None:
    period = _dict(resource.get("onsetPeriod"))
    return _parse_date(resource.get("onsetDateTime") or period.get("start"))


def _condition(item: Item, collected: Collected) -> None:
    resource = item.resource
    coded = _condition_code(resource, collected)
    if coded is None:
        return
    _validate(FhirCondition, item)
    code, display, mapped_note = coded
    notes = [n["text"] for n in _dicts(resource.get("note")) if _text(n.get("text"))]
    subject = _text(_dict(resource.get("subject")).get("reference")) or None
    fields = {
        "code": code,
        "display": (display or code)[:200],
        "onset_date": _onset(resource),
        "clinical_status": _status(resource.get("clinicalStatus"), CLINICAL_STATUS, ClinicalStatus.ACTIVE),
        "verification_status": _status(
            resource.get("verificationStatus"), VERIFICATION_STATUS, VerificationStatus.PROVISIONAL
        ),
        "note": "\n".join([*notes, mapped_note] if mapped_note else notes),
    }
    collected.conditions.append(ConditionData(item.where, subject, fields))


# --- the file ----------------------------------------------------------------------------------------


def collect(fhir_file: FhirFile) -> Collected:
    """Read every resource of the file; what cannot be stored is left in `problems` and `unreadable` for the
    caller to refuse or skip."""
    collected = Collected(kind=fhir_file.kind, resources=len(fhir_file.items))
    if fhir_file.empty_entries:
        collected.skipped["Bundle entry without a resource"] += fhir_file.empty_entries
    for item in fhir_file.items:
        kind = item.resource["resourceType"]
        try:
            if kind == "Patient":
                _read_patient(item, collected)
            elif kind == "Observation":
                _observation(item, collected)
            elif kind == "Condition":
                _condition(item, collected)
            else:
                collected.skipped_types[kind] += 1
        except ClinicalProblem as exc:
            collected.problems.append(f"{item.where}: {exc}")
        except ResourceProblem as exc:
            collected.unreadable.append(f"{item.where}: {exc}")
    return collected


def _read_patient(item: Item, collected: Collected) -> None:
    try:
        collected.patients.append(_patient(item))
    except ResourceProblem:
        collected.skipped_patient_refs.update(_refs(item))
        raise
