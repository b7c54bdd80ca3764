"""Internal consistency of the analyte catalog data. Pure data: no database, no Django."""

import itertools
import re

import pytest

from patients.catalog_data import ANALYTES, SOURCES, AnalyteSpec

SPECS = {spec.code: spec for spec in ANALYTES}
KINDS = {"lab", "vital", "wearable"}
PANELS = {
    "cbc", "metabolic", "lipid", "liver", "cardiac", "inflammation", "coagulation", "iron", "urine", "allergy",
    "blood_gas", "vitals", "wearable",
}  # fmt: skip
LOINC = re.compile(r"^\d{1,7}-\d$")


def canonical(spec: AnalyteSpec, value: float, unit: str) -> float:
    if unit == spec.unit:
        return value
    [conversion] = [c for c in spec.conversions if c.unit == unit]
    return value * conversion.factor + conversion.offset


def loinc_check_digit_ok(code: str) -> bool:
    """LOINC codes end in a mod-10 check digit (Luhn over the number part)."""
    number, check = code.split("-")
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10 == int(check)


def test_codes_are_unique_slugs():
    codes = [spec.code for spec in ANALYTES]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", code) for code in codes)


def test_loinc_codes_are_well_formed_and_unique_across_analytes():
    seen: dict[str, str] = {}
    for spec in ANALYTES:
        assert spec.loinc, spec.code
        for code in spec.loinc:
            assert LOINC.match(code), (spec.code, code)
            assert loinc_check_digit_ok(code), (spec.code, code)
            assert code not in seen, f"{code} is on both {seen[code]} and {spec.code}"
            seen[code] = spec.code


@pytest.mark.parametrize(
    ("code", "preferred", "others"),
    [
        ("glucose", "1558-6", {"14771-0"}),
        ("hba1c", "4548-4", {"17856-6"}),
        ("total_cholesterol", "2093-3", set()),
        ("ldl", "13457-7", {"18262-6", "2089-1"}),
        ("hdl", "2085-9", set()),
        ("triglycerides", "2571-8", set()),
        ("creatinine", "2160-0", {"38483-4"}),
        ("alt", "1742-6", {"1743-4"}),
        ("ast", "1920-8", set()),
        ("crp", "1988-5", set()),
        ("hs_crp", "30522-7", set()),
        ("troponin", "89579-7", set()),
        ("troponin_t_hs", "67151-1", set()),
        ("troponin_i", "10839-9", set()),
        ("troponin_t", "6598-7", set()),
        ("glucose_random", "2345-7", {"2339-0", "14749-6", "15074-8"}),
        ("egfr_reported", "98979-8", {"33914-3", "62238-1"}),
        ("insulin", "20448-7", set()),
        ("sodium", "2951-2", set()),
        ("potassium", "2823-3", set()),
        ("bmi", "39156-5", set()),
        ("systolic_bp", "8480-6", set()),
        ("diastolic_bp", "8462-4", set()),
        ("heart_rate", "8867-4", set()),
        ("body_weight", "29463-7", set()),
        ("body_height", "8302-2", set()),
        ("steps", "41950-7", set()),
        ("resting_heart_rate", "40443-4", set()),
        ("sleep_duration", "93832-4", set()),
    ],
)
def test_required_loinc_codes(code, preferred, others):
    spec = SPECS[code]
    assert spec.loinc[0] == preferred
    assert others <= set(spec.loinc)


def test_every_analyte_has_a_known_kind_panel_and_cited_source():
    for spec in ANALYTES:
        assert spec.kind in KINDS, spec.code
        assert spec.panel in PANELS, spec.code
        assert spec.source in SOURCES, spec.code
        assert spec.name, spec.code
        assert spec.unit, spec.code
        assert 0 <= spec.decimals <= 3, spec.code


def test_sources_are_non_empty_and_all_used():
    used = {spec.source for spec in ANALYTES}
    assert used == set(SOURCES)
    assert all(len(text) > 40 for text in SOURCES.values())


def test_plausible_limits_are_ordered():
    for spec in ANALYTES:
        assert 0 <= spec.plausible_low < spec.plausible_high, spec.code


