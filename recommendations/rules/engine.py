"""The rule machinery: facts, findings, boundaries, and the factory that turns one declarative line into a rule.

Pure Python, no Django. The conventions are described in the package docstring (`recommendations.rules`).
"""

from __future__ import annotations

import datetime
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from patients.catalog_data import ANALYTES, DEFAULT_RECENCY_DAYS, RECENCY, AnalyteSpec, UnitConversion, unit_display

ADULT_AGE = 18  # the catalog's adult reference ranges start here too


class Severity(IntEnum):
    INFO = 0  # nothing to do
    LOW = 1  # lifestyle
    MODERATE = 2  # follow-up test / review
    HIGH = 3  # consult a healthcare professional
    CRITICAL = 4  # urgent: pinned first, never re-ranked


Series = tuple[tuple[datetime.datetime, float], ...]  # (effective time, canonical value), oldest first


@dataclass(frozen=True)
class Facts:
    values: Mapping[str, float | None]  # feature -> value in canonical units
    sex: str = ""  # "female" | "male" | "" (unknown)
    age: float | None = None  # years
    # When each value was measured, and the time the facts are judged at. A value without a date, or facts
    # without `as_of`, count as current (a value typed into a test, a form's preview).
    dates: Mapping[str, datetime.datetime] = field(default_factory=dict)
    as_of: datetime.datetime | None = None
    history: Mapping[str, Series] = field(default_factory=dict)  # earlier values, for rules that need a course
    notes: Mapping[str, str] = field(default_factory=dict)  # feature -> how it was obtained, for the rationale

    def measured(self, feature: str) -> float | None:
        """The value, current or not, or None when it is missing, None, NaN or infinite."""
        raw = self.values.get(feature)
        if raw is None:
            return None
        number = float(raw)
        return number if math.isfinite(number) else None

    def value(self, feature: str) -> float | None:
        """The measured value if it is recent enough to judge (`recent_days`), else None."""
        return None if self.stale(feature) else self.measured(feature)

    def stale(self, feature: str) -> bool:
        when = self.dates.get(feature)
        if when is None or self.as_of is None:
            return False
        return self.as_of - when > datetime.timedelta(days=recent_days(feature))

    def on(self, feature: str) -> str:
        """ " on 2026-03-01" when the value's date is known, else ""."""
        when = self.dates.get(feature)
        return f" on {when.date().isoformat()}" if when is not None else ""


# --- How recent a value must be to be judged as current -------------------------------------------------------------

# Days, with the guideline statement each window comes from. A value older than its window is never judged as
# current: a rule that it would have fired gives "repeat the test" instead (`guidelines.stale_findings`).
# The catalog's windows (`patients.catalog_data.RECENCY`), and a derived value's from the analyte it comes from.
RECENT: dict[str, tuple[int, str]] = {**RECENCY, "egfr": RECENCY["creatinine"], "non_hdl_cholesterol": RECENCY["ldl"]}


def recent_days(feature: str) -> int:
    return RECENT.get(feature, (DEFAULT_RECENCY_DAYS, ""))[0]


@dataclass(frozen=True)
class Finding:
    rule: str  # rule code
    advice: str  # AdviceSpec.code
    severity: Severity
    rationale: str  # quotes value, unit and threshold, in the guideline's unit too when it differs
    citation: str  # short citation
    analyte: str  # feature name the rule read
    value: float  # canonical units
    threshold: float  # canonical units, for this patient's sex
    unit: str  # canonical UCUM unit
    condition: str = ""  # related model class, or "" (e.g. electrolytes, cardiac)


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    analyte: str
    citation: str
    condition: str
    check: Callable[[Facts], Finding | None]
    severity: Severity = Severity.INFO  # of every finding the rule gives
    advice: str = ""  # AdviceSpec.code of every finding the rule gives
    # Canonical bounds of the rule's own analyte: a finding needs `fires` to hold and `stops` not to. They let
    # `evaluate_many` skip, with one array comparison, the patients a rule cannot fire for; `check` decides.
    fires: Cut | None = None
    stops: Cut | None = None
    # The catalog analytes the rule reads, derived features traced to theirs (`analytes_of`): the values the review
    # page shows behind the rule's item.
    reads: tuple[str, ...] = ()


# --- Boundaries ---------------------------------------------------------------------------------------------------

