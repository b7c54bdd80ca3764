"""What the rules judge: a patient's values with their dates, the derived values, and the kidney's course.

Pure Python, no Django. `facts_from` takes the values the model was given (the prediction's inputs, within the
model's window) and, where the patient's record is known, overlays each analyte's latest value with its date,
however old: a value older than its recency window must still be seen, as a reason to repeat the test, never
as current.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping

from mltraining.ml.features import ckd_epi_2021
from recommendations.rules.engine import ADULT_AGE, DERIVED_FROM, Facts, Series

Latest = Mapping[str, tuple[float, datetime.datetime]]  # analyte -> (canonical value, effective time)

EGFR_WITHOUT_SEX = "sex not recorded: the lower of the CKD-EPI 2021 values for a woman and a man"
EGFR_REPORTED = "reported by the laboratory"
_DERIVED_FROM = {name: DERIVED_FROM[name] for name in ("non_hdl_cholesterol", "mentzer_index")}  # eGFR: `_kidney`


def facts_from(
    *,
    values: Mapping[str, float | None],
    sex: str = "",
    age: float | None = None,
    as_of: datetime.datetime | None = None,
    latest: Latest | None = None,
    history: Mapping[str, Series] | None = None,
) -> Facts:
    """The facts of one patient. `latest` (from the record) wins over `values`; `history` holds the earlier values
    of creatinine and the reported eGFR, oldest first, for the acute kidney injury and CKD persistence rules."""
    merged = {name: value for name, value in values.items() if _number(value)}
    dates: dict[str, datetime.datetime] = {}
    for name, (value, when) in (latest or {}).items():
        merged[name], dates[name] = value, when
    sex = sex if sex in ("female", "male") else ""
    for name, (a, b) in _DERIVED_FROM.items():
        if _number(merged.get(a)) and _number(merged.get(b)) and merged[b] > 0:
            merged[name] = merged[a] - merged[b] if name == "non_hdl_cholesterol" else merged[a] / merged[b]
            _date_of(dates, name, a, b)
    notes: dict[str, str] = {}
    series = dict(history or {})
    _kidney(merged, dates, notes, series, sex=sex, age=age)
    return Facts(values=merged, sex=sex, age=age, dates=dates, as_of=as_of, history=series, notes=notes)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _date_of(dates: dict, name: str, *inputs: str) -> None:
    """A derived value is as old as its oldest input; undated when any input is."""
    known = [dates.get(i) for i in inputs]
    if all(when is not None for when in known):
        dates[name] = min(known)


def egfr_of(creatinine_umol: float, *, sex: str, age: float | None) -> float | None:
    """eGFR by CKD-EPI 2021; for a sex not recorded, the lower of the two values (the strict case). None for a
    minor or an unknown age: the equation is for adults."""
    if age is None or age < ADULT_AGE or not creatinine_umol > 0:
        return None
    sexes = (True, False) if sex == "" else (sex == "female",)
    return float(min(ckd_epi_2021(creatinine_umol, age, female) for female in sexes))


def _kidney(values: dict, dates: dict, notes: dict, series: dict, *, sex: str, age: float | None) -> None:
    """eGFR: the laboratory's own when it is at least as recent as the creatinine, else computed from the
    creatinine; and the eGFR course for the persistence rules, from both sources."""
    reported, creatinine = values.get("egfr_reported"), values.get("creatinine")
    use_reported = _number(reported) and (
        not _number(creatinine) or dates.get("egfr_reported", _EPOCH) >= dates.get("creatinine", _EPOCH)
    )
    if use_reported:
        values["egfr"], notes["egfr"] = reported, EGFR_REPORTED
        _date_of(dates, "egfr", "egfr_reported")
    elif _number(creatinine) and (computed := egfr_of(creatinine, sex=sex, age=age)) is not None:
        values["egfr"] = computed
        _date_of(dates, "egfr", "creatinine")
        if sex == "":
            notes["egfr"] = EGFR_WITHOUT_SEX
    course = [(when, value) for when, value in series.get("egfr_reported", ())]
    for when, value in series.get("creatinine", ()):
        if (egfr := egfr_of(value, sex=sex, age=age)) is not None:
            course.append((when, egfr))
    if course:
        series["egfr"] = tuple(sorted(course))


_EPOCH = datetime.datetime(1900, 1, 1, tzinfo=datetime.UTC)
