"""Exact path-dependent TreeSHAP for scikit-learn's trees, forests and histogram gradient boosting, in numpy.

What is explained (Lundberg, Erion and Lee 2018, "Consistent individualized feature attribution for tree
ensembles"): the tree's output given a set S of known features, E[f(x) | x_S], is computed as in their
Algorithm 1: a split on a known feature follows x, a split on an unknown one averages both children weighted
by their training cover. Each feature's value is its exact Shapley value in that game, summed over trees.

How it is computed. A leaf l with value v_l adds to E[f | x_S] the term v_l times, for each distinct feature j
tested on its path, o_j when j is in S, else z_j: o_j is 1 when x meets every test on j along the path (0
otherwise), z_j the product of the cover ratios child / parent at those tests. Algorithm 2 walks the tree and
keeps the Shapley weights of that product term in a path of EXTEND / UNWIND steps; here the same weights come
from an integral instead, so the work is a few array operations over every leaf of every tree at once:

    sum over S of |S|! (d - |S| - 1)! / d! * prod(o_j, j in S) * prod(z_j, j not in S, j != i)
        = integral over t in [0, 1] of prod(z_j (1 - t) + o_j t, j != i) dt

(the weight is the Beta integral of t^|S| (1 - t)^(d - |S| - 1)), so feature i's share of leaf l is
v_l (o_i - z_i) times that integral. The integrand is a polynomial of degree d - 1 in t, so Gauss-Legendre
quadrature on ceil(d / 2) points gives it exactly. The leaves' paths (features, z, and the interval each
feature must fall in) depend only on the model and are read once (`TreeShap.__init__`); explaining rows
then compares their values with the intervals and sums.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

# Elements of the largest temporary array (rows x leaves x path length x quadrature points) while explaining;
# rows are explained in chunks that fit (about 16 MB each).
_CHUNK_ELEMENTS = 2_000_000
# Leaves are grouped by how many distinct features their path tests, padded up to the next of these, so a group's
# arrays are rectangular without padding every leaf to the longest path in the model.
_GROUP_SIZES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64)
# A cover ratio is at least this: a child no training sample reached would make z = 0 and the division in
# `_Group.shares` undefined (scikit-learn's and boosting's leaves always hold samples, so it is never used there).
_MIN_ZERO_FRACTION = 1e-12


@dataclass
class _Nodes:
    """Every tree of a model as one set of flat node arrays (child indices are global; -1 at a leaf)."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray  # go left when x <= threshold
    missing_left: np.ndarray  # where a missing value (NaN) goes
    cover: np.ndarray  # training samples reaching the node (weighted for scikit-learn's trees)
    value: np.ndarray  # (nodes, outputs): what a leaf adds to each output
    roots: np.ndarray


class _Group:
    """Leaves whose paths test at most `slots` distinct features; an empty slot has o = z = 1 (factor 1, share 0).

    For a row, slot j of leaf l has the factor z_j + (o_j - z_j) t at each quadrature point t: `met` when the row
    meets the path's tests on that feature (o = 1), `unmet` when not (o = 0), both precomputed. Arrays are laid
    out slot, point, row, leaf: the leaves, many, vary fastest, so every step runs over long contiguous loops.
    """

    def __init__(self, feature, zero, low, high, nan_ok, slots: int):
        points, self.weights = _quadrature(slots)
        self.zero, self.low, self.high, self.nan_ok = (a.T[:, None, :] for a in (zero, low, high, nan_ok))
        self.met = (zero.T[:, None, :] + (1 - zero.T[:, None, :]) * points[:, None])[:, :, None, :]
        unmet = zero.T[:, None, :] * (1 - points[:, None])
        unmet[np.broadcast_to((feature < 0).T[:, None, :], unmet.shape)] = 1.0
        self.unmet = unmet[:, :, None, :]
        self.feature = np.where(feature < 0, 0, feature).T  # (slots, leaves)
        self.size = feature.size * len(points)

    def shares(self, X: np.ndarray) -> np.ndarray:
        """(rows, slots x leaves): (o_i - z_i) times the Shapley integral of slot i's feature, per leaf."""
        x = X[:, self.feature].transpose(1, 0, 2)  # (slots, rows, leaves)
        with np.errstate(invalid="ignore"):
            one = ((x > self.low) & (x <= self.high)) | (np.isnan(x) & self.nan_ok)
        factor = np.where(one[:, None], self.met, self.unmet)  # (slots, points, rows, leaves)
        weighted = factor.prod(axis=0) * self.weights[:, None, None]  # the whole product, times the weights
        # Every factor but slot i's: the product divided by it (each factor is positive for t in (0, 1)).
        integral = (weighted / factor).sum(axis=1)
        return ((one - self.zero) * integral).transpose(1, 0, 2).reshape(len(X), -1)


