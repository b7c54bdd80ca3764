import io
import pickle

import numpy as np
import pandas as pd
import pytest

from recommendations.ranking import Ranker, RankerParams, clinician_cap_limit, order, ranker_fit

START = pd.Timestamp("2025-01-01", tz="UTC")


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (patient_id, item, clinician_id, accepted), one minute apart."""
    frame = pd.DataFrame(rows, columns=["patient_id", "item", "clinician_id", "accepted"])
    return frame.assign(at=START + pd.to_timedelta(np.arange(len(frame)), unit="min"))


def profiles_frame(xy: dict[int, tuple[float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(xy, orient="index", columns=["x", "y"])
    frame.index.name = "patient_id"
    return frame


def random_setup(seed: int, n_patients: int = 200, n_items: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    profiles = pd.DataFrame(rng.normal(size=(n_patients, 3)), columns=["a", "b", "c"])
    profiles.index.name = "patient_id"
    profiles = profiles.mask(rng.random(profiles.shape) < 0.1)
    leaning = 0.5 + 0.4 * np.tanh(profiles["a"].fillna(0).to_numpy())
    rows = [
        (p, f"item{i}", int(rng.integers(4)), bool(rng.random() < leaning[p]))
        for p in range(n_patients)
        for i in rng.choice(n_items, size=3, replace=False)
    ]
    return events_frame(rows), profiles


# Item prior


def test_an_item_nobody_rated_gets_the_overall_approval_rate_and_no_lift():
    events = events_frame([(1, "a", 1, True), (2, "a", 2, True), (3, "a", 3, True), (4, "a", 4, False)])
    ranker = ranker_fit(events=events, profiles=profiles_frame({p: (p, 0) for p in range(1, 5)}))

    assert ranker.mu == pytest.approx(0.75)
    assert ranker.item_prior(["never"])[0] == pytest.approx(0.75)
    assert ranker.lifts(np.array([[1.0, 0.0]]), ["never"])[0, 0] == 0.0


def test_many_approvals_push_the_prior_near_one():
    rows = [(p, "a", p % 50, True) for p in range(500)] + [(p, "b", p % 50, False) for p in range(500, 1000)]
    ranker = ranker_fit(events=events_frame(rows), profiles=profiles_frame({p: (p, 0) for p in range(1000)}))

    assert ranker.item_prior(["a"])[0] > 0.98
    assert ranker.item_prior(["b"])[0] < 0.02


def test_prior_follows_the_shrinkage_formula_on_a_hand_example():
    rows = [(1, "a", 1, True), (2, "a", 2, True), (3, "a", 3, False), (4, "b", 4, False), (5, "b", 5, False)]
    ranker = ranker_fit(events=events_frame(rows), profiles=profiles_frame({p: (p, 0) for p in range(1, 6)}))

    # mu = 2 approvals / 5 ratings; theta = (approvals + m * mu) / (ratings + m) with m = 10
    assert ranker.mu == pytest.approx(0.4)
    assert ranker.item_prior(["a", "b"]) == pytest.approx([(2 + 10 * 0.4) / (3 + 10), (0 + 10 * 0.4) / (2 + 10)])


def test_a_reversed_decision_counts_once_with_its_latest_outcome():
    rows = [(1, "a", 1, False), (1, "a", 1, True), (2, "a", 2, False)]
    ranker = ranker_fit(events=events_frame(rows), profiles=profiles_frame({1: (0, 0), 2: (1, 0)}))

    assert ranker.ratings[0] == 2
    assert ranker.mu == pytest.approx(0.5)


# Neighbours


@pytest.fixture
def two_clusters() -> Ranker:
    """Item "a": 30 patients near (0, 0) all rejected it, 30 near (10, 10) all approved it; 6 clinicians."""
    rng = np.random.default_rng(1)
    xy = {p: tuple(rng.normal(0, 0.5, 2)) for p in range(30)} | {
        p: tuple(rng.normal(10, 0.5, 2)) for p in range(30, 60)
    }
    rows = [(p, "a", p % 6, p >= 30) for p in range(60)]
    return ranker_fit(events=events_frame(rows), profiles=profiles_frame(xy))


def test_a_patient_whose_neighbours_all_rejected_an_item_gets_a_lower_personal_rate_and_negative_lift(two_clusters):
    theta = two_clusters.item_prior(["a"])[0]
    near_rejections = np.array([[0.1, -0.1]])

    assert two_clusters.personal(near_rejections, ["a"])[0, 0] < theta
    assert two_clusters.lifts(near_rejections, ["a"])[0, 0] < 0
    assert two_clusters.lifts(np.array([[10.0, 10.0]]), ["a"])[0, 0] > 0


def test_feedback_from_far_away_patients_has_almost_no_effect(two_clusters):
    far = np.array([[60.0, -60.0]])

    assert two_clusters.personal(far, ["a"])[0, 0] == pytest.approx(two_clusters.item_prior(["a"])[0], abs=1e-9)
    assert abs(two_clusters.lifts(far, ["a"])[0, 0]) < 1e-9


@pytest.mark.parametrize("seed", range(20))
def test_lift_never_exceeds_lambda(seed):
    rng = np.random.default_rng(seed)
    events, profiles = random_setup(seed)
    params = RankerParams(
        k=int(rng.integers(1, 40)),
        m=float(rng.uniform(0.1, 20)),
        m_n=float(rng.uniform(0.01, 5)),
        lam=float(rng.uniform(0, 1)),
        bandwidth=None if seed % 2 else float(rng.uniform(0.05, 5)),
        clinician_cap=float(rng.uniform(0.05, 1)),
    )
    ranker = ranker_fit(events=events, profiles=profiles, params=params)
    queries = rng.normal(0, 2, size=(300, 3))
    items = [f"item{i}" for i in range(6)]

    lifts = ranker.lifts(queries, items)
    personal = ranker.personal(queries, items)

    assert lifts.shape == (300, 6)
    assert np.all(np.abs(lifts) <= params.lam + 1e-12)
    assert np.all((personal >= 0) & (personal <= 1))
    assert np.all(lifts[:, 5] == 0)  # item5 was never rated


def test_a_missing_query_value_is_imputed_at_the_reviewed_patients_mean():
    events, profiles = random_setup(3)
    ranker = ranker_fit(events=events, profiles=profiles)
    mean = profiles.reindex(events["patient_id"].unique()).mean().to_numpy()

    missing = ranker.lifts(np.array([[np.nan, np.nan, np.nan]]), ["item0", "item1"])

    assert missing == pytest.approx(ranker.lifts(mean[None, :], ["item0", "item1"]))


def test_a_query_frame_is_matched_by_column_name():
    events, profiles = random_setup(4)
    ranker = ranker_fit(events=events, profiles=profiles)
    queries = profiles.iloc[:50]

    from_frame = ranker.lifts(queries[["c", "a", "b"]], ["item0", "item2"])

    assert np.array_equal(from_frame, ranker.lifts(queries.to_numpy(), ["item0", "item2"]))


# Clinician cap


def test_one_clinician_rejecting_everything_cannot_alone_swing_the_prior():
    rows = [(p, "a", "grumpy", False) for p in range(1000)]
    rows += [(1000 + p, "a", f"doctor{p % 10}", True) for p in range(200)]
    ranker = ranker_fit(events=events_frame(rows), profiles=profiles_frame({p: (p, 0) for p in range(1200)}))
    uncapped_mu = 200 / 1200
    uncapped = (200 + 10 * uncapped_mu) / (1200 + 10)

    # Capped: T = m + 200 + 0.5 T, so T = 420 and grumpy keeps 210 of the 1,000 ratings, all rejections.
    assert ranker.item_prior(["a"])[0] > uncapped
    assert ranker.ratings[0] == pytest.approx(410)
    assert ranker.item_prior(["a"])[0] == pytest.approx(200 / 410)


def test_a_lone_clinician_can_move_an_item_at_most_half_way():
    rows = [(p, "a", "grumpy", False) for p in range(100)] + [
        (p, "b", f"doctor{p % 10}", True) for p in range(100, 150)
    ]
    ranker = ranker_fit(events=events_frame(rows), profiles=profiles_frame({p: (p % 10, 0) for p in range(150)}))

    # Prior: T = m + 0.5 T, so grumpy keeps m = 10 of 100 ratings; likewise m_n = 3 of the neighbour weight.
    assert ranker.item_prior(["a"])[0] == pytest.approx(0.5 * ranker.mu)
    theta = ranker.item_prior(["a"])[0]
    assert ranker.personal(np.array([[5.0, 0.0]]), ["a"])[0, 0] == pytest.approx(0.5 * theta)


def test_one_clinicians_neighbour_weight_is_capped_against_the_others():
    # 24 close neighbours, all grumpy's rejections, and 10 of other doctors' approvals, as close.
    rows = [(p, "a", "grumpy", False) for p in range(24)] + [(24 + p, "a", f"doctor{p}", True) for p in range(10)]
    ranker = ranker_fit(
        events=events_frame(rows),
        profiles=profiles_frame({p: (0, 0) for p in range(34)}),
        params=RankerParams(k=34, bandwidth=1.0),
    )
    theta = ranker.item_prior(["a"])[0]

    # All weights 1: T = m_n + 10 + 0.5 T, so T = 26 and grumpy keeps 13 of 24.
    expected = (10 + 3 * theta) / (13 + 10 + 3)
    assert ranker.personal(np.array([[0.0, 0.0]]), ["a"])[0, 0] == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(10))
def test_the_cap_share_is_respected_and_only_the_excess_is_removed(seed):
    rng = np.random.default_rng(seed)
    totals = rng.exponential(5, size=(200, 6)) * (rng.random((200, 6)) < 0.7)
    totals[:, 0] *= rng.choice([1, 50], size=200)
    prior, share = float(rng.uniform(0.5, 10)), float(rng.uniform(0.1, 0.9))

    limit = clinician_cap_limit(totals, prior, share)[:, None]
    kept = np.minimum(totals, limit)
    total = prior + kept.sum(axis=1, keepdims=True)

    assert np.all(kept <= share * total + 1e-9)
    assert np.allclose(kept[totals > limit], (share * total * np.ones_like(kept))[totals > limit])
    assert np.all((totals > limit).any(axis=1) | np.isinf(limit[:, 0]))


# Serialisation


def test_a_ranker_round_trips_through_a_dict_of_arrays_with_identical_lifts(tmp_path):
    events, profiles = random_setup(5)
    ranker = ranker_fit(events=events, profiles=profiles, params=RankerParams(k=7, bandwidth=0.8))
    queries = np.random.default_rng(0).normal(size=(40, 3))
    items = ["item0", "item3", "unknown"]

    buffer = io.BytesIO()
    np.savez(buffer, **ranker.to_dict())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as arrays:
        loaded = Ranker.from_dict(arrays)

    assert loaded.params == ranker.params
    assert np.array_equal(loaded.lifts(queries, items), ranker.lifts(queries, items))
    assert np.array_equal(pickle.loads(pickle.dumps(ranker)).lifts(queries, items), ranker.lifts(queries, items))  # noqa: S301


# order()


def test_critical_items_keep_their_order_whatever_the_lifts():
    result = order(tiers=[4, 1, 4, 4], base=[0.1, 0.99, 0.9, 0.5], lifts=[-100.0, 5.0, 1000.0, -1000.0])

    assert result == [0, 2, 3, 1]


def test_lifts_move_items_within_their_tier():
    tiers, base = [2, 2, 1, 1], [0.6, 0.5, 0.9, 0.8]

    assert order(tiers=tiers, base=base, lifts=[0.0] * 4) == [0, 1, 2, 3]
    assert order(tiers=tiers, base=base, lifts=[0.0, 0.2, -0.3, 0.0]) == [1, 0, 3, 2]


def test_equal_scores_keep_their_given_order():
    assert order(tiers=[1, 1, 1], base=[0.5, 0.75, 0.5], lifts=[0.0, -0.25, 0.0]) == [0, 1, 2]


@pytest.mark.parametrize("seed", range(20))
def test_order_drops_nothing_and_moves_nothing_across_tiers(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    tiers = rng.integers(0, 5, n).tolist()
    base, lifts = rng.random(n).tolist(), rng.normal(0, 10, n).tolist()

    result = order(tiers=tiers, base=base, lifts=lifts)

    assert sorted(result) == list(range(n))
    assert [tiers[j] for j in result] == sorted(tiers, reverse=True)
    critical = [j for j in result if tiers[j] == 4]
    assert critical == sorted(critical)


def test_order_rejects_lists_of_different_lengths():
    with pytest.raises(ValueError, match="same length"):
        order(tiers=[1, 2], base=[0.5], lifts=[0.0, 0.0])
