"""Receiving a lab's HL7 v2 results: one message, one transaction, one acknowledgement.

`hl7_message_receive` is the one entry point of the MLLP listener and of `import_hl7`. A message is answered AA only
once everything it brought is committed: its results stored (or held on the unmatched results worklist when its
patient is not identified), its log row and its audit row. Anything that cannot be stored refuses the whole message
and writes nothing but the log row of the refusal: AR for a message this interface does not take (malformed, from
an unknown sender, of another type), AE for one it read but cannot store (a unit the catalog does not accept, an
impossible value, a result with no time). A message sent again (same sending facility and MSH-10) writes nothing and
gets the acknowledgement code of the first time.

Results follow the lab's OBX-11: P preliminary (stored, shown as such, not read for care), F final (replaces a
preliminary of the same patient, analyte and specimen time, which is kept in the history), C corrected (amends the
final through `patients.services.observation_amend`, the path staff use) and X cancelled (withdraws it).
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Upper
from django.utils import timezone

from clinic import roles
from clinic.audit import audit_record
from clinic.models import AuditOutcome, User
from labfeed import hl7v2
from labfeed.hl7v2 import Header, PatientIdentity, Refusal, Result
from labfeed.models import (
    AckCode,
    HL7Message,
    LabCodeMap,
    LabConnection,
    MessageOutcome,
    UnmatchedResult,
    UnmatchedStatus,
)
from patients.catalog import catalog
from patients.catalog_data import AnalyteSpec
from patients.clinical import (
    CRITICAL_LABELS,
    InvalidValue,
    age_on,
    check_plausible,
    critical_text,
    interpret,
    unit_of,
    with_lab_critical_call,
)
from patients.models import Observation, ObservationSource, ObservationStatus, Patient
from patients.services import observation_amend

logger = logging.getLogger(__name__)

ACTION = "hl7.message"
FUTURE_TOLERANCE = datetime.timedelta(minutes=5)
STATUSES = {"P": "preliminary", "F": "final", "C": "corrected", "X": "cancelled"}
SEXES = {"F": "female", "M": "male"}
# OBX-8 flags (HL7 table 0078) that say the same thing as one of our interpretations.
LAB_FLAGS = {"L": {"L"}, "H": {"H"}, "LL": {"LL"}, "HH": {"HH"}, "N": {"N"},
             "A": {"L", "H", "LL", "HH"}, "AA": {"LL", "HH"}}  # fmt: skip


@dataclass(frozen=True)
class Receipt:
    """What the sender is answered, and what became of the message."""

    ack: str
    code: str
    outcome: str
    error: str = ""
    message_id: int | None = None
    resent: bool = False


@dataclass(frozen=True)
class Planned:
    """One OBX checked against the catalog: analyte known, value numeric, unit accepted, value plausible."""

    label: str
    analyte: str  # catalog code
    status: str  # P, F, C or X
    value: float | None  # canonical; None for a cancellation
    entered_value: float | None
    entered_unit: str
    effective_at: datetime.datetime
    lab_flag: str

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "effective_at": self.effective_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Planned:
        return cls(**{**data, "effective_at": datetime.datetime.fromisoformat(data["effective_at"])})


@dataclass
class Tally:
    """Counts and notes of one message (or one resolution of held results), as its log row keeps them."""

    created: int = 0
    replaced: int = 0
    corrected: int = 0
    withdrawn: int = 0
    duplicates: int = 0
    held: int = 0
    skipped: int = 0
    critical: int = 0
    notes: list[dict[str, str]] = field(default_factory=list)
    final_for: set[int] = field(default_factory=set)  # patients whose results read for care changed

    def note(self, kind: str, label: str, text: str) -> None:
        self.notes.append({"kind": kind, "obx": label, "text": text})

    def counts(self) -> dict[str, int]:
        names = ("created", "replaced", "corrected", "withdrawn", "duplicates", "held", "skipped", "critical")
        return {name: getattr(self, name) for name in names}


# --- reading a message into a plan --------------------------------------------------------------------------------


def _connection_for(header: Header) -> LabConnection:
    """The active connection of the sending facility (and application, when the connection names one), or AR."""
    candidates = LabConnection.objects.select_related("clinic").filter(
        active=True, sending_facility__iexact=header.sending_facility
    )
    for connection in sorted(candidates, key=lambda c: not c.sending_application):
        if not connection.sending_application or (
            connection.sending_application.upper() == header.sending_application.upper()
        ):
            return connection
    sender = header.sending_facility
    if header.sending_application:
        sender += f" (application {header.sending_application})"
    raise hl7v2.rejected(
        f"No active lab connection for sending facility {sender}: a clinic admin sets one up before results are "
        "accepted.", hl7v2.UNKNOWN_KEY, "MSH-4",
    )  # fmt: skip


def _analyte(result: Result, connection: LabConnection, code_maps: dict[str, str]) -> AnalyteSpec | None:
    """OBX-3 as a LOINC code of the catalog (its first or alternate triplet: both name the same test), else either
    code through the connection's map: the lab's own code, or a LOINC code the catalog does not list, which a clinic
    admin maps the same way."""
    lookup = catalog()
    for code, system in ((result.code, result.system), (result.alt_code, result.alt_system)):
        if code and system == "LN" and code in lookup.by_loinc:
            return lookup.by_loinc[code]
    for code in (result.code, result.alt_code):
        if code in code_maps:
            return lookup.by_code[code_maps[code]]
    return None


def _unknown_codes_text(result: Result, connection: LabConnection) -> str:
    """Why a result's codes found no analyte: "Codes 39789-3 (LN) and KV (L) are neither ... not stored."."""
    codes = [(code, system) for code, system in ((result.code, result.system), (result.alt_code, result.alt_system))
             if code] or [("(none)", "")]  # fmt: skip
    named = " and ".join(f"{code} ({system or 'no coding system'})" for code, system in codes)
    if len(codes) == 1:
        return f"Code {named} is neither a LOINC code of the catalog nor mapped for {connection.name}: not stored."
    return f"Codes {named} are neither LOINC codes of the catalog nor mapped for {connection.name}: not stored."


