import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from recommendations.evaluation import auc, bootstrap_ci, evaluate_rankers, ndcg_at, simulate, split_by_time

START = pd.Timestamp("2025-01-01", tz="UTC")


@pytest.fixture(scope="module")
def simulated() -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate(n_patients=3000, seed=0)


# auc


def test_auc_of_a_perfect_ranking_is_one_and_of_the_reversed_ranking_zero():
    y = np.array([0, 0, 1, 1, 1])
    score = np.array([0.1, 0.2, 0.3, 0.8, 0.9])

    assert auc(y, score) == 1.0
    assert auc(y, -score) == 0.0


def test_auc_of_all_tied_scores_is_one_half():
    assert auc(np.array([0, 1, 0, 1]), np.zeros(4)) == 0.5


def test_auc_counts_a_tied_pair_as_one_half():
    # Positive/negative pairs: (0.8, 0.8) tie, (0.8, 0.1) win, (0.3, 0.8) loss, (0.3, 0.1) win.
    assert auc(np.array([1, 0, 1, 0]), np.array([0.8, 0.8, 0.3, 0.1])) == pytest.approx(2.5 / 4)


def test_auc_agrees_with_scikit_learn_on_tied_random_scores():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.4
    score = rng.integers(0, 20, 500) + y * rng.integers(0, 5, 500)

    assert auc(y, score) == pytest.approx(roc_auc_score(y, score))


def test_auc_without_both_classes_is_nan():
    assert math.isnan(auc(np.ones(3), np.arange(3)))


# ndcg


def test_ndcg_on_a_hand_example():
    relevance, score = np.array([0, 1, 1]), np.array([0.9, 0.8, 0.1])
    dcg = 0 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 0 / math.log2(4)

    assert ndcg_at(3, [(relevance, score)]) == pytest.approx(dcg / ideal)
    assert ndcg_at(1, [(relevance, score)]) == 0.0
    assert ndcg_at(3, [(relevance, -score)]) == pytest.approx(1.0)


def test_ndcg_averages_patients_and_leaves_out_those_with_nothing_relevant():
    groups = [(np.array([1, 0]), np.array([0.2, 0.9])), (np.array([1, 0]), np.array([0.9, 0.2]))]
    first = (1 / math.log2(3)) / 1.0

    assert ndcg_at(3, groups) == pytest.approx((first + 1.0) / 2)
    assert ndcg_at(3, [*groups, (np.array([0, 0]), np.array([0.1, 0.2]))]) == pytest.approx((first + 1.0) / 2)


# bootstrap


def test_bootstrap_interval_holds_the_mean_and_repeats_with_the_same_seed():
    values = np.random.default_rng(1).normal(5, 1, 400)

    low, high = bootstrap_ci(values, n=500, seed=3)

    assert low < values.mean() < high
    assert high - low == pytest.approx(2 * 1.96 / math.sqrt(400), rel=0.2)
    assert bootstrap_ci(values, n=500, seed=3) == (low, high)


def test_bootstrap_of_a_constant_is_that_constant():
    assert bootstrap_ci(np.array([0.7, 0.7, math.nan, 0.7]), n=50) == pytest.approx((0.7, 0.7))


# split


def test_split_puts_no_patient_on_both_sides_and_tests_on_the_latest_decisions(simulated):
    events, _ = simulated

    train, test = split_by_time(events, test_fraction=0.3)

    assert set(train["patient_id"]).isdisjoint(test["patient_id"])
    assert len(train) + len(test) == len(events)
    assert len(test) >= 0.3 * len(events)
    # Every test patient has a decision in the window, and the window opens after the last training decision.
    assert train["at"].max() < test.groupby("patient_id")["at"].max().min()


def test_a_patient_with_an_old_and_a_new_decision_goes_wholly_to_test():
    events = pd.DataFrame(
        {
            "patient_id": [1, 2, 3, 1],
            "item": ["a", "a", "a", "b"],
            "clinician_id": [1, 1, 1, 1],
            "accepted": [True, False, True, False],
            "at": START + pd.to_timedelta([0, 1, 2, 3], unit="D"),
        }
    )

    train, test = split_by_time(events, test_fraction=0.25)

    assert sorted(train["patient_id"]) == [2, 3]
    assert sorted(test["patient_id"]) == [1, 1]


# simulation and evaluation


def test_simulated_events_look_like_reviews(simulated):
    events, profiles = simulated

    assert {"patient_id", "item", "clinician_id", "accepted", "at", "position"} <= set(events.columns)
    assert events.groupby("patient_id").size().between(4, 12).all()
    assert profiles.index.name == "patient_id"
    assert profiles[["hba1c", "ldl", "egfr", "crp"]].isna().mean().between(0.02, 0.08).all()
    assert 0.3 < events["accepted"].mean() < 0.8


def test_the_feedback_ranker_beats_the_item_approval_rate_on_held_out_decisions(simulated):
    events, profiles = simulated
    train, test = split_by_time(events)

    result = evaluate_rankers(train=train, test=test, profiles=profiles, rule_rank="position")

    for name in ("rule_order", "item_rate", "feedback"):
        low, high = result[name]["auc_ci"]
        assert low <= result[name]["auc"] <= high
        low, high = result[name]["ndcg3_ci"]
        assert low <= result[name]["ndcg3"] <= high
    assert result["feedback"]["auc"] > result["item_rate"]["auc"]
    assert result["feedback_minus_item_rate"]["auc_ci"][0] > 0
    assert result["n_test_patients"] == test["patient_id"].nunique()