def test_reference_ranges_are_ordered_and_plausible():
    for spec in ANALYTES:
        for rng in spec.ranges:
            assert rng.low is not None or rng.high is not None, spec.code
            if rng.low is not None and rng.high is not None:
                assert rng.low < rng.high, spec.code
            for limit in (rng.low, rng.high):
                if limit is not None:
                    assert spec.plausible_low <= limit <= spec.plausible_high, spec.code
            assert rng.sex in {"", "female", "male"}, spec.code
            assert rng.age_min >= 18, spec.code
            assert rng.age_max is None or rng.age_max >= rng.age_min, spec.code


def test_ranges_are_either_for_any_sex_or_for_both_sexes():
    for spec in ANALYTES:
        sexes = {rng.sex for rng in spec.ranges}
        assert sexes in (set(), {""}, {"female", "male"}), spec.code


def test_age_bands_do_not_overlap():
    for spec in ANALYTES:
        for sex in {rng.sex for rng in spec.ranges}:
            bands = sorted((r.age_min, r.age_max) for r in spec.ranges if r.sex == sex)
            for (_, first_max), (second_min, _) in itertools.pairwise(bands):
                assert first_max is not None, spec.code
                assert first_max < second_min, spec.code


def test_critical_limits_lie_outside_every_reference_range_and_inside_plausible_limits():
    for spec in ANALYTES:
        if spec.critical_low is not None:
            assert spec.plausible_low < spec.critical_low, spec.code
            for rng in spec.ranges:
                assert rng.low is not None, spec.code
                assert spec.critical_low < rng.low, spec.code
        if spec.critical_high is not None:
            assert spec.critical_high < spec.plausible_high, spec.code
            for rng in spec.ranges:
                assert rng.high is not None, spec.code
                assert spec.critical_high > rng.high, spec.code
        if spec.critical_low is not None and spec.critical_high is not None:
            assert spec.critical_low < spec.critical_high, spec.code


@pytest.mark.parametrize(
    ("code", "low", "high"),
    [
        ("potassium", 2.8, 6.2),
        ("sodium", 120, 160),
        ("glucose", 2.8, 25),
        ("hemoglobin", 7, 20),
        ("platelets", 20, 1000),
        ("wbc", 2, 30),
    ],
)
def test_critical_limits(code, low, high):
    assert (SPECS[code].critical_low, SPECS[code].critical_high) == (low, high)


def test_conversions_are_positive_distinct_and_not_the_canonical_unit():
    for spec in ANALYTES:
        units = [c.unit for c in spec.conversions]
        assert len(units) == len(set(units)), spec.code
        assert spec.unit not in units, spec.code
        for conversion in spec.conversions:
            assert conversion.factor > 0, (spec.code, conversion.unit)


def test_aliases_are_lower_case_and_name_one_analyte_only():
    owners: dict[str, str] = {}
    for spec in ANALYTES:
        for alias in spec.aliases:
            assert alias == alias.lower().strip(), (spec.code, alias)
        for key in {spec.code, spec.name.lower(), *spec.aliases}:
            assert owners.setdefault(key, spec.code) == spec.code, f"{key!r}: {owners[key]} and {spec.code}"


