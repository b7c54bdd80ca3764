"""Guideline rules: a patient's latest values in, cited findings out. Pure Python, no Django.

- Values are in the catalog's canonical units (`patients/catalog_data.py`). A threshold that a guideline
  states in another unit (mg/dL) is written in that unit and converted once, at import, with the catalog's
  own factor, so a value entered in mg/dL and converted by the platform lands exactly on it.
- Every threshold keeps its guideline's boundary: `at_least` (>=), `above` (>) or `below` (<).
- A rule fires inside a band: from its threshold to where the next, more severe rule for the same analyte
  takes over (`until`), so one value gives one finding per analyte and direction.
- Critical rules use the catalog's critical limits, as strict as the LL / HH flags of `patients.clinical`,
  and apply at every age, as those flags do. The other thresholds are for adults: a patient known to be
  under 18 gets none of them; an unknown age counts as adult.
- Sex-specific limits: for a patient recorded as neither female nor male, the limit at which the value is
  abnormal for both sexes, which is how `patients.clinical` flags such a patient.
- A value that is missing, None, NaN or infinite is "not measured" and gives no finding.
- Several rules for the same advice item give one finding, the most severe. Where a guideline designates one
  category from two analytes (blood pressure: the higher of the systolic and diastolic stages), the higher
  category's finding replaces the lower ones' (`guidelines.SUPERSEDES`).

`engine` holds the machinery, `guidelines` the rules themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommendations.rules.engine import ADULT_AGE, Facts, Finding, Rule, Severity
from recommendations.rules.guidelines import RULES, SUPERSEDES

__all__ = [
    "evaluate_many",
    "ADULT_AGE",
    "HEADLINE_CONSULT",
    "HEADLINE_LIFESTYLE",
    "HEADLINE_NO_ACTION",
    "RISK_LEVELS",
    "RULES",
    "RULES_VERSION",
    "Facts",
    "Finding",
    "Rule",
    "Severity",
    "evaluate",
    "headline",
]

RULES_VERSION = "2026.11.1"  # bump when a threshold, band or severity changes

HEADLINE_NO_ACTION, HEADLINE_LIFESTYLE, HEADLINE_CONSULT = (
    "no_action_needed",
    "lifestyle_changes",
    "consult_professional",
)
RISK_LEVELS = ("low", "moderate", "high", "")


def evaluate(facts: Facts, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """All findings; of several for the same advice item the most severe is kept (on a tie, the first rule's),
    and none whose item a higher category's replaces (`SUPERSEDES`).

    Sorted by severity, most severe first, then by rule order.
    """
    kept: dict[str, tuple[int, Finding]] = {}
    for order, rule in enumerate(rules):
        finding = rule.check(facts)
        if finding is None:
            continue
        previous = kept.get(finding.advice)
        if previous is None or finding.severity > previous[1].severity:
            kept[finding.advice] = (order, finding)
    return _designated(kept)


def _designated(kept: dict[str, tuple[int, Finding]]) -> list[Finding]:
    """The findings kept per advice item (with their rule order), less the items a kept one supersedes, most
    severe first, then in rule order."""
    replaced = {lower for advice in kept for lower in SUPERSEDES.get(advice, ())}
    remaining = [item for advice, item in kept.items() if advice not in replaced]
    return [finding for _, finding in sorted(remaining, key=lambda item: (-item[1].severity, item[0]))]


def _limits(cut, sexes: np.ndarray) -> np.ndarray:
    lenient = cut.limit("")
    return np.where(sexes == "female", cut.female, np.where(sexes == "male", cut.male, lenient))


_COMPARE = {">=": np.greater_equal, ">": np.greater, "<": np.less, "<=": np.less_equal}


def _candidates(rule: Rule, facts: Sequence[Facts], sexes: np.ndarray, columns: dict) -> np.ndarray:
    """Indices of the facts whose own value could fire the rule (a superset: `check` decides)."""
    if rule.fires is None:
        return np.arange(len(facts))
    values = columns.get(rule.analyte)
    if values is None:  # None -> NaN, which never compares true
        values = columns[rule.analyte] = np.array([f.value(rule.analyte) for f in facts], dtype=float)
    with np.errstate(invalid="ignore"):
        mask = _COMPARE[rule.fires.op](values, _limits(rule.fires, sexes))
        if rule.stops is not None:
            mask &= ~_COMPARE[rule.stops.op](values, _limits(rule.stops, sexes))
    return np.flatnonzero(mask)


def evaluate_many(facts: Sequence[Facts], rules: Sequence[Rule] = RULES) -> list[list[Finding]]:
    """`evaluate` of each facts, for many patients at once: each rule is first screened over all patients with
    one array comparison, so `check` runs only where the rule's own value is in its band. Same results."""
    sexes = np.array([f.sex for f in facts], dtype=object)
    found: list[dict[str, tuple[int, Finding]]] = [{} for _ in facts]
    columns: dict[str, np.ndarray] = {}
    for order, rule in enumerate(rules):
        for index in _candidates(rule, facts, sexes, columns):
            finding = rule.check(facts[index])
            if finding is None:
                continue
            previous = found[index].get(finding.advice)
            if previous is None or finding.severity > previous[1].severity:
                found[index][finding.advice] = (order, finding)
    return [_designated(kept) for kept in found]


def headline(findings: Sequence[Finding], risk_level: str) -> str:
    """Consult when a finding is HIGH or worse or the model's risk is high; lifestyle when a finding is LOW or
    worse or the risk is moderate; otherwise no action. An unknown risk level is an error, not "low"."""
    if risk_level not in RISK_LEVELS:
        raise ValueError(f"risk_level must be one of {RISK_LEVELS}, not {risk_level!r}")
    worst = max((finding.severity for finding in findings), default=Severity.INFO)
    if worst >= Severity.HIGH or risk_level == "high":
        return HEADLINE_CONSULT
    if worst >= Severity.LOW or risk_level == "moderate":
        return HEADLINE_LIFESTYLE
    return HEADLINE_NO_ACTION
