"""Unit conversion, plausibility and flagging of one value against its analyte. Pure: no Django here."""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass

import numpy as np

from patients.catalog_data import AnalyteSpec, RefRange, unit_label


class InvalidValue(ValueError):
    """A value that cannot be stored: the message is written for the person who entered it."""


@dataclass(frozen=True)
class Range:
    low: float | None
    high: float | None


def age_on(birth_date: datetime.date, day: datetime.date) -> int:
    """Age in whole years on a given day."""
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def _fmt(number: float) -> str:
    return f"{number:g}"


def accepted_units(spec: AnalyteSpec) -> list[str]:
    return [spec.unit, *(conversion.unit for conversion in spec.conversions)]


# Ways people and labs write units, keyed by `_unit_key`, to the UCUM code the catalog uses.
_UNIT_SYNONYMS = {
    "mmhg": "mm[Hg]", "bpm": "/min", "beats/min": "/min", "beat/min": "/min", "perminute": "/min",
    "steps": "/d", "steps/day": "/d", "step/day": "/d", "/day": "/d", "perday": "/d",
    "hours": "h", "hour": "h", "hrs": "h", "hr": "h", "minutes": "min", "mins": "min",
    "lbs": "[lb_av]", "pound": "[lb_av]", "pounds": "[lb_av]", "inch": "[in_i]", "inches": "[in_i]",
    "iu/l": "U/L", "miu/l": "u[IU]/mL", "uu/ml": "u[IU]/mL", "k/ul": "10*3/uL",
}  # fmt: skip


def _unit_key(unit: str) -> str:
    key = unit.strip().lower().replace("µ", "u").replace("μ", "u").replace("²", "2").replace(" ", "")
    key = re.sub(r"^x?10[\^*e]?(\d+)", r"10*\1", key)
    return key.replace("[", "").replace("]", "")


def unit_resolve(spec: AnalyteSpec, text: str) -> str | None:
    """The catalog's unit code for a unit as people write it ('mg/dl', 'mmHg', 'x10^9/L'); None if not accepted."""
    if not text.strip():
        return spec.unit
    accepted = accepted_units(spec)
    known = {_unit_key(unit): unit for unit in accepted}
    known.update({_unit_key(c.display): c.unit for c in spec.conversions if c.display})
    key = _unit_key(text)
    if key in known:
        return known[key]
    synonym = _UNIT_SYNONYMS.get(key)
    return synonym if synonym in accepted else None


def unit_of(spec: AnalyteSpec, *given: str | None) -> str:
    """The unit a value is in, from the ways its sender gives it (a FHIR Quantity's UCUM code, then its text; an HL7
    OBX-6): the first the catalog accepts as written, else the first written as people write units (`unit_resolve`),
    else the first given, which `to_canonical` refuses naming the accepted units. "" when none is given: a unit left
    out is never taken for the catalog's own."""
    offered = [unit for unit in given if isinstance(unit, str) and unit.strip()]
    accepted = accepted_units(spec)
    exact = next((unit for unit in offered if unit in accepted), None)
    resolved = exact or next((code for unit in offered if (code := unit_resolve(spec, unit)) is not None), None)
    return resolved or (offered[0] if offered else "")