def _aware(moment: datetime.datetime, zone: datetime.tzinfo) -> datetime.datetime:
    """A time without an offset is the clinic's local time."""
    return moment if moment.tzinfo else timezone.make_aware(moment, zone)


def _plan_result(result: Result, connection: LabConnection, code_maps: dict[str, str], tally: Tally) -> Planned | None:
    """The result as it will be stored, None when it is listed instead (not stored), or AE when it cannot be."""
    if result.status not in STATUSES:
        tally.skipped += 1
        tally.note("status", result.label, f"Result status {result.status} is not stored (only P, F, C and X are).")
        return None
    spec = _analyte(result, connection, code_maps)
    if spec is None:
        tally.skipped += 1
        tally.note("unknown_code", result.label, _unknown_codes_text(result, connection))
        return None
    if result.specimen_at is None:
        raise Refusal("AE", f"{result.label} has no specimen time (OBR-7 or OBX-14).", hl7v2.REQUIRED_FIELD_MISSING,
                      result.label)  # fmt: skip
    effective_at = _aware(result.specimen_at, connection.clinic.zone)
    if effective_at > timezone.now() + FUTURE_TOLERANCE:
        raise Refusal("AE", f"{result.label} is dated in the future ({effective_at:%Y-%m-%d %H:%M}).",
                      hl7v2.DATA_TYPE_ERROR, result.label)  # fmt: skip
    if result.status == "X":
        return Planned(result.label, spec.code, "X", None, None, "", effective_at, result.flag)
    number = hl7v2.numeric_value(result)
    if number is None:
        tally.skipped += 1
        tally.note("not_numeric", result.label, f"Value type {result.value_type or '(none)'} {result.value!r} is not "
                   "a plain number: not stored.")  # fmt: skip
        return None
    # OBX-6 as the lab spells it ("x10E3/uL", "mg/dl") is read as the catalog's unit, as a CSV import reads it; a
    # unit left out, or one the analyte is not measured in, refuses the message.
    unit = unit_of(spec, result.unit)
    try:
        value = check_plausible(spec, number, unit)
    except InvalidValue as exc:
        raise Refusal("AE", f"{result.label}: {exc}", hl7v2.DATA_TYPE_ERROR, result.label) from exc
    return Planned(result.label, spec.code, result.status, value, number, unit, effective_at, result.flag)


