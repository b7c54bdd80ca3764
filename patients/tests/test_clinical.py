import dataclasses
import math

import numpy as np
import pytest

from patients.catalog_data import ANALYTES, RefRange
from patients.clinical import (
    InvalidValue,
    age_on,
    check_plausible,
    interpret,
    interpret_array,
    reference_range,
    to_canonical,
)

SPECS = {spec.code: spec for spec in ANALYTES}


@pytest.mark.hazard("H2", "A glucose of 100 mg/dL is converted to 5.55 mmol/L, the canonical unit")
def test_glucose_in_mg_dl_is_converted_to_mmol_l():
    assert to_canonical(SPECS["glucose"], 100, "mg/dL") == pytest.approx(5.55, abs=0.01)


@pytest.mark.hazard("H2", "A glucose in g/L is refused, naming the accepted units mmol/L and mg/dL")
def test_an_unknown_unit_is_refused_with_the_accepted_ones():
    with pytest.raises(InvalidValue, match="accepted units: mmol/L, mg/dL"):
        to_canonical(SPECS["glucose"], 5.5, "g/L")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "5.5", None, True])
def test_non_numbers_and_non_finite_values_are_refused(value):
    with pytest.raises(InvalidValue):
        to_canonical(SPECS["glucose"], value, "mmol/L")


@pytest.mark.hazard(
    "H2", "A haemoglobin of 180 g/dL is refused as outside the plausible range, with 'Did you mean g/L?'"
)
def test_an_impossible_hemoglobin_suggests_the_unit_that_was_meant():
    with pytest.raises(InvalidValue) as excinfo:
        check_plausible(SPECS["hemoglobin"], 180, "g/dL")

    message = str(excinfo.value)
    assert message.startswith("Hemoglobin 180 g/dL is outside the plausible range")
    assert message.endswith("Did you mean g/L?")


@pytest.mark.hazard("H2", "A glucose of -1, 0 or 1e308 mmol/L is refused as outside the plausible range")
@pytest.mark.parametrize(("value", "unit"), [(-1, "mmol/L"), (1e308, "mmol/L"), (0, "mmol/L")])
def test_negative_zero_and_huge_glucose_values_are_refused(value, unit):
    with pytest.raises(InvalidValue, match="outside the plausible range"):
        check_plausible(SPECS["glucose"], value, unit)


def test_hemoglobin_12_5_is_low_for_a_man_and_normal_for_a_woman():
    assert interpret(SPECS["hemoglobin"], 12.5, "male", 40) == "L"
    assert interpret(SPECS["hemoglobin"], 12.5, "female", 40) == "N"


@pytest.mark.hazard("H1", "Potassium 7.0 and 2.0 mmol/L are flagged HH and LL, whatever the reference range says")
def test_critical_limits_win_over_the_reference_range():
    assert interpret(SPECS["potassium"], 7.0, "female", 50) == "HH"
    assert interpret(SPECS["potassium"], 2.0, "female", 50) == "LL"


@pytest.mark.hazard("H1", "A child's potassium of 7.5 mmol/L is flagged HH although no adult range applies")
def test_no_adult_range_applies_to_a_child_but_critical_limits_still_do():
    assert interpret(SPECS["hemoglobin"], 12.5, "male", 9) == ""
    assert interpret(SPECS["potassium"], 7.5, "male", 9) == "HH"


@pytest.mark.hazard(
    "H7", "Haemoglobin and troponin of a patient whose sex is not recorded, flagged by the stricter range"
)
def test_unknown_sex_is_flagged_outside_either_sex_specific_range():
    female, male = reference_range(SPECS["hemoglobin"], "female", 40), reference_range(SPECS["hemoglobin"], "male", 40)
    either = reference_range(SPECS["hemoglobin"], "unknown", 40)

    assert either.low == max(female.low, male.low)
    assert either.high == min(female.high, male.high)
    assert interpret(SPECS["hemoglobin"], 12.5, "", 40) == "L"  # anaemic for a man
    assert interpret(SPECS["troponin"], 30.0, "", 40) == "H"  # above the women's 99th percentile


def test_age_counts_whole_years_up_to_the_birthday():
    import datetime

    assert age_on(datetime.date(1980, 5, 17), datetime.date(2020, 5, 16)) == 39
    assert age_on(datetime.date(1980, 5, 17), datetime.date(2020, 5, 17)) == 40


@pytest.mark.parametrize("order", [1, -1], ids=["general range first", "older women's range first"])
def test_bulk_flags_use_each_patients_own_range_when_an_age_band_overlaps_the_adult_range(order):
    """The demo cohort is flagged in bulk (`interpret_array`), entered values one at a time (`interpret`): both
    must take the same range. With an adult range for anyone and a narrower one for women from 50, a woman of 60
    is judged by hers, whatever order the catalog lists them in."""
    ranges = (RefRange(10.0, 100.0), RefRange(20.0, 50.0, sex="female", age_min=50))[::order]
    spec = dataclasses.replace(SPECS["ferritin"], ranges=ranges, critical_low=None, critical_high=None)
    values = np.array([15.0, 15.0, 60.0, 60.0, 15.0, 60.0, 15.0])
    ages = np.array([30, 60, 30, 60, 60, 60, 12])
    sexes = np.array(["female", "female", "female", "female", "male", "male", "female"], dtype=object)

    flags = interpret_array(spec, values, sexes, ages)

    assert list(flags) == ["N", "L", "N", "H", "N", "N", ""]
    assert list(flags) == [interpret(spec, v, s, int(a)) for v, s, a in zip(values, sexes, ages, strict=True)]