def to_canonical(spec: AnalyteSpec, value: float, unit: str) -> float:
    """Convert a value entered in `unit` to the analyte's canonical unit, or explain why not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{spec.name} must be a number, not {value!r}.")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float, as a JSON file may hold
        finite = False
    if not finite:
        raise InvalidValue(f"{spec.name} must be a finite number.")
    if unit == spec.unit:
        return float(value)
    for conversion in spec.conversions:
        if conversion.unit == unit:
            return value * conversion.factor + conversion.offset
    raise InvalidValue(
        f"{spec.name} cannot be entered in {unit or 'no unit'}; accepted units: {', '.join(accepted_units(spec))}."
    )


def from_canonical(spec: AnalyteSpec, value: float, unit: str) -> float:
    if unit == spec.unit:
        return value
    for conversion in spec.conversions:
        if conversion.unit == unit:
            return (value - conversion.offset) / conversion.factor
    raise InvalidValue(f"{spec.name} has no unit {unit}.")


def check_plausible(spec: AnalyteSpec, value: float, unit: str) -> float:
    """Return the canonical value, or refuse an impossible one and suggest the unit that was probably meant."""
    canonical = to_canonical(spec, value, unit)
    if spec.plausible_low <= canonical <= spec.plausible_high:
        return canonical
    low, high = _plausible_in(spec, value, unit)
    message = f"{spec.name} {_fmt(value)} {unit} is outside the plausible range {low}-{high} {unit}."
    meant = [
        other
        for other in accepted_units(spec)
        if other != unit and spec.plausible_low <= to_canonical(spec, value, other) <= spec.plausible_high
    ]
    if meant:
        message += f" Did you mean {meant[0]}?"
    raise InvalidValue(message)


def _plausible_in(spec: AnalyteSpec, value: float, unit: str) -> tuple[str, str]:
    """The plausible limits in the unit the user entered, at the precision of a result in that unit rather than the
    conversion's: glucose 9-1081 mg/dL, not 9.008-1080.96 mg/dL (the catalog's 0.5-60 mmol/L converted)."""
    low, high = spec.plausible_low, spec.plausible_high
    if unit == spec.unit:
        return _fmt(low), _fmt(high)
    conversion = next(c for c in spec.conversions if c.unit == unit)
    decimals = max(0, spec.decimals + round(math.log10(conversion.factor)))
    low, high = from_canonical(spec, low, unit), from_canonical(spec, high, unit)
    shown = round(low, decimals), round(high, decimals)
    if shown[0] <= value <= shown[1]:  # rounding would put the refused value inside: quote the limits as they are
        shown = round(low, 3), round(high, 3)
    return _fmt(shown[0]), _fmt(shown[1])


def reference_range(spec: AnalyteSpec, sex: str, age: int) -> Range | None:
    """The adult range for this sex and age; for a patient whose sex is not recorded as female or male and an
    analyte with sex-specific ranges, the narrowest (the higher low, the lower high), so a value abnormal for
    either sex is flagged: the strict case, as the guideline rules judge such a patient."""
    candidates: list[RefRange] = [
        r for r in spec.ranges if r.age_min <= age and (r.age_max is None or age <= r.age_max)
    ]
    if not candidates:
        return None
    for wanted in (sex, ""):
        for r in candidates:
            if r.sex == wanted:
                return Range(r.low, r.high)
    lows = [r.low for r in candidates if r.low is not None]
    highs = [r.high for r in candidates if r.high is not None]
    return Range(max(lows) if lows else None, min(highs) if highs else None)


def critical_flag(spec: AnalyteSpec, value: float) -> str:
    """LL beyond the critical low limit, HH beyond the critical high one, "" otherwise (for any sex and age)."""
    if spec.critical_low is not None and value < spec.critical_low:
        return "LL"
    if spec.critical_high is not None and value > spec.critical_high:
        return "HH"
    return ""


def interpret(spec: AnalyteSpec, value: float, sex: str, age: int) -> str:
    """LL / HH beyond critical limits, L / H outside the reference range, N inside, "" when no range applies."""
    if flag := critical_flag(spec, value):
        return flag
    rng = reference_range(spec, sex, age)
    if rng is None:
        return ""
    if rng.low is not None and value < rng.low:
        return "L"
    if rng.high is not None and value > rng.high:
        return "H"
    return "N"


# The lab's critical call (HL7 OBX-8 or FHIR Observation.interpretation HH, LL or AA) on a value this clinic's limits
# call only high or low, in the same direction. The lab telephones the clinic about what its own limits call
# critical, so the record (its red banner, the acknowledgement it waits for) must not call that value merely high
# or low. A call against our direction is not followed: the importer reports the disagreement.
_LAB_CRITICAL = {("H", "HH"): "HH", ("H", "AA"): "HH", ("L", "LL"): "LL", ("L", "AA"): "LL"}


def with_lab_critical_call(ours: str, lab_flag: str) -> str:
    """The flag to store: `interpret`'s, raised to critical by the lab's own critical call in the same direction."""
    return _LAB_CRITICAL.get((ours, lab_flag.strip().upper()), ours)


def interpret_array(spec: AnalyteSpec, values: np.ndarray, sexes: np.ndarray, ages: np.ndarray) -> np.ndarray:
    """`interpret` for many values at once (bulk loads): same rules, vectorised.

    Ages are cut where any range starts or ends, so within each slice the same ranges apply to every age and
    `reference_range` of its first age is every patient's in it (an older women's range inside the adult range
    for anyone included)."""
    out = np.full(len(values), "", dtype=object)
    cuts = sorted(
        {0} | {r.age_min for r in spec.ranges} | {r.age_max + 1 for r in spec.ranges if r.age_max is not None}
    )
    for sex in np.unique(sexes):
        for age_min, age_end in zip(cuts, [*cuts[1:], math.inf], strict=True):
            mask = (sexes == sex) & (ages >= age_min) & (ages < age_end)
            if not mask.any():
                continue
            rng = reference_range(spec, sex, age_min)
            if rng is None:
                continue
            flags = np.full(int(mask.sum()), "N", dtype=object)
            v = values[mask]
            if rng.low is not None:
                flags[v < rng.low] = "L"
            if rng.high is not None:
                flags[v > rng.high] = "H"
            out[mask] = flags
    if spec.critical_low is not None:
        out[values < spec.critical_low] = "LL"
    if spec.critical_high is not None:
        out[values > spec.critical_high] = "HH"
    return out


def off_limit_decimals(value: float, decimals: int, limits: list[float | None]) -> int:
    """Enough decimals that a value is never shown on a limit it is not on: 79.18 mmHg against a reference high of
    79 reads 79.2 beside its H flag, not 79 (at most three more decimals)."""
    limits, most = [limit for limit in limits if limit is not None and limit != value], decimals + 3
    while decimals < most and any(float(f"{value:.{decimals}f}") == limit for limit in limits):
        decimals += 1
    return decimals


def converted_decimals(value: float, decimals: int) -> int:
    """A value converted from another unit keeps three significant digits: 126 mg/dL reads 6.99 mmol/L, not 7.0."""
    if value == 0:
        return decimals
    return max(decimals, 2 - math.floor(math.log10(abs(value))))


def shown_value(value: float, *, decimals: int, converted: bool, limits: list[float | None]) -> str:
    """A stored value as every page shows it: at its analyte's precision (three significant digits when it was
    converted from the unit it was entered in), never rounded onto a limit it is not on."""
    decimals = converted_decimals(value, decimals) if converted else decimals
    return f"{value:.{off_limit_decimals(value, decimals, limits)}f}"


CRITICAL_LABELS = {"LL": "critically low", "HH": "critically high"}
CRITICAL_CHOICES = list(CRITICAL_LABELS.items())  # the API's CriticalInterpretationEnum


def critical_text(spec: AnalyteSpec, value: float, interpretation: str) -> str:
    """A value in a critical range as a clinician reads it, "Potassium 6.24 mmol/L (critically high)": at the
    analyte's precision, never rounded onto the critical limit it is past."""
    decimals = off_limit_decimals(value, spec.decimals, [spec.critical_low, spec.critical_high])
    return f"{spec.name} {value:.{decimals}f} {unit_label(spec.code, spec.unit)} ({CRITICAL_LABELS[interpretation]})"


def critical_excess(spec: AnalyteSpec, value: float, interpretation: str) -> float:
    """How far a critical value is past its critical limit, as a fraction of the limit (potassium 7.0 past 6.2:
    0.13; sodium 118 below 120: 0.017): what "most severe first" sorts on, across analytes of different units.
    A deliberately simple, unit-free order, not a clinical grading; 0 for a value not past a limit."""
    limit = spec.critical_high if interpretation == "HH" else spec.critical_low if interpretation == "LL" else None
    if limit is None:
        return 0.0
    past = value - limit if interpretation == "HH" else limit - value
    return max(past, 0.0) / abs(limit) if limit else max(past, 0.0)
