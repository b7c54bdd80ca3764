"""Reads of the clinical record, scoped to what the user may see. Other apps read patients through here.

Functions named `*_read` also write the audit row for that read: one per page or API call, not per row.
"""

from __future__ import annotations

import datetime
import io
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import pandas as pd
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Upper
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.formats import date_format
from psycopg.sql import SQL, Literal

from clinic import roles
from clinic.audit import audit_record
from clinic.models import User
from patients.catalog import analyte_rows, catalog, catalog_clear
from patients.clinical import CRITICAL_LABELS, Range, age_on, critical_excess, critical_text, reference_range
from patients.models import (
    IMPORTED_CONDITION_SOURCES,
    Condition,
    ConditionSource,
    EscalationLevel,
    Observation,
    ObservationStatus,
    Patient,
    TrustedSource,
    VerificationStatus,
)

ABNORMAL = ["L", "H", "LL", "HH"]
CRITICAL = list(CRITICAL_LABELS)  # LL, HH: as `patients.clinical` flags them
AGE_BANDS = {"0-17": (0, 17), "18-39": (18, 39), "40-64": (40, 64), "65+": (65, 200)}
PATIENT_ORDERINGS = {
    "name": ["family_name", "given_name", "id"],
    "-name": ["-family_name", "-given_name", "-id"],
    "mrn": ["mrn"],
    "-mrn": ["-mrn"],
    "birth_date": ["birth_date", "id"],
    "-birth_date": ["-birth_date", "-id"],
    "created": ["created_at", "id"],
    "-created": ["-created_at", "-id"],
}
PANELS = [("cbc", "Complete blood count"), ("metabolic", "Metabolic"), ("lipid", "Lipids"),
          ("liver", "Liver"), ("cardiac", "Cardiac"), ("inflammation", "Inflammation"),
          ("coagulation", "Coagulation"), ("iron", "Iron studies"), ("urine", "Urine"),
          ("allergy", "Allergy (specific IgE)"), ("blood_gas", "Blood gases"), ("vitals", "Vital signs"),
          ("wearable", "Wearable (daily)")]  # fmt: skip


def patient_list_for(*, user: User) -> QuerySet[Patient]:
    """Patients the user may see: their clinic's for clinical roles, only their own for a patient."""
    if user.is_superuser:
        return Patient.objects.all()
    if roles.can_view_patients(user):
        return Patient.objects.filter(clinic_id=user.clinic_id)
    if roles.is_patient(user):
        return Patient.objects.filter(user_id=user.pk, clinic_id=user.clinic_id)
    return Patient.objects.none()


def patient_get_for(*, user: User, pk: int) -> Patient:
    return get_object_or_404(patient_list_for(user=user), pk=pk)  # outside your scope: 404


def patient_get_for_change(*, user: User, pk: int) -> Patient:
    """A patient whose record the user may change; anyone else (a patient's own account too) gets 404."""
    allowed = patient_list_for(user=user) if roles.can_enter_results(user) else Patient.objects.none()
    return get_object_or_404(allowed, pk=pk)


def observation_get_for_change(*, user: User, patient: Patient, pk: int) -> Observation:
    """A result of this patient (`patient` already scoped to what the user may change), final or already corrected
    or withdrawn (the form then says so); 404 for any other."""
    results = Observation.all_objects.select_related("analyte", "amended_by", "replaced_by")
    return get_object_or_404(results, patient=patient, pk=pk)


@dataclass(frozen=True)
class ResultsApart:
    """What the patient page shows apart from the latest results."""

    preliminary: list[Observation]  # sent by a lab's feed before its final ones, newest first
    amended: list[Observation]  # corrected and withdrawn, newest change first, with what replaced them
    critical_waiting: list[Observation]  # final, critical, no doctor acknowledged: the most severe first


def observations_apart(*, patient: Patient) -> ResultsApart:
    """The patient's results not read for care and their critical values no doctor has acknowledged, whatever their
    time: one query for the three."""
    waiting = Q(status=ObservationStatus.FINAL, interpretation__in=CRITICAL, acknowledged_at__isnull=True)
    rows = list(
        Observation.all_objects.filter(patient=patient)
        .filter(~Q(status=ObservationStatus.FINAL) | waiting)
        .select_related("analyte", "amended_by", "replaced_by")
        .order_by("-amended_at", "-effective_at", "-id")
    )
    preliminary = [o for o in rows if o.status == ObservationStatus.PRELIMINARY]
    preliminary.sort(key=lambda o: (o.effective_at, o.pk), reverse=True)
    final = [o for o in rows if o.status == ObservationStatus.FINAL]
    final.sort(key=lambda o: (o.effective_at, o.pk), reverse=True)
    return ResultsApart(
        preliminary=preliminary,
        amended=[o for o in rows if o.status not in (ObservationStatus.PRELIMINARY, ObservationStatus.FINAL)],
        critical_waiting=_most_severe_first(final),
    )


def patient_read(*, user: User, pk: int) -> Patient:
    patient = patient_get_for(user=user, pk=pk)
    audit_record(actor=user, action="patient.view", target=patient, patient_id=patient.pk)
    return patient


