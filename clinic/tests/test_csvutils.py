import pytest

from clinic.csvutils import csv_safe


@pytest.mark.parametrize("value", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=x"])
def test_text_a_spreadsheet_would_evaluate_is_quoted(value):
    assert csv_safe(value) == "'" + value


@pytest.mark.parametrize("value", ["Jones", "5.4 mmol/L", -2.5, 0, None])
def test_plain_text_and_numbers_pass_through(value):
    assert csv_safe(value) == value
