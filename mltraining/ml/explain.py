"""Per-patient explanations: how much each input feature pushed each class's score, exactly additive.

The explained output is the base estimator's raw score per class (log-odds for the linear model and the
boosted trees, probability for the forests), before probability calibration: calibration is a monotone
map per class applied afterwards, so the ranking and direction of contributions carry over, their size in
probability does not. Contributions are computed on the transformed columns and summed back to the raw
feature they come from (a one-hot category and a missing indicator count for their feature), so for every
row and class:

    base_value[class] + contributions[row, :, class].sum() == raw_output[row, class]

Methods, chosen by the type of the base estimator:
- LightGBM: exact tree-path contributions (Saabas): along each tree's decision path, the change of the node
  value at a split is credited to the split's feature. Computed from the leaf each row lands in, with one
  sparse product per class, so it costs about as much as prediction; LightGBM's own TreeSHAP
  (`pred_contrib=True`) gives Shapley values but costs 20-30 times the prediction, too much for batches;
- scikit-learn trees, forests and histogram gradient boosting: exact path-dependent TreeSHAP
  (`mltraining.ml.treeshap`, the project's own, in numpy; it needs no `shap`);
- logistic regression: coefficient x standardised value, exact for a linear model;
- anything else (SVC, MLP, dummy): no explanation; the method says
  "unavailable" and nothing is invented.
"""

from __future__ import annotations

import io
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from mltraining.ml import treeshap
from mltraining.ml.candidates import base_pipeline, output_feature_sources

UNAVAILABLE = "unavailable"


@dataclass
class Explanation:
    method: str  # "tree_path", "treeshap", "linear" or UNAVAILABLE
    output: str  # what the values add up to, in words
    classes: list[str]
    features: list[str]
    base_values: np.ndarray  # (n_classes,)
    contributions: np.ndarray  # (n_rows, n_features, n_classes)
    raw_output: np.ndarray  # (n_rows, n_classes)

    @property
    def available(self) -> bool:
        return self.method != UNAVAILABLE


def explain(model, X: pd.DataFrame) -> Explanation:
    """Contributions of every raw feature of `X` to every class's raw score, for every row."""
    pipeline = base_pipeline(model)
    estimator = pipeline.named_steps["model"]
    classes = [str(c) for c in estimator.classes_]
    features = list(X.columns)
    transformed = pipeline[:-1].transform(X)
    transformed = transformed.toarray() if hasattr(transformed, "toarray") else np.asarray(transformed, dtype=float)
    sources = output_feature_sources(pipeline)
    explained = _explain_transformed(estimator, transformed)
    if explained is None:
        n = len(X)
        return Explanation(
            UNAVAILABLE, "", classes, features, np.zeros(len(classes)), np.zeros((n, len(features), len(classes))),
            np.zeros((n, len(classes))),
        )  # fmt: skip
    method, output, base, per_column = explained
    contributions = _sum_by_source(per_column, sources, features)
    raw = base[None, :] + contributions.sum(axis=1)
    return Explanation(method, output, classes, features, base, contributions, raw)


def _explain_transformed(estimator, Xt: np.ndarray) -> tuple[str, str, np.ndarray, np.ndarray] | None:
    """(method, output, base values, contributions per transformed column (n, columns, classes)) or None."""
    n_classes = len(estimator.classes_)
    if type(estimator).__name__ == "LGBMClassifier":
        paths = _prepared(estimator, lambda: _LightGBMPaths.of(estimator.booster_, Xt.shape[1]))
        base, per_column = paths.contributions(estimator, Xt)
        return "tree_path", "log-odds score per class", base, per_column
    if isinstance(estimator, LogisticRegression):
        coef = estimator.coef_ if n_classes > 2 else np.vstack([-estimator.coef_[0], estimator.coef_[0]])
        intercept = (
            estimator.intercept_ if n_classes > 2 else np.array([-estimator.intercept_[0], estimator.intercept_[0]])
        )
        per_column = Xt[:, :, None] * coef.T[None, :, :]
        return "linear", "log-odds score per class", np.asarray(intercept, dtype=float), per_column
    if treeshap.supports(estimator):
        # Built once per model: it reads every tree (a third of shap's time on the demo's boosted model).
        explainer = _prepared(estimator, lambda: treeshap.TreeShap(estimator, Xt.shape[1]))
        base, values = explainer.values(Xt)
        if values.shape[2] == 1:  # one output (binary boosting): the negative class gets its opposite
            values, base = np.concatenate([-values, values], axis=2), np.array([-base[0], base[0]])
        boosted = isinstance(estimator, HistGradientBoostingClassifier)
        output = "log-odds score per class" if boosted else "probability per class"
        return "treeshap", output, base, values
    return None


