import json

import numpy as np
import pandas as pd

from mltraining.ml.audit import audit_data, feature_vector_groups


def _frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.choice(["anemia", "diabetes", "healthy"], n))
    X = pd.DataFrame(
        {
            "glucose": rng.normal(5, 1, n) + np.where(y == "diabetes", 1.0, 0.0),  # signal, but overlapping
            "hemoglobin": rng.normal(14, 1.5, n),
            "sex": rng.choice(["female", "male"], n),
        }
    )
    return X, y


def test_a_clean_frame_gives_counts_and_no_warnings():
    X, y = _frame()

    audit = audit_data(X, y)

    assert (audit.rows, audit.n_features, audit.duplicate_rows, audit.unique_rows) == (300, 3, 0, 300)
    assert sum(audit.label_counts.values()) == 300
    assert audit.unique_rows_per_label == audit.label_counts
    assert audit.missing_rates == {"glucose": 0.0, "hemoglobin": 0.0, "sex": 0.0}
    assert len(np.unique(audit.duplicate_groups)) == 300
    assert audit.warnings == []


def test_planted_duplicates_are_counted_grouped_and_warned_about():
    X, y = _frame()
    copies = [0, 0, 0, 5, 9]  # row 0 three more times, rows 5 and 9 once each
    X2 = pd.concat([X, X.iloc[copies]], ignore_index=True)
    y2 = pd.concat([y, y.iloc[copies]], ignore_index=True)

    audit = audit_data(X2, y2)

    assert audit.duplicate_rows == 5
    assert audit.unique_rows == 300
    groups = audit.duplicate_groups
    assert len(groups) == 305
    assert (groups[300:303] == groups[0]).all()
    assert groups[303] == groups[5]
    assert groups[304] == groups[9]
    assert len(np.unique(groups)) == 300
    assert any("5 of 305 rows" in w and "exact duplicates" in w for w in audit.warnings)


def test_identical_features_with_different_labels_are_flagged():
    X, y = _frame()
    X2 = pd.concat([X, X.iloc[[3]]], ignore_index=True)
    other = "healthy" if y.iloc[3] != "healthy" else "anemia"
    y2 = pd.concat([y, pd.Series([other])], ignore_index=True)

    audit = audit_data(X2, y2)

    assert audit.duplicate_rows == 0  # same features, different label: not a duplicate row ...
    assert audit.duplicate_groups[300] == audit.duplicate_groups[3]  # ... but the same feature vector
    assert any("carry different labels" in w for w in audit.warnings)


def test_a_feature_that_encodes_the_label_is_a_leakage_suspect():
    X, y = _frame()
    codes = {"anemia": 1.0, "diabetes": 2.0, "healthy": 3.0}
    X["diagnosis_code"] = y.map(codes) + np.random.default_rng(1).normal(0, 0.05, len(y))

    audit = audit_data(X, y)

    leaks = [w for w in audit.warnings if w.startswith("Leakage suspects")]
    assert len(leaks) == 1
    assert "diagnosis_code" in leaks[0]
    assert "glucose" not in leaks[0]


def test_a_categorical_feature_that_encodes_the_label_is_a_leakage_suspect():
    X, y = _frame()
    X["billing_group"] = y.map({"anemia": "B1", "diabetes": "B2", "healthy": "B3"})

    audit = audit_data(X, y)

    assert any(w.startswith("Leakage suspects") and "billing_group" in w for w in audit.warnings)


def test_an_identifier_and_a_constant_column_are_flagged():
    X, y = _frame()
    X["record_id"] = np.arange(1000, 1000 + len(X))
    X["site"] = "main"

    warnings = " ".join(audit_data(X, y).warnings)

    assert "like an identifier: record_id" in warnings
    assert "Constant features (carry no information): site" in warnings


def test_a_class_with_fewer_than_ten_unique_rows_is_flagged():
    X, y = _frame()
    y.iloc[:4] = "thrombocytopenia"

    audit = audit_data(X, y)

    assert audit.unique_rows_per_label["thrombocytopenia"] == 4
    assert any("fewer than 10 unique rows: thrombocytopenia (4)" in w for w in audit.warnings)


def test_missing_values_count_as_a_value_when_grouping_rows():
    X = pd.DataFrame({"a": [1.0, np.nan, np.nan, 1.0], "b": ["x", "y", "y", None]})

    groups = feature_vector_groups(X)

    assert groups[1] == groups[2]
    assert len(set(groups)) == 3


def test_to_dict_is_json_and_leaves_out_the_group_array():
    X, y = _frame()
    X.loc[:10, "glucose"] = np.nan

    data = audit_data(X, y).to_dict()

    assert "duplicate_groups" not in data
    assert data["missing_rates"]["glucose"] == 11 / 300
    json.dumps(data, allow_nan=False)