# --- matching the patient -------------------------------------------------------------------------------------------


def _clinic_mrn(identity: PatientIdentity, connection: LabConnection) -> str:
    authority = connection.assigning_authority.upper()
    for identifier in identity.identifiers:
        if authority in (a.upper() for a in identifier.authority):
            return identifier.value
    return ""


def _match(identity: PatientIdentity, connection: LabConnection) -> tuple[Patient | None, str, str]:
    """(patient, MRN read, why not matched). An MRN of the clinic's authority is looked up regardless of case; a
    patient whose recorded birth date or sex contradicts the message is not taken to be the one meant."""
    mrn = _clinic_mrn(identity, connection)
    if not mrn:
        return None, "", f"No PID-3 identifier of assigning authority {connection.assigning_authority}."
    patient = (
        Patient.objects.filter(clinic_id=connection.clinic_id)
        .select_related("clinic")
        .alias(key=Upper("mrn"))
        .filter(key=mrn.upper())
        .first()
    )
    if patient is None:
        return None, mrn, f"No patient with MRN {mrn} in this clinic."
    if identity.birth_date and identity.birth_date != patient.birth_date:
        return None, mrn, (f"MRN {mrn} is a patient born {patient.birth_date:%Y-%m-%d}, but the lab gives "
                           f"{identity.birth_date:%Y-%m-%d}: check who this is.")  # fmt: skip
    if identity.sex in SEXES and patient.sex in SEXES.values() and SEXES[identity.sex] != patient.sex:
        return None, mrn, f"MRN {mrn} is a patient recorded as {patient.sex}, but the lab gives {SEXES[identity.sex]}."
    return patient, mrn, ""


# --- storing ------------------------------------------------------------------------------------------------------


