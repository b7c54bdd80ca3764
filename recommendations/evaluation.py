"""Offline evaluation of advice rankers on held-out clinician decisions, and a simulation to exercise it.

No Django here. Three rankers score each held-out decision (patient, item shown, accepted or not):

- ``rule_order``: the order the rules showed the items in (score = -position);
- ``item_rate``: the item's shrunk approval rate theta_i learned from the training decisions;
- ``feedback``: the feedback-adjusted estimate theta_pi (item rate moved by similar patients' decisions).

AUC pools every held-out decision; NDCG@3 ranks each patient's shown items, relevance = accepted, and
averages over patients with at least one accepted item. Confidence intervals resample *patients* (a
patient's decisions are not independent), with the same resamples for every ranker, so the interval for
a difference between rankers is paired.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from recommendations.ranking import RankerParams, order, ranker_fit

RANKERS = ("rule_order", "item_rate", "feedback")
NDCG_K = 3
PROFILE_COLUMNS = ("age", "sex", "hba1c", "ldl", "egfr", "crp", "risk_class")


def split_by_time(events: pd.DataFrame, *, test_fraction: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): the latest `test_fraction` of decisions open the test window, and any patient with a
    decision in it goes wholly to test, so no patient is on both sides and every training decision is older
    than the window. Test may therefore hold a little more than `test_fraction` of the rows.
    """
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    if events.empty:
        return events.copy(), events.copy()
    times = events["at"].sort_values(kind="mergesort")
    cutoff = times.iloc[len(times) - math.ceil(len(times) * test_fraction)]
    in_window = events.loc[events["at"] >= cutoff, "patient_id"].unique()
    in_test = events["patient_id"].isin(in_window)
    return events[~in_test].copy(), events[in_test].copy()


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic on ranks, tied scores counting one half; NaN without both classes."""
    return float(_weighted_auc(np.asarray(y), np.asarray(score, dtype=float), np.ones((1, len(y))))[0])


def ndcg_at(k: int, groups: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean NDCG@k over groups of (relevance, score), one group per patient.

    Items are ranked by score descending, ties kept in the given order. A group with no relevant item has
    no ideal ranking and is left out; NaN when no group is left.
    """
    values = _ndcg_values(k, groups)
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan


