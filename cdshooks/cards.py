"""CDS Hooks cards, as the specification shapes them, from what the platform holds or found. No queries here.

- an approved advice item: `info`, with its card id (the item's `card_id`, so the EHR's feedback finds it), the
  coded override reasons the review pages offer, a link to the patient's page and, for a follow-up test or a
  referral, a suggestion to draft the order;
- a critical item no doctor has reviewed yet: `critical`, "awaiting review since <time>";
- the risk estimate: what the model says, its version and what it was trained on, "decision support, not a
  diagnosis";
- for a patient not registered here, the guideline rules' findings on the FHIR data the EHR sent, and what of that
  data could not be read.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable
from typing import Any

from recommendations.models import OFFERED_OVERRIDE_REASONS, OVERRIDE_SYSTEM, Category, RecommendationItem, Severity

NOT_A_DIAGNOSIS = "Decision support for a clinician, not a diagnosis."
ADVICE_TOPIC_SYSTEM = "urn:clinic-platform:advice"
SUMMARY_MAX = 140
_SUGGESTED_ORDER = {Category.FOLLOW_UP_TEST: "Draft an order", Category.REFERRAL: "Draft a referral"}


def _summary(text: str) -> str:
    return text if len(text) < SUMMARY_MAX else text[: SUMMARY_MAX - 2].rstrip() + "…"


def _when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def override_reasons() -> list[dict[str, str]]:
    return [{"system": OVERRIDE_SYSTEM, "code": code, "display": label} for code, label in OFFERED_OVERRIDE_REASONS]


def source(label: str, *, advice_code: str = "", advice_title: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"label": label}
    if advice_code:
        body["topic"] = {"system": ADVICE_TOPIC_SYSTEM, "code": advice_code, "display": advice_title}
    return body


def patient_link(url: str) -> dict[str, str]:
    return {"label": "Open the patient's page in the clinic platform", "url": url, "type": "absolute"}


def suggestion_uuid(card_id: uuid.UUID | str) -> str:
    """A stable id per card, so the EHR's `acceptedSuggestions` can name it."""
    return str(uuid.uuid5(uuid.UUID(str(card_id)), "suggestion"))


def _suggestion(item: RecommendationItem, patient_id: str) -> dict[str, Any] | None:
    verb = _SUGGESTED_ORDER.get(item.advice.category)
    if verb is None:
        return None
    order = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {"text": item.advice.title},
        "subject": {"reference": f"Patient/{patient_id}"},
        "reasonCode": [{"text": item.rationale[:500]}],
    }
    description = f"{verb}: {item.advice.title} (a draft for the clinician to complete and sign)."
    return {
        "label": _summary(f"{verb}: {item.advice.title}"),
        "uuid": suggestion_uuid(item.card_id),
        "actions": [{"type": "create", "description": description, "resource": order}],
    }


def _item_detail(item: RecommendationItem, lines: Iterable[str]) -> str:
    parts = [f"**Why:** {item.rationale}"]
    if item.citation:
        parts.append(f"**Source:** {item.citation}")
    parts.extend(lines)
    parts.append(f"*{NOT_A_DIAGNOSIS}*")
    return "\n\n".join(parts)


def approved_card(item: RecommendationItem, *, clinic: str, link: str, patient_id: str) -> dict[str, Any]:
    reviewed = f"Approved by a doctor of {clinic} on {_when(item.reviewed_at)}." if item.reviewed_at else ""
    if item.protocol_id:
        reviewed = f"Released under a standing protocol of {clinic}."
    card: dict[str, Any] = {
        "uuid": str(item.card_id),
        "summary": _summary(item.advice.title),
        "indicator": "info",
        "detail": _item_detail(item, [reviewed] if reviewed else []),
        "source": source(f"{clinic}: approved advice", advice_code=item.advice.code, advice_title=item.advice.title),
        "overrideReasons": override_reasons(),
        "links": [patient_link(link)],
    }
    suggestion = _suggestion(item, patient_id)
    if suggestion is not None:
        card["suggestions"], card["selectionBehavior"] = [suggestion], "at-most-one"
    return card