class _Store:
    """Applies planned results to one patient in order, one query for what is already stored and each change
    written at once (a later OBX of the same message may replace an earlier one)."""

    def __init__(self, patient: Patient, results: list[Planned], reason: str, username: str, tally: Tally):
        self.patient, self.reason, self.username, self.tally = patient, reason, username, tally
        self.zone = patient.clinic.zone  # a birth date is a date where the clinic is
        ids = catalog().ids
        self.rows: dict[tuple[int, datetime.datetime], list[Observation]] = {}
        stored = Observation.all_objects.filter(
            patient=patient,
            analyte_id__in={ids[r.analyte] for r in results},
            effective_at__in={r.effective_at for r in results},
        ).order_by("id")
        for row in stored:
            self.rows.setdefault((row.analyte_id, row.effective_at), []).append(row)

    def apply(self, planned: Planned) -> None:
        spec = catalog().by_code[planned.analyte]
        if planned.effective_at.astimezone(self.zone).date() < self.patient.birth_date:
            raise Refusal("AE", f"{planned.label}: {spec.name} is dated before the patient's birth.",
                          hl7v2.DATA_TYPE_ERROR, planned.label)  # fmt: skip
        rows = self.rows.setdefault((catalog().ids[spec.code], planned.effective_at), [])
        live = [row for row in rows if row.status in (ObservationStatus.FINAL, ObservationStatus.PRELIMINARY)]
        current = live[-1] if live else None
        if planned.status == "X":
            self._cancel(planned, current)
        elif current is not None and current.value == planned.value:
            if current.status == ObservationStatus.PRELIMINARY and planned.status != "P":
                self._promote(current)
            else:
                self.tally.duplicates += 1
        elif any(row.value == planned.value for row in rows):
            # Withdrawn or replaced at this time with this very value: a resend never brings it back.
            self.tally.duplicates += 1
            self.tally.note("withdrawn", planned.label, f"{spec.name} {planned.entered_value:g} {planned.entered_unit} "
                            "was stored for this time before and withdrawn or replaced: not stored again.")  # fmt: skip
        elif current is None:
            self._create(planned, spec, rows)
        elif current.status == ObservationStatus.PRELIMINARY:
            self._replace(planned, spec, current, rows)
        elif planned.status == "C":
            self._correct(planned, current, rows)
        elif planned.status == "P":
            self.tally.skipped += 1
            self.tally.note("late_preliminary", planned.label, f"A final {spec.name} is already stored for this "
                            "time; a preliminary result does not replace it: not stored.")  # fmt: skip
        else:
            raise Refusal("AE", f"{planned.label}: a final {spec.name} of another value is already stored for this "
                          "specimen time; send a change as a correction (OBX-11 C).", hl7v2.DATA_TYPE_ERROR,
                          planned.label)  # fmt: skip

    def _observation(self, planned: Planned, spec: AnalyteSpec) -> Observation:
        age = age_on(self.patient.birth_date, planned.effective_at.date())
        flag = self._compare_flags(planned, spec, interpret(spec, planned.value, self.patient.sex, age))
        status = ObservationStatus.PRELIMINARY if planned.status == "P" else ObservationStatus.FINAL
        return Observation(
            patient=self.patient, analyte_id=catalog().ids[spec.code], value=planned.value,
            entered_value=planned.entered_value, entered_unit=planned.entered_unit, effective_at=planned.effective_at,
            source=ObservationSource.HL7, interpretation=flag, status=status,
        )  # fmt: skip

    def _compare_flags(self, planned: Planned, spec: AnalyteSpec, ours: str) -> str:
        """The flag to store: ours, raised to critical by the lab's critical call in the same direction
        (`with_lab_critical_call`). The lab's OBX-8 is kept in the log where it says something else."""
        flag = with_lab_critical_call(ours, planned.lab_flag)
        if flag in CRITICAL_LABELS:
            self.tally.critical += 1
            self.tally.note("critical", planned.label, critical_text(spec, planned.value, flag))
        said = LAB_FLAGS.get(planned.lab_flag)
        if flag != ours:
            self.tally.note("flag_disagreement", planned.label, f"{spec.name}: the lab flags {planned.lab_flag}, this "
                            f"clinic's limits give {ours}: stored as {flag}, the lab's critical call.")  # fmt: skip
        elif said is not None and ours and ours not in said:
            self.tally.note("flag_disagreement", planned.label, f"{spec.name}: the lab flags {planned.lab_flag}, this "
                            f"clinic's reference range gives {ours} (stored).")  # fmt: skip
        return flag

    def _stored(self, row: Observation, rows: list[Observation]) -> None:
        rows.append(row)
        if row.status == ObservationStatus.FINAL:
            self.tally.final_for.add(self.patient.pk)

    def _create(self, planned: Planned, spec: AnalyteSpec, rows: list[Observation]) -> None:
        row = self._observation(planned, spec)
        row.save(force_insert=True)
        self.tally.created += 1
        if planned.status == "C":
            self.tally.note("correction_without_original", planned.label,
                            "A correction of a result not on record: stored as the final result.")  # fmt: skip
        self._stored(row, rows)

    def _supersede(self, old: Observation, status: str, by: Observation | None, why: str) -> None:
        old.status, old.amended_at, old.amend_reason, old.replaced_by = status, timezone.now(), why, by
        Observation.all_objects.filter(pk=old.pk).update(
            status=status, amended_at=old.amended_at, amended_by=None, amend_reason=why, replaced_by=by
        )

    def _promote(self, preliminary: Observation) -> None:
        """The final result repeats the preliminary value: the same row becomes final."""
        Observation.all_objects.filter(pk=preliminary.pk).update(status=ObservationStatus.FINAL)
        preliminary.status = ObservationStatus.FINAL
        self.tally.replaced += 1
        self.tally.final_for.add(self.patient.pk)

    def _replace(self, planned: Planned, spec: AnalyteSpec, preliminary: Observation, rows: list[Observation]) -> None:
        row = self._observation(planned, spec)
        row.save(force_insert=True)
        what = "a later preliminary result" if planned.status == "P" else "the final result"
        why = f"Replaced by {what} of the lab ({self.reason})."
        self._supersede(preliminary, ObservationStatus.CORRECTED, row, why)
        self.tally.replaced += 1
        self._stored(row, rows)

    def _correct(self, planned: Planned, final: Observation, rows: list[Observation]) -> None:
        try:
            correction = observation_amend(
                observation=final, by=None, reason=f"Corrected by the lab ({self.reason}).",
                value=planned.entered_value, unit=planned.entered_unit, source=ObservationSource.HL7,
                username=self.username,
            )  # fmt: skip
        except ValidationError as exc:
            raise Refusal("AE", f"{planned.label}: {' '.join(exc.messages)}", hl7v2.DATA_TYPE_ERROR,
                          planned.label) from exc  # fmt: skip
        final.status = ObservationStatus.CORRECTED
        flag = self._compare_flags(planned, catalog().by_code[planned.analyte], correction.interpretation)
        if flag != correction.interpretation:  # the lab's critical call, as for a new result
            Observation.all_objects.filter(pk=correction.pk).update(interpretation=flag)
            correction.interpretation = flag
        self.tally.corrected += 1
        self._stored(correction, rows)

    def _cancel(self, planned: Planned, current: Observation | None) -> None:
        if current is None:
            self.tally.skipped += 1
            self.tally.note("cancel_without_original", planned.label, "Cancelled, and no result of it is on record: "
                            "nothing to withdraw.")  # fmt: skip
            return
        why = f"Cancelled by the lab ({self.reason})."
        if current.status == ObservationStatus.PRELIMINARY:
            self._supersede(current, ObservationStatus.ENTERED_IN_ERROR, None, why)
        else:
            observation_amend(observation=current, by=None, reason=why, username=self.username)
            current.status = ObservationStatus.ENTERED_IN_ERROR
            self.tally.final_for.add(self.patient.pk)
        self.tally.withdrawn += 1


