"""Every rule declares the analytes it reads: the review page shows exactly those values behind its item."""

import dataclasses
import datetime
import random

from recommendations import rules
from recommendations.rules.engine import DERIVED_FROM, SPECS, Facts, analytes_of

NOW = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)


@dataclasses.dataclass(frozen=True)
class RecordingFacts(Facts):
    """Facts that note every feature a rule asks for."""

    asked: set = dataclasses.field(default_factory=set)

    def value(self, feature):
        self.asked.add(feature)
        return super().value(feature)

    def measured(self, feature):
        self.asked.add(feature)
        return super().measured(feature)


def _random_facts(rng: random.Random) -> RecordingFacts:
    """Every analyte at a random plausible value, creatinine with an earlier course (the kidney rules read it)."""
    values = {code: rng.uniform(spec.plausible_low, spec.plausible_high) for code, spec in SPECS.items()}
    if rng.random() < 0.5:
        values.pop("egfr_reported")  # eGFR computed from the creatinine, as most records have it
    creatinine = SPECS["creatinine"]
    history = {"creatinine": tuple(
        (NOW - datetime.timedelta(days=days), rng.uniform(creatinine.plausible_low, creatinine.plausible_high / 4))
        for days in (200, 120, 5, 1)
    )}  # fmt: skip
    latest = {"creatinine": (values["creatinine"], NOW)}
    facts = rules.facts_from(values=values, sex=rng.choice(["female", "male", ""]), age=rng.uniform(18, 90),
                             latest=latest, history=history)  # fmt: skip
    return RecordingFacts(**{f.name: getattr(facts, f.name) for f in dataclasses.fields(Facts)})


def test_every_rule_declares_exactly_the_analytes_its_condition_reads():
    rng = random.Random(31)
    samples = [_random_facts(rng) for _ in range(3000)]
    for rule in rules.RULES:
        asked = set()
        for facts in samples:
            facts.asked.clear()
            rule.check(facts)
            asked |= set(analytes_of(*facts.asked))
        assert set(rule.reads) == asked, rule.code
        assert all(code in SPECS for code in rule.reads), rule.code


def test_a_derived_feature_reads_the_analytes_it_is_computed_from():
    assert rules.BY_CODE["microcytosis_thalassaemia_pattern"].reads == ("mcv", "rbc")
    assert set(rules.BY_CODE["egfr_g3a"].reads) == set(DERIVED_FROM["egfr"]) == {"creatinine", "egfr_reported"}


def test_an_item_merged_from_two_findings_on_one_condition_is_behind_both_analytes():
    facts = rules.facts_from(values={"hba1c": 7.1, "glucose": 8.0, "ldl": 2.0}, sex="female", age=50)

    assert rules.analytes_behind("hba1c_diabetes_range", facts) == ("hba1c", "glucose")
    assert rules.analytes_behind("hba1c_diabetes_range") == ("hba1c",)


def test_a_repeat_item_is_behind_the_analyte_out_of_date_and_the_model_item_behind_none():
    assert rules.analytes_behind("egfr_out_of_date") == ("creatinine", "egfr_reported")
    assert rules.analytes_behind("") == ()
