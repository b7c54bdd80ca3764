"""The report renderer: every case appears, a failure is visible, text cannot break the table."""

from reliability.cases import CASES
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
