import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from mltraining.ml.metrics import (
    SCALAR_METRICS,
    age_band,
    bootstrap_ci,
    bootstrap_counts,
    class_auc_intervals,
    classification_metrics,
    encode_labels,
    risk_levels,
    scalar_metrics,
    subgroup_metrics,
)

CLASSES = ["anemia", "diabetes", "healthy"]


def _hand_built() -> tuple[np.ndarray, np.ndarray]:
    y = np.array(["anemia", "diabetes", "healthy", "healthy", "anemia", "diabetes", "healthy", "anemia", "healthy"])
    proba = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.1, 0.6, 0.3],
            [0.2, 0.2, 0.6],
            [0.5, 0.1, 0.4],  # healthy, predicted anemia
            [0.3, 0.3, 0.4],  # anemia, predicted healthy
            [0.1, 0.8, 0.1],
            [0.05, 0.05, 0.9],
            [0.6, 0.3, 0.1],
            [0.2, 0.5, 0.3],  # healthy, predicted diabetes
        ]
    )
    return y, proba


def _random(n: int = 300, k: int = 4, seed: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(k)]
    y_idx = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y_idx] += 1.0  # some signal, so the metrics are not all at chance
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return np.array(classes)[y_idx], proba, classes


def test_classification_metrics_agree_with_scikit_learn_on_a_hand_built_example():
    y, proba = _hand_built()
    pred = np.array(CLASSES)[proba.argmax(axis=1)]

    m = classification_metrics(y, proba, CLASSES)

    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["accuracy"] == pytest.approx(6 / 9)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert m["precision_macro"] == pytest.approx(precision_score(y, pred, average="macro", labels=CLASSES))
    assert m["recall_macro"] == pytest.approx(recall_score(y, pred, average="macro", labels=CLASSES))
    assert m["f1_macro"] == pytest.approx(f1_score(y, pred, average="macro", labels=CLASSES))
    assert m["roc_auc_ovr_macro"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", labels=CLASSES))
    assert m["log_loss"] == pytest.approx(log_loss(y, proba, labels=CLASSES))
    assert m["brier"] == pytest.approx(brier_score_loss(y, proba, labels=CLASSES, scale_by_half=False))
    assert m["confusion_matrix"] == confusion_matrix(y, pred, labels=CLASSES).tolist()
    assert m["confusion_matrix"][2] == [1, 1, 2]  # rows are the true class, in CLASSES order
    assert m["per_class_recall"] == pytest.approx({"anemia": 2 / 3, "diabetes": 1.0, "healthy": 0.5})
    assert m["support"] == {"anemia": 3, "diabetes": 2, "healthy": 4}


def test_the_brier_score_is_the_multi_class_sum_of_squares_averaged_over_rows():
    y, proba = _hand_built()
    onehot = (np.array(CLASSES)[None, :] == y[:, None]).astype(float)

    assert classification_metrics(y, proba, CLASSES)["brier"] == pytest.approx(((proba - onehot) ** 2).sum(1).mean())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_fast_numpy_metrics_equal_the_scikit_learn_ones(seed):
    y, proba, classes = _random(seed=seed)

    fast = scalar_metrics(encode_labels(y, classes), proba)
    reference = classification_metrics(y, proba, classes)

    for name in SCALAR_METRICS:
        assert fast[name] == pytest.approx(reference[name], abs=1e-12), name


def test_a_class_absent_from_the_labels_is_left_out_of_the_auc_average_and_scores_zero_recall():
    y, proba, classes = _random(k=3)
    keep = y != "c2"

    m = classification_metrics(y[keep], proba[keep], classes)
    fast = scalar_metrics(encode_labels(y[keep], classes), proba[keep])

    expected_auc = np.mean([roc_auc_score(y[keep] == c, proba[keep][:, i]) for i, c in enumerate(classes[:2])])
    assert m["roc_auc_ovr_macro"] == pytest.approx(expected_auc)
    assert fast["roc_auc_ovr_macro"] == pytest.approx(expected_auc)
    assert m["per_class_recall"]["c2"] == 0.0
    assert fast["recall_macro"] == pytest.approx(m["recall_macro"])
    assert fast["balanced_accuracy"] == pytest.approx(m["balanced_accuracy"])


def test_the_bootstrap_interval_brackets_the_estimate_and_repeats_with_the_seed():
    y, proba, classes = _random(n=400)
    point = classification_metrics(y, proba, classes)

    ci = bootstrap_ci(y, proba, classes, rounds=200, seed=3)

    assert set(ci) == set(SCALAR_METRICS)
    for name in SCALAR_METRICS:
        low, high = ci[name]
        assert low <= point[name] <= high, name
    assert ci == bootstrap_ci(y, proba, classes, rounds=200, seed=3)
    narrow = bootstrap_ci(y, proba, classes, rounds=200, seed=3, level=0.5)["accuracy"]
    assert narrow[1] - narrow[0] < ci["accuracy"][1] - ci["accuracy"][0]


def _width(ci: dict, name: str = "roc_auc_ovr_macro") -> float:
    return ci[name][1] - ci[name][0]


def test_copies_of_rows_do_not_narrow_the_interval_when_the_bootstrap_resamples_their_groups():
    y, proba, classes = _random(n=60)
    copies = np.repeat(np.arange(60), 20)  # every row twenty times, as in a file of duplicates

    by_row = bootstrap_ci(y[copies], proba[copies], classes, rounds=300, seed=5)
    by_group = bootstrap_ci(y[copies], proba[copies], classes, groups=copies, rounds=300, seed=5)
    originals = bootstrap_ci(y, proba, classes, rounds=300, seed=5)

    assert _width(by_row) < _width(originals) / 3  # 1,200 "independent" rows: a falsely narrow interval
    for name in SCALAR_METRICS:  # 60 units drawn with all their copies: the 60 originals' interval, exactly
        assert by_group[name] == pytest.approx(originals[name]), name


def test_each_condition_has_its_own_auc_with_an_interval_and_its_positives_and_copies_do_not_narrow_it():
    y, proba, classes = _random(n=80)
    copies = np.repeat(np.arange(80), 10)

    alone = class_auc_intervals(y, proba, classes, rounds=300, seed=3)
    grouped = class_auc_intervals(y[copies], proba[copies], classes, groups=copies, rounds=300, seed=3)

    for j, name in enumerate(classes):
        positive = y == name
        assert alone[name]["auc"] == pytest.approx(roc_auc_score(positive, proba[:, j]))
        assert alone[name]["positives"] == positive.sum()
        assert alone[name]["low"] < alone[name]["auc"] < alone[name]["high"]
        assert (grouped[name]["low"], grouped[name]["high"]) == pytest.approx((alone[name]["low"], alone[name]["high"]))


def test_a_condition_absent_from_the_test_set_has_no_auc():
    y, proba = _hand_built()
    y = np.where(y == "diabetes", "healthy", y)

    assert set(class_auc_intervals(y, proba, CLASSES, rounds=50)) == {"anemia", "healthy"}


def test_identical_rows_with_different_labels_are_one_unit_drawn_whole():
    y = np.array(["a", "b"] * 30)
    proba = np.full((60, 2), [0.6, 0.4])  # each pair: identical features, so identical predictions, one of each label
    pairs = np.repeat(np.arange(30), 2)

    by_group = bootstrap_ci(y, proba, ["a", "b"], groups=pairs, rounds=100, seed=0)
    by_row = bootstrap_ci(y, proba, ["a", "b"], rounds=100, seed=0)

    assert by_group["accuracy"] == (0.5, 0.5)  # every resample holds whole pairs: one right, one wrong
    assert _width(by_row, "accuracy") > 0.1
    assert [counts.sum() for counts in bootstrap_counts(30, rounds=4, seed=0)] == [30, 30, 30, 30]


def test_the_bootstrap_needs_one_group_id_per_row():
    y, proba, classes = _random(n=10)

    with pytest.raises(ValueError, match="one id per row"):
        bootstrap_ci(y, proba, classes, groups=[1, 2, 3], rounds=5)
    with pytest.raises(ValueError, match="none missing"):
        bootstrap_ci(y, proba, classes, groups=[1] * 9 + [None], rounds=5)


def test_a_label_outside_the_classes_is_an_error():
    with pytest.raises(ValueError, match="not among the classes"):
        encode_labels(["anemia", "gout"], CLASSES)


def test_age_bands_follow_the_clinical_cut_points():
    bands = age_band(pd.Series([17, 18, 39.9, 40, 59, 60, 74.5, 75, 90, None]))

    assert bands.tolist() == ["under 18", "18-39", "18-39", "40-59", "40-59", "60-74", "60-74", "75+", "75+", "unknown"]


def test_subgroup_metrics_split_by_sex_and_age_band_with_their_size():
    y, proba = _hand_built()
    X = pd.DataFrame({"sex": ["female", "male"] * 4 + [None], "age": [25, 45, 65, 80, 30, 50, 70, 85, 33]})

    groups = subgroup_metrics(X, y, proba, CLASSES)

    assert set(groups) == {"sex", "age_band"}
    assert set(groups["sex"]) == {"female", "male", "unknown"}
    assert groups["sex"]["female"]["n"] == 4
    assert set(groups["age_band"]) == {"18-39", "40-59", "60-74", "75+"}
    female = np.array([True, False] * 4 + [False])
    assert groups["sex"]["female"]["accuracy"] == pytest.approx(
        classification_metrics(y[female], proba[female], CLASSES)["accuracy"]
    )


def test_no_subgroups_without_sex_or_age_columns():
    y, proba = _hand_built()

    assert subgroup_metrics(pd.DataFrame({"glucose": np.ones(9)}), y, proba, CLASSES) == {}


def test_risk_levels_count_patients_by_one_minus_the_healthy_probability():
    y, proba = _hand_built()  # risk = 1 - P(healthy): 0.9 0.7 0.4 0.6 0.6 0.9 0.1 0.9 0.7

    table = risk_levels(y, proba, CLASSES, (0.2, 0.5))

    assert {level: row["n"] for level, row in table.items()} == {"low": 1, "moderate": 1, "high": 7}
    assert table["low"]["observed_not_healthy"] == 0.0


def test_risk_levels_are_empty_without_a_healthy_class():
    y, proba = _hand_built()
    renamed = np.array([{"anemia": "a", "diabetes": "b", "healthy": "c"}[v] for v in y])

    assert risk_levels(renamed, proba, ["a", "b", "c"], (0.2, 0.5)) == {}