class _LightGBMPaths:
    """Per class, a matrix from (tree, leaf) to the contributions of the path to that leaf, per column.

    Read from the model's text (`model_to_string`), every tree at once in numpy (`of`): `dump_model`'s JSON and a
    walk of it in Python cost about 0.5 s of CPU for each model in each worker. Same values as read from the JSON
    for a model loaded from its artifact (tested): LightGBM keeps a node's value as the text gives it. Even so,
    about 90 ms a model, which a worker scoring 1,000 clinics' own models paid 1,000 times a night
    (bench/clinic_network.py): training stores them beside the artifact (`prepared_dumps`) and workers read them
    back (`prepared_loads`, `from_arrays`)."""

    def __init__(self, n_trees: int, base: np.ndarray, offsets: list[np.ndarray], matrices: list[sparse.csr_matrix]):
        self.n_outputs = len(base)
        self.trees_of = [list(range(k, n_trees, self.n_outputs)) for k in range(self.n_outputs)]
        self.base, self.offsets, self.matrices = base, offsets, matrices

    @classmethod
    def of(cls, booster, n_columns: int) -> _LightGBMPaths:
        trees = _lightgbm_trees(booster.model_to_string())
        n_outputs, n_trees = trees.n_outputs, len(trees.n_leaves)
        base = np.zeros(n_outputs)
        for t, root in enumerate(trees.root_value.tolist()):  # one at a time in tree order, as the walk summed them
            base[t % n_outputs] += root
        leaf, column, value = _leaf_path_sums(trees)
        leaf_start = np.concatenate([[0], np.cumsum(trees.n_leaves)])
        offsets, matrices = [], []
        for k in range(n_outputs):
            tree_ids = list(range(k, n_trees, n_outputs))
            sizes = trees.n_leaves[tree_ids]
            offsets.append(np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64))
            row_of = np.full(int(leaf_start[-1]), -1)  # a leaf of this class's trees -> its row, in tree order
            ids = np.concatenate([np.arange(leaf_start[t], leaf_start[t + 1]) for t in tree_ids])
            row_of[ids] = np.arange(len(ids))
            mine = row_of[leaf] >= 0
            matrices.append(
                sparse.csr_matrix((value[mine], (row_of[leaf[mine]], column[mine])), shape=(len(ids), n_columns))
            )
        return cls(n_trees, base, offsets, matrices)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything it holds as named arrays (`from_arrays` reads them back)."""
        arrays = {"n_trees": np.array(sum(len(ids) for ids in self.trees_of)), "base": self.base}
        for k, (offsets, matrix) in enumerate(zip(self.offsets, self.matrices, strict=True)):
            arrays |= {f"offsets{k}": offsets, f"data{k}": matrix.data, f"indices{k}": matrix.indices,
                       f"indptr{k}": matrix.indptr, f"shape{k}": np.array(matrix.shape)}  # fmt: skip
        return arrays

    @classmethod
    def from_arrays(cls, arrays, booster, n_columns: int) -> _LightGBMPaths:
        """The paths stored by `arrays`, once they are seen to fit this booster (its trees, classes and columns)."""
        base = arrays["base"]
        n_outputs, n_trees = len(base), int(arrays["n_trees"])
        shapes = [tuple(arrays[f"shape{k}"].tolist()) for k in range(n_outputs)]
        if (
            n_trees != booster.num_trees()
            or n_outputs != booster.num_model_per_iteration()
            or any(
                shape[1] != n_columns or len(arrays[f"offsets{k}"]) != len(range(k, n_trees, n_outputs))
                for k, shape in enumerate(shapes)
            )
        ):
            raise ValueError("the stored explanation paths do not fit this model")
        matrices = [
            sparse.csr_matrix((arrays[f"data{k}"], arrays[f"indices{k}"], arrays[f"indptr{k}"]), shape=shape)
            for k, shape in enumerate(shapes)
        ]
        return cls(n_trees, base, [arrays[f"offsets{k}"] for k in range(n_outputs)], matrices)

    def contributions(self, estimator, Xt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        leaves = np.asarray(estimator.predict(Xt, pred_leaf=True), dtype=np.int64).reshape(len(Xt), -1)
        per_output = []
        for k, tree_ids in enumerate(self.trees_of):
            index = (leaves[:, tree_ids] + self.offsets[k][None, :]).ravel()
            hits = sparse.csr_matrix(
                (np.ones(len(index)), index, np.arange(0, len(index) + 1, len(tree_ids))),
                shape=(len(Xt), self.matrices[k].shape[0]),
            )
            per_output.append(np.asarray((hits @ self.matrices[k]).todense()))
        values, base = np.stack(per_output, axis=2), self.base
        if self.n_outputs == 1:  # binary: one score for the positive class; the negative class gets its opposite
            values, base = np.concatenate([-values, values], axis=2), np.array([-base[0], base[0]])
        return base, values


@dataclass
class _Trees:
    """A LightGBM model's trees as flat arrays: inner nodes and leaves numbered across all trees."""

    n_outputs: int
    n_leaves: np.ndarray  # per tree
    root_value: np.ndarray  # per tree: its root's value (its only leaf's, for a tree of one leaf)
    feature: np.ndarray  # per inner node
    inner_value: np.ndarray  # per inner node
    left: np.ndarray  # per inner node: a child, as a global inner node id >= 0, or -1 - its global leaf id
    right: np.ndarray
    leaf_value: np.ndarray  # per leaf


