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
- Sex-specific limits: for a patient recorded as neither female nor male, the stricter of the two limits (the
  one that flags more), as `patients.clinical` flags such a patient; eGFR is computed both ways and the lower
  judged; an item asks staff to record the sex.
- Values carry their dates (`Facts.dates`): one older than its analyte's cited window (`engine.RECENT`) is not
  judged as current; where a rule would have fired on it, a "repeat the test" item names it and its date.
- A value that is missing, None, NaN or infinite is "not measured" and gives no finding.
- Several findings for the same advice item, or about the same condition from several analytes, give one
  item at the most severe finding's severity that names every value. Where a guideline designates one
  category from two analytes (blood pressure: the higher of the systolic and diastolic stages), the higher
  category's finding replaces the lower ones' (`guidelines.SUPERSEDES`).

`engine` holds the machinery, `guidelines` the rules themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from recommendations.rules.engine import ADULT_AGE, RECENT, Facts, Finding, Rule, Severity, analytes_of, recent_days
from recommendations.rules.facts import facts_from
from recommendations.rules.guidelines import ALL_RULES, SUPERSEDES

RULES = ALL_RULES

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
    "analytes_behind",
    "analytes_of",
    "evaluate",
    "facts_from",
    "headline",
]

RULES_VERSION = "2026.12.2"  # bump when a threshold, band or severity changes

HEADLINE_NO_ACTION, HEADLINE_LIFESTYLE, HEADLINE_CONSULT = (
    "no_action_needed",
    "lifestyle_changes",
    "consult_professional",
)
RISK_LEVELS = ("low", "moderate", "high", "")

# Conditions one item speaks for: findings about the same one merge into a single item (`_merged`).
TOPIC = {"prediabetes": "diabetes"}
STALE_ADVICE = "result_out_of_date_repeat"
STALE_SUFFIX = "_out_of_date"
BY_CODE: dict[str, Rule] = {rule.code: rule for rule in RULES}


def merge_key(condition: str, advice: str) -> str:
    """Findings with the same key become one item: same condition (or topic), else same advice item."""
    return TOPIC.get(condition, condition) or f"advice:{advice}"


def evaluate(facts: Facts, rules: Sequence[Rule] = RULES) -> list[Finding]:
    """All findings: of several for the same advice item or the same condition, one item at the most severe
    finding's severity that names every value (`_merged`); none whose item a higher category's replaces
    (`SUPERSEDES`); a value too old to judge gives "repeat the test" where a rule would have fired on it.

    Sorted by severity, most severe first, then by rule order.
    """
    found = [(order, finding) for order, rule in enumerate(rules) if (finding := rule.check(facts)) is not None]
    return _designated(found + _stale(facts, rules))


def _stale(facts: Facts, rules: Sequence[Rule]) -> list[tuple[int, Finding]]:
    """For each value older than its window, the finding it would give if it were current, as a repeat item."""
    if facts.as_of is None or not any(facts.stale(name) for name in facts.dates):
        return []
    as_current = dataclasses.replace(facts, as_of=None)
    worst: dict[str, tuple[int, Finding]] = {}
    for order, rule in enumerate(rules):
        if not rule.analyte or not facts.stale(rule.analyte):
            continue
        finding = rule.check(as_current)
        if finding is not None and (rule.analyte not in worst or finding.severity > worst[rule.analyte][1].severity):
            worst[rule.analyte] = (order, finding)
    return [(len(rules) + order, _repeat(facts, analyte, finding)) for analyte, (order, finding) in worst.items()]


def _repeat(facts: Facts, analyte: str, finding: Finding) -> Finding:
    days, why = RECENT.get(analyte, (recent_days(analyte), "the model's two-year window"))
    text = (
        f"Out of date: {finding.rationale[:-1]} - but that result is older than {days} days ({why}), so it is not "
        "judged as current. Repeat the test."
    )
    return dataclasses.replace(finding, rule=f"{analyte}{STALE_SUFFIX}", advice=STALE_ADVICE,
                               severity=Severity.MODERATE, rationale=text, condition="")  # fmt: skip


def _designated(found: list[tuple[int, Finding]]) -> list[Finding]:
    """One finding per advice item and per condition (the most severe, naming the others), less the items a kept
    one supersedes, most severe first, then in rule order."""
    groups: dict[str, list[tuple[int, Finding]]] = {}
    for order, finding in found:
        groups.setdefault(merge_key(finding.condition, finding.advice), []).append((order, finding))
    kept = [_merged(group) for group in groups.values()]
    advices = {finding.advice for _, finding in kept}
    replaced = {lower for advice in advices for lower in SUPERSEDES.get(advice, ())}
    remaining = [item for item in kept if item[1].advice not in replaced]
    return [finding for _, finding in sorted(remaining, key=lambda item: (-item[1].severity, item[0]))]


def _merged(group: list[tuple[int, Finding]]) -> tuple[int, Finding]:
    """The most severe finding (on a tie, the first rule's), its rationale naming every other value."""
    order, top = min(group, key=lambda item: (-item[1].severity, item[0]))
    others = [f.rationale for o, f in sorted(group, key=lambda item: item[0]) if o != order]
    if not others:
        return order, top
    return order, dataclasses.replace(top, rationale=f"{top.rationale} Also: {' '.join(others)}")


def analytes_behind(rule_code: str, facts: Facts | None = None) -> tuple[str, ...]:
    """The catalog analytes behind the item of this rule: those its rule reads, then those of the other rules that
    fire on `facts` and were merged into the item (`_designated`), so the item lists exactly the values it names.
    A "repeat the test" item: the analyte out of date. Empty for the model's items and unknown codes."""
    if rule_code.endswith(STALE_SUFFIX) and rule_code.removesuffix(STALE_SUFFIX) not in BY_CODE:
        return analytes_of(rule_code.removesuffix(STALE_SUFFIX))
    rule = BY_CODE.get(rule_code)
    if rule is None:
        return ()
    merged = []
    if facts is not None:
        key = merge_key(rule.condition, rule.advice)
        merged = [other for other in RULES if other is not rule and merge_key(other.condition, other.advice) == key
                  and other.check(facts) is not None]  # fmt: skip
    return tuple(dict.fromkeys(code for each in (rule, *merged) for code in each.reads))


def _limits(cut, sexes: np.ndarray) -> np.ndarray:
    strict = cut.limit("")
    return np.where(sexes == "female", cut.female, np.where(sexes == "male", cut.male, strict))


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
    found: list[list[tuple[int, Finding]]] = [_stale(f, rules) for f in facts]
    columns: dict[str, np.ndarray] = {}
    for order, rule in enumerate(rules):
        for index in _candidates(rule, facts, sexes, columns):
            finding = rule.check(facts[index])
            if finding is not None:
                found[index].append((order, finding))
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
