"""The CDS Hooks service's work: a patient-view call answered with cards, feedback stored, JWT ids spent.

Every call is audited (`clinic.audit`) as the EHR connection and its user, with the hook instance and what was
answered; never with the request's `fhirAuthorization` (the EHR's FHIR access token), which the view drops before
anything else sees the body.
"""

from __future__ import annotations

import datetime
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from cdshooks import cards, prefetch, selectors
from cdshooks.auth import Caller, Unauthorized
from cdshooks.models import EhrConnection, UsedJti
from clinic.audit import audit_record
from clinic.models import AuditOutcome
from patients.fhir.services import fhir_import
from patients.models import Patient
from predictions.selectors import risk_summary
from recommendations.models import (
    OVERRIDE_SYSTEM,
    AdviceItem,
    FeedbackAction,
    FeedbackEvent,
    FeedbackOutcome,
    FeedbackSource,
    OverrideReason,
)
from recommendations.rules import RULES_VERSION

PATIENT_VIEW = "patient-view"
SERVICES = {
    PATIENT_VIEW: {
        "hook": PATIENT_VIEW,
        "id": PATIENT_VIEW,
        "title": "Approved advice and critical findings",
        "description": "The advice a doctor of the clinic approved for this patient, critical findings still "
        "awaiting review, and the risk estimate with its provenance (decision support, not a diagnosis). For a "
        "patient not registered at the clinic, the clinic's guideline rules judge the laboratory results sent.",
        "prefetch": {
            "patient": "Patient/{{context.patientId}}",
            "observations": "Observation?patient={{context.patientId}}&category=laboratory&_sort=-date&_count=100",
            "conditions": "Condition?patient={{context.patientId}}",
        },
        "usageRequirements": "Register the EHR in the clinic platform's admin (issuer, public keys, MRN system). "
        "Without the prefetched Patient the service answers 412.",
    },
}
MAX_FEEDBACK = 100


class BadRequest(Exception):
    """400: the body is not what the hook's specification says."""


class PreconditionFailed(Exception):
    """412: the FHIR data the service needs was not prefetched."""


class UnknownCard(Exception):
    """404: feedback names a card this service never gave to this connection's clinic."""

    def __init__(self, cards: list[str]):
        super().__init__(f"Unknown card(s): {', '.join(cards)}. Feedback is taken for cards that carry a uuid.")
        self.cards = cards


def _username(connection: EhrConnection, user: str) -> str:
    return f"ehr:{connection.pk}:{user}"[:150]


_PRUNE_EVERY = datetime.timedelta(minutes=1)
_pruned_at: list[datetime.datetime] = []  # per process: when it last forgot expired ids


def jti_claim(*, caller: Caller, now: datetime.datetime) -> None:
    """Spend the JWT's id: a second call with the same JWT is a replay and refused. Ids whose JWT expired (past the
    verification's leeway) are forgotten, by each process at most once a minute."""
    exp = datetime.datetime.fromtimestamp(caller.claims["exp"], tz=datetime.UTC)
    if not _pruned_at or now - _pruned_at[0] > _PRUNE_EVERY:
        UsedJti.objects.filter(exp__lt=now - datetime.timedelta(minutes=5)).delete()
        _pruned_at[:] = [now]
    try:
        with transaction.atomic():
            UsedJti.objects.create(connection=caller.connection, jti=caller.claims["jti"], exp=exp)
    except IntegrityError:
        raise Unauthorized("This JWT was already used (its jti was seen before): sign a new one per call.") from None


def auth_refused(*, path: str, reason: str) -> None:
    audit_record(actor=None, action="cdshooks.refused", outcome=AuditOutcome.DENIED, username="ehr:unverified",
                 detail={"path": path, "reason": reason})  # fmt: skip


# --- patient-view ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HookCall:
    hook_instance: str
    user: str
    patient_id: str
    prefetch: dict[str, Any]


def _hook_call(body: Any, caller: Caller) -> HookCall:
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    if body.get("hook") != PATIENT_VIEW:
        raise BadRequest(f"This service answers the {PATIENT_VIEW} hook, not {body.get('hook')!r}.")
    context = body.get("context")
    if not isinstance(context, dict) or not isinstance(context.get("patientId"), str) or not context["patientId"]:
        raise BadRequest("context.patientId is required.")
    instance = body.get("hookInstance")
    if not isinstance(instance, str) or not instance:
        raise BadRequest("hookInstance is required.")
    prefetched = body.get("prefetch") if isinstance(body.get("prefetch"), dict) else {}
    user = context.get("userId") if isinstance(context.get("userId"), str) else ""
    return HookCall(instance[:100], (user or caller.subject or "unknown user")[:120], context["patientId"][:64],
                    prefetched)  # fmt: skip