def own_patient_get(*, user: User) -> Patient:
    """The record of a patient's own account, with its clinic (which the portal names); 404 for any other account,
    and for a patient account no record is linked to yet. Unaudited: the caller audits what it reads."""
    if not roles.is_patient(user):
        raise Http404
    return get_object_or_404(patient_list_for(user=user).select_related("clinic"))


def own_patient_read(*, user: User) -> Patient:
    """`own_patient_get`, audited as a view of the record."""
    patient = own_patient_get(user=user)
    audit_record(actor=user, action="patient.view", target=patient, patient_id=patient.pk)
    return patient


def patient_report_read(*, user: User, patient: Patient, advice_items: list[int]) -> None:
    """The printable report (`patient` already scoped to the user): one row naming the patient and the approved
    advice items it printed."""
    audit_record(
        actor=user,
        action="patient.report",
        target=patient,
        patient_id=patient.pk,
        detail={"advice_items": advice_items},
    )


def patient_form_read(*, user: User, patient: Patient, form: str) -> None:
    """A form page shows the patient's record (the edit form: every demographic field): audited as a view."""
    audit_record(actor=user, action="patient.view", target=patient, patient_id=patient.pk, detail={"form": form})


def own_patient_name(*, user: User) -> str | None:
    """The name of the patient a patient account belongs to, as the portal greets it: the record's name, not the
    account's (an account can be set up by someone else, under another name). None for any other account."""
    if not roles.is_patient(user):
        return None
    record = patient_list_for(user=user).only("given_name", "family_name").first()
    return record.full_name if record else None


# --- identity: MRN uniqueness and likely duplicates ----------------------------------------------------------


def patient_mrn_holder(*, clinic_id: int, mrn: str, exclude_pk: int | None = None) -> Patient | None:
    """The clinic's patient whose MRN equals `mrn` regardless of case (as the unique constraint compares them)."""
    holders = Patient.objects.filter(clinic_id=clinic_id).alias(mrn_key=Upper("mrn")).filter(mrn_key=Upper(Value(mrn)))
    if exclude_pk is not None:
        holders = holders.exclude(pk=exclude_pk)
    return holders.order_by("pk").first()


@dataclass(frozen=True)
class LikelyDuplicate:
    patient: Patient
    reason: str


SIMILAR_NAME = "same birth date and a similar name"
SIMILAR_MRN = "an MRN that differs only in case, leading zeros or spaces"


def _folded(text: str) -> str:
    """Lower case without accents, hyphens read as spaces: "José García-Ruiz" is "jose garcia ruiz"."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace("-", " ").split())


def _mrn_key(mrn: str) -> str:
    return mrn.strip().upper().lstrip("0")


def _similar_names(given_name: str, family_name: str, other: Patient) -> bool:
    """Same family name and the same initial, or the same words in any order (given and family names swapped)."""
    given, family = _folded(given_name), _folded(family_name)
    other_given, other_family = _folded(other.given_name), _folded(other.family_name)
    if family == other_family and given[:1] == other_given[:1]:
        return True
    return sorted(f"{given} {family}".split()) == sorted(f"{other_given} {other_family}".split())


def patient_likely_duplicates(
    *, clinic_id: int, given_name: str, family_name: str, birth_date: datetime.date, mrn: str
) -> list[LikelyDuplicate]:
    """The clinic's patients who may be the person about to be registered: born the same day with a similar name,
    or with an MRN that differs only in case, leading zeros or surrounding spaces. Only this clinic's patients."""
    key = _mrn_key(mrn)
    near = Q(birth_date=birth_date)
    if key:
        near |= Q(mrn__iregex=rf"^\s*0*{re.escape(key)}\s*$")
    found = []
    for patient in Patient.objects.filter(near, clinic_id=clinic_id).order_by("family_name", "given_name", "pk"):
        if key and _mrn_key(patient.mrn) == key:
            found.append(LikelyDuplicate(patient, SIMILAR_MRN))
        elif patient.birth_date == birth_date and _similar_names(given_name, family_name, patient):
            found.append(LikelyDuplicate(patient, SIMILAR_NAME))
    return found


def patient_likely_duplicates_read(*, user: User, duplicates: list[LikelyDuplicate]) -> None:
    """The likely duplicates a registration was shown (names, MRNs, birth dates): audited as one list read."""
    audit_record(
        actor=user,
        action="patient.list",
        detail={"likely_duplicates": [d.patient.pk for d in duplicates], "count": len(duplicates)},
    )


@dataclass(frozen=True)
class MrnClash:
    """Patients of one clinic whose MRNs differ only in case, oldest first."""

    clinic_id: int
    patients: list[Patient]


def patient_mrn_clashes() -> list[MrnClash]:
    """Every group of MRN clashes stored (possible only before migration patients 0010): one query."""
    keyed = Patient.objects.annotate(mrn_key=Upper("mrn"))
    twin = keyed.filter(clinic_id=OuterRef("clinic_id"), mrn_key=OuterRef("mrn_key")).exclude(pk=OuterRef("pk"))
    rows = keyed.filter(Exists(twin)).select_related("clinic").order_by("clinic_id", "mrn_key", "created_at", "pk")
    return [
        MrnClash(clinic_id, list(group))
        for (clinic_id, _key), group in groupby(rows, key=lambda patient: (patient.clinic_id, patient.mrn_key))
    ]


