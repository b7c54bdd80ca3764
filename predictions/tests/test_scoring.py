"""A frame of feature rows as the inputs a prediction stores (JSON): plain Python values, None where missing."""

import json

import numpy as np
import pandas as pd

from predictions.scoring import input_records


def test_each_row_becomes_plain_python_values_with_none_for_every_kind_of_missing():
    X = pd.DataFrame(
        {
            "hba1c": [6.1, np.nan],
            "age": np.array([54, 61], dtype=np.int64),
            "sex": ["female", None],
            "smoker": pd.array([True, pd.NA], dtype="boolean"),
            "flag": np.array([np.bool_(True), np.float64("nan")], dtype=object),
        }
    )

    records = input_records(X)

    assert records == [
        {"hba1c": 6.1, "age": 54, "sex": "female", "smoker": True, "flag": True},
        {"hba1c": None, "age": 61, "sex": None, "smoker": None, "flag": None},
    ]
    assert {type(value) for row in records for value in row.values()} == {float, int, str, bool, type(None)}
    assert json.loads(json.dumps(records)) == records  # what the prediction's JSON field stores