def _lightgbm_trees(text: str) -> _Trees:
    head, _, body = text.partition("\nTree=")
    n_outputs = max(int(re.search(r"^num_class=(\d+)$", head, re.MULTILINE).group(1)), 1)
    body = body.split("\nend of trees", 1)[0]
    n_leaves, parts = [], {key: [] for key in ("split_feature", "internal_value", "left_child", "right_child")}
    leaf_values, node_start, leaf_start = [], [], []
    nodes = leaves = 0
    for block in body.split("\nTree="):
        fields = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        n = int(fields["num_leaves"])
        n_leaves.append(n)
        leaf_values.append(fields["leaf_value"])
        node_start.append(nodes)
        leaf_start.append(leaves)
        if n > 1:
            for key, texts in parts.items():
                texts.append(fields[key])
        nodes, leaves = nodes + n - 1, leaves + n
    n_leaves = np.asarray(n_leaves, dtype=np.int64)

    def numbers(texts: list[str], kind) -> np.ndarray:
        return np.asarray([kind(x) for x in " ".join(texts).split()], dtype=np.int64 if kind is int else np.float64)

    inner_tree = np.repeat(np.arange(len(n_leaves)), n_leaves - 1)
    node_start, leaf_start = np.asarray(node_start), np.asarray(leaf_start)
    shift_node, shift_leaf = node_start[inner_tree], leaf_start[inner_tree]
    left, right = (numbers(parts[key], int) for key in ("left_child", "right_child"))
    # A node's value is written with 6 digits and LightGBM's own parser may read it one bit away from Python's
    # correctly rounded float(): a difference of about 1e-16 in a contribution, far below anything shown.
    inner_value, leaf_value = numbers(parts["internal_value"], float), numbers(leaf_values, float)
    root = leaf_value[leaf_start]  # a tree of one leaf; the others' root is their first inner node
    split = n_leaves > 1
    root[split] = inner_value[node_start[split]]
    return _Trees(
        n_outputs=n_outputs, n_leaves=n_leaves, root_value=root, feature=numbers(parts["split_feature"], int),
        inner_value=inner_value, left=np.where(left >= 0, left + shift_node, left - shift_leaf),
        right=np.where(right >= 0, right + shift_node, right - shift_leaf), leaf_value=leaf_value,
    )  # fmt: skip


