"""The clinical case table (`clinical_cases.csv`): results in, the advice items and severities a guideline gives.

Each row is one patient, written from the guideline tables, not from `recommendations.rules`:

- `sex`: female, male, or "-" for not recorded; `age` in years;
- `results`: "analyte value unit", separated by ";", each optionally "@<n>d" or "@<n>h" before the time the
  case is judged at (default: that time); several values of one analyte are its course, the newest current;
- `expected`: every item the rules must give, "advice:severity", separated by ";", or "-" for none;
- `guideline`: the row of the guideline (or the issue's reproduction) the expectation comes from;
- `hazard`: the hazard of docs/SAFETY.md a hand-written case controls.

Cases H001-H060 are written one by one (every case quoted in the issue is one of them); T001 on are each
threshold's values just below, at and just above it, for both sexes and sex not recorded, in mg/dL and SI units.
The values go through the platform's own unit conversion (the catalog's factors) and `rules.facts_from`, as the
advice generator's do.
"""

from __future__ import annotations

import csv
import datetime
import re
from pathlib import Path

import pytest

from patients.catalog_data import ANALYTES
from patients.clinical import to_canonical
from recommendations.rules import RULES, evaluate, facts_from

CASES = Path(__file__).with_name("clinical_cases.csv")
AS_OF = datetime.datetime(2026, 6, 1, 9, 0, tzinfo=datetime.UTC)
SPECS = {spec.code: spec for spec in ANALYTES}
COURSES = ("creatinine", "egfr_reported")  # the analytes whose earlier values the rules read
_RESULT = re.compile(r"^(?P<analyte>\w+) (?P<value>-?[\d.]+) (?P<unit>\S+)(?: @(?P<ago>\d+)(?P<per>[dh]))?$")


def _rows() -> list[dict[str, str]]:
    with CASES.open(newline="") as file:
        return list(csv.DictReader(file))


def _params():
    for row in _rows():
        marks = [pytest.mark.hazard(row["hazard"], f"{row['case']}: {row['guideline']}")] if row["hazard"] else []
        yield pytest.param(row, id=row["case"], marks=marks)


def _results(text: str) -> list[tuple[str, float, datetime.datetime]]:
    results = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        if part == "-":
            continue
        match = _RESULT.match(part)
        assert match, f"unreadable result {part!r}"
        ago = int(match["ago"] or 0)
        when = AS_OF - (datetime.timedelta(hours=ago) if match["per"] == "h" else datetime.timedelta(days=ago))
        spec = SPECS[match["analyte"]]
        results.append((spec.code, to_canonical(spec, float(match["value"]), match["unit"]), when))
    return results


def _facts(row: dict[str, str]):
    latest, history = {}, {}
    for code, value, when in sorted(_results(row["results"]), key=lambda result: result[2]):
        latest[code] = (value, when)
        if code in COURSES:
            history.setdefault(code, []).append((when, value))
    sex = "" if row["sex"] == "-" else row["sex"]
    return facts_from(
        values={}, sex=sex, age=float(row["age"]), as_of=AS_OF, latest=latest,
        history={code: tuple(series) for code, series in history.items()},
    )  # fmt: skip


def _expected(text: str) -> list[str]:
    return sorted(item.strip() for item in text.split(";") if item.strip() not in ("", "-"))


@pytest.mark.parametrize("row", _params())
def test_each_clinical_case_gives_the_items_its_guideline_row_gives(row):
    found = sorted(f"{f.advice}:{f.severity.name.lower()}" for f in evaluate(_facts(row)))
    assert found == _expected(row["expected"]), row["guideline"]


def test_the_table_is_large_enough_and_covers_both_sexes_sex_not_recorded_and_both_unit_systems():
    rows = _rows()
    assert len(rows) >= 300
    assert {row["sex"] for row in rows} == {"female", "male", "-"}
    units = {result.split()[2] for row in rows for result in row["results"].split(";") if result.strip() != "-"}
    assert {"mg/dL", "mmol/L", "umol/L", "g/L", "mmol/mol", "ng/mL"} <= units
    assert len({row["case"] for row in rows}) == len(rows)


def test_every_rule_is_met_by_some_case():
    facts = [_facts(row) for row in _rows()]
    missing = {rule.code for rule in RULES if all(rule.check(f) is None for f in facts)}
    assert not missing, f"no case fires {sorted(missing)}"


def test_a_merged_item_names_every_value_it_stands_for():
    [item] = evaluate(_facts({"sex": "female", "age": "60", "results": "hba1c 6.6 %; glucose 110 mg/dL"}))
    assert "Hemoglobin A1c 6.6 %" in item.rationale
    assert "Glucose (fasting) 6.1 mmol/L (110 mg/dL)" in item.rationale


def test_a_finding_states_the_date_of_its_value():
    [item] = evaluate(_facts({"sex": "male", "age": "60", "results": "ldl 170 mg/dL @30d"}))
    assert " on 2026-05-02 " in item.rationale


def test_an_out_of_date_item_names_the_value_its_date_and_the_window():
    [item] = evaluate(_facts({"sex": "male", "age": "60", "results": "ldl 187.8 mg/dL @1095d"}))
    assert "LDL cholesterol 4.86 mmol/L (188 mg/dL) on 2023-06-02" in item.rationale
    assert "older than 365 days" in item.rationale
    assert "Repeat the test" in item.rationale