_OPS = {">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le}
_WORDS = {">=": "at or above", ">": "above", "<": "below", "<=": "at or below"}
_NOT = {">=": "<", ">": "<=", "<": ">=", "<=": ">"}

Limit = float | None


@dataclass(frozen=True)
class Cut:
    """A boundary: an operator and a limit per sex (equal unless sex-specific), in `unit` ("" = canonical)."""

    op: str
    male: float
    female: float
    unit: str = ""

    @property
    def sex_specific(self) -> bool:
        return self.male != self.female

    def limit(self, sex: str) -> float:
        """The limit for this sex; for a sex not recorded, the one of the two that flags more (the strict case)."""
        if sex == "female":
            return self.female
        if sex == "male":
            return self.male
        strict = min if self.op in (">=", ">") else max
        return strict(self.male, self.female)

    def holds(self, value: float, sex: str) -> bool:
        return _OPS[self.op](value, self.limit(sex))


def _cut(op: str, limit: Limit, female: Limit, male: Limit, unit: str) -> Cut:
    male, female = (limit, limit) if limit is not None else (male, female)
    if male is None or female is None:
        raise ValueError("give one limit, or one for each sex")
    return Cut(op, float(male), float(female), unit)


def at_least(limit: Limit = None, *, female: Limit = None, male: Limit = None, unit: str = "") -> Cut:
    return _cut(">=", limit, female, male, unit)


def above(limit: Limit = None, *, female: Limit = None, male: Limit = None, unit: str = "") -> Cut:
    return _cut(">", limit, female, male, unit)


def below(limit: Limit = None, *, female: Limit = None, male: Limit = None, unit: str = "") -> Cut:
    return _cut("<", limit, female, male, unit)


# --- What the rules read ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    label: str
    unit: str  # canonical UCUM code
    decimals: int
    conversions: tuple[UnitConversion, ...] = ()

    def _conversion(self, unit: str) -> UnitConversion:
        [conversion] = [c for c in self.conversions if c.unit == unit]
        return conversion

    def to_canonical(self, value: float, unit: str) -> float:
        if unit in ("", self.unit):
            return value
        conversion = self._conversion(unit)
        return value * conversion.factor + conversion.offset  # as patients.clinical.to_canonical

    def from_canonical(self, value: float, unit: str) -> float:
        conversion = self._conversion(unit)
        return (value - conversion.offset) / conversion.factor

    def canonical(self, cut: Cut) -> Cut:
        return Cut(cut.op, self.to_canonical(cut.male, cut.unit), self.to_canonical(cut.female, cut.unit))


SPECS: dict[str, AnalyteSpec] = {spec.code: spec for spec in ANALYTES}
# The catalog analytes each derived feature is computed from (`facts.facts_from`): eGFR from the creatinine, or the
# laboratory's own eGFR.
DERIVED_FROM: dict[str, tuple[str, ...]] = {
    "egfr": ("creatinine", "egfr_reported"),
    "non_hdl_cholesterol": ("total_cholesterol", "hdl"),
    "mentzer_index": ("mcv", "rbc"),
}


def analytes_of(*features: str) -> tuple[str, ...]:
    """The catalog analytes behind these features, in order, each once."""
    return tuple(dict.fromkeys(code for feature in features for code in DERIVED_FROM.get(feature, (feature,))))


MEASURES: dict[str, Measure] = {
    **{spec.code: Measure(spec.name, spec.unit, spec.decimals, spec.conversions) for spec in ANALYTES},
    # Derived features, in the units mltraining.ml.features computes them in.
    "egfr": Measure("eGFR (CKD-EPI 2021)", "mL/min/{1.73_m2}", 0),
    "non_hdl_cholesterol": Measure("Non-HDL cholesterol", "mmol/L", 2, SPECS["total_cholesterol"].conversions),
    "mentzer_index": Measure("Mentzer index (MCV/RBC)", "", 1),
}


def critical(analyte: str, side: str) -> Cut:
    """The catalog's critical limit, as strict as the LL / HH flags."""
    spec = SPECS[analyte]
    return below(spec.critical_low) if side == "low" else above(spec.critical_high)


def reference(analyte: str, side: str) -> dict[str, float]:
    """The catalog's adult reference limit per sex, e.g. {"female": 16.0, "male": 34.0}, for `Cut` keywords."""
    limits = {r.sex: r.low if side == "low" else r.high for r in SPECS[analyte].ranges if r.age_min <= ADULT_AGE}
    return {sex: limits.get(sex, limits.get("")) for sex in ("female", "male")}


# --- Rationale ----------------------------------------------------------------------------------------------------


def _quantity(number: str, unit: str) -> str:
    unit = unit_display(unit)
    return f"{number} {unit}" if unit else number


def _value_text(measure: Measure, value: float, cut: Cut) -> str:
    text = _quantity(f"{value:.{measure.decimals}f}", measure.unit)
    if cut.unit in ("", measure.unit):
        return text
    # The guideline units used here are mg/dL, whose limits are whole numbers.
    return f"{text} ({_quantity(f'{measure.from_canonical(value, cut.unit):.0f}', cut.unit)})"


def _limit_text(measure: Measure, cut: Cut, sex: str) -> str:
    limit = cut.limit(sex)
    if cut.unit in ("", measure.unit):
        return _quantity(f"{limit:g}", measure.unit)
    canonical = _quantity(f"{measure.to_canonical(limit, cut.unit):.{measure.decimals}f}", measure.unit)
    return f"{canonical} ({_quantity(f'{limit:g}', cut.unit)})"


def _sex_note(cut: Cut, sex: str) -> str:
    if not cut.sex_specific:
        return ""
    if sex in ("female", "male"):
        return f" (the limit for {'women' if sex == 'female' else 'men'})"
    return " (sex not recorded: the stricter of the limits for women and men)"


def _comparison(measure: Measure, value: float, cut: Cut, sex: str, verb: str, on: str = "", how: str = "") -> str:
    value_text, limit_text = _value_text(measure, value, cut), _limit_text(measure, cut, sex)
    how = f" ({how})" if how else ""
    return f"{measure.label}{how} {value_text}{on} {verb}{_WORDS[cut.op]} {limit_text}{_sex_note(cut, sex)}"


# --- The rule factory ---------------------------------------------------------------------------------------------


def rule(
    code: str,
    title: str,
    analyte: str,
    cut: Cut,
    severity: Severity,
    advice: str,
    citation: str,
    *,
    meaning: str,
    condition: str = "",
    until: Cut | None = None,
    also: tuple[tuple[str, Cut], ...] = (),
    persists: int | None = None,
    persisting: Cut | None = None,
) -> Rule:
    """A rule that fires when `cut` holds, `until` (where the next, more severe band starts) does not, and the
    `also` cut of every other feature holds. With `persists` (days), an earlier value of the analyte's history
    must have met `persisting` (default `cut`) at least that many days before the current one (a category that
    needs persistence); with a negative `persists`, none may have (the first value, to be repeated).
    `meaning` ends the rationale: what the threshold is."""
    measure = MEASURES[analyte]
    fires, stops = measure.canonical(cut), until and measure.canonical(until)
    others = tuple((name, MEASURES[name], MEASURES[name].canonical(c), c) for name, c in also)
    lasting = measure.canonical(persisting or cut)
    adults_only = severity < Severity.CRITICAL

    def check(facts: Facts) -> Finding | None:
        if adults_only and facts.age is not None and facts.age < ADULT_AGE:
            return None
        value, sex = facts.value(analyte), facts.sex
        if value is None or not fires.holds(value, sex) or (stops and stops.holds(value, sex)):
            return None
        context = []
        for name, other, other_cut, shown in others:
            other_value = facts.value(name)
            if other_value is None or not other_cut.holds(other_value, sex):
                return None
            context.append(_comparison(other, other_value, shown, sex, "", facts.on(name), facts.notes.get(name, "")))
        earlier = None
        if persists is not None:
            earlier = persisted(facts, analyte, lasting, abs(persists))
            if (earlier is None) == (persists > 0):
                return None
        text = _comparison(measure, value, cut, sex, "is ", facts.on(analyte), facts.notes.get(analyte, ""))
        if until:
            text += f" and {_WORDS[_NOT[until.op]]} {_limit_text(measure, until, sex)}"
        if earlier is not None:
            when, before = earlier
            before_text = _quantity(f"{before:.{measure.decimals}f}", measure.unit)
            text += f", as it was on {when.date().isoformat()} ({before_text})"
        if context:
            text += ", with " + " and ".join(context)
        return Finding(
            rule=code, advice=advice, severity=severity, rationale=f"{text}, {meaning}.", citation=citation,
            analyte=analyte, value=value, threshold=fires.limit(sex), unit=measure.unit, condition=condition,
        )  # fmt: skip

    reads = analytes_of(analyte, *(name for name, _cut in also))
    return Rule(code, title, analyte, citation, condition, check, severity, advice, fires, stops or None, reads)


def persisted(facts: Facts, analyte: str, cut: Cut, days: int) -> tuple[datetime.datetime, float] | None:
    """The latest earlier value that met `cut` at least `days` before the current value, or None."""
    current = facts.dates.get(analyte)
    if current is None:
        return None
    found = [
        (when, value)
        for when, value in facts.history.get(analyte, ())
        if current - when >= datetime.timedelta(days=days) and cut.holds(value, facts.sex)
    ]
    return max(found) if found else None


def critical_rule(analyte: str, side: str, advice: str, citation: str, meaning: str, condition: str = "") -> Rule:
    """A CRITICAL rule at the catalog's critical limit, coded `<analyte>_critical_<side>`."""
    return rule(
        f"{analyte}_critical_{side}", f"{SPECS[analyte].name}: critically {side}", analyte, critical(analyte, side),
        Severity.CRITICAL, advice, citation, meaning=meaning, condition=condition,
    )  # fmt: skip