def _results_store(*, patient: Patient, results: list[Planned], reason: str, username: str, tally: Tally) -> None:
    store = _Store(patient, results, reason, username, tally)
    for planned in results:
        store.apply(planned)


def _predictions_request(patient_ids: set[int]) -> None:
    """Final results changed the patients' risk: score them again once this commits."""
    from predictions.services import prediction_request  # predictions reads patients; import at call time

    if patient_ids:
        prediction_request(patient_ids=sorted(patient_ids))


# --- one message --------------------------------------------------------------------------------------------------


def _username(header: Header | None) -> str:
    return f"hl7:{header.sending_facility}" if header and header.sending_facility else "hl7:unknown sender"


def _ack(header: Header | None, code: str, text: str = "", error_code: str = "", location: str = "") -> str:
    now = timezone.now()
    control_id = f"ACK{now:%Y%m%d%H%M%S%f}"
    return hl7v2.ack_build(header=header, code=code, control_id=control_id, text=text, error_code=error_code,
                           location=location, now=now.astimezone(timezone.get_default_timezone()))  # fmt: skip


def _log(header: Header | None, connection: LabConnection | None, raw: str, **fields: Any) -> HL7Message:
    header = header or Header()
    return HL7Message.objects.create(
        connection=connection, clinic_id=connection.clinic_id if connection else None,
        sending_facility=header.sending_facility[:180], sending_application=header.sending_application[:180],
        control_id=header.control_id[:199], message_type=header.message_type[:20], version=header.version[:10],
        raw=raw, **fields,
    )  # fmt: skip


def _accept(text: str, header: Header) -> HL7Message:
    """Store the message's results or hold them, log and audit it; Refusal (after nothing was written) if not."""
    hl7v2.header_check(header)
    connection = _connection_for(header)
    message = hl7v2.oru_read(text)
    code_maps = dict(LabCodeMap.objects.filter(connection=connection).values_list("local_code", "analyte__code"))
    tally = Tally()
    planned = [
        [p for result in group.results if (p := _plan_result(result, connection, code_maps, tally)) is not None]
        for group in message.groups
    ]
    log = _log(header, connection, text, ack_code=AckCode.ACCEPTED, outcome=MessageOutcome.STORED,
               results=message.result_count)  # fmt: skip
    reason = f"HL7 message {header.control_id} from {connection.name}"
    patient_ids = []
    for group, results in zip(message.groups, planned, strict=True):
        if not results:
            continue
        patient, mrn, why = _match(group.patient, connection)
        if patient is None:
            _hold(log, group.patient, mrn, why, results, tally)
            continue
        patient_ids.append(patient.pk)
        _results_store(patient=patient, results=results, reason=reason, username=_username(header), tally=tally)
    changed = tally.created + tally.replaced + tally.corrected + tally.withdrawn
    log.outcome = (MessageOutcome.HELD if tally.held and not changed
                   else MessageOutcome.STORED if changed else MessageOutcome.NOTHING_NEW)  # fmt: skip
    for name, value in tally.counts().items():
        setattr(log, name, value)
    log.notes = tally.notes
    log.save()
    audit_record(
        actor=None, username=_username(header), action=ACTION, target=log,
        patient_id=patient_ids[0] if len(set(patient_ids)) == 1 else None,
        detail={"control_id": header.control_id, "connection": connection.pk, "ack": AckCode.ACCEPTED,
                "outcome": log.outcome, "patient_ids": sorted(set(patient_ids)), **tally.counts()},
    )  # fmt: skip
    _predictions_request(tally.final_for)
    return log


