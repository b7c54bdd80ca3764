"""The advice catalog: complete for the rules, well-formed, cited, and safe to show a patient. Pure data."""

import re

import pytest

from mltraining.ml.labels import LABELS
from recommendations.advice_data import ADVICE, ADVICE_BY_CODE, CATEGORIES
from recommendations.rules import HEADLINE_CONSULT, HEADLINE_LIFESTYLE, HEADLINE_NO_ACTION, RULES, Severity

MODEL_ADVICE = {
    "ckd": "model_ckd_follow_up",
    "diabetes": "model_diabetes_follow_up",
    "prediabetes": "model_prediabetes_lifestyle",
    "iron_deficiency": "model_anemia_work_up",
    "thalassemia_trait": "model_thalassemia_trait_follow_up",
    "thrombocytopenia": "model_thrombocytopenia_follow_up",
    "dyslipidemia": "model_dyslipidemia_follow_up",
}


def test_there_are_at_least_25_items_with_unique_slug_codes():
    codes = [spec.code for spec in ADVICE]
    assert len(codes) == len(set(codes)) >= 25
    assert all(re.fullmatch(r"[a-z][a-z0-9_]{0,59}", code) for code in codes)  # AdviceItem.code is a 60-char slug
    assert set(ADVICE_BY_CODE) == set(codes)


@pytest.mark.parametrize(
    ("code", "category"),
    [(HEADLINE_NO_ACTION, "no_action"), (HEADLINE_LIFESTYLE, "lifestyle"), (HEADLINE_CONSULT, "referral")],
)
def test_the_headline_items_exist_with_their_category(code, category):
    assert ADVICE_BY_CODE[code].category == category


def test_every_advice_code_a_rule_gives_is_in_the_catalog():
    assert {rule.advice for rule in RULES} <= set(ADVICE_BY_CODE)


def test_every_model_class_has_a_model_item():
    assert set(MODEL_ADVICE) == {key for key, _, _ in LABELS}
    assert all(ADVICE_BY_CODE[code].code.startswith("model_") for code in MODEL_ADVICE.values())


@pytest.mark.hazard("H1", "Every critical rule gives an urgent advice item, and only critical rules do")
def test_a_critical_rule_gives_urgent_advice_and_only_critical_rules_do():
    urgent = {spec.code for spec in ADVICE if spec.category == "urgent"}
    assert {rule.advice for rule in RULES if rule.severity == Severity.CRITICAL} == urgent
    assert all(rule.severity == Severity.CRITICAL for rule in RULES if rule.advice in urgent)


@pytest.mark.parametrize("spec", ADVICE, ids=lambda spec: spec.code)
def test_an_item_is_complete_and_cited(spec):
    assert spec.category in CATEGORIES
    assert 0 < len(spec.title) <= 200  # AdviceItem.title
    assert spec.patient_text.strip()
    assert spec.clinician_text.strip()
    assert "https://" in spec.source or "Tietz" in spec.source  # a DOI or URL, or the laboratory textbook
    assert re.search(r"\b(19|20)\d\d\b", spec.source)


@pytest.mark.parametrize("spec", ADVICE, ids=lambda spec: spec.code)
def test_patient_text_is_short_plain_and_never_a_diagnosis(spec):
    text = spec.patient_text
    assert len(re.findall(r"[.!?](\s|$)", text)) <= 3
    assert not re.search(r"diagnos|you have (diabetes|anaemia|anemia|ckd|kidney disease)|mmol|mg/dl", text, re.I)
    assert not re.search(r"\b(ASCVD|eGFR|HbA1c|KDIGO|ADA|WHO|LDL-C)\b", text)
