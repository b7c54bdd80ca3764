"""The ledgers' reports: every case and hazard appears, a failure is visible, text cannot break a table, and a
report is written only after a full run in which each entry has a test and none was skipped."""

from dataclasses import replace
from types import SimpleNamespace

import pytest

from reliability.cases import CASES
from reliability.hazards import HAZARD_IDS, HAZARDS
from reliability.plugin import ENVIRONMENT, reliability_ledger, safety_ledger
from reliability.report import Row, reliability_report, safety_report

TESTPATHS = ["clinic", "patients"]


def test_every_case_has_a_summary_line_with_its_count_and_result():
    rows = [
        Row(1, "tried a", "passed", "t::a"),
        Row(1, "tried b", "passed", "t::b"),
        Row(2, "tried c", "failed", "t::c"),
    ]
    text = reliability_report(rows, environment="test")
    assert "| 1 | " + CASES[0].claim + " | 2 | holds |" in text
    assert "| 2 | " + CASES[1].claim + " | 1 | **0 of 1 hold** |" in text
    assert "| 3 | " + CASES[2].claim + " | 0 | **0 of 0 hold** |" in text
    assert "| 2 | tried c | **FAILED** | `t::c` |" in text


def test_pipes_and_newlines_in_a_description_do_not_break_the_table():
    text = reliability_report([Row(9, "a <script>|x\n  y", "passed", "t::x")], environment="test")
    assert "| 9 | a <script>\\|x y | holds | `t::x` |" in text


def test_the_report_is_rewritten_only_when_every_marked_test_ran_and_none_skipped():
    ran = {("t::a", 1): Row(1, "a", "passed", "t::a"), ("t::b", 2): Row(2, "b", "failed", "t::b")}
    ledger = reliability_ledger()
    ledger.expected = {("t::a", 1), ("t::b", 2)}

    ledger.rows = ran
    assert ledger.withheld_because() == ""  # a failure is reported, not withheld
    ledger.rows = {("t::a", 1): ran[("t::a", 1)]}
    assert "stopped before 1" in ledger.withheld_because()  # -x, Ctrl-C
    ledger.rows = {**ran, ("t::b", 2): Row(2, "b", "skipped", "t::b")}
    assert "case(s) [2] skipped" in ledger.withheld_because()


# --- the hazard log -----------------------------------------------------------------------------------------------


def test_the_hazard_log_lists_every_hazard_with_its_causes_controls_count_and_result():
    rows = [
        Row("H1", "a potassium of 7.0 flagged HH", "passed", "t::a"),
        Row("H1", "a sodium of 118 flagged LL", "passed", "t::b"),
        Row("H2", "a glucose in g/L", "failed", "t::c"),
    ]
    text = safety_report(rows, environment="test")
    first, second, third = HAZARDS[:3]

    assert f"| H1 | {first.hazard} | {'; '.join(first.causes)} | {'; '.join(first.controls)} | 2 | holds |" in text
    assert f"| H2 | {second.hazard} | " in text
    assert " | 1 | **0 of 1 hold** |" in text
    assert f"| H3 | {third.hazard} | " in text
    assert text.count(" | 0 | **0 of 0 hold** |") == len(HAZARDS) - 2
    assert "| a glucose in g/L | **FAILED** | `t::c` |" in text
    assert all(f"\n## {hazard.id} {hazard.hazard}\n" in text for hazard in HAZARDS)


def test_the_hazard_log_says_how_to_read_it_and_that_the_run_writes_it():
    text = safety_report([], environment="PostgreSQL and Chromium")

    assert text.startswith("# Clinical safety: hazard log\n")
    assert "none was\nskipped: PostgreSQL and Chromium. Do not edit by hand" in text
    assert "**holds** means every test listed for the hazard passed in the last full test run" in text


def test_each_hazard_lists_its_tests_under_its_own_heading():
    text = safety_report([Row("H5", "a pending item|hidden", "passed", "t::p")], environment="test")

    section = text.split("\n## H5 ")[1].split("\n## ")[0]
    assert "| a pending item\\|hidden | holds | `t::p` |" in section
    assert "t::p" not in text.split("\n## H6 ")[1]


def test_hazard_ids_are_unique_and_each_hazard_names_a_cause_and_a_control():
    assert len(set(HAZARD_IDS)) == len(HAZARD_IDS) == 13
    assert all(hazard.causes and hazard.controls for hazard in HAZARDS)


def test_a_marker_naming_an_unknown_hazard_stops_the_run():
    item = SimpleNamespace(nodeid="t::x", iter_markers=lambda name: [pytest.mark.hazard("H99", "tried").mark])

    with pytest.raises(pytest.UsageError, match="hazard 'H99' is not in reliability/hazards.py"):
        safety_ledger().pytest_collection_modifyitems([item])


def test_the_marker_takes_its_arguments_by_keyword_too():
    item = SimpleNamespace(nodeid="t::x", iter_markers=lambda name: [pytest.mark.hazard("H2", control="mg/dL").mark])
    ledger = safety_ledger()

    ledger.pytest_collection_modifyitems([item])

    assert ledger.expected == {("t::x", "H2")}


def _finished(tmp_path, *, proven, outcome="passed", args=TESTPATHS):
    """A safety ledger that collected one test for each of `proven` hazards, after the session finished."""
    ledger = replace(safety_ledger(), report=tmp_path / "SAFETY.md")
    ledger.expected = {(f"t::{hazard}", hazard) for hazard in proven}
    ledger.rows = {(test, hazard): Row(hazard, "tried", outcome, test) for test, hazard in ledger.expected}
    config = SimpleNamespace(args=list(args), getini=lambda name: TESTPATHS, getoption=lambda name: None,
                             pluginmanager=SimpleNamespace(get_plugin=lambda name: None))  # fmt: skip
    session = SimpleNamespace(config=config, exitstatus=pytest.ExitCode.OK)
    ledger.pytest_sessionfinish(session)
    return ledger, session.exitstatus


def test_a_full_run_writes_the_hazard_log_when_every_hazard_has_a_test_and_none_skipped(tmp_path):
    ledger, status = _finished(tmp_path, proven=HAZARD_IDS)

    assert status == pytest.ExitCode.OK
    assert ledger.report.read_text() == safety_report(list(ledger.rows.values()), environment=ENVIRONMENT)


def test_a_full_run_in_which_a_hazard_has_no_test_fails_and_leaves_the_log_alone(tmp_path):
    ledger, status = _finished(tmp_path, proven=[hazard for hazard in HAZARD_IDS if hazard != "H7"])

    assert status == pytest.ExitCode.TESTS_FAILED
    assert ledger.missing() == ["H7"]
    assert not ledger.report.exists()


def test_a_run_of_some_tests_neither_fails_for_missing_hazards_nor_writes_the_log(tmp_path):
    ledger, status = _finished(tmp_path, proven=["H1"], args=["patients/tests/test_clinical.py"])

    assert status == pytest.ExitCode.OK
    assert not ledger.report.exists()


def test_the_hazard_log_is_withheld_when_a_marked_test_skipped(tmp_path):
    ledger, status = _finished(tmp_path, proven=HAZARD_IDS, outcome="skipped")

    assert status == pytest.ExitCode.OK
    assert ledger.withheld_because() == f"hazard(s) {HAZARD_IDS} skipped (no services)"
    assert not ledger.report.exists()