def _hold(log: HL7Message, identity: PatientIdentity, mrn: str, why: str, results: list[Planned], tally: Tally) -> None:
    UnmatchedResult.objects.create(
        clinic_id=log.clinic_id, message=log, reason=why[:300], identifiers=identity.identifiers_text()[:300],
        mrn=mrn[:64], family_name=identity.family_name[:100], given_name=identity.given_name[:100],
        birth_date=identity.birth_date, sex=SEXES.get(identity.sex, ""), results=[r.as_json() for r in results],
    )  # fmt: skip
    tally.held += len(results)
    tally.note("held", ", ".join(r.label for r in results), f"Held on the unmatched results worklist: {why}")


def _refuse(text: str, header: Header | None, refusal: Refusal) -> Receipt:
    """Log and audit a refused message (nothing else of it was written) and answer AE or AR with the reason."""
    try:
        connection = _connection_for(header) if header is not None and header.sending_facility else None
    except Refusal:
        connection = None
    fields = {"ack_code": refusal.ack, "outcome": MessageOutcome.REFUSED, "error": refusal.text}
    with transaction.atomic():
        try:
            with transaction.atomic():
                log = _log(header, connection, text, **fields)
        except IntegrityError:  # the same control id was logged meanwhile: answer as that one was answered
            if header is None or (answer := _resent(header)) is None:
                raise
            return answer
        audit_record(
            actor=None, username=_username(header), action=ACTION, target=log, outcome=AuditOutcome.FAILURE,
            detail={"control_id": log.control_id, "ack": refusal.ack, "error": refusal.text},
        )  # fmt: skip
    logger.info("HL7 %s %s refused %s: %s", log.sending_facility, log.control_id, refusal.ack, refusal.text)
    return Receipt(ack=_ack(header, refusal.ack, refusal.text, refusal.error_code, refusal.location),
                   code=refusal.ack, outcome=MessageOutcome.REFUSED, error=refusal.text, message_id=log.pk)  # fmt: skip


def _resent(header: Header) -> Receipt | None:
    """The answer to a message already received: its first acknowledgement code (and reason), nothing written but
    the count of resends."""
    first = HL7Message.objects.filter(sending_facility=header.sending_facility, control_id=header.control_id).first()
    if first is None:
        return None
    HL7Message.objects.filter(pk=first.pk).update(resent=first.resent + 1)
    text = first.error or ("" if first.ack_code == AckCode.ACCEPTED else "Refused when first received.")
    return Receipt(ack=_ack(header, first.ack_code, text), code=first.ack_code, outcome=first.outcome,
                   error=first.error, message_id=first.pk, resent=True)  # fmt: skip


def hl7_message_receive(*, raw: str) -> Receipt:
    """Take one HL7 v2 message (text, any line ends) and return the acknowledgement to send back.

    AA is returned only after the results and the log row are committed. Never raises for the message's content:
    every refusal is an acknowledgement with its reason. A database that cannot be written raises, and the caller
    sends no AA (the lab sends again).
    """
    text = hl7v2.normalize(raw)
    try:
        header = hl7v2.header_read(text)
    except Refusal as refusal:
        return _refuse(text, None, refusal)
    if header.control_id and header.sending_facility and (answer := _resent(header)):
        return answer
    try:
        with transaction.atomic():
            log = _accept(text, header)
    except Refusal as refusal:
        return _refuse(text, header, refusal)
    except IntegrityError:
        answer = _resent(header) if header.control_id else None
        if answer is None:
            raise
        return answer
    counts = ", ".join(f"{name} {getattr(log, name)}" for name in Tally().counts() if getattr(log, name))
    logger.info("HL7 %s %s AA %s: %s", log.sending_facility, log.control_id, log.outcome, counts or "no results")
    return Receipt(ack=_ack(header, AckCode.ACCEPTED), code=AckCode.ACCEPTED, outcome=log.outcome, message_id=log.pk)