class TreeShap:
    """Exact TreeSHAP values of one fitted DecisionTree, RandomForest or HistGradientBoosting classifier.

    `values(X)` gives (base values (outputs,), contributions (rows, columns, outputs)) with, for every row,
    base + contributions.sum(columns) equal to the model's raw output: class probabilities for the tree and
    the forest, the decision function (log-odds) for boosting (one output when binary). Holds only arrays,
    never the model.
    """

    def __init__(self, estimator, n_columns: int):
        nodes, offset, self._float32 = _read_model(estimator)
        self.n_columns = n_columns
        self.n_outputs = nodes.value.shape[1]
        leaves = _leaf_paths(nodes, n_columns)
        self.base = offset + (leaves.weight[:, None] * leaves.value).sum(axis=0)
        self.n_leaves = len(leaves.value)
        self._groups: list[_Group] = []
        rows, columns, values = [], [], []
        used = leaves.feature >= 0
        length = used.sum(axis=1)
        self.longest_path = int(length.max())  # distinct features tested on one path, at most
        start = 0
        sizes = _group_sizes(leaves.feature.shape[1])
        for low, high in zip((-1, *sizes), sizes, strict=False):  # -1: a tree that is one leaf
            members = np.flatnonzero((length > low) & (length <= high))
            if not len(members):
                continue
            group = _Group(
                *(part[members, :high] for part in (leaves.feature, leaves.zero, leaves.low, leaves.high)),
                leaves.nan_ok[members, :high], high,
            )  # fmt: skip
            self._groups.append(group)
            # From (leaf, slot) to (column, output): the leaf's value at its slot's column, so one sparse product
            # sums every leaf's share into its columns for every output.
            value = leaves.value[members]
            leaf, output = np.nonzero(value)
            for slot in range(high):
                tested = used[members[leaf], slot]
                rows.append(start + slot * len(members) + leaf[tested])
                columns.append(group.feature[slot, leaf[tested]] * self.n_outputs + output[tested])
                values.append(value[leaf[tested], output[tested]])
            start += group.feature.size
        self._scatter = sparse.csc_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
            shape=(start, n_columns * self.n_outputs),
        )

    def values(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=np.float32 if self._float32 else np.float64).astype(np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_columns:
            raise ValueError(f"expected rows of {self.n_columns} columns, got an array of shape {X.shape}")
        step = max(1, _CHUNK_ELEMENTS // max(group.size for group in self._groups))
        out = np.zeros((len(X), self.n_columns, self.n_outputs))
        for start in range(0, len(X), step):
            rows = X[start : start + step]
            shares = np.concatenate([group.shares(rows) for group in self._groups], axis=1)
            out[start : start + step] = (shares @ self._scatter).reshape(-1, self.n_columns, self.n_outputs)
        return self.base.copy(), out


def supports(estimator) -> bool:
    """Whether `TreeShap` explains this fitted estimator exactly (categorical splits of boosting are not read)."""
    if isinstance(estimator, DecisionTreeClassifier | RandomForestClassifier):
        return estimator.n_outputs_ == 1
    if isinstance(estimator, HistGradientBoostingClassifier):
        return not any(p.nodes["is_categorical"].any() for trees in estimator._predictors for p in trees)
    return False


def _read_model(estimator) -> tuple[_Nodes, np.ndarray, bool]:
    """The model's trees as flat nodes, the constant added to their sum, and whether X is compared as float32."""
    if isinstance(estimator, HistGradientBoostingClassifier):
        return _read_boosting(estimator), np.asarray(estimator._baseline_prediction, dtype=float).ravel(), False
    trees = [estimator] if isinstance(estimator, DecisionTreeClassifier) else list(estimator.estimators_)
    parts = []
    for tree in trees:
        t = tree.tree_
        value = t.value[:, 0, :]
        totals = value.sum(axis=1, keepdims=True)
        proba = np.divide(value, totals, out=np.zeros_like(value), where=totals > 0)  # as predict_proba does
        parts.append(
            (t.children_left, t.children_right, t.feature, t.threshold, t.missing_go_to_left.astype(bool),
             t.weighted_n_node_samples, proba / len(trees))
        )  # fmt: skip
    # scikit-learn's trees compare float32 inputs with their float64 thresholds.
    return _concatenate(parts), np.zeros(len(estimator.classes_)), True


def _read_boosting(estimator) -> _Nodes:
    n_outputs = len(estimator._predictors[0])
    parts = []
    for trees in estimator._predictors:
        for k, predictor in enumerate(trees):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            value = np.zeros((len(nodes), n_outputs))
            value[:, k] = np.where(leaf, nodes["value"], 0.0)
            left = np.where(leaf, -1, nodes["left"].astype(np.int64))
            right = np.where(leaf, -1, nodes["right"].astype(np.int64))
            parts.append(
                (left, right, nodes["feature_idx"], nodes["num_threshold"], nodes["missing_go_to_left"].astype(bool),
                 nodes["count"].astype(float), value)
            )  # fmt: skip
    return _concatenate(parts)


def _concatenate(parts) -> _Nodes:
    sizes = np.array([len(p[0]) for p in parts])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    shift = np.repeat(starts, sizes)
    left, right, feature, threshold, missing, cover, value = (np.concatenate(c) for c in zip(*parts, strict=True))
    return _Nodes(
        np.where(left >= 0, left + shift, -1), np.where(right >= 0, right + shift, -1), feature.astype(np.int64),
        threshold.astype(float), missing, cover.astype(float), value, starts,
    )  # fmt: skip


@dataclass
class _Leaves:
    value: np.ndarray  # (leaves, outputs)
    weight: np.ndarray  # cover / the tree's cover: the leaf's share of the tree's expected value
    feature: np.ndarray  # (leaves, slots): the distinct features tested on the path, first; -1 in an empty slot
    zero: np.ndarray  # z: product of the cover ratios at the tests on that feature; 1 in an empty slot
    low: np.ndarray  # o = 1 when low < x <= high ...
    high: np.ndarray
    nan_ok: np.ndarray  # ... or x is missing and every test on the feature sends a missing value this way


def _leaf_paths(nodes: _Nodes, n_columns: int) -> _Leaves:
    """Walk every tree at once, one depth level a step, carrying each node's path state over all columns."""
    frontier = nodes.roots
    n = len(frontier)
    state = {
        "zero": np.ones((n, n_columns)), "low": np.full((n, n_columns), -np.inf),
        "high": np.full((n, n_columns), np.inf), "nan_ok": np.ones((n, n_columns), dtype=bool),
        "seen": np.zeros((n, n_columns), dtype=bool), "root_cover": nodes.cover[frontier],
    }  # fmt: skip
    found = []
    while len(frontier):
        leaf = nodes.left[frontier] < 0
        if leaf.any():
            found.append((frontier[leaf], {key: array[leaf] for key, array in state.items()}))
        inner = np.flatnonzero(~leaf)
        twice = np.concatenate([inner, inner])  # each inner node's state, for its left then its right child
        state = {key: array[twice] for key, array in state.items()}
        parent = frontier[twice]
        go_left = np.arange(len(twice)) < len(inner)
        child = np.where(go_left, nodes.left[parent], nodes.right[parent])
        at = (np.arange(len(twice)), nodes.feature[parent])
        state["zero"][at] *= nodes.cover[child] / nodes.cover[parent]
        threshold = nodes.threshold[parent]
        state["high"][at] = np.where(go_left, np.minimum(state["high"][at], threshold), state["high"][at])
        state["low"][at] = np.where(go_left, state["low"][at], np.maximum(state["low"][at], threshold))
        state["nan_ok"][at] &= nodes.missing_left[parent] == go_left
        state["seen"][at] = True
        frontier = child
    ids = np.concatenate([f[0] for f in found])
    leaf_state = {key: np.concatenate([f[1][key] for f in found]) for key in found[0][1]}
    seen = leaf_state["seen"]
    depth = _group_sizes(int(seen.sum(axis=1).max()))[-1]
    order = np.argsort(~seen, axis=1, kind="stable")[:, :depth]  # the tested columns first
    used = np.take_along_axis(seen, order, axis=1)

    def slots(key: str, empty) -> np.ndarray:
        return np.where(used, np.take_along_axis(leaf_state[key], order, axis=1), empty)

    return _Leaves(
        value=nodes.value[ids],
        weight=nodes.cover[ids] / leaf_state["root_cover"],
        feature=np.where(used, order, -1),
        zero=np.maximum(slots("zero", 1.0), _MIN_ZERO_FRACTION),
        low=slots("low", -np.inf),
        high=slots("high", np.inf),
        nan_ok=slots("nan_ok", True),
    )


def _group_sizes(longest: int) -> list[int]:
    """The slot counts of the groups that hold paths of up to `longest` distinct features."""
    sizes = [size for size in _GROUP_SIZES if size < longest]
    return [*sizes, next((size for size in _GROUP_SIZES if size >= longest), longest)]


@functools.cache  # a few sizes, shared by every model; the arrays are only read
def _quadrature(depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre points and weights on [0, 1], exact for polynomials of degree below `depth`."""
    points, weights = np.polynomial.legendre.leggauss(max(1, (depth + 1) // 2))
    return (points + 1) / 2, weights / 2