def _latest_flagged(interpretations: list[str], **more: Any) -> Exists:
    """The patient's latest value of some analyte carries one of these flags (and matches `more`)."""
    newer = Observation.objects.filter(
        patient_id=OuterRef("patient_id"), analyte_id=OuterRef("analyte_id"), effective_at__gt=OuterRef("effective_at")
    )
    flagged = Observation.objects.filter(patient_id=OuterRef("pk"), interpretation__in=interpretations, **more)
    return Exists(flagged.exclude(Exists(newer)))


def patient_search(
    *,
    user: User,
    query: str = "",
    sex: str = "",
    age_band: str = "",
    abnormal: bool = False,
    critical: bool = False,
    condition: str = "",
    ordering: str = "name",
    today: datetime.date | None = None,
) -> QuerySet[Patient]:
    """The patient list with its filters. Unknown filter values are ignored rather than failing."""
    patients = patient_list_for(user=user)
    query = query.strip()
    if query:
        name_match = Q()
        for word in query.split():
            name_match &= Q(given_name__icontains=word) | Q(family_name__icontains=word)
        patients = patients.filter(name_match | Q(mrn__iexact=query))
    if sex:
        patients = patients.filter(sex=sex)
    if age_band in AGE_BANDS:
        today = today or timezone.localdate()
        youngest, oldest = AGE_BANDS[age_band]
        born_after = today.replace(year=today.year - oldest - 1)
        born_before = today.replace(year=today.year - youngest)
        patients = patients.filter(birth_date__gt=born_after, birth_date__lte=born_before)
    if abnormal:
        patients = patients.filter(_latest_flagged(ABNORMAL))
    if critical:
        patients = patients.filter(_latest_flagged(CRITICAL))
    if condition:
        patients = patients.filter(
            Exists(
                Condition.objects.filter(
                    patient_id=OuterRef("pk"),
                    code__istartswith=condition.strip(),
                    verification_status__in=[VerificationStatus.CONFIRMED, VerificationStatus.PROVISIONAL],
                )
            )
        )
    return patients.order_by(*PATIENT_ORDERINGS.get(ordering, PATIENT_ORDERINGS["name"]))


LIST_COLUMNS = ("pk", "family_name", "given_name", "mrn", "birth_date", "sex", "created_at")


def patient_list_rows(*, user: User, **filters: Any) -> QuerySet:
    """`patient_search`'s patients as the list shows them: only its columns, as named tuples (`row.mrn`), not
    model instances, which cost more than the rest of a row's work."""
    return patient_search(user=user, **filters).values_list(*LIST_COLUMNS, named=True)


FlaggedValue = tuple[int, float, str]  # analyte id, value in the canonical unit, interpretation

# Written out rather than built with the ORM: compiling the equivalent queryset (`_latest_flagged`'s rule, ordered
# through the analyte) cost the patient list more CPU than the rest of its view. Same rule as the filters: current
# (final) results only, and a value counts only while it is its analyte's latest.
_LATEST_FLAGGED_SQL = """
SELECT o.patient_id, o.analyte_id, o.value, o.interpretation
FROM {observation} o INNER JOIN {analyte} a ON a.id = o.analyte_id
WHERE o.patient_id IN ({patients}) AND o.status = %s AND o.interpretation IN ({flags})
  AND NOT EXISTS (
    SELECT 1 FROM {observation} n
    WHERE n.patient_id = o.patient_id AND n.analyte_id = o.analyte_id AND n.status = %s
      AND n.effective_at > o.effective_at
  )
ORDER BY CASE WHEN o.interpretation IN ({critical}) THEN 0 ELSE 1 END, a.sort_order, o.analyte_id, o.id DESC
"""


def latest_flagged_values(*, patient_ids: list[int], critical: bool = False) -> dict[int, list[FlaggedValue]]:
    """The list's flagged cell for a page of patients (the caller scoped the ids): each patient's latest values that
    are abnormal (or, for the critical filter, critical), critical ones first, analytes in catalogue order, one value
    an analyte (two at the same latest time: the first in that order, the more severe, then the last entered). One
    query for the whole page; the analyte's name and limits come from the process-wide catalog."""
    if not patient_ids:
        return {}
    flags = CRITICAL if critical else ABNORMAL
    sql = _LATEST_FLAGGED_SQL.format(
        observation=connection.ops.quote_name(Observation._meta.db_table),
        analyte=connection.ops.quote_name(Observation._meta.get_field("analyte").related_model._meta.db_table),
        patients=", ".join(["%s"] * len(patient_ids)),
        flags=", ".join(["%s"] * len(flags)),
        critical=", ".join(["%s"] * len(CRITICAL)),
    )
    params = [*patient_ids, ObservationStatus.FINAL.value, *flags, ObservationStatus.FINAL.value, *CRITICAL]
    flagged: dict[int, list[FlaggedValue]] = defaultdict(list)
    seen: set[tuple[int, int]] = set()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for patient_id, analyte_id, value, interpretation in cursor.fetchall():
            if (patient_id, analyte_id) not in seen:
                seen.add((patient_id, analyte_id))
                flagged[patient_id].append((analyte_id, value, interpretation))
    return flagged


