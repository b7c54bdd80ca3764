"""Feedback-adjusted ranking of advice items: what clinicians approved for patients like this one.

No Django here: the caller turns feedback rows into DataFrames and stores `Ranker.to_dict()`.

For an item i and a query patient p:

- prior ``theta_i = (A_i + m * mu) / (N_i + m)``: approvals over ratings, shrunk toward the overall approval
  rate ``mu`` by ``m`` pseudo-ratings. Each (patient, item) pair counts once, with its latest decision.
- personal ``theta_pi = (sum w*y + m_n * theta_i) / (sum w + m_n)`` over the k nearest reviewed patients that
  have a decision on item i, ``w = exp(-d^2 / (2 h^2))``. Distances are Euclidean on profiles standardised
  with the reviewed patients' means and standard deviations; a missing value is 0 after standardising,
  i.e. imputed at the mean. ``h`` is ``params.bandwidth`` or, by default, the item's median distance from a
  reviewed patient to its k nearest fellow reviewers (so weights adapt to how densely the item was rated,
  and feedback from patients far away gets ~0 weight).
- ``lift = lam * c * (theta_pi - theta_i)`` with confidence ``c = sum w / (sum w + m_n)``; ``|lift| <= lam``.

Clinician cap. Within one estimate (an item's prior, or one query's neighbour sums for an item) each
clinician's events are down-weighted by a common factor, so that their weight is at most ``clinician_cap``
of the estimate's total weight, *counting the shrinkage pseudo-weight (m, or m_n) in the total as a
participant that is never capped*. The capped weights solve ``T = prior + sum_c min(W_c, cap * T)``
(water-filling; the solution is unique because the right side is concave in T and starts above T = 0):
a capped clinician keeps exactly ``cap * T``, the others keep everything, and a clinician keeps their own
approval rate. Counting the pseudo-weight means the cap holds even when one clinician is the only reviewer:
with the default 0.5 they can move an item at most half-way from ``mu`` toward their own rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

FORMAT_VERSION = 1
# Exact brute-force kNN: on a few standardised columns it beats the trees (measured with 3k-20k points per item).
# Bandwidth estimation looks at most this many reviewed patients per item: the median is stable long before.
BANDWIDTH_SAMPLE = 500
# Queries per kNN call: bounds the (queries x k x k) same-clinician table to a few tens of MB.
QUERY_CHUNK = 4096


@dataclass(frozen=True)
class RankerParams:
    k: int = 25
    m: float = 10.0
    m_n: float = 3.0
    lam: float = 0.3
    bandwidth: float | None = None
    clinician_cap: float = 0.5

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.m <= 0 or self.m_n <= 0:
            raise ValueError("m and m_n must be positive (they also make the clinician cap always feasible)")
        if not 0 < self.clinician_cap <= 1:
            raise ValueError("clinician_cap is a share in (0, 1]")
        if self.lam < 0:
            raise ValueError("lam must not be negative")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError("bandwidth must be positive")


def clinician_cap_limit(totals: np.ndarray, prior: float, share: float) -> np.ndarray:
    """Per row, the most weight one clinician may keep: ``share * T`` at the water-filling solution.

    `totals` is (rows, slots): each clinician's summed weight in that row, a clinician in at most one slot
    (other slots 0). Returns +inf where nobody needs capping.
    """
    totals = np.atleast_2d(np.asarray(totals, dtype=float))
    rows, slots = totals.shape
    t = -np.sort(-totals, axis=1)
    # With the top j clinicians capped, T = (prior + sum of the others) / (1 - j * share).
    uncapped = np.concatenate([np.cumsum(t[:, ::-1], axis=1)[:, ::-1], np.zeros((rows, 1))], axis=1)
    denom = 1.0 - np.arange(slots + 1) * share
    with np.errstate(divide="ignore", invalid="ignore"):
        total = np.where(denom > 0, (prior + uncapped) / np.where(denom > 0, denom, 1.0), np.inf)
    largest_uncapped = np.concatenate([t, np.zeros((rows, 1))], axis=1)
    consistent = largest_uncapped <= share * total
    # The smallest consistent j is the root; it always exists because the last column is consistent.
    j = consistent.argmax(axis=1)
    limit = share * total[np.arange(rows), j]
    return np.where(j == 0, np.inf, limit)


def _cap_factors(totals: np.ndarray, limit: np.ndarray) -> np.ndarray:
    limit = np.asarray(limit, dtype=float).reshape(-1, *([1] * (totals.ndim - 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(totals > limit, limit / totals, 1.0)


@dataclass
class Ranker:
    """A fitted ranker: plain arrays, so it pickles and round-trips through `to_dict()` / `from_dict()`.

    Item j's reviewed patients are rows ``offsets[j]:offsets[j + 1]`` of `points` / `accepted` / `clinician`.
    """

    params: RankerParams
    columns: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    mu: float
    items: np.ndarray
    prior: np.ndarray
    ratings: np.ndarray
    bandwidth: np.ndarray
    offsets: np.ndarray
    points: np.ndarray
    accepted: np.ndarray
    clinician: np.ndarray
    _indexes: dict[int, NearestNeighbors] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        # The kNN indexes are rebuilt on demand; pickles stay as small as the arrays.
        state = self.__dict__.copy()
        state["_indexes"] = {}
        return state

    def item_prior(self, items: Sequence[str]) -> np.ndarray:
        """theta_i per item; ``mu`` for an item never rated."""
        j = self._item_positions(items)
        known = np.append(self.prior, self.mu)
        return known[np.where(j >= 0, j, len(self.prior))]

    def personal(self, profiles: np.ndarray | pd.DataFrame, items: Sequence[str]) -> np.ndarray:
        """theta_pi, shape (n_query, n_items)."""
        theta, sw, swy = self._neighbour_sums(profiles, items)
        return (swy + self.params.m_n * theta) / (sw + self.params.m_n)

    def lifts(self, profiles: np.ndarray | pd.DataFrame, items: Sequence[str]) -> np.ndarray:
        """lam * c * (theta_pi - theta_i), shape (n_query, n_items); 0 for an item never rated."""
        theta, sw, swy = self._neighbour_sums(profiles, items)
        m_n, lam = self.params.m_n, self.params.lam
        personal = (swy + m_n * theta) / (sw + m_n)
        return np.clip(lam * sw / (sw + m_n) * (personal - theta), -lam, lam)

    def to_dict(self) -> dict[str, np.ndarray]:
        """Arrays only (no pickle needed): ``np.savez(f, **ranker.to_dict())`` then ``from_dict(np.load(f))``."""
        p = self.params
        return {
            "format": np.array(FORMAT_VERSION),
            "param_k": np.array(p.k),
            "param_m": np.array(p.m),
            "param_m_n": np.array(p.m_n),
            "param_lam": np.array(p.lam),
            "param_bandwidth": np.array(np.nan if p.bandwidth is None else p.bandwidth),
            "param_clinician_cap": np.array(p.clinician_cap),
            "columns": np.asarray(self.columns, dtype=str),
            "mean": self.mean,
            "scale": self.scale,
            "mu": np.array(self.mu),
            "items": np.asarray(self.items, dtype=str),
            "prior": self.prior,
            "ratings": self.ratings,
            "bandwidth": self.bandwidth,
            "offsets": self.offsets,
            "points": self.points,
            "accepted": self.accepted,
            "clinician": self.clinician,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, np.ndarray]) -> Ranker:
        if int(data["format"]) != FORMAT_VERSION:
            raise ValueError(f"Unknown ranker format {int(data['format'])}; expected {FORMAT_VERSION}")
        bandwidth = float(data["param_bandwidth"])
        params = RankerParams(
            k=int(data["param_k"]),
            m=float(data["param_m"]),
            m_n=float(data["param_m_n"]),
            lam=float(data["param_lam"]),
            bandwidth=None if math.isnan(bandwidth) else bandwidth,
            clinician_cap=float(data["param_clinician_cap"]),
        )
        arrays = {name: np.asarray(data[name]) for name in ("columns", "mean", "scale", "items", "prior")}
        arrays |= {name: np.asarray(data[name]) for name in ("ratings", "bandwidth", "offsets", "points")}
        arrays |= {name: np.asarray(data[name]) for name in ("accepted", "clinician")}
        return cls(params=params, mu=float(data["mu"]), **arrays)

    def standardise(self, profiles: np.ndarray | pd.DataFrame) -> np.ndarray:
        """Query profiles in the fitted scale; a DataFrame is matched by column name, an array by position."""
        if isinstance(profiles, pd.DataFrame):
            x = profiles[list(self.columns)].to_numpy(dtype=float, na_value=np.nan)
        else:
            x = np.atleast_2d(np.asarray(profiles, dtype=float))
            if x.shape[1] != len(self.columns):
                raise ValueError(f"Expected {len(self.columns)} profile columns, got {x.shape[1]}")
        return np.nan_to_num((x - self.mean) / self.scale, nan=0.0)

    def _item_positions(self, items: Sequence[str]) -> np.ndarray:
        lookup = {item: j for j, item in enumerate(self.items.tolist())}
        return np.array([lookup.get(str(item), -1) for item in items], dtype=int)

    def _index(self, j: int) -> NearestNeighbors:
        if j not in self._indexes:
            self._indexes[j] = NearestNeighbors(algorithm="brute").fit(
                self.points[self.offsets[j] : self.offsets[j + 1]]
            )
        return self._indexes[j]

    def _neighbour_sums(
        self, profiles: np.ndarray | pd.DataFrame, items: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """theta_i (1, n_items), and the capped neighbour sums sum w and sum w*y, each (n_query, n_items)."""
        x = self.standardise(profiles)
        positions = self._item_positions(items)
        theta = self.item_prior(items)[None, :]
        sw = np.zeros((len(x), len(positions)))
        swy = np.zeros_like(sw)
        if len(x) == 0:
            return theta, sw, swy
        for col, j in enumerate(positions):
            if j < 0 or self.offsets[j + 1] == self.offsets[j]:
                continue
            for lo in range(0, len(x), QUERY_CHUNK):
                chunk = slice(lo, lo + QUERY_CHUNK)
                sw[chunk, col], swy[chunk, col] = self._item_sums(x[chunk], j)
        return theta, sw, swy

    def _item_sums(self, x: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
        start, stop = self.offsets[j], self.offsets[j + 1]
        dist, idx = self._index(j).kneighbors(x, n_neighbors=min(self.params.k, stop - start))
        w = np.exp(-(dist**2) / (2.0 * self.bandwidth[j] ** 2))
        who = self.clinician[start:stop][idx]
        same = who[:, :, None] == who[:, None, :]
        # Each clinician's total over this query's neighbours, in every slot they occupy...
        per_slot = (same * w[:, None, :]).sum(axis=2)
        # ...but counted once (in their first slot) when solving for the cap.
        earlier = np.tril(np.ones((idx.shape[1],) * 2, dtype=bool), k=-1)
        first = ~(same & earlier).any(axis=2)
        limit = clinician_cap_limit(per_slot * first, self.params.m_n, self.params.clinician_cap)
        w = w * _cap_factors(per_slot, limit)
        return w.sum(axis=1), (w * self.accepted[start:stop][idx]).sum(axis=1)


def ranker_fit(*, events: pd.DataFrame, profiles: pd.DataFrame, params: RankerParams = RankerParams()) -> Ranker:
    """Fit on feedback `events` (patient_id, item, clinician_id, accepted, at) and numeric `profiles` by patient_id.

    Each (patient, item) pair counts once, with its latest decision: a reversed decision replaces the first.
    """
    verdicts = (
        events.assign(item=events["item"].astype(str))
        .sort_values("at", kind="mergesort")
        .drop_duplicates(["patient_id", "item"], keep="last")
        .sort_values(["item", "patient_id"], kind="mergesort")
        .reset_index(drop=True)
    )
    columns = np.asarray(profiles.columns, dtype=str)
    if len(columns) == 0:
        raise ValueError("profiles need at least one numeric column")
    reviewed = profiles.reindex(verdicts["patient_id"].unique()).to_numpy(dtype=float, na_value=np.nan)
    mean, scale = _fit_scale(reviewed)
    points = profiles.reindex(verdicts["patient_id"]).to_numpy(dtype=float, na_value=np.nan)
    points = np.nan_to_num((points - mean) / scale, nan=0.0)

    items, item_codes = np.unique(verdicts["item"].to_numpy(dtype=str), return_inverse=True)
    # An unknown clinician (None) is one more clinician, not code -1.
    clinician = pd.factorize(verdicts["clinician_id"], use_na_sentinel=False)[0]
    accepted = verdicts["accepted"].astype(bool).to_numpy(dtype=float)
    mu, prior, ratings = _item_priors(item_codes, clinician, accepted, len(items), params)
    offsets = np.searchsorted(item_codes, np.arange(len(items) + 1))
    ranker = Ranker(
        params=params,
        columns=columns,
        mean=mean,
        scale=scale,
        mu=mu,
        items=items,
        prior=prior,
        ratings=ratings,
        bandwidth=np.ones(len(items)),
        offsets=offsets,
        points=points,
        accepted=accepted,
        clinician=clinician,
    )
    ranker.bandwidth = _bandwidths(ranker)
    return ranker


def _fit_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(x) == 0:
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    observed = ~np.isnan(x)
    count = observed.sum(axis=0)
    mean = np.where(count > 0, np.nansum(x, axis=0) / np.maximum(count, 1), 0.0)
    var = np.where(count > 0, np.nansum((x - mean) ** 2, axis=0) / np.maximum(count, 1), 0.0)
    scale = np.sqrt(var)
    # A constant (or never observed) column carries no distance; scale 1 keeps it at 0 instead of dividing by 0.
    return mean, np.where(scale > 0, scale, 1.0)


def _item_priors(
    item_codes: np.ndarray, clinician: np.ndarray, accepted: np.ndarray, n_items: int, params: RankerParams
) -> tuple[float, np.ndarray, np.ndarray]:
    n_clinicians = int(clinician.max()) + 1 if len(clinician) else 0
    counts = np.zeros((n_items, n_clinicians))
    approvals = np.zeros_like(counts)
    np.add.at(counts, (item_codes, clinician), 1.0)
    np.add.at(approvals, (item_codes, clinician), accepted)
    limit = clinician_cap_limit(counts, params.m, params.clinician_cap) if n_items else np.zeros(0)
    factors = _cap_factors(counts, limit)
    ratings = (counts * factors).sum(axis=1)
    approved = (approvals * factors).sum(axis=1)
    mu = float(approved.sum() / ratings.sum()) if ratings.sum() > 0 else 0.5
    return mu, (approved + params.m * mu) / (ratings + params.m), ratings


def _bandwidths(ranker: Ranker) -> np.ndarray:
    n_items = len(ranker.items)
    if ranker.params.bandwidth is not None:
        return np.full(n_items, float(ranker.params.bandwidth))
    medians = np.full(n_items, np.nan)
    for j in range(n_items):
        start, stop = ranker.offsets[j], ranker.offsets[j + 1]
        if stop - start < 2:
            continue
        sample = np.unique(np.linspace(start, stop - 1, min(BANDWIDTH_SAMPLE, stop - start)).astype(int))
        dist, _ = ranker._index(j).kneighbors(ranker.points[sample], n_neighbors=min(ranker.params.k + 1, stop - start))
        # Column 0 is the patient itself.
        medians[j] = np.median(dist[:, 1:])
    usable = np.isfinite(medians) & (medians > 0)
    fallback = float(np.median(medians[usable])) if usable.any() else 1.0
    return np.where(usable, medians, fallback)


def order(*, tiers: Sequence[int], base: Sequence[float], lifts: Sequence[float], critical_tier: int = 4) -> list[int]:
    """Indices in display order: tier descending; items in the critical tier keep their given order and ignore lifts;
    within any other tier sort by base + lift descending (stable). Nothing is ever dropped.

    Feedback can therefore move an item only within its tier. A missing (NaN) score sorts last in its tier.
    """
    if not len(tiers) == len(base) == len(lifts):
        raise ValueError("tiers, base and lifts must have the same length")

    def key(j: int) -> tuple[int, float]:
        tier = int(tiers[j])
        if tier >= critical_tier:
            return (-tier, 0.0)
        score = float(base[j]) + float(lifts[j])
        return (-tier, math.inf if math.isnan(score) else -score)

    return sorted(range(len(tiers)), key=key)