def _patient_url(patient: Patient) -> str:
    return f"{settings.PORTAL_URL}{reverse('patients:detail', args=[patient.pk])}"


def _known_cards(patient: Patient, call: HookCall, clinic: str) -> list[dict[str, Any]]:
    advice = selectors.patient_advice(patient=patient)
    link = _patient_url(patient)
    out = [cards.critical_card(item, clinic=clinic, link=link) for item in advice.pending_critical]
    out += [cards.approved_card(item, clinic=clinic, link=link, patient_id=call.patient_id) for item in advice.approved]
    if advice.prediction is not None:
        p = advice.prediction
        out.append(cards.risk_card(
            level=p.risk_level, summary=risk_summary(probabilities=p.probabilities, risk_level=p.risk_level),
            version=p.model_version.version, training_data=p.model_version.training_data, scored_at=p.created_at,
            clinic=clinic, link=link,
        ))  # fmt: skip
    return out or [cards.registered_card(clinic=clinic, link=link)]


def _prefetch_cards(judged: prefetch.Judged, clinic: str, now: datetime.datetime) -> list[dict[str, Any]]:
    titles = dict(AdviceItem.objects.filter(code__in=[f.advice for f in judged.findings]).values_list("code", "title"))
    out = [
        cards.finding_card(title=titles.get(f.advice, f.advice.replace("_", " ")), severity=int(f.severity),
                           rationale=f.rationale, citation=f.citation, advice_code=f.advice, clinic=clinic,
                           rules_version=RULES_VERSION)
        for f in judged.findings
    ]  # fmt: skip
    if judged.risk is not None:
        r = judged.risk
        out.append(cards.risk_card(level=r.level, summary=r.summary, version=r.version, training_data=r.training_data,
                                   scored_at=now, clinic=clinic, link=None))  # fmt: skip
    elif judged.no_risk_because:
        out.append(cards.no_risk_card(because=judged.no_risk_because, clinic=clinic))
    if not judged.findings and judged.results:
        out.append(cards.nothing_found_card(results=judged.results, clinic=clinic, rules_version=RULES_VERSION))
    if judged.unknown or judged.problems or judged.not_final:
        out.append(cards.unread_card(unknown=judged.unknown, problems=judged.problems, not_final=judged.not_final,
                                     clinic=clinic))  # fmt: skip
    return out


def _store(connection: EhrConnection, patient_resource: dict, mrn: str, prefetched: dict, username: str) -> str:
    """Import what the EHR sent (the connection allows it); the Patient under our MRN system only. Returns what
    happened, for the audit row."""
    if not mrn:
        return "not stored: the Patient has no identifier in the connection's MRN system"
    resource = {**patient_resource, "identifier": [{"system": connection.mrn_system, "value": mrn,
                                                     "type": {"coding": [{"code": "MR"}]}}]}  # fmt: skip
    entries = [{"resource": resource}] + [{"resource": item.resource} for item in
                                          prefetch.fhir_items(prefetched, ("observations", "conditions"))]  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    try:
        fhir_import(by=None, data=json.dumps(bundle).encode(), clinic=connection.clinic, name="CDS Hooks prefetch",
                    skip_bad=True, username=username)  # fmt: skip
    except ValidationError as exc:
        return f"not stored: {exc.messages[0]}"
    return "stored"


def patient_view(*, caller: Caller, body: Any, now: datetime.datetime) -> dict[str, Any]:
    """The cards for the patient the EHR's clinician opened, audited."""
    connection, clinic = caller.connection, caller.connection.clinic.name
    call = _hook_call(body, caller)
    patient_resource = next(iter(prefetch.resources_of(call.prefetch.get("patient"), "Patient")), None)
    if patient_resource is None:
        raise PreconditionFailed("Prefetch the Patient (prefetch.patient): the service matches patients by MRN.")
    mrn = selectors.mrn_of(connection=connection, patient_resource=patient_resource)
    patient = selectors.patient_match(connection=connection, mrn=mrn)
    username = _username(connection, call.user)
    detail: dict[str, Any] = {"hook": PATIENT_VIEW, "hookInstance": call.hook_instance, "ehr_user": call.user,
                              "matched": patient is not None}  # fmt: skip
    if patient is not None:
        answer = _known_cards(patient, call, clinic)
    else:
        judged = prefetch.judge(prefetch=call.prefetch, clinic_id=connection.clinic_id, now=now)
        answer = _prefetch_cards(judged, clinic, now)
        detail |= {"results": judged.results, "unknown_codes": len(judged.unknown), "refused": len(judged.problems),
                   "risk": judged.risk.level if judged.risk else judged.no_risk_because}  # fmt: skip
        if connection.may_store_prefetch:
            detail["prefetch"] = _store(connection, patient_resource, mrn, call.prefetch, username)
    detail["cards"] = [card.get("uuid") or card["indicator"] for card in answer]
    audit_record(actor=None, username=username, action="cdshooks.patient_view", target=connection,
                 patient_id=patient.pk if patient else None, detail=detail)  # fmt: skip
    return {"cards": answer}