def critical_patient_counts(*, user: User) -> dict[str, int]:
    """The home page's counts: the user's patients with a latest result in a critical range (LL or HH), and those
    with a result in a critical range no doctor has acknowledged yet, whatever its time (an older critical value
    is not taken on because a newer one is normal). Numbers without names; the list they link to audits its read."""
    latest = Q(_latest_flagged(CRITICAL))
    waiting = Q(Exists(_unacknowledged_critical().filter(patient_id=OuterRef("pk"))))
    return (
        patient_list_for(user=user)
        .filter(latest | waiting)
        .order_by()
        .aggregate(patients=Count("pk", filter=latest), unacknowledged=Count("pk", filter=waiting))
    )


def _unacknowledged_critical() -> QuerySet[Observation]:
    return Observation.objects.filter(interpretation__in=CRITICAL, acknowledged_at__isnull=True)


def _most_severe_first(observations: list[Observation]) -> list[Observation]:
    """Critical values, furthest past their critical limit first; as they came (the most recent first) on a tie."""
    spec_of = catalog().by_id
    return sorted(observations, key=lambda o: -critical_excess(spec_of[o.analyte_id], o.value, o.interpretation))


@dataclass(frozen=True)
class WorklistRow:
    patient: Patient
    result: str  # "Potassium 7.0 mmol/L (critically high)"
    arrived_at: datetime.datetime
    minutes_waiting: int
    escalation: list[str]  # "on-duty doctors e-mailed 10:32", "e-mail to the escalation contact failed, ..."
    failed: bool


WORKLIST_ROWS = 50  # the oldest; a clinic with more has a bigger problem than a long page, and the count says so


