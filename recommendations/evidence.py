"""What the review page shows behind each item, so a doctor decides without opening the patient's page:

- the values behind it: for a guideline rule's item, exactly the analytes its rule reads and those of the rules
  merged into it (`rules.analytes_behind`); for the model's item, the analytes of the model's explanation and of
  the guideline rules for the same condition. Each value as the patient page shows it (`patients.results`): value
  with unit, flag in words, this patient's reference range, date, and where it came from; the value judged is the
  one the advice was generated from (the latest at that time), a newer one is named beside it;
- the last values as a server-drawn trend and a short list with dates;
- for the model's item, the model's top contributions (`predictions.charts`), which the model stores for its most
  likely class only: shown for the item's condition when that is the class, said so otherwise;
- provenance: the rule and rules version, or the model version, what it was trained on and the explanation method.

No queries here: `recommendations.selectors.review_evidence_for` reads the record once for the whole page.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.safestring import SafeString

from patients.catalog import catalog
from patients.catalog_data import unit_label
from patients.clinical import age_on, interpret, reference_range
from patients.models import AnalyteKind, Interpretation, Observation, ObservationSource, Patient
from patients.results import BADGES, ResultRow, range_text, result_row, trend_chart
from predictions.charts import contributions_svg
from predictions.selectors import class_display, explanation_method_display
from recommendations import rules
from recommendations.models import Recommendation, RecommendationItem

TREND_POINTS = 6  # the last values shown beside each value behind an item


@dataclass(frozen=True)
class Recent:
    at: datetime.datetime
    value: str
    flag: str  # in words


@dataclass(frozen=True)
class Value:
    """One value behind an item."""

    row: ResultRow
    source: str  # "HL7 v2 lab feed", "entered by Dr Ada Byrne", "the model's input of 2026-12-01"
    recent: list[Recent] = field(default_factory=list)  # oldest first, the judged value last
    newer: str = ""  # a value of the analyte taken after the advice was generated


@dataclass(frozen=True)
class Explanation:
    explained: str  # the class the stored contributions explain
    of_condition: bool  # that class is the item's condition
    method: str
    chart: SafeString | None


@dataclass(frozen=True)
class ItemEvidence:
    values: list[Value]
    explanation: Explanation | None
    provenance: str


def analytes_needed(recommendation: Recommendation, facts: rules.Facts) -> list[str]:
    """Every analyte code the page shows, for the one read of the record."""
    return sorted({code for item in recommendation.items.all() for code in _analytes(item, recommendation, facts)})


def _analytes(item: RecommendationItem, recommendation: Recommendation, facts: rules.Facts) -> tuple[str, ...]:
    if item.is_headline:
        return ()
    if item.rule:
        return rules.analytes_behind(item.rule, facts)
    explained = _contributions(recommendation) if item.condition == recommendation.prediction.predicted_class else []
    of_model = rules.analytes_of(*(entry["analyte"] for entry in explained if entry.get("analyte")))
    topic = rules.TOPIC.get(item.condition, item.condition)
    of_rules = [code for rule in rules.RULES if rule.condition and rules.TOPIC.get(rule.condition, rule.condition)
                == topic for code in rule.reads]  # fmt: skip
    return tuple(dict.fromkeys([*of_model, *of_rules]))


def _contributions(recommendation: Recommendation) -> list[dict]:
    prediction = recommendation.prediction
    return prediction.contributions if prediction.status == "succeeded" else []


def item_evidence(
    *, recommendation: Recommendation, facts: rules.Facts, observations: Iterable[Observation]
) -> dict[int, ItemEvidence]:
    """The evidence of each item of the recommendation, by item id."""
    series: dict[str, list[Observation]] = defaultdict(list)
    for observation in observations:  # oldest first
        series[observation.analyte.code].append(observation)
    patient, as_of = recommendation.patient, recommendation.prediction.created_at
    values: dict[str, Value | None] = {}
    evidence = {}
    for item in recommendation.items.all():
        shown = []
        for code in _analytes(item, recommendation, facts):
            if code not in values:
                values[code] = _value(patient, code, series.get(code, []), facts, as_of)
            if values[code] is not None:
                shown.append(values[code])
        evidence[item.pk] = ItemEvidence(shown, _explanation(item, recommendation), _provenance(item, recommendation))
    return evidence


def _value(
    patient: Patient, code: str, series: list[Observation], facts: rules.Facts, as_of: datetime.datetime
) -> Value | None:
    """The value the advice was generated from, with its recent course; the model's input where the record has no
    value of the time (a wearable's 30-day mean); None when the analyte was not measured."""
    before = [o for o in series if o.effective_at <= as_of]
    if not before:
        return _input_value(patient, code, facts, as_of)
    judged, after = before[-1], [o for o in series if o.effective_at > as_of]
    shown = before[-TREND_POINTS:]
    chart = trend_chart(patient, code, [(o.effective_at, o.value, o.interpretation) for o in shown])
    recent = [Recent(o.effective_at, result_row(patient, o, None).value, _flag_words(o.interpretation)) for o in shown]
    newer = ""
    if after:
        last = after[-1]
        newer = (
            f"Newer result since this advice: {result_row(patient, last, None).value} "
            f"({_flag_words(last.interpretation)}) on {timezone.localtime(last.effective_at):%Y-%m-%d}."
        )
    return Value(result_row(patient, judged, chart), _source(judged), recent, newer)


def _input_value(patient: Patient, code: str, facts: rules.Facts, as_of: datetime.datetime) -> Value | None:
    value = facts.measured(code)
    spec = catalog().by_code.get(code)
    if value is None or spec is None:
        return None
    age = age_on(patient.birth_date, as_of.date())
    flag = interpret(spec, value, patient.sex, age)
    unit = unit_label(code, spec.unit)
    row = ResultRow(
        name=spec.name, value=f"{value:.{spec.decimals}f} {unit}".strip(), entered="", flag=flag,
        flag_label=_flag_words(flag), badge=BADGES[flag], reference=range_text(reference_range(spec, patient.sex, age),
        unit), effective_at=facts.dates.get(code), chart=None,
    )  # fmt: skip
    mean = ", its 30-day mean" if spec.kind == AnalyteKind.WEARABLE else ""
    return Value(row, f"the model's input of {timezone.localtime(as_of):%Y-%m-%d}{mean}")


def _flag_words(flag: str) -> str:
    return Interpretation(flag).label if flag else "no adult range"


def _source(observation: Observation) -> str:
    if observation.source == ObservationSource.MANUAL and observation.entered_by is not None:
        by = observation.entered_by
        return f"entered by {by.get_full_name() or by.username}"
    return ObservationSource(observation.source).label


def _explanation(item: RecommendationItem, recommendation: Recommendation) -> Explanation | None:
    """The model's contributions, for its own items only (a rule's item rests on its values)."""
    prediction = recommendation.prediction
    if item.rule or item.is_headline or not item.condition:
        return None
    contributions = _contributions(recommendation)
    explained = class_display(prediction.predicted_class)
    method = explanation_method_display(prediction.explanation_method)
    of_condition = item.condition == prediction.predicted_class
    chart = None
    if contributions and of_condition:
        chart = contributions_svg(contributions=contributions, predicted=explained, method=method)
    return Explanation(explained, of_condition, method, chart)


def _provenance(item: RecommendationItem, recommendation: Recommendation) -> str:
    generated = f"generated {timezone.localtime(recommendation.created_at):%Y-%m-%d %H:%M}"
    if item.is_headline:
        return f"From the most severe finding and the model's risk level; rules {recommendation.rules_version}; " \
               f"{generated}."  # fmt: skip
    if item.rule:
        rule = rules.BY_CODE.get(item.rule)
        name = f"Guideline rule “{rule.title}”" if rule else "Guideline rule (result out of date)"
        return f"{name}; rules {recommendation.rules_version}; {generated}."
    version = recommendation.prediction.model_version
    trained = recommendation.rationale.get("training_data") or (version.training_data if version else "")
    model = f"Model v{version.version}, built {timezone.localtime(version.created_at):%Y-%m-%d}." if version else ""
    return " ".join(part for part in (model, trained, f"Rules {recommendation.rules_version}; {generated}.") if part)