def bootstrap_ci(values: np.ndarray, *, n: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval for the mean of per-patient `values`, resampling patients; NaN values are left out."""
    values = np.asarray(values, dtype=float)
    replicates = _replicate_means(values, _patient_weights(len(values), n=n, seed=seed))
    return _percentile_ci(replicates, level)


def evaluate_rankers(
    *,
    train: pd.DataFrame,
    test: pd.DataFrame,
    profiles: pd.DataFrame,
    rule_rank: str | pd.Series = "position",
    params: RankerParams = RankerParams(),  # noqa: B008 - frozen dataclass, immutable
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Score the held-out decisions in `test` with each ranker fitted on `train`.

    `rule_rank` is the position each test item was shown at by the rules (0 = top): a column of `test`, or a
    Series aligned with its index. Returns ``{ranker: {"auc", "auc_ci", "ndcg3", "ndcg3_ci"}}`` for the three
    rankers, plus ``"feedback_minus_item_rate"`` with the paired differences and their intervals.
    """
    ranker = ranker_fit(events=train, profiles=profiles, params=params)
    test = test.reset_index(drop=True)
    rank = test[rule_rank] if isinstance(rule_rank, str) else pd.Series(rule_rank).reset_index(drop=True)
    items = test["item"].astype(str)
    patients, patient_codes = np.unique(test["patient_id"].to_numpy(), return_inverse=True)
    item_list, item_codes = np.unique(items.to_numpy(), return_inverse=True)
    personal = ranker.personal(profiles.reindex(patients), item_list.tolist())
    scores = {
        "rule_order": -rank.to_numpy(dtype=float),
        "item_rate": ranker.item_prior(items.tolist()),
        "feedback": personal[patient_codes, item_codes],
    }
    y = test["accepted"].astype(bool).to_numpy(dtype=float)
    weights = _patient_weights(len(patients), n=n_boot, seed=seed)
    point, replicates = {}, {}
    for name, score in scores.items():
        ndcg = _ndcg_values(NDCG_K, _groups(patient_codes, y, score))
        point[name] = (auc(y, score), float(np.nanmean(ndcg)))
        replicates[name] = (_weighted_auc(y, score, weights[:, patient_codes]), _replicate_means(ndcg, weights))
    result: dict = {name: _summary(point[name], replicates[name]) for name in scores}
    difference = tuple(a - b for a, b in zip(point["feedback"], point["item_rate"], strict=True))
    result["feedback_minus_item_rate"] = _summary(
        difference, tuple(a - b for a, b in zip(replicates["feedback"], replicates["item_rate"], strict=True))
    )
    result["n_test_decisions"], result["n_test_patients"] = len(test), len(patients)
    return result


def simulate(
    *, n_patients: int = 3000, n_items: int = 12, n_clinicians: int = 6, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic (events, profiles) where clinicians' approvals depend on the patient.

    P(approve item i for patient p) = sigmoid(a_i + b_i . z_p + bias_clinician + (base - 0.5)), with z_p the
    standardised true profile and b_i non-zero on two features per item, so what suits one kind of patient
    does not suit another. Each patient is shown 4-6 items in rule order (tier, then base) at one visit in
    a year; one in ten comes back for a second visit. Profiles miss ~5% of lab values, as real ones do.
    """
    rng = np.random.default_rng(seed)
    truth = _simulated_profiles(rng, n_patients)
    z = ((truth - truth.mean()) / truth.std()).to_numpy()
    intercept = rng.normal(0.3, 0.8, n_items)
    slopes = np.zeros((n_items, z.shape[1]))
    for i in range(n_items):
        chosen = rng.choice(z.shape[1], size=2, replace=False)
        slopes[i, chosen] = rng.choice([-1, 1], size=2) * rng.uniform(0.8, 1.5, size=2)
    bias = rng.normal(0.0, 0.4, n_clinicians)
    tiers = rng.integers(0, 5, n_items)
    start = pd.Timestamp("2025-01-01", tz="UTC")

    rows = []
    revisit = rng.random(n_patients) < 0.1
    for p in range(n_patients):
        clinician = int(rng.integers(n_clinicians))
        visits = [rng.uniform(0, 330)] + ([rng.uniform(0, 35)] if revisit[p] else [])
        day = 0.0
        for gap in visits:
            day += gap
            shown = rng.choice(n_items, size=int(rng.integers(4, 7)), replace=False)
            base = 1 / (1 + np.exp(-rng.normal(-0.5, 1.0, len(shown))))
            display = order(tiers=tiers[shown].tolist(), base=base.tolist(), lifts=[0.0] * len(shown))
            positions = np.argsort(display)  # the inverse permutation: where each shown item was displayed
            logit = intercept[shown] + slopes[shown] @ z[p] + bias[clinician] + (base - 0.5)
            accepted = rng.random(len(shown)) < 1 / (1 + np.exp(-logit))
            for i, pos, b, acc in zip(shown, positions, base, accepted, strict=True):
                at = start + pd.Timedelta(days=day) + pd.Timedelta(minutes=int(pos))
                rows.append((p, f"item_{i:02d}", clinician, bool(acc), at, int(pos), float(b), int(tiers[i])))
    columns = ["patient_id", "item", "clinician_id", "accepted", "at", "position", "base", "tier"]
    events = pd.DataFrame(rows, columns=columns).sort_values("at", kind="mergesort").reset_index(drop=True)
    profiles = truth.copy()
    labs = ["hba1c", "ldl", "egfr", "crp"]
    profiles[labs] = profiles[labs].mask(rng.random((n_patients, len(labs))) < 0.05)
    return events, profiles


def _simulated_profiles(rng: np.random.Generator, n: int) -> pd.DataFrame:
    age = np.clip(rng.normal(55, 15, n), 18, 90)
    hba1c = rng.normal(5.8, 0.8, n) + 0.01 * (age - 55)
    egfr = np.clip(rng.normal(85, 18, n) - 0.5 * (age - 55), 10, 130)
    risk = np.digitize(0.03 * (age - 55) + (hba1c - 5.8) + rng.normal(0, 0.7, n), [-0.7, 0.3, 1.2])
    frame = pd.DataFrame(
        {
            "age": age,
            "sex": rng.integers(0, 2, n).astype(float),
            "hba1c": hba1c,
            "ldl": rng.normal(3.2, 0.9, n),
            "egfr": egfr,
            "crp": rng.lognormal(1.0, 0.8, n),
            "risk_class": risk.astype(float),
        },
        index=pd.RangeIndex(n, name="patient_id"),
    )
    return frame[list(PROFILE_COLUMNS)]


def _weighted_auc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC under each row of `weights` (replicates x decisions): the weighted Mann-Whitney statistic."""
    y = np.asarray(y, dtype=float)
    by_score = np.argsort(score, kind="mergesort")
    s, yy, w = score[by_score], y[by_score], np.asarray(weights, dtype=float)[:, by_score]
    if len(s) == 0:
        return np.full(len(w), math.nan)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(w * yy, starts, axis=1)
    neg = np.add.reduceat(w * (1 - yy), starts, axis=1)
    # A positive beats every negative below its score and ties with half of those at it.
    wins = (pos * (np.cumsum(neg, axis=1) - 0.5 * neg)).sum(axis=1)
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pairs > 0, wins / pairs, math.nan)


def _groups(codes: np.ndarray, y: np.ndarray, score: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(relevance, score) per patient code, rows in their given order."""
    by_code = np.argsort(codes, kind="mergesort")
    bounds = np.searchsorted(codes[by_code], np.arange(codes.max() + 2 if len(codes) else 1))
    return [(y[by_code[a:b]], score[by_code[a:b]]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _ndcg_values(k: int, groups: Iterable[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    values = []
    for relevance, score in groups:
        rel = np.asarray(relevance, dtype=float)
        discount = 1 / np.log2(np.arange(2, min(k, len(rel)) + 2))
        ranked = rel[np.argsort(-np.asarray(score, dtype=float), kind="mergesort")][:k]
        ideal = np.sort(rel)[::-1][:k] @ discount
        values.append(ranked @ discount / ideal if ideal > 0 else math.nan)
    return np.asarray(values, dtype=float)


def _patient_weights(n_patients: int, *, n: int, seed: int) -> np.ndarray:
    """(n, n_patients): how many times each patient is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    if n_patients == 0:
        return np.zeros((n, 0))
    return rng.multinomial(n_patients, np.full(n_patients, 1 / n_patients), size=n).astype(float)


def _replicate_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    defined = np.isfinite(values)
    w = weights[:, defined]
    total = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, w @ values[defined] / total, math.nan)


def _percentile_ci(replicates: np.ndarray, level: float) -> tuple[float, float]:
    finite = replicates[np.isfinite(replicates)]
    if len(finite) == 0:
        return (math.nan, math.nan)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return (float(low), float(high))


def _summary(point: tuple[float, float], replicates: tuple[np.ndarray, np.ndarray], level: float = 0.95) -> dict:
    return {
        "auc": point[0],
        "auc_ci": _percentile_ci(replicates[0], level),
        "ndcg3": point[1],
        "ndcg3_ci": _percentile_ci(replicates[1], level),
    }