def critical_worklist_read(*, user: User, now: datetime.datetime | None = None) -> tuple[list[WorklistRow], int]:
    """The home page's worklist: the user's clinic's critical results no doctor has acknowledged, longest waiting
    first, each with how its escalation stands; and how many there are in all. Audited as one read naming the
    patients shown."""
    now = now or timezone.now()
    waiting = _unacknowledged_critical().filter(patient__in=patient_list_for(user=user))
    total = waiting.count()
    if not total:
        return [], 0
    observations = list(
        waiting.select_related("patient__clinic")
        .prefetch_related("escalations")
        .order_by("created_at", "pk")[:WORKLIST_ROWS]
    )
    spec_of = catalog().by_id
    rows = [
        WorklistRow(
            patient=o.patient,
            result=critical_text(spec_of[o.analyte_id], o.value, o.interpretation),
            arrived_at=o.created_at,
            minutes_waiting=int((now - o.created_at).total_seconds() // 60),
            escalation=_escalation_state(o, now),
            failed=any(e.error and e.sent_at is None for e in o.escalations.all()),
        )
        for o in observations
    ]
    audit_record(
        actor=user,
        action="patient.critical_worklist",
        detail={"count": total, "patient_ids": sorted({row.patient.pk for row in rows})},
    )
    return rows, total


def _escalation_state(observation: Observation, now: datetime.datetime) -> list[str]:
    def at(moment: datetime.datetime) -> str:
        return date_format(timezone.localtime(moment), "j M H:i")

    state = []
    for escalation in observation.escalations.all():
        who = "on-duty doctors" if escalation.level == EscalationLevel.DOCTORS else "escalation contact"
        if escalation.sent_at:
            why = f" ({escalation.reason})" if escalation.reason else ""
            state.append(f"{who} e-mailed {at(escalation.sent_at)}{why}")
        elif escalation.error:
            state.append(f"e-mail to the {who} failed, tried again every minute: {escalation.error}")
    if not state:
        due = observation.created_at + datetime.timedelta(minutes=observation.patient.clinic.escalation_minutes)
        state.append(f"not escalated yet: e-mailed at {at(due)} if still waiting" if due > now else "being e-mailed")
    return state


def patient_list_read(*, user: User, filters: dict[str, Any], count: int) -> None:
    """Audit one list read (the filters used and how many rows matched), not one row per patient."""
    audit_record(actor=user, action="patient.list", detail={"filters": filters, "count": count})


def observation_list_for(*, user: User, patient: Patient) -> QuerySet[Observation]:
    """A patient's observations (the caller got `patient` through patient_get_for, so scope holds)."""
    return Observation.objects.filter(patient=patient).select_related("analyte")


def latest_observations(*, patient: Patient) -> list[Observation]:
    """The most recent observation of each analyte: one query, no matter how many there are."""
    newer = Observation.objects.filter(
        patient_id=OuterRef("patient_id"), analyte_id=OuterRef("analyte_id"), effective_at__gt=OuterRef("effective_at")
    )
    latest = (
        Observation.objects.filter(patient=patient)
        .exclude(Exists(newer))
        .select_related("analyte", "acknowledged_by")
        .order_by("analyte__sort_order", "-id")
    )
    seen, result = set(), []
    for observation in latest:  # two results at the same latest time: keep the last entered
        if observation.analyte_id not in seen:
            seen.add(observation.analyte_id)
            result.append(observation)
    return result


def latest_by_panel(*, patient: Patient) -> list[tuple[str, str, list[Observation]]]:
    grouped: dict[str, list[Observation]] = defaultdict(list)
    for observation in latest_observations(patient=patient):
        grouped[observation.analyte.panel].append(observation)
    return [(key, label, grouped[key]) for key, label in PANELS if grouped.get(key)]


def observation_series(*, patient: Patient) -> dict[str, list[tuple[datetime.datetime, float, str]]]:
    """Every value per analyte code in time order, for the trend charts: one query."""
    series: dict[str, list[tuple[datetime.datetime, float, str]]] = defaultdict(list)
    rows = (
        Observation.objects.filter(patient=patient)
        .order_by("effective_at", "id")
        .values_list("analyte__code", "effective_at", "value", "interpretation")
    )
    for code, effective_at, value, flag in rows:
        series[code].append((effective_at, value, flag))
    return dict(series)


@dataclass(frozen=True)
class PatientResults:
    """A patient's results as the patient page shows them: what `latest_by_panel`, `observation_series` and
    `observations_apart` return, from one read of the patient's rows."""

    by_panel: list[tuple[str, str, list[Observation]]]
    series: dict[str, list[tuple[datetime.datetime, float, str]]]
    apart: ResultsApart


OBSERVATION_COLUMNS = tuple(field.attname for field in Observation._meta.concrete_fields)
_AT, _ID, _ANALYTE, _VALUE, _FLAG, _STATUS, _ACKNOWLEDGED_AT = (
    OBSERVATION_COLUMNS.index(name)
    for name in ("effective_at", "id", "analyte_id", "value", "interpretation", "status", "acknowledged_at")
)


def patient_results(*, patient: Patient) -> PatientResults:
    """One query of plain rows, every status, oldest first, instead of three of model rows (the latest with an
    anti-join, the trend series, and the results apart): rows become model instances only where the page needs
    them, with the process's analyte rows (`analyte_rows`) and, when any of them names a clinician, one more query
    for those users."""
    rows = list(
        Observation.all_objects.filter(patient=patient).order_by("effective_at", "id").values_list(*OBSERVATION_COLUMNS)
    )
    analytes = analyte_rows()
    if any(row[_ANALYTE] not in analytes for row in rows):  # an analyte added since this process loaded them
        catalog_clear()
        analytes = analyte_rows()
    series: dict[str, list[tuple[datetime.datetime, float, str]]] = defaultdict(list)
    newest: dict[int, tuple] = {}
    apart: list[tuple] = []
    for row in rows:
        if row[_STATUS] != ObservationStatus.FINAL:
            apart.append(row)
            continue
        series[analytes[row[_ANALYTE]].code].append((row[_AT], row[_VALUE], row[_FLAG]))
        newest[row[_ANALYTE]] = row  # oldest first: the last is the latest, of two at one time the last entered
        if row[_FLAG] in CRITICAL and row[_ACKNOWLEDGED_AT] is None:
            apart.append(row)
    latest_rows = sorted(newest.values(), key=lambda row: (analytes[row[_ANALYTE]].sort_order, -row[_ID]))
    observations = _observations([*latest_rows, *apart], analytes, {row[_ID]: row for row in rows})
    latest = observations[: len(latest_rows)]
    shown_apart = observations[len(latest_rows) :]
    grouped: dict[str, list[Observation]] = defaultdict(list)
    for observation in latest:
        grouped[observation.analyte.panel].append(observation)
    newest_first = sorted(shown_apart, key=lambda o: (o.effective_at, o.pk), reverse=True)
    amended = [o for o in shown_apart if o.status not in (ObservationStatus.PRELIMINARY, ObservationStatus.FINAL)]
    # newest change first, as PostgreSQL orders "-amended_at" (a row without one first)
    amended.sort(
        key=lambda o: (o.amended_at is None, o.amended_at or o.effective_at, o.effective_at, o.pk), reverse=True
    )
    return PatientResults(
        by_panel=[(key, label, grouped[key]) for key, label in PANELS if grouped.get(key)],
        series=dict(series),
        apart=ResultsApart(
            preliminary=[o for o in newest_first if o.status == ObservationStatus.PRELIMINARY],
            amended=amended,
            critical_waiting=_most_severe_first([o for o in newest_first if o.status == ObservationStatus.FINAL]),
        ),
    )


def _observations(rows: list[tuple], analytes: dict[int, Any], by_id: dict[int, tuple]) -> list[Observation]:
    """Model instances of these rows, with their analyte, the clinicians they name (one query, only when any does)
    and the correction that replaced them (from `by_id`, the patient's rows, so no query)."""
    observations = [Observation.from_db(DEFAULT_DB_ALIAS, OBSERVATION_COLUMNS, row) for row in rows]
    users = {o.acknowledged_by_id for o in observations} | {o.amended_by_id for o in observations}
    users.discard(None)
    by_pk = User.objects.in_bulk(users) if users else {}
    for observation in observations:
        observation.analyte = analytes[observation.analyte_id]
        if observation.acknowledged_by_id is not None:
            observation.acknowledged_by = by_pk[observation.acknowledged_by_id]
        if observation.amended_by_id is not None:
            observation.amended_by = by_pk[observation.amended_by_id]
        replacement = by_id.get(observation.replaced_by_id)
        if replacement is not None:
            observation.replaced_by = Observation.from_db(DEFAULT_DB_ALIAS, OBSERVATION_COLUMNS, replacement)
            observation.replaced_by.analyte = analytes[replacement[_ANALYTE]]
    return observations


def observation_history(*, patient: Patient, codes: list[str]) -> list[Observation]:
    """Every current value of these analytes of the patient, oldest first, with who entered it: one query."""
    rows = Observation.objects.filter(patient=patient, analyte__code__in=codes)
    return list(rows.select_related("analyte", "entered_by", "acknowledged_by").order_by("effective_at", "id"))


def reference_range_for(*, patient: Patient, analyte_code: str, on: datetime.date | None = None) -> Range | None:
    """The reference range that flags this patient's values of one analyte (None when none applies)."""
    spec = catalog().by_code[analyte_code]
    return reference_range(spec, patient.sex, age_on(patient.birth_date, on or timezone.localdate()))


def condition_list_for(*, user: User, patient: Patient) -> QuerySet[Condition]:
    """A patient's conditions, newest recorded first (the caller scoped `patient`). Who recorded and who verified
    each are not joined: the pages name neither, and the two user joins cost the patient page more to compile than
    the query costs to run; the API, whose serializer names both, adds them (`api.views.CONDITION_PEOPLE`)."""
    return Condition.objects.filter(patient=patient)


def observation_list_read(*, user: User, patient: Patient, filters: dict[str, Any], count: int) -> None:
    """Audit one read of a patient's results (an API page): one row, not one per observation."""
    audit_record(
        actor=user,
        action="observation.list",
        target=patient,
        patient_id=patient.pk,
        detail={"filters": filters, "count": count},
    )


def condition_list_read(*, user: User, patient: Patient, filters: dict[str, Any], count: int) -> None:
    """Audit one read of a patient's conditions (an API page): one row, not one per condition."""
    audit_record(
        actor=user,
        action="condition.list",
        target=patient,
        patient_id=patient.pk,
        detail={"filters": filters, "count": count},
    )


def wearable_averages(
    *, series: dict[str, list[tuple[datetime.datetime, float, str]]], days: int = 30, today: datetime.date | None = None
) -> dict[str, float | None]:
    """Mean of the daily wearable values (steps, resting heart rate, sleep) over the `days` local days ending
    `today`, per analyte code; None for an analyte without values. From the patient's `observation_series`, which
    the page reads for its trend charts anyway: no query of its own."""
    today = today or timezone.localdate()
    zone = timezone.get_current_timezone()
    start = datetime.datetime.combine(today - datetime.timedelta(days=days - 1), datetime.time.min, tzinfo=zone)
    end = datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone)
    averages: dict[str, float | None] = {}
    for spec in catalog().specs():
        if spec.kind == "wearable":
            values = [value for at, value, _flag in series.get(spec.code, ()) if start <= at < end]
            averages[spec.code] = sum(values) / len(values) if values else None
    return averages


