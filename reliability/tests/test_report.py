"""The report renderer: every case appears, a failure is visible, text cannot break the table."""

from reliability.cases import CASES
from reliability.plugin import withheld_because
from reliability.report import Row, render


def test_every_case_has_a_summary_line_with_its_count_and_result():
    rows = [
        Row(1, "tried a", "passed", "t::a"),
        Row(1, "tried b", "passed", "t::b"),
        Row(2, "tried c", "failed", "t::c"),
    ]
    text = render(rows, environment="test")
    assert "| 1 | " + CASES[0].claim + " | 2 | holds |" in text
    assert "| 2 | " + CASES[1].claim + " | 1 | **0 of 1 hold** |" in text
    assert "| 3 | " + CASES[2].claim + " | 0 | **0 of 0 hold** |" in text
    assert "| 2 | tried c | **FAILED** | `t::c` |" in text


def test_pipes_and_newlines_in_a_description_do_not_break_the_table():
    text = render([Row(9, "a <script>|x\n  y", "passed", "t::x")], environment="test")
    assert "| 9 | a <script>\\|x y | holds | `t::x` |" in text


def test_the_report_is_rewritten_only_when_every_marked_test_ran_and_none_skipped():
    expected = {("t::a", 1), ("t::b", 2)}
    ran = {("t::a", 1): Row(1, "a", "passed", "t::a"), ("t::b", 2): Row(2, "b", "failed", "t::b")}

    assert withheld_because(expected, ran) == ""  # a failure is reported, not withheld
    assert "stopped before 1" in withheld_because(expected, {("t::a", 1): ran[("t::a", 1)]})  # -x, Ctrl-C
    skipped = {**ran, ("t::b", 2): Row(2, "b", "skipped", "t::b")}
    assert "case(s) [2] skipped" in withheld_because(expected, skipped)