def _leaf_path_sums(trees: _Trees) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(leaf, column, value) for each column split on along each leaf's path: the sum over those splits of the
    child's value minus the node's, added from the root down in the order the recursive walk added them."""
    n_leaves, n_nodes = len(trees.leaf_value), len(trees.feature)
    node_parent, leaf_parent = np.full(n_nodes, -1), np.full(n_leaves, -1)
    for children in (trees.left, trees.right):
        inner = children >= 0
        node_parent[children[inner]] = np.flatnonzero(inner)
        leaf_parent[-1 - children[~inner]] = np.flatnonzero(~inner)
    up = [leaf_parent]  # ancestors, the parent first
    while (up[-1] >= 0).any():
        up.append(np.where(up[-1] >= 0, node_parent[np.maximum(up[-1], 0)], -1))
    up = np.stack(up[:-1], axis=1) if len(up) > 1 else np.full((n_leaves, 0), -1)
    depth = (up >= 0).sum(axis=1)
    # From the root down: step k goes from node down[:, k] to down[:, k + 1], or to the leaf at the last step.
    index = depth[:, None] - 1 - np.arange(up.shape[1])[None, :]
    down = np.where(index >= 0, np.take_along_axis(up, np.maximum(index, 0), axis=1), -1)
    feature = np.where(down >= 0, trees.feature[np.maximum(down, 0)], -1)
    slot = np.zeros(down.shape, dtype=np.int64)  # the step at which the path first split on the same column
    for k in range(down.shape[1]):
        slot[:, k] = np.argmax(feature[:, : k + 1] == feature[:, k : k + 1], axis=1)
    total = np.zeros(down.shape)
    rows = np.arange(n_leaves)
    for k in range(down.shape[1]):
        on = np.flatnonzero(depth > k)
        parent = down[on, k]
        last = depth[on] == k + 1
        child_value = np.where(
            last, trees.leaf_value[on], trees.inner_value[np.maximum(down[on, np.minimum(k + 1, down.shape[1] - 1)], 0)]
        )
        at = (rows[on], slot[on, k])
        total[at] = (total[at] + child_value) - trees.inner_value[parent]
    first = (slot == np.arange(down.shape[1])[None, :]) & (down >= 0)
    leaf, step = np.nonzero(first)
    return leaf, feature[leaf, step], total[leaf, step]


# What explaining needs that depends only on the fitted model (LightGBM's tree paths, the TreeSHAP leaf paths), one
# entry per model alive in this process (a worker keeps its recently used clinics' models), dropped with the model: a
# worker scoring several clinics' patients in turn builds each model's once, not at every switch. Neither value
# refers back to its model (tested), or the weak key would never be freed.
_PREPARED: weakref.WeakKeyDictionary[object, Any] = weakref.WeakKeyDictionary()


def _prepared(estimator, build: Callable[[], Any]) -> Any:
    prepared = _PREPARED.get(estimator)
    if prepared is None:
        prepared = _PREPARED[estimator] = build()
    return prepared


def prepared_dumps(model) -> bytes | None:
    """What explaining `model` needs that depends on the model alone, as bytes to store beside its artifact (numpy's
    npz, no pickle), or None for a model that needs nothing prepared worth storing.

    Preparing LightGBM's tree paths costs about 90 ms of CPU a model (writing the model's text and reading it
    again), which every worker paid for every clinic's model each night; reading them costs a few milliseconds."""
    estimator = base_pipeline(model).named_steps["model"]
    if type(estimator).__name__ != "LGBMClassifier":
        return None
    paths = _prepared(estimator, lambda: _LightGBMPaths.of(estimator.booster_, estimator.n_features_in_))
    buffer = io.BytesIO()
    np.savez(buffer, **paths.arrays())
    return buffer.getvalue()


def prepared_loads(model, payload: bytes) -> None:
    """Give `model` the preparation `prepared_dumps` stored for it. ValueError if the bytes are not such a
    preparation or do not fit this model (then it is prepared from the model at its first explanation)."""
    estimator = base_pipeline(model).named_steps["model"]
    if type(estimator).__name__ != "LGBMClassifier":
        raise ValueError(f"no stored preparation is read for a {type(estimator).__name__}")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:
            paths = _LightGBMPaths.from_arrays(arrays, estimator.booster_, estimator.n_features_in_)
    except (OSError, KeyError, EOFError) as exc:
        raise ValueError(f"the stored explanation paths cannot be read: {exc}") from exc
    _PREPARED[estimator] = paths


def _sum_by_source(per_column: np.ndarray, sources: list[str], features: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(features)}
    target = np.array([index[source] for source in sources])
    out = np.zeros((per_column.shape[0], len(features), per_column.shape[2]))
    np.add.at(out, (slice(None), target, slice(None)), per_column)
    return out


def base_raw_output(model, X: pd.DataFrame) -> np.ndarray:
    """The base estimator's own raw score per class, computed without the explainer (to check faithfulness)."""
    pipeline = base_pipeline(model)
    estimator = pipeline.named_steps["model"]
    Xt = pipeline[:-1].transform(X)
    if type(estimator).__name__ == "LGBMClassifier":
        raw = np.asarray(estimator.predict(Xt, raw_score=True))
        return np.column_stack([-raw, raw]) if raw.ndim == 1 else raw
    if isinstance(estimator, LogisticRegression | HistGradientBoostingClassifier):
        scores = estimator.decision_function(Xt)
        return np.column_stack([-scores, scores]) if scores.ndim == 1 else scores
    return estimator.predict_proba(Xt)


def top_contributions(explanation: Explanation, row: int, class_index: int, k: int = 6) -> list[tuple[str, float]]:
    """The k features with the largest absolute contribution to one class's score for one row, largest first."""
    values = explanation.contributions[row, :, class_index]
    order = np.argsort(-np.abs(values), kind="stable")[:k]
    return [(explanation.features[i], float(values[i])) for i in order if values[i] != 0.0]