# Bulk reads for model training and drift checks: one query per table, plain tuples for pandas, no ORM objects.
PATIENT_PROFILE_FIELDS = (
    "sex", "birth_date", "smoking", "alcohol", "physical_activity", "diet",
    "family_history_diabetes", "family_history_cardiovascular", "family_history_anemia",
)  # fmt: skip


def clinic_observation_rows(
    *, clinic_id: int, since: datetime.datetime | None = None
) -> QuerySet[tuple[int, str, float, datetime.datetime]]:
    """(patient_id, analyte code, canonical value, effective_at) of every observation of the clinic's patients,
    optionally only those at or after `since`. Iterate it with `.iterator(chunk_size=...)` for large clinics."""
    rows = Observation.objects.filter(patient__clinic_id=clinic_id)
    if since is not None:
        rows = rows.filter(effective_at__gte=since)
    return rows.order_by().values_list("patient_id", "analyte__code", "value", "effective_at")


def clinic_patient_rows(*, clinic_id: int, patient_ids: list[int] | None = None) -> QuerySet[tuple]:
    """(patient_id, *PATIENT_PROFILE_FIELDS) of the clinic's patients (or of those among `patient_ids`)."""
    patients = Patient.objects.filter(clinic_id=clinic_id)
    if patient_ids is not None:
        patients = patients.filter(pk__in=patient_ids)
    return patients.order_by().values_list("id", *PATIENT_PROFILE_FIELDS)


class LabelOrigin:
    """Who vouches for a diagnosis used as a training label (`clinic_condition_rows`)."""

    DOCTOR = "doctor"  # confirmed by a doctor of the clinic (portal, API, the imported diagnoses page)
    TRUSTED = "trusted"  # confirmed by the file of an import source the clinic trusts
    DEMO = "demo"  # the synthetic demo cohort's own diagnoses
    NONE = ""  # not confirmed by anyone the clinic answers for: no positive label


def clinic_condition_rows(*, clinic_id: int) -> list[tuple[int, str, str, str, str]]:
    """(patient_id, ICD-10 code, verification status, clinical status, origin) of every condition of the clinic,
    as training must read them: the status a clinician set here; for an imported diagnosis nobody here verified, the
    file's own status when the clinic trusts its source (`TrustedSource`), else its stored, unconfirmed status. The
    origin (`LabelOrigin`) says who vouches for a confirmed one. Two queries."""
    trusted = set(clinic_trusted_sources(clinic_id=clinic_id))
    rows = (
        Condition.objects.filter(patient__clinic_id=clinic_id)
        .order_by()
        .values_list("patient_id", "code", "verification_status", "clinical_status", "source",
                     "source_verification_status", "verified_by_id")
    )  # fmt: skip
    return [_training_condition(row, trusted) for row in rows.iterator(chunk_size=20_000)]


