import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mltraining.ml.evaluate_csv import evaluate, format_report, main

SHARED_CSV = Path(__file__).resolve().parents[4] / "shared" / "data" / "blood_samples_train.csv"
CANDIDATES = ("dummy", "random_forest")


def _figure(report: str, label: str) -> float:
    found = re.search(rf"^{re.escape(label)} \([a-z_]+\): ([0-9.]+)", report, re.M)
    assert found, f"no line {label!r} in the report"
    return float(found.group(1))


@pytest.fixture
def duplicated_csv(tmp_path) -> Path:
    """40 unique rows per class with no real signal, each copied ten times, plus a text column to ignore."""
    rng = np.random.default_rng(0)
    unique = pd.DataFrame(rng.normal(size=(120, 4)), columns=["a", "b", "c", "d"])
    unique["note"] = "x"
    unique["Disease"] = np.repeat(["Anemia", "Diabetes", "Healthy"], 40)
    frame = unique.loc[np.repeat(unique.index, 10)].sample(frac=1, random_state=0)
    path = tmp_path / "duplicated.csv"
    frame.to_csv(path, index=False)
    return path


def test_planted_duplicates_are_reported_and_the_grouped_figure_is_the_honest_one(duplicated_csv):
    evaluation = evaluate(duplicated_csv, "Disease", candidates=CANDIDATES, folds=3)
    report = format_report(evaluation)

    audit = evaluation.honest.audit
    assert (audit.rows, audit.unique_rows, audit.n_features) == (1200, 120, 4)  # "note" is not numeric
    assert "Most rows are duplicates: 90%" in report
    assert "Anemia        400      40            90.0%" in report
    assert "exact duplicates of an earlier row" in report  # the audit's warning
    assert evaluation.honest.groups_in_split == "duplicate"
    grouped = _figure(report, "Grouped CV accuracy")
    naive = _figure(report, "Naive CV accuracy")
    assert grouped < 0.6  # no signal: near chance (1/3) once copies cannot straddle the folds
    assert naive > 0.95  # the forest remembers the copies
    assert "NAIVE (INFLATED BY LEAKAGE)" in report


def test_the_command_line_prints_the_report(duplicated_csv, capsys):
    code = main([str(duplicated_csv), "--target", "Disease", "--candidates", ",".join(CANDIDATES), "--folds", "3"])

    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("Evaluation of duplicated.csv (target: Disease)")
    assert "Naive random 80/20 split accuracy" in out


def test_the_command_line_refuses_unknown_candidates_and_a_missing_target(duplicated_csv, capsys):
    with pytest.raises(SystemExit):
        main([str(duplicated_csv), "--target", "Disease", "--candidates", "dummy,oracle"])
    assert "unknown candidates ['oracle']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(duplicated_csv), "--target", "Outcome", "--candidates", "dummy"])
    assert "'Outcome' not in duplicated.csv" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="the shared blood-samples file is not on this machine")
def test_the_shared_blood_samples_file_is_mostly_duplicates_and_its_naive_score_is_inflated():
    evaluation = evaluate(SHARED_CSV, "Disease", candidates=CANDIDATES, folds=5)
    report = format_report(evaluation)

    assert "Rows: 2,351. Unique rows: 65." in report
    assert "Most rows are duplicates: 97%" in report
    grouped = _figure(report, "Grouped CV accuracy")
    naive = _figure(report, "Naive CV accuracy")
    assert naive > 0.95
    assert grouped < naive - 0.25