# --- feedback -------------------------------------------------------------------------------------------------


def _reason(entry: dict[str, Any]) -> tuple[str, str]:
    """(our override reason code, comment) from a feedback's overrideReason; a reason not ours is "other" with
    what the EHR said in the comment."""
    override = entry.get("overrideReason") if isinstance(entry.get("overrideReason"), dict) else {}
    reason = override.get("reason") if isinstance(override.get("reason"), dict) else {}
    comment = str(override.get("userComment") or "")[:4000]
    code = str(reason.get("code") or "")
    if reason.get("system") == OVERRIDE_SYSTEM and code in OverrideReason.values:
        return code, comment
    if code:
        said = f"EHR reason {reason.get('system', '')}|{code} {reason.get('display', '')}".strip()
        return OverrideReason.OTHER, f"{said}. {comment}".strip()
    return (OverrideReason.OTHER, comment) if comment else ("", "")


def _entries(body: Any) -> list[dict[str, Any]]:
    entries = body.get("feedback") if isinstance(body, dict) else None
    if not isinstance(entries, list) or not entries:
        raise BadRequest('The body must be {"feedback": [ ... ]} with at least one entry.')
    if len(entries) > MAX_FEEDBACK:
        raise BadRequest(f"At most {MAX_FEEDBACK} feedback entries per call.")
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("card"), str):
            raise BadRequest(f"feedback[{n}].card (the card's uuid) is required.")
        if entry.get("outcome") not in FeedbackOutcome.values:
            raise BadRequest(f"feedback[{n}].outcome must be accepted or overridden.")
        try:
            uuid.UUID(entry["card"])
        except ValueError:
            raise UnknownCard([entry["card"][:64]]) from None
    return entries


@transaction.atomic
def feedback_record(*, caller: Caller, service_id: str, body: Any, now: datetime.datetime) -> list[FeedbackEvent]:
    """Store each feedback entry as a FeedbackEvent of the EHR's user; all or nothing, audited."""
    if service_id not in SERVICES:
        raise BadRequest(f"No service {service_id!r} here.")
    connection = caller.connection
    entries = _entries(body)
    items = {entry["card"]: selectors.card_item(connection=connection, card_id=entry["card"]) for entry in entries}
    unknown = [card for card, item in items.items() if item is None]
    if unknown:
        audit_record(actor=None, username=_username(connection, caller.subject or "unknown user"),
                     action="cdshooks.feedback", target=connection, outcome=AuditOutcome.FAILURE,
                     detail={"unknown_cards": unknown})  # fmt: skip
        raise UnknownCard(unknown)
    user = (caller.subject or "unknown user")[:120]
    events = []
    for entry in entries:
        item = items[entry["card"]]
        reason, comment = _reason(entry) if entry["outcome"] == FeedbackOutcome.OVERRIDDEN else ("", "")
        events.append(FeedbackEvent(
            item=item, clinic_id=connection.clinic_id, patient_id=item.recommendation.patient_id,
            advice_id=item.advice_id, clinician=None, source=FeedbackSource.EHR,
            ehr_user=f"{connection.pk}:{user}", action=FeedbackAction.EHR_FEEDBACK, outcome=entry["outcome"],
            override_reason=reason, comment=comment, position=item.position, created_at=now,
        ))  # fmt: skip
    FeedbackEvent.objects.bulk_create(events)
    for event in events:
        audit_record(actor=None, username=_username(connection, user), action="cdshooks.feedback", target=connection,
                     patient_id=event.patient_id, detail={"card": str(event.item.card_id), "outcome": event.outcome,
                                                          "reason": event.override_reason})  # fmt: skip
    return events
