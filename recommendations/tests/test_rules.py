"""The guideline rules: every threshold on its boundary, units, bands, dedup and headline. Pure: no database.

The thresholds are restated here from the guidelines (and the catalog's critical limits), independently of
`recommendations.rules`, so a changed threshold fails a test instead of silently moving.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field

import pytest

from patients.catalog_data import ANALYTES
from recommendations.rules import (
    HEADLINE_CONSULT,
    HEADLINE_LIFESTYLE,
    HEADLINE_NO_ACTION,
    RULES,
    Facts,
    Finding,
    Rule,
    Severity,
    evaluate,
    evaluate_many,
    headline,
)

SPECS = {spec.code: spec for spec in ANALYTES}
RULE = {rule.code: rule for rule in RULES}
# Canonical units: the catalog's, and for derived features those of mltraining.ml.features.
UNITS = {spec.code: spec.unit for spec in ANALYTES} | {
    "egfr": "mL/min/{1.73_m2}",
    "non_hdl_cholesterol": "mmol/L",
    "mentzer_index": "",
}
ADULT = 45.0


def mg_dl(analyte: str, value: float) -> float:
    """A value entered in mg/dL, converted as the platform converts it (catalog factor and offset)."""
    [conversion] = [c for c in SPECS[analyte].conversions if c.unit == "mg/dL"]
    return value * conversion.factor + conversion.offset


def cholesterol_mg_dl(value: float) -> float:
    return mg_dl("total_cholesterol", value)  # non-HDL cholesterol is converted like total cholesterol


def fires(op: str, value: float, threshold: float) -> bool:
    return {">=": value >= threshold, ">": value > threshold, "<": value < threshold, "<=": value <= threshold}[op]


@dataclass(frozen=True)
class Edge:
    """Around `threshold` the rule fires when `value <op> threshold`, given the `other` values."""

    rule: str
    analyte: str
    threshold: float
    op: str
    sex: str = ""
    other: dict[str, float] = field(default_factory=dict)
    earlier: float | None = None  # an earlier value of the analyte, 100 days before (persistence)

    def __str__(self) -> str:
        return f"{self.rule}:{self.analyte}{self.op}{self.threshold:g}{':' + self.sex if self.sex else ''}"


MICROCYTIC = {"mcv": 70.0}
EDGES = [
    # ADA 2025: HbA1c >= 6.5 % diabetes range, 5.7 to < 6.5 prediabetes; FPG >= 126 mg/dL, 100-125 IFG.
    Edge("hba1c_diabetes_range", "hba1c", 6.5, ">="),
    Edge("hba1c_prediabetes_range", "hba1c", 5.7, ">="),
    Edge("hba1c_prediabetes_range", "hba1c", 6.5, "<"),
    Edge("glucose_diabetes_range", "glucose", mg_dl("glucose", 126), ">="),
    Edge("glucose_impaired_fasting", "glucose", mg_dl("glucose", 100), ">="),
    Edge("glucose_impaired_fasting", "glucose", mg_dl("glucose", 126), "<"),
    # ADA 2025 level 2 hypoglycaemia < 54 mg/dL; below the catalog's critical 2.8 mmol/L it is critical.
    Edge("glucose_level2_hypoglycaemia", "glucose", mg_dl("glucose", 54), "<"),
    Edge("glucose_level2_hypoglycaemia", "glucose", 2.8, ">="),
    Edge("glucose_critical_low", "glucose", 2.8, "<"),
    Edge("glucose_critical_high", "glucose", 25.0, ">"),
    # A random glucose: ADA 2025 >= 200 mg/dL (11.1 mmol/L) diabetes range, never the fasting cut-offs; the same
    # low limits.
    Edge("glucose_random_diabetes_range", "glucose_random", 11.1, ">="),
    Edge("glucose_random_diabetes_range", "glucose_random", 25.0, "<="),
    Edge("glucose_random_level2_hypoglycaemia", "glucose_random", mg_dl("glucose_random", 54), "<"),
    Edge("glucose_random_level2_hypoglycaemia", "glucose_random", 2.8, ">="),
    Edge("glucose_random_critical_low", "glucose_random", 2.8, "<"),
    Edge("glucose_random_critical_high", "glucose_random", 25.0, ">"),
    # 2018 AHA/ACC: LDL >= 190 mg/dL, 160-189; non-HDL >= 220; triglycerides >= 500, 175-499. ATP III HDL.
    Edge("ldl_severe", "ldl", mg_dl("ldl", 190), ">="),
    Edge("ldl_high", "ldl", mg_dl("ldl", 160), ">="),
    Edge("ldl_high", "ldl", mg_dl("ldl", 190), "<"),
    Edge("non_hdl_very_high", "non_hdl_cholesterol", cholesterol_mg_dl(220), ">="),
    Edge("triglycerides_severe", "triglycerides", mg_dl("triglycerides", 500), ">="),
    Edge("triglycerides_moderate", "triglycerides", mg_dl("triglycerides", 175), ">="),
    Edge("triglycerides_moderate", "triglycerides", mg_dl("triglycerides", 500), "<"),
    Edge("hdl_low", "hdl", mg_dl("hdl", 50), "<", sex="female"),
    Edge("hdl_low", "hdl", mg_dl("hdl", 40), "<", sex="male"),
    Edge("hdl_low", "hdl", mg_dl("hdl", 50), "<"),  # sex not recorded: the stricter limit
    # WHO 2024: anaemia < 12.0 g/dL women, < 13.0 men; severe < 8.0; catalog critical < 7.0 and > 20.
    Edge("hemoglobin_anaemia", "hemoglobin", 12.0, "<", sex="female"),
    Edge("hemoglobin_anaemia", "hemoglobin", 13.0, "<", sex="male"),
    Edge("hemoglobin_anaemia", "hemoglobin", 13.0, "<"),
    Edge("hemoglobin_anaemia", "hemoglobin", 8.0, ">="),
    Edge("hemoglobin_severe_anaemia", "hemoglobin", 8.0, "<"),
    Edge("hemoglobin_severe_anaemia", "hemoglobin", 7.0, ">="),
    Edge("hemoglobin_critical_low", "hemoglobin", 7.0, "<"),
    Edge("hemoglobin_critical_high", "hemoglobin", 20.0, ">"),
    Edge("hematocrit_critical_low", "hematocrit", 20.0, "<"),
    Edge("hematocrit_critical_high", "hematocrit", 60.0, ">"),
    # Mentzer: MCV < 80 fL with MCV/RBC < 13 thalassaemia trait; >= 13 with anaemia iron deficiency.
    Edge("microcytosis_thalassaemia_pattern", "mentzer_index", 13.0, "<", other=MICROCYTIC),
    Edge("microcytosis_thalassaemia_pattern", "mcv", 80.0, "<", other={"mentzer_index": 10.0}),
    Edge("microcytic_anaemia_iron_pattern", "mentzer_index", 13.0, ">=", "male", {**MICROCYTIC, "hemoglobin": 11.0}),
    Edge("microcytic_anaemia_iron_pattern", "mcv", 80.0, "<", "male", {"mentzer_index": 16.0, "hemoglobin": 11.0}),
    Edge("microcytic_anaemia_iron_pattern", "hemoglobin", 12.0, "<", "female", {**MICROCYTIC, "mentzer_index": 16.0}),
    Edge("microcytic_anaemia_iron_pattern", "hemoglobin", 13.0, "<", "male", {**MICROCYTIC, "mentzer_index": 16.0}),
    # Platelets (x10^9/L): < 150, < 50, critical < 20; >= 450 (WHO), critical > 1000. WBC critical < 2, > 30.
    Edge("platelets_low", "platelets", 150.0, "<"),
    Edge("platelets_low", "platelets", 50.0, ">="),
    Edge("platelets_very_low", "platelets", 50.0, "<"),
    Edge("platelets_very_low", "platelets", 20.0, ">="),
    Edge("platelets_critical_low", "platelets", 20.0, "<"),
    Edge("platelets_high", "platelets", 450.0, ">="),
    Edge("platelets_high", "platelets", 1000.0, "<="),
    Edge("platelets_critical_high", "platelets", 1000.0, ">"),
    Edge("wbc_critical_low", "wbc", 2.0, "<"),
    Edge("wbc_critical_high", "wbc", 30.0, ">"),
    # KDIGO 2024: G3a 45-59, G3b 30-44, G4 15-29 once below 60 for more than 3 months; a first value below 60 is
    # repeated (30-59 in 3 months, 15-29 soon); G5 < 15 is urgent either way.
    Edge("egfr_g3a", "egfr", 60.0, "<", earlier=55.0),
    Edge("egfr_g3a", "egfr", 45.0, ">=", earlier=55.0),
    Edge("egfr_g3b", "egfr", 45.0, "<", earlier=55.0),
    Edge("egfr_g3b", "egfr", 30.0, ">=", earlier=55.0),
    Edge("egfr_g4", "egfr", 30.0, "<", earlier=55.0),
    Edge("egfr_g4", "egfr", 15.0, ">=", earlier=55.0),
    Edge("egfr_low_unconfirmed", "egfr", 60.0, "<"),
    Edge("egfr_low_unconfirmed", "egfr", 30.0, ">="),
    Edge("egfr_very_low_unconfirmed", "egfr", 30.0, "<"),
    Edge("egfr_very_low_unconfirmed", "egfr", 15.0, ">="),
    Edge("egfr_g5", "egfr", 15.0, "<"),
    # Sodium < 135 / > 145 mmol/L, critical < 120 / > 160; potassium < 3.5 / > 5.1, critical < 2.8 / > 6.2.
    Edge("sodium_low", "sodium", 135.0, "<"),
    Edge("sodium_low", "sodium", 120.0, ">="),
    Edge("sodium_critical_low", "sodium", 120.0, "<"),
    Edge("sodium_high", "sodium", 145.0, ">"),
    Edge("sodium_high", "sodium", 160.0, "<="),
    Edge("sodium_critical_high", "sodium", 160.0, ">"),
    Edge("potassium_low", "potassium", 3.5, "<"),
    Edge("potassium_low", "potassium", 2.8, ">="),
    Edge("potassium_critical_low", "potassium", 2.8, "<"),
    Edge("potassium_high", "potassium", 5.1, ">"),
    Edge("potassium_high", "potassium", 6.0, "<"),
    # KDIGO 2020: 6.0 mmol/L or more is severe hyperkalaemia.
    Edge("potassium_severe", "potassium", 6.0, ">="),
    Edge("potassium_severe", "potassium", 6.2, "<="),
    Edge("potassium_critical_high", "potassium", 6.2, ">"),
    # ACG 2017: ALT > 33 U/L men, > 25 women.
    Edge("alt_above_uln", "alt", 25.0, ">", sex="female"),
    Edge("alt_above_uln", "alt", 33.0, ">", sex="male"),
    Edge("alt_above_uln", "alt", 25.0, ">"),
    # hs-CRP >= 2 mg/L risk enhancer (2018 AHA/ACC) up to 10; > 10 another cause (CDC/AHA).
    Edge("hs_crp_elevated", "hs_crp", 2.0, ">="),
    Edge("hs_crp_elevated", "hs_crp", 10.0, "<="),
    Edge("hs_crp_above_10", "hs_crp", 10.0, ">"),
    # UDMI4, each assay's 99th percentile: hs-cTnI > 16 ng/L women, > 34 men; hs-cTnT > 14; cTnI > 40; cTnT > 10.
    Edge("troponin_above_99th", "troponin", 16.0, ">", sex="female"),
    Edge("troponin_above_99th", "troponin", 34.0, ">", sex="male"),
    Edge("troponin_above_99th", "troponin", 16.0, ">"),
    Edge("troponin_t_hs_above_99th", "troponin_t_hs", 14.0, ">", sex="male"),
    Edge("troponin_t_hs_above_99th", "troponin_t_hs", 14.0, ">", sex="female"),
    Edge("troponin_i_above_99th", "troponin_i", 40.0, ">"),
    Edge("troponin_t_above_99th", "troponin_t", 10.0, ">"),
    # 2017 ACC/AHA: stage 1 130-139 / 80-89, stage 2 >= 140 / >= 90, severe > 180 / > 120 mm Hg.
    Edge("systolic_bp_stage1", "systolic_bp", 130.0, ">="),
    Edge("systolic_bp_stage1", "systolic_bp", 140.0, "<"),
    Edge("systolic_bp_stage2", "systolic_bp", 140.0, ">="),
    Edge("systolic_bp_stage2", "systolic_bp", 180.0, "<="),
    Edge("systolic_bp_critical_high", "systolic_bp", 180.0, ">"),
    Edge("systolic_bp_critical_low", "systolic_bp", 70.0, "<"),
    Edge("diastolic_bp_stage1", "diastolic_bp", 80.0, ">="),
    Edge("diastolic_bp_stage1", "diastolic_bp", 90.0, "<"),
    Edge("diastolic_bp_stage2", "diastolic_bp", 90.0, ">="),
    Edge("diastolic_bp_stage2", "diastolic_bp", 120.0, "<="),
    Edge("diastolic_bp_critical_high", "diastolic_bp", 120.0, ">"),
    # WHO BMI: >= 30 obesity, 25 to < 30 overweight, < 18.5 underweight.
    Edge("bmi_obesity", "bmi", 30.0, ">="),
    Edge("bmi_overweight", "bmi", 25.0, ">="),
    Edge("bmi_overweight", "bmi", 30.0, "<"),
    Edge("bmi_underweight", "bmi", 18.5, "<"),
    # Critical limits of the real panels' analytes (the generic urgent item). Kost 1990 means, in mg/dL where the
    # survey gave them: calcium < 6.6 / > 12.9, magnesium < 1.0 / > 4.9, phosphorus < 1.2 / > 8.9, urea nitrogen
    # > 104, bilirubin > 15 mg/dL; chloride < 75 / > 126, CO2 < 11 / > 40 mmol/L. IDSA 2010 severe neutropenia
    # < 0.5 x10^9/L; Surviving Sepsis 2018 lactate > 4 mmol/L; NASCOLA 2011 INR > 5, aPTT > 100 s.
    Edge("neutrophils_critical_low", "neutrophils", 0.5, "<"),
    Edge("urea_critical_high", "urea", mg_dl("urea", 104), ">"),
    Edge("calcium_critical_low", "calcium", mg_dl("calcium", 6.6), "<"),
    Edge("calcium_critical_high", "calcium", mg_dl("calcium", 12.9), ">"),
    Edge("chloride_critical_low", "chloride", 75.0, "<"),
    Edge("chloride_critical_high", "chloride", 126.0, ">"),
    Edge("co2_total_critical_low", "co2_total", 11.0, "<"),
    Edge("co2_total_critical_high", "co2_total", 40.0, ">"),
    Edge("magnesium_critical_low", "magnesium", mg_dl("magnesium", 1.0), "<"),
    Edge("magnesium_critical_high", "magnesium", mg_dl("magnesium", 4.9), ">"),
    Edge("phosphate_critical_low", "phosphate", mg_dl("phosphate", 1.2), "<"),
    Edge("phosphate_critical_high", "phosphate", mg_dl("phosphate", 8.9), ">"),
    Edge("lactate_critical_high", "lactate", 4.0, ">"),
    Edge("bilirubin_critical_high", "bilirubin", mg_dl("bilirubin", 15), ">"),
    Edge("inr_critical_high", "inr", 5.0, ">"),
    Edge("aptt_critical_high", "aptt", 100.0, ">"),
    # Kost 1990 arterial blood gases: pH < 7.21 / > 7.59, pCO2 < 19 / > 67 mm Hg, pO2 < 43 mm Hg.
    Edge("ph_arterial_critical_low", "ph_arterial", 7.21, "<"),
    Edge("ph_arterial_critical_high", "ph_arterial", 7.59, ">"),
    Edge("pco2_arterial_critical_low", "pco2_arterial", 19.0, "<"),
    Edge("pco2_arterial_critical_high", "pco2_arterial", 67.0, ">"),
    Edge("po2_arterial_critical_low", "po2_arterial", 43.0, "<"),
    # Wearables: < 5000 steps/day, < 7 h sleep.
    Edge("steps_sedentary", "steps", 5000.0, "<"),
    Edge("sleep_short", "sleep_duration", 7.0, "<"),
]


NOW = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=datetime.UTC)
THRESHOLD_RULES = [rule for rule in RULES if rule.fires is not None]


def facts_for(edge: Edge, value: float, **changes) -> Facts:
    values, sex, age = {**edge.other, edge.analyte: value}, edge.sex, changes.get("age", ADULT)
    if edge.earlier is None:
        return Facts(values=values, sex=sex, age=age)
    history = {edge.analyte: ((NOW - datetime.timedelta(days=100), edge.earlier),)}
    return Facts(values=values, sex=sex, age=age, dates={edge.analyte: NOW}, as_of=NOW, history=history)


def firing_value(edge: Edge) -> float:
    """A value on the firing side of the edge, one float step away."""
    return math.nextafter(edge.threshold, -math.inf if edge.op.startswith("<") else math.inf)


def test_every_rule_has_its_edges_tested():
    assert {edge.rule for edge in EDGES} == {rule.code for rule in THRESHOLD_RULES}


@pytest.mark.parametrize("edge", EDGES, ids=str)
@pytest.mark.parametrize("side", ["just below", "exactly at", "just above"])
def test_a_rule_fires_on_its_side_of_each_threshold_as_the_guideline_says(edge, side):
    value = {
        "just below": math.nextafter(edge.threshold, -math.inf),
        "exactly at": edge.threshold,
        "just above": math.nextafter(edge.threshold, math.inf),
    }[side]
    finding = RULE[edge.rule].check(facts_for(edge, value))
    assert (finding is not None) == fires(edge.op, value, edge.threshold)


@pytest.mark.parametrize("rule", THRESHOLD_RULES, ids=lambda rule: rule.code)
@pytest.mark.parametrize("missing", ["absent", None, math.nan, math.inf])
def test_a_value_not_measured_gives_no_finding(rule, missing):
    edge = next(edge for edge in EDGES if edge.rule == rule.code and edge.analyte == rule.analyte)
    facts = facts_for(edge, firing_value(edge))
    assert rule.check(facts) is not None
    values = {k: v for k, v in facts.values.items() if k != rule.analyte}
    if missing != "absent":
        values[rule.analyte] = missing
    assert rule.check(Facts(values=values, sex=facts.sex, age=facts.age)) is None


@pytest.mark.parametrize("rule", THRESHOLD_RULES, ids=lambda rule: rule.code)
def test_a_finding_carries_its_rule_advice_unit_and_citation(rule):
    edge = next(edge for edge in EDGES if edge.rule == rule.code and edge.analyte == rule.analyte)
    finding = rule.check(facts_for(edge, firing_value(edge)))
    assert (finding.rule, finding.advice, finding.severity) == (rule.code, rule.advice, rule.severity)
    assert (finding.analyte, finding.condition, finding.citation) == (rule.analyte, rule.condition, rule.citation)
    assert finding.value == firing_value(edge)
    assert finding.unit == UNITS[rule.analyte]
    assert "doi:" in finding.citation or "https://" in finding.citation
    assert finding.rationale.endswith(".")


def test_the_other_analyte_of_a_combined_rule_is_required():
    rule = RULE["microcytosis_thalassaemia_pattern"]
    assert rule.check(Facts({"mentzer_index": 10.0, "mcv": 70.0})) is not None
    assert rule.check(Facts({"mentzer_index": 10.0})) is None
    assert rule.check(Facts({"mentzer_index": 10.0, "mcv": math.nan})) is None


# --- Units --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "analyte", "mg_dl_value", "canonical"),
    [
        ("ldl_severe", "ldl", 190, "4.91 mmol/L"),
        ("glucose_diabetes_range", "glucose", 126, "7.0 mmol/L"),
        ("triglycerides_severe", "triglycerides", 500, "5.65 mmol/L"),
        ("glucose_impaired_fasting", "glucose", 100, "5.6 mmol/L"),
    ],
)
def test_a_value_entered_in_mg_dl_at_the_threshold_fires_and_both_units_are_quoted(
    rule, analyte, mg_dl_value, canonical
):
    finding = RULE[rule].check(Facts({analyte: mg_dl(analyte, mg_dl_value)}))
    assert finding is not None
    assert finding.threshold == mg_dl(analyte, mg_dl_value)
    assert finding.rationale.count(f"{mg_dl_value} mg/dL") == 2  # the value and the threshold
    assert canonical in finding.rationale
    assert RULE[rule].check(Facts({analyte: mg_dl(analyte, mg_dl_value - 1)})) is None


def test_the_rationale_quotes_value_unit_threshold_and_source():
    finding = RULE["ldl_severe"].check(Facts({"ldl": 5.20}))
    assert finding.rationale == (
        "LDL cholesterol 5.20 mmol/L (201 mg/dL) is at or above 4.91 mmol/L (190 mg/dL), the 2018 AHA/ACC "
        "threshold for severe hypercholesterolaemia."
    )


def test_a_band_quotes_both_of_its_limits():
    finding = RULE["glucose_impaired_fasting"].check(Facts({"glucose": mg_dl("glucose", 110)}))
    assert "at or above 5.6 mmol/L (100 mg/dL) and below 7.0 mmol/L (126 mg/dL)" in finding.rationale


@pytest.mark.parametrize(
    ("sex", "threshold", "note"),
    [
        ("female", 16.0, "(the limit for women)"),
        ("male", 34.0, "(the limit for men)"),
        ("", 16.0, "(sex not recorded: the stricter of the limits for women and men)"),
    ],
)
def test_a_sex_specific_finding_says_which_limit_applied(sex, threshold, note):
    finding = RULE["troponin_above_99th"].check(Facts({"troponin": 40.0}, sex=sex))
    assert finding.threshold == threshold
    assert note in finding.rationale


# --- Age ----------------------------------------------------------------------------------------------------------


def test_adult_thresholds_skip_a_minor_but_critical_limits_apply_at_every_age():
    values = {"ldl": mg_dl("ldl", 200), "potassium": 7.0}
    assert {f.rule for f in evaluate(Facts(values, age=17))} == {"potassium_critical_high"}
    assert {f.rule for f in evaluate(Facts(values, age=18))} == {"ldl_severe", "potassium_critical_high"}
    assert {f.rule for f in evaluate(Facts(values, age=None))} == {"ldl_severe", "potassium_critical_high"}


CRITICAL_LIMITS = [
    (spec.code, side, limit)
    for spec in ANALYTES
    for side, limit in (("low", spec.critical_low), ("high", spec.critical_high))
    if limit is not None
]


@pytest.mark.hazard("H1", "Every critical limit of the catalog, low and high, read from the catalog itself")
@pytest.mark.parametrize(("analyte", "side", "limit"), CRITICAL_LIMITS, ids=lambda v: str(v))
@pytest.mark.parametrize("sex", ["female", "male", ""])
def test_every_catalog_critical_limit_gives_a_critical_item(analyte, side, limit, sex):
    beyond = math.nextafter(limit, -math.inf if side == "low" else math.inf)
    found = [f for f in evaluate(Facts({analyte: beyond}, sex=sex, age=10)) if f.advice != "record_sex"]
    assert [f.severity for f in found] == [Severity.CRITICAL]
    assert all(f.severity < Severity.CRITICAL for f in evaluate(Facts({analyte: limit}, sex=sex)))


def test_the_critical_limits_test_covers_every_catalog_analyte_with_one():
    assert {code for code, _, _ in CRITICAL_LIMITS} == {
        spec.code for spec in ANALYTES if spec.critical_low is not None or spec.critical_high is not None
    }
    assert ("systolic_bp", "low", 70.0) in CRITICAL_LIMITS


# --- evaluate() ---------------------------------------------------------------------------------------------------


def test_no_values_give_no_findings():
    assert evaluate(Facts({})) == []


def test_findings_are_sorted_by_severity_then_rule_order():
    values = {"steps": 3000, "ldl": mg_dl("ldl", 200), "potassium": 7.0, "egfr": 50, "bmi": 27, "hba1c": 6.0}
    findings = evaluate(Facts(values, sex="female", age=ADULT))
    assert [f.rule for f in findings] == [
        "potassium_critical_high",
        "ldl_severe",
        "egfr_low_unconfirmed",
        "hba1c_prediabetes_range",
        "bmi_overweight",
        "steps_sedentary",
    ]


def test_two_rules_for_the_same_advice_give_one_finding_from_the_first_rule():
    findings = evaluate(Facts({"hba1c": 7.0, "glucose": mg_dl("glucose", 140)}))
    assert [(f.rule, f.advice) for f in findings] == [("hba1c_diabetes_range", "diabetes_range_confirm")]


def test_anaemia_and_its_microcytic_pattern_give_one_iron_studies_item():
    findings = evaluate(Facts({"hemoglobin": 10.0, "mcv": 70.0, "mentzer_index": 16.0}, sex="female"))
    assert [(f.rule, f.advice) for f in findings] == [("hemoglobin_anaemia", "anemia_iron_studies")]


def _fixed(code: str, severity: Severity, advice: str) -> Rule:
    finding = Finding(code, advice, severity, "why", "source", "x", 1.0, 1.0, "")
    return Rule(code, code, "x", "source", "", lambda facts: finding, severity, advice)


def test_of_two_findings_for_the_same_advice_the_most_severe_is_kept_in_its_own_place():
    rules = [_fixed("a_low", Severity.LOW, "same"), _fixed("b_other", Severity.MODERATE, "other"),
             _fixed("c_high", Severity.HIGH, "same"), _fixed("d_also_high", Severity.HIGH, "same")]  # fmt: skip
    assert [f.rule for f in evaluate(Facts({}), rules)] == ["c_high", "b_other"]


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"),
    [
        (135, 85, [("systolic_bp_stage1", "bp_stage1_lifestyle")]),  # both stage 1: one item, the first rule's
        (135, 95, [("diastolic_bp_stage2", "bp_stage2_review")]),
        (145, 85, [("systolic_bp_stage2", "bp_stage2_review")]),
        (185, 85, [("systolic_bp_critical_high", "bp_severe_urgent")]),
        (150, 125, [("diastolic_bp_critical_high", "bp_severe_urgent")]),
        (120, 95, [("diastolic_bp_stage2", "bp_stage2_review")]),  # systolic normal: nothing replaced
    ],
)
def test_systolic_and_diastolic_in_two_stages_give_the_higher_stage_only(systolic, diastolic, expected):
    """2017 ACC/AHA: someone with SBP and DBP in two categories is designated to the higher one."""
    findings = evaluate(Facts({"systolic_bp": systolic, "diastolic_bp": diastolic}, age=ADULT))
    assert [(f.rule, f.advice) for f in findings] == expected


def test_a_higher_blood_pressure_stage_leaves_other_findings_alone():
    findings = evaluate(Facts({"systolic_bp": 135, "diastolic_bp": 95, "bmi": 27}, age=ADULT))
    assert [f.advice for f in findings] == ["bp_stage2_review", "bmi_overweight_lifestyle"]


def test_an_item_replaces_only_less_severe_items_of_the_rule_set():
    from recommendations.rules.guidelines import SUPERSEDES

    severity = {rule.advice: rule.severity for rule in RULES}
    for higher, lowers in SUPERSEDES.items():
        assert all(severity[higher] > severity[lower] for lower in lowers), higher


# --- headline() ---------------------------------------------------------------------------------------------------


def _finding(severity: Severity) -> Finding:
    return Finding("r", "a", severity, "why", "source", "x", 1.0, 1.0, "")


@pytest.mark.parametrize(
    ("severities", "risk_level", "expected"),
    [
        ([], "", HEADLINE_NO_ACTION),
        ([], "low", HEADLINE_NO_ACTION),
        ([Severity.INFO], "low", HEADLINE_NO_ACTION),
        ([], "moderate", HEADLINE_LIFESTYLE),
        ([Severity.LOW], "", HEADLINE_LIFESTYLE),
        ([Severity.LOW, Severity.MODERATE], "low", HEADLINE_LIFESTYLE),
        ([Severity.MODERATE], "moderate", HEADLINE_LIFESTYLE),
        ([], "high", HEADLINE_CONSULT),
        ([Severity.LOW], "high", HEADLINE_CONSULT),
        ([Severity.HIGH], "low", HEADLINE_CONSULT),
        ([Severity.LOW, Severity.CRITICAL], "", HEADLINE_CONSULT),
    ],
)
def test_the_headline_follows_the_worst_finding_and_the_risk_level(severities, risk_level, expected):
    assert headline([_finding(s) for s in severities], risk_level) == expected


def test_an_unknown_risk_level_is_an_error():
    with pytest.raises(ValueError, match="risk_level"):
        headline([], "severe")


# --- The rule set as a whole --------------------------------------------------------------------------------------


def test_rule_codes_are_unique_and_there_are_at_least_22_rules():
    codes = [rule.code for rule in RULES]
    assert len(codes) == len(set(codes)) >= 22


def test_conditions_are_model_classes():
    from mltraining.ml.labels import LABELS

    assert {rule.condition for rule in RULES} <= {key for key, _, _ in LABELS} | {""}


def test_evaluate_many_gives_what_evaluate_gives_for_each_patient():
    """The array screen in evaluate_many only skips work: random values around every threshold agree."""
    import random

    rng = random.Random(7)
    features = sorted({rule.analyte for rule in RULES} | {"mcv", "hemoglobin"})
    limits = {}
    for rule in RULES:
        for cut in (rule.fires, rule.stops):
            if cut is not None:
                limits.setdefault(rule.analyte, []).extend([cut.male, cut.female])
    facts = []
    for _ in range(3000):
        values = {}
        for name in features:
            if rng.random() < 0.15:
                continue  # not measured
            anchor = rng.choice(limits.get(name, [1.0]))
            values[name] = anchor * rng.choice([0.5, 0.9, 0.999, 1.0, 1.001, 1.1, 2.0])
        facts.append(Facts(values=values, sex=rng.choice(["female", "male", ""]),
                                 age=rng.choice([None, 12, 40, 80])))  # fmt: skip

    assert evaluate_many(facts) == [evaluate(f) for f in facts]