def clinic_trusted_sources(*, clinic_id: int) -> list[str]:
    """The import sources whose diagnoses the clinic takes as labels (`TrustedSource`)."""
    return sorted(TrustedSource.objects.filter(clinic_id=clinic_id).values_list("source", flat=True))


def _training_condition(row: tuple, trusted: set[str]) -> tuple[int, str, str, str, str]:
    patient_id, code, status, clinical, source, said, verified_by = row
    if source == ConditionSource.DEMO:
        return patient_id, code, status, clinical, LabelOrigin.DEMO
    if verified_by is None and source in trusted and said:
        origin = LabelOrigin.TRUSTED if said == VerificationStatus.CONFIRMED else LabelOrigin.NONE
        return patient_id, code, said, clinical, origin
    # Imports never store "confirmed" and only a doctor may set it here, so a confirmed diagnosis is a doctor's.
    origin = LabelOrigin.DOCTOR if status == VerificationStatus.CONFIRMED else LabelOrigin.NONE
    return patient_id, code, status, clinical, origin


def clinic_patient_sources(*, clinic_id: int) -> list[tuple[int, str]]:
    """(patient_id, source) for each source that brought a current result of each of the clinic's patients: which
    patients the demo seeded (source demo), and which came with an import. One grouped query."""
    return list(
        Observation.objects.filter(patient__clinic_id=clinic_id)
        .order_by()
        .values_list("patient_id", "source")
        .distinct()
    )


def trusted_source_list_for(*, user: User) -> QuerySet[TrustedSource]:
    """The import sources the user's clinic trusts (every clinic's for a superuser); none for other roles."""
    if user.is_superuser:
        return TrustedSource.objects.all()
    if not roles.can_manage_clinic(user):
        return TrustedSource.objects.none()
    return TrustedSource.objects.filter(clinic_id=user.clinic_id)


def trusted_source_exists(*, clinic_id: int, source: str | None) -> bool:
    return TrustedSource.objects.filter(clinic_id=clinic_id, source=source).exists()


def imported_conditions_awaiting_for(*, user: User) -> QuerySet[Condition]:
    """Imported diagnoses of the user's clinic that no clinician has verified, refuted ones left out: what a doctor
    confirms in bulk. Empty for any role that cannot confirm a diagnosis."""
    if not roles.can_confirm_diagnosis(user):
        return Condition.objects.none()
    conditions = Condition.objects.filter(source__in=IMPORTED_CONDITION_SOURCES, verified_by__isnull=True).exclude(
        verification_status__in=[VerificationStatus.REFUTED, VerificationStatus.ENTERED_IN_ERROR]
    )
    if not user.is_superuser:
        conditions = conditions.filter(patient__clinic_id=user.clinic_id)
    return conditions.select_related("patient").order_by("patient__family_name", "patient__given_name", "code", "pk")


def conditions_in_scope(*, user: User, ids: list[int]) -> list[int]:
    """The ids, each a condition of a patient the user may see; Http404 if any is not (another clinic's)."""
    ids = sorted(set(ids))
    found = list(
        Condition.objects.filter(pk__in=ids, patient__in=patient_list_for(user=user)).values_list("pk", flat=True)
    )
    if len(found) != len(ids):
        raise Http404("No such diagnosis.")
    return sorted(found)


def imported_conditions_awaiting_read(*, user: User, conditions: list[Condition]) -> None:
    """Audit one read of the imported diagnoses page: one row naming the patients listed."""
    audit_record(
        actor=user,
        action="condition.imported.list",
        detail={"patient_ids": sorted({c.patient_id for c in conditions}), "count": len(conditions)},
    )


def clinic_observation_source_counts(*, clinic_id: int) -> dict[str, int]:
    """How many of the clinic's observations came from each source (manual, csv, fhir, api, demo): one query."""
    return dict(
        Observation.objects.filter(patient__clinic_id=clinic_id)
        .order_by()
        .values("source")
        .annotate(n=Count("id"))
        .values_list("source", "n")
    )


def clinic_ids_with_patients() -> list[int]:
    """Ids of the clinics that have at least one patient (scheduled jobs skip empty clinics)."""
    return list(Patient.objects.order_by("clinic_id").values_list("clinic_id", flat=True).distinct())


def observation_rows_for_patients(
    *, patient_ids: list[int], since: datetime.datetime | None = None, until: datetime.datetime | None = None
) -> QuerySet[tuple[int, int, float, datetime.datetime]]:
    """(patient_id, analyte id, canonical value, effective_at) of the given patients' observations in
    [since, until], in entry order: one set-based query for a whole scoring chunk, without a join (map analyte
    ids with `catalog().ids`). Callers scope `patient_ids` first."""
    rows = Observation.objects.filter(patient_id__in=patient_ids)
    if since is not None:
        rows = rows.filter(effective_at__gte=since)
    if until is not None:
        rows = rows.filter(effective_at__lte=until)
    return rows.order_by("id").values_list("patient_id", "analyte_id", "value", "effective_at")