# --- the unmatched results worklist -------------------------------------------------------------------------------


@transaction.atomic
def unmatched_resolve(*, unmatched: UnmatchedResult, by: User, patient: Patient) -> Tally:
    """File held results to the patient staff picked (the caller resolved both within the user's clinic): written
    as if the message had named that patient, all or nothing. Audited with the results filed."""
    if not roles.can_enter_results(by):
        raise PermissionDenied("Your role cannot file results.")
    if not (by.is_superuser or by.clinic_id == unmatched.clinic_id == patient.clinic_id):
        raise PermissionDenied("These results and this patient must both belong to your clinic.")
    held = UnmatchedResult.objects.select_for_update().select_related("message").get(pk=unmatched.pk)
    if held.status != UnmatchedStatus.WAITING:
        raise ValidationError("These results were already filed to a patient; nothing was changed.")
    tally = Tally()
    results = [Planned.from_json(data) for data in held.results]
    reason = f"HL7 message {held.message.control_id}, filed by {by.get_full_name() or by.username}"
    try:
        _results_store(patient=patient, results=results, reason=reason, username=by.username, tally=tally)
    except Refusal as refusal:
        raise ValidationError(f"Nothing was filed: {refusal.text}") from refusal
    held.status, held.patient = UnmatchedStatus.RESOLVED, patient
    held.resolved_by, held.resolved_at = by, timezone.now()
    held.save(update_fields=["status", "patient", "resolved_by", "resolved_at"])
    audit_record(
        actor=by, action="hl7.unmatched.resolve", target=patient, patient_id=patient.pk,
        detail={"unmatched_id": held.pk, "message_id": held.message_id, "notes": tally.notes, **tally.counts()},
    )  # fmt: skip
    _predictions_request(tally.final_for)
    return tally


# --- connections (the admin) --------------------------------------------------------------------------------------


def _ensure_manages(by: User, connection: LabConnection) -> None:
    if not (roles.can_manage_clinic(by) and (by.is_superuser or by.clinic_id == connection.clinic_id)):
        raise PermissionDenied("Only an admin of this clinic can set up its lab connections.")


@transaction.atomic
def lab_connection_save(*, connection: LabConnection, by: User, changed: list[str]) -> LabConnection:
    """Who may send this clinic results is a security setting: saved by a clinic admin, audited with what changed."""
    _ensure_manages(by, connection)
    created = connection.pk is None
    connection.full_clean()
    connection.save()
    audit_record(actor=by, action="hl7.connection.create" if created else "hl7.connection.update", target=connection,
                 detail={"changed": sorted(changed), "sending_facility": connection.sending_facility,
                         "active": connection.active})  # fmt: skip
    return connection


@transaction.atomic
def lab_code_maps_saved(*, connection: LabConnection, by: User, formset: Any) -> None:
    """Audit the code map rows an admin form added, changed or deleted (the formset saved them)."""
    _ensure_manages(by, connection)
    changes = {
        "added": [m.local_code for m in formset.new_objects],
        "changed": [m.local_code for m, _fields in formset.changed_objects],
        "deleted": [m.local_code for m in formset.deleted_objects],
    }
    if any(changes.values()):
        audit_record(actor=by, action="hl7.code_map.update", target=connection, detail=changes)


@transaction.atomic
def lab_connection_delete(*, connection: LabConnection, by: User) -> None:
    """Only a connection that never received a message can go (the log keeps the rest): deactivate it instead."""
    _ensure_manages(by, connection)
    audit_record(actor=by, action="hl7.connection.delete", target=connection,
                 detail={"sending_facility": connection.sending_facility})  # fmt: skip
    connection.delete()


def ack_for_failure(header: Header | None) -> str:
    """The answer when the message could not be processed at all (the database was unreachable): AE, nothing
    stored, send it again later. Logged by the listener only: there is nowhere to write it."""
    return _ack(header, AckCode.ERROR, "The clinic could not store the message now; nothing was stored. Send it "
                "again later.", hl7v2.INTERNAL_ERROR)  # fmt: skip
