"""Every analyte of the catalog has words a patient reads, for every flag a value of it can get. Pure data."""

import re

import pytest

from patients.catalog_data import ANALYTES
from patients.plain_language import FLAG_WORDS, PANEL_NAMES, PLAIN, URGENT, meaning
from patients.selectors import PANELS

SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
FLAGS = ["LL", "L", "N", "H", "HH"]
# Naming a disease would read as a diagnosis: the texts describe what a value says about the body, never what the
# patient has.
DISEASE_WORDS = [
    "diabetes", "prediabetes", "anemia", "anaemia", "leukemia", "leukaemia", "cancer", "tumour", "tumor",
    "heart attack", "heart failure", "kidney disease", "cirrhosis", "hepatitis", "you have an allergy", "diagnosis of",
]  # fmt: skip


def test_every_catalog_analyte_has_a_plain_name_and_what_the_test_measures():
    missing = [spec.code for spec in ANALYTES if spec.code not in PLAIN]

    assert not missing
    assert set(PLAIN) == {spec.code for spec in ANALYTES}, "plain words for an analyte the catalog no longer has"
    for spec in ANALYTES:
        words = PLAIN[spec.code]
        assert words.name.strip(), spec.code
        assert 1 <= len(SENTENCE_END.findall(words.measures)) <= 2, f"{spec.code}: measures in one or two sentences"


@pytest.mark.parametrize("spec", ANALYTES, ids=lambda spec: spec.code)
def test_every_flag_of_every_analyte_has_a_meaning_that_sends_the_patient_to_their_doctor(spec):
    for flag in FLAGS:
        text = meaning(spec.code, flag)

        assert text.strip(), (spec.code, flag)
        assert "doctor" in text, (spec.code, flag)


@pytest.mark.parametrize("spec", ANALYTES, ids=lambda spec: spec.code)
def test_each_side_the_catalog_can_flag_has_words_of_its_own_for_that_analyte(spec):
    words = PLAIN[spec.code]
    flags_low = spec.critical_low is not None or any(r.low is not None for r in spec.ranges)
    flags_high = spec.critical_high is not None or any(r.high is not None for r in spec.ranges)

    if flags_low:
        assert words.lower, f"{spec.code} can be flagged low: say what a low value means"
        assert words.lower in meaning(spec.code, "L")
    if flags_high:
        assert words.higher, f"{spec.code} can be flagged high: say what a high value means"
        assert words.higher in meaning(spec.code, "H")


def test_a_value_far_outside_the_range_says_the_clinic_sees_it_as_urgent_and_what_to_do_if_unwell():
    assert meaning("potassium", "HH").startswith("Your value is far above the usual range.")
    assert URGENT in meaning("potassium", "HH")
    assert URGENT in meaning("hemoglobin", "LL")
    assert "emergency services" in URGENT
    assert URGENT not in meaning("potassium", "H")


def test_no_text_names_a_disease():
    texts = [(code, text) for code, words in PLAIN.items() for text in (words.name, words.measures, words.lower,
                                                                        words.higher)]  # fmt: skip
    texts += [(code, meaning(code, flag)) for code in PLAIN for flag in [*FLAGS, ""]]

    named = [(code, word) for code, text in texts for word in DISEASE_WORDS if word in text.lower()]

    assert not named


def test_flags_are_words_and_every_panel_has_a_plain_name():
    assert FLAG_WORDS == {
        "LL": "Far outside the usual range: flagged to your clinic as urgent",
        "L": "Below the usual range",
        "N": "Within the usual range",
        "H": "Above the usual range",
        "HH": "Far outside the usual range: flagged to your clinic as urgent",
        "": "No usual range for adults",
    }
    assert set(PANEL_NAMES) == {key for key, _label in PANELS}