def observation_frame_for_patients(
    *, patient_ids: list[int], since: datetime.datetime, until: datetime.datetime
) -> pd.DataFrame:
    """`observation_rows_for_patients` as a DataFrame (patient_id, analyte id, value, effective_at in UTC).

    On PostgreSQL the rows come out through COPY and are parsed by pandas' C reader: a scoring chunk reads
    some 20,000 rows, and building that many Python datetimes through the ORM costs more than scoring them.
    """
    columns = ["patient_id", "analyte", "value", "effective_at"]
    if connection.vendor != "postgresql":
        rows = observation_rows_for_patients(patient_ids=patient_ids, since=since, until=until)
        return pd.DataFrame(list(rows), columns=columns)
    query = SQL(
        "COPY (SELECT patient_id, analyte_id, value, effective_at FROM patients_observation "
        "WHERE patient_id = ANY({}) AND effective_at >= {} AND effective_at <= {} AND status = {} ORDER BY id) "
        "TO STDOUT WITH CSV"
    ).format(Literal(list(patient_ids)), Literal(since), Literal(until), Literal(ObservationStatus.FINAL.value))
    buffer = io.BytesIO()
    with connection.cursor() as cursor, cursor.cursor.copy(query) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    if not buffer.getbuffer().nbytes:
        dtypes = ["int64", "int64", "float64", "datetime64[ns, UTC]"]
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(columns, dtypes, strict=True)})
    frame = pd.read_csv(buffer, names=columns, dtype={"patient_id": "int64", "analyte": "int64", "value": "float64"})
    frame["effective_at"] = pd.to_datetime(frame["effective_at"], utc=True, format="ISO8601")
    return frame


def patient_ids_of_clinic(*, clinic_id: int, limit: int | None = None) -> list[int]:
    """Every patient id of the clinic (or the first `limit`), ascending (batch scoring splits them into chunks)."""
    return list(Patient.objects.filter(clinic_id=clinic_id).order_by("pk").values_list("pk", flat=True)[:limit])


def patient_by_id(*, pk: int) -> Patient:
    """A patient for system work (tasks triggered by a change the caller was allowed to make): no user scope."""
    return Patient.objects.get(pk=pk)


def patient_ids_by_clinic(*, patient_ids: list[int]) -> dict[int, list[int]]:
    """The given patient ids grouped by clinic, ascending: one query."""
    grouped: dict[int, list[int]] = defaultdict(list)
    rows = Patient.objects.filter(pk__in=patient_ids).order_by("clinic_id", "pk").values_list("clinic_id", "pk")
    for clinic_id, pk in rows:
        grouped[clinic_id].append(pk)
    return dict(grouped)


@dataclass(frozen=True)
class ClinicalRecord:
    """What the guideline rules judge of one patient: each analyte's latest value with its time, however old,
    and the course of the analytes whose rules need one (canonical values, oldest first)."""

    latest: dict[str, tuple[float, datetime.datetime]]
    history: dict[str, tuple[tuple[datetime.datetime, float], ...]]


RECORD_HISTORY = ("creatinine", "egfr_reported")  # acute kidney injury, CKD persistence
RECORD_HISTORY_DAYS = 730


def clinical_records(*, patient_ids: list[int], as_of: datetime.datetime) -> dict[int, ClinicalRecord]:
    """The `ClinicalRecord` of each patient with results up to `as_of`: two queries, whatever the number of
    patients. Wearables are left out: the rules read their 30-day means, which the model's inputs hold."""
    known = catalog()
    codes = {pk: code for code, pk in known.ids.items()}
    wearables = [known.ids[spec.code] for spec in known.specs() if spec.kind == "wearable" and spec.code in known.ids]
    rows = Observation.objects.filter(patient_id__in=patient_ids, effective_at__lte=as_of).exclude(
        analyte_id__in=wearables
    )
    if connection.vendor == "postgresql":  # DISTINCT ON walks the (patient, analyte, time) index once per pair
        latest = rows.order_by("patient_id", "analyte_id", "-effective_at", "-id").distinct("patient_id", "analyte_id")
    else:
        newer = Observation.objects.filter(
            patient_id=OuterRef("patient_id"), analyte_id=OuterRef("analyte_id"), effective_at__lte=as_of
        ).filter(
            Q(effective_at__gt=OuterRef("effective_at"))
            | Q(effective_at=OuterRef("effective_at"), pk__gt=OuterRef("pk"))
        )
        latest = rows.exclude(Exists(newer))
    records: dict[int, ClinicalRecord] = defaultdict(lambda: ClinicalRecord({}, {}))
    for patient_id, analyte_id, value, when in latest.values_list("patient_id", "analyte_id", "value", "effective_at"):
        records[patient_id].latest[codes[analyte_id]] = (value, when)
    course: dict[tuple[int, str], list] = defaultdict(list)
    tracked = [known.ids[code] for code in RECORD_HISTORY if code in known.ids]
    since = as_of - datetime.timedelta(days=RECORD_HISTORY_DAYS)
    history = rows.filter(analyte_id__in=tracked, effective_at__gte=since).order_by("effective_at", "id")
    for patient_id, analyte_id, value, when in history.values_list("patient_id", "analyte_id", "value", "effective_at"):
        course[(patient_id, codes[analyte_id])].append((when, value))
    for (patient_id, code), series in course.items():
        records[patient_id].history[code] = tuple(series)
    return dict(records)