def critical_card(item: RecommendationItem, *, clinic: str, link: str) -> dict[str, Any]:
    waiting = f"Awaiting review by a doctor of {clinic} since {_when(item.recommendation.created_at)}."
    return {
        "uuid": str(item.card_id),
        "summary": _summary(
            f"Critical: {item.advice.title} (awaiting review since {_when(item.recommendation.created_at)})"
        ),  # fmt: skip
        "indicator": "critical",
        "detail": _item_detail(item, [waiting]),
        "source": source(f"{clinic}: critical finding", advice_code=item.advice.code, advice_title=item.advice.title),
        "overrideReasons": override_reasons(),
        "links": [patient_link(link)],
    }


def risk_card(*, level: str, summary: str, version: int, training_data: str, scored_at: datetime.datetime,
              clinic: str, link: str | None) -> dict[str, Any]:  # fmt: skip
    detail = (
        f"The clinic's model (version {version}) estimates a **{level}** risk: {summary}. Scored on "
        f"{_when(scored_at)} from the results then on record.\n\nProvenance: model v{version}, "
        f"{training_data.rstrip('.')}.\n\n"
        f"*{NOT_A_DIAGNOSIS}*"
    )
    card = {
        "summary": _summary(f"Risk {level} ({summary}); model v{version}. {NOT_A_DIAGNOSIS}"),
        "indicator": "warning" if level == "high" else "info",
        "detail": detail,
        "source": source(f"{clinic}: risk model v{version}"),
    }
    if link:
        card["links"] = [patient_link(link)]
    return card


def registered_card(*, clinic: str, link: str) -> dict[str, Any]:
    """For a registered patient with nothing to show: where to look."""
    return {
        "summary": f"Registered at {clinic}: no approved advice and no critical finding waiting.",
        "indicator": "info",
        "source": source(clinic),
        "links": [patient_link(link)],
    }


_INDICATOR = {Severity.CRITICAL: "critical", Severity.HIGH: "warning", Severity.MODERATE: "warning"}


def finding_card(*, title: str, severity: int, rationale: str, citation: str, advice_code: str, clinic: str,
                 rules_version: str) -> dict[str, Any]:  # fmt: skip
    """A guideline rule's finding on the EHR's data (a patient not registered here): no card id, it is not stored."""
    detail = [f"**Why:** {rationale}"]
    if citation:
        detail.append(f"**Source:** {citation}")
    detail.append(f"From the data your EHR sent with this call; the patient is not registered at {clinic} and no "
                  "doctor there has reviewed it.")  # fmt: skip
    detail.append(f"*{NOT_A_DIAGNOSIS}*")
    return {
        "summary": _summary(title),
        "indicator": _INDICATOR.get(severity, "info"),
        "detail": "\n\n".join(detail),
        "source": source(f"{clinic}: guideline rules {rules_version}", advice_code=advice_code, advice_title=title),
    }


def no_risk_card(*, because: str, clinic: str) -> dict[str, Any]:
    """Why the model gave no estimate: it speaks only from what it has."""
    return {
        "summary": _summary(f"No risk estimate: {because}."),
        "indicator": "info",
        "detail": "The absence of a risk estimate is not a low risk.",
        "source": source(f"{clinic}: risk model"),
    }


def nothing_found_card(*, results: int, clinic: str, rules_version: str) -> dict[str, Any]:
    return {
        "summary": _summary(f"No guideline rule fired on the {results} results sent."),
        "indicator": "info",
        "detail": f"The patient is not registered at {clinic}. *{NOT_A_DIAGNOSIS}*",
        "source": source(f"{clinic}: guideline rules {rules_version}"),
    }


def unread_card(*, unknown: list[str], problems: list[str], not_final: list[str], clinic: str) -> dict[str, Any]:
    """What of the EHR's data was not used: codes the catalog does not know, values refused as impossible, results
    not final yet (preliminary: the rules read final results only, as for the lab's own feed)."""
    count = len(unknown) + len(problems) + len(not_final)
    lines = ([f"- code not read: {entry}" for entry in unknown] + [f"- refused: {entry}" for entry in problems]
             + [f"- not final, {entry}" for entry in not_final])  # fmt: skip
    return {
        "summary": _summary(f"{count} of the results sent could not be used (listed in the detail)."),
        "indicator": "info",
        "detail": "Not judged by the rules, so their absence of findings means nothing:\n\n" + "\n".join(lines[:50]),
        "source": source(clinic),
    }