@pytest.mark.parametrize(
    ("code", "value", "unit", "expected", "tolerance"),
    [
        ("glucose", 100, "mg/dL", 5.55, 0.01),
        ("glucose", 126, "mg/dL", 6.99, 0.01),
        ("creatinine", 1, "mg/dL", 88.4, 0.05),
        ("hemoglobin", 140, "g/L", 14, 1e-9),
        ("hemoglobin", 8.69, "mmol/L", 14, 0.01),
        ("mchc", 340, "g/L", 34, 1e-9),
        ("total_cholesterol", 200, "mg/dL", 5.17, 0.01),
        ("ldl", 130, "mg/dL", 3.36, 0.01),
        ("hdl", 40, "mg/dL", 1.03, 0.01),
        ("triglycerides", 150, "mg/dL", 1.69, 0.01),
        ("hba1c", 48, "mmol/mol", 6.5, 0.05),
        ("hba1c", 39, "mmol/mol", 5.7, 0.05),
        ("wbc", 6.5, "10*3/uL", 6.5, 1e-9),
        ("rbc", 4.8, "10*6/uL", 4.8, 1e-9),
        ("hematocrit", 0.42, "L/L", 42, 1e-9),
        ("alt", 0.5, "ukat/L", 30, 1e-9),
        ("crp", 1.2, "mg/dL", 12, 1e-9),
        ("insulin", 60, "pmol/L", 10, 1e-9),
        ("troponin", 0.04, "ng/mL", 40, 1e-9),
        ("sodium", 140, "meq/L", 140, 1e-9),
        ("body_weight", 100, "[lb_av]", 45.359237, 1e-9),
        ("body_height", 69, "[in_i]", 175.26, 1e-9),
        ("body_height", 1.75, "m", 175, 1e-9),
        ("sleep_duration", 450, "min", 7.5, 1e-9),
    ],
)
def test_conversions_to_the_canonical_unit(code, value, unit, expected, tolerance):
    assert canonical(SPECS[code], value, unit) == pytest.approx(expected, abs=tolerance)


def test_conversions_round_trip():
    for spec in ANALYTES:
        for conversion in spec.conversions:
            for value in (spec.plausible_low, (spec.plausible_low + spec.plausible_high) / 2, spec.plausible_high):
                entered = (value - conversion.offset) / conversion.factor
                assert canonical(spec, entered, conversion.unit) == pytest.approx(value), spec.code


def test_canonical_units_are_the_si_ones_the_platform_stores():
    expected = {
        "glucose": "mmol/L", "total_cholesterol": "mmol/L", "ldl": "mmol/L", "hdl": "mmol/L",
        "triglycerides": "mmol/L", "creatinine": "umol/L", "hemoglobin": "g/dL", "hba1c": "%",
        "wbc": "10*9/L", "platelets": "10*9/L", "rbc": "10*12/L", "hematocrit": "%", "mcv": "fL", "mch": "pg",
        "mchc": "g/dL", "alt": "U/L", "ast": "U/L", "crp": "mg/L", "hs_crp": "mg/L", "troponin": "ng/L",
        "sodium": "mmol/L", "potassium": "mmol/L", "bmi": "kg/m2", "systolic_bp": "mm[Hg]",
        "diastolic_bp": "mm[Hg]", "heart_rate": "/min", "body_weight": "kg", "body_height": "cm",
        "steps": "/d", "resting_heart_rate": "/min", "sleep_duration": "h",
    }  # fmt: skip
    assert {code: SPECS[code].unit for code in expected} == expected


@pytest.mark.parametrize(
    "code",
    ["hemoglobin", "hematocrit", "rbc", "creatinine", "alt", "hdl"],
)
def test_sex_specific_ranges(code):
    ranges = {rng.sex: rng for rng in SPECS[code].ranges}
    assert set(ranges) == {"female", "male"}


def test_alt_upper_limits_follow_acg_2017():
    ranges = {rng.sex: rng for rng in SPECS["alt"].ranges}
    assert 19 <= ranges["female"].high <= 25
    assert 29 <= ranges["male"].high <= 33


def test_lipid_limits_match_the_mg_dl_cut_points():
    """A value entered exactly at an NCEP cut-point is flagged as the guideline says, one mg/dL below is not."""

    def flagged_high(code, mg_dl):
        spec = SPECS[code]
        return canonical(spec, mg_dl, "mg/dL") > spec.ranges[0].high

    assert flagged_high("total_cholesterol", 200)
    assert not flagged_high("total_cholesterol", 199)
    assert flagged_high("ldl", 130)
    assert not flagged_high("ldl", 129)
    assert flagged_high("triglycerides", 150)
    assert not flagged_high("triglycerides", 149)
    hdl = {rng.sex: rng.low for rng in SPECS["hdl"].ranges}
    assert canonical(SPECS["hdl"], 40, "mg/dL") >= hdl["male"] > canonical(SPECS["hdl"], 39, "mg/dL")
    assert canonical(SPECS["hdl"], 50, "mg/dL") >= hdl["female"] > canonical(SPECS["hdl"], 49, "mg/dL")
