import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from mltraining.ml.evaluate_csv import evaluate, format_report, main
from mltraining.ml.metrics import classification_metrics

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

    audit = evaluation.trained.audit
    assert (audit.rows, audit.unique_rows, audit.n_features) == (1200, 120, 4)  # "note" is not numeric
    assert "Most rows are duplicates: 90%" in report
    assert "Anemia        400      40            90.0%" in report
    assert "exact duplicates of an earlier row" in report  # the audit's warning
    assert evaluation.trained.groups_in_split == "duplicate"
    grouped = _figure(report, "Grouped CV accuracy")
    naive = _figure(report, "Naive CV accuracy")
    assert grouped < 0.6  # no signal: near chance (1/3) once copies cannot straddle the folds
    assert naive > 0.95  # the forest remembers the copies
    assert (
        "NAIVE (INFLATED BY LEAKAGE): rows shuffled into folds without grouping, so copies of the 120 distinct "
        "rows among 1,200 sit on both sides" in report
    )


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
    held_out = evaluation.held_out
    assert (held_out.rows, held_out.units) == (528, 15)
    assert f"{held_out.rows} rows, {held_out.units} distinct" in report
    (group_low, group_high), (row_low, row_high) = (
        held_out.ci["roc_auc_ovr_macro"],
        held_out.row_ci["roc_auc_ovr_macro"],
    )
    assert group_high - group_low > 3 * (row_high - row_low)  # the width of 15 distinct rows, not of 528


@pytest.fixture
def distinct_csvs(tmp_path) -> tuple[Path, Path]:
    """A training and a test file from one logistic model, no row repeated: like Pima.tr and Pima.te."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(500, 3)).round(6), columns=["glu", "bmi", "age"])
    odds = 1.5 * frame["glu"] + 0.8 * frame["bmi"] + rng.logistic(size=500)
    frame["type"] = np.where(odds > 0.5, "Yes", "No")
    train_path, test_path = tmp_path / "train.csv", tmp_path / "test.csv"
    frame.iloc[:200].to_csv(train_path, index=False)
    frame.iloc[200:].to_csv(test_path, index=False)
    return train_path, test_path


def test_without_duplicate_rows_the_report_speaks_of_no_leakage(distinct_csvs):
    evaluation = evaluate(distinct_csvs[0], "type", candidates=("dummy", "logistic_regression"), folds=3)
    report = format_report(evaluation)

    assert evaluation.naive is None
    assert "leak" not in report.lower()
    assert "inflated" not in report.lower()
    assert "NAIVE" not in report
    assert "No duplicate rows: all 200 rows are distinct" in report
    assert "grouped by row (no two rows share their features" in report
    assert evaluation.held_out.row_ci is None  # every row its own unit: the row bootstrap is the same interval


def test_with_a_test_file_the_choice_is_made_on_the_first_and_the_figures_come_from_the_second(distinct_csvs):
    train_path, test_path = distinct_csvs
    candidates = ("dummy", "logistic_regression", "random_forest")

    evaluation = evaluate(train_path, "type", test=test_path, candidates=candidates, folds=5)
    report = format_report(evaluation)

    trained, held_out = evaluation.trained, evaluation.held_out
    assert trained.audit.rows == 200  # cross-validation and the refit saw the training file only
    assert (held_out.source, held_out.rows, held_out.units, held_out.seen_in_training) == ("test.csv", 300, 300, 0)
    test = pd.read_csv(test_path)
    proba = trained.model.predict_proba(test[["glu", "bmi", "age"]])
    assert held_out.metrics["accuracy"] == pytest.approx(
        classification_metrics(test["type"], proba, ["No", "Yes"])["accuracy"]
    )
    assert held_out.metrics["roc_auc_ovr_macro"] > 0.8
    assert held_out.baseline["roc_auc_ovr_macro"] == pytest.approx(0.5)
    assert "Test on test.csv: 300 rows, 300 distinct." in report
    assert f"Chosen: {trained.chosen}, by the rule" in report
    assert "sigmoid calibration" in report  # 200 distinct rows: too few for isotonic


def test_a_test_file_counts_its_rows_already_in_the_training_file(distinct_csvs, tmp_path):
    train_path, test_path = distinct_csvs
    leaky = pd.concat([pd.read_csv(test_path), pd.read_csv(train_path).head(7)])
    leaky_path = tmp_path / "leaky.csv"
    leaky.to_csv(leaky_path, index=False)

    evaluation = evaluate(train_path, "type", test=leaky_path, candidates=("logistic_regression",), folds=3)

    assert evaluation.held_out.seen_in_training == 7
    assert "Test rows whose features also occur in the training file: 7." in format_report(evaluation)


def test_the_command_line_and_the_management_command_take_a_test_file(distinct_csvs, capsys):
    train_path, test_path = distinct_csvs
    args = [str(train_path), "--target", "type", "--test", str(test_path), "--candidates", "logistic_regression"]

    assert main([*args, "--folds", "3"]) == 0
    printed = capsys.readouterr().out
    call_command("evaluate_csv", *args, "--folds", "3")
    commanded = capsys.readouterr().out

    assert printed.startswith("Evaluation of train.csv (target: type)")
    assert "Test on test.csv" in printed
    assert commanded == printed


def test_the_calibration_can_be_chosen_instead_of_by_size(distinct_csvs, capsys):
    train_path, test_path = distinct_csvs
    args = [str(train_path), "--target", "type", "--test", str(test_path), "--candidates", "logistic_regression"]

    main([*args, "--folds", "3", "--calibration", "isotonic"])

    assert "The model: logistic_regression with isotonic calibration" in capsys.readouterr().out


def test_a_test_file_without_the_training_columns_is_refused(distinct_csvs, tmp_path):
    train_path, test_path = distinct_csvs
    narrow = tmp_path / "narrow.csv"
    pd.read_csv(test_path).drop(columns=["bmi"]).to_csv(narrow, index=False)

    with pytest.raises(CommandError, match="narrow.csv lacks feature columns of the training file: bmi"):
        call_command("evaluate_csv", str(train_path), "--target", "type", "--test", str(narrow))
    with pytest.raises(CommandError, match="no such file"):
        call_command("evaluate_csv", str(train_path), "--target", "type", "--test", str(tmp_path / "none.csv"))
