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

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mltraining.ml import treeshap
from mltraining.ml.candidates import output_feature_sources

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


def base_pipeline(model) -> Pipeline:
    """The fitted pipeline under the calibration wrapper (one, as training calibrates with ensemble=False)."""
    if isinstance(model, CalibratedClassifierCV):
        return model.calibrated_classifiers_[0].estimator
    return model


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
        paths = _prepared(estimator, lambda: _LightGBMPaths(estimator.booster_, Xt.shape[1]))
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
    """Per class, a matrix from (tree, leaf) to the contributions of the path to that leaf, per column."""

    def __init__(self, booster, n_columns: int):
        dump = booster.dump_model()
        self.n_outputs = max(int(dump["num_class"]), 1)
        trees = dump["tree_info"]
        self.trees_of = [list(range(k, len(trees), self.n_outputs)) for k in range(self.n_outputs)]
        self.base = np.zeros(self.n_outputs)
        self.offsets: list[np.ndarray] = []
        self.matrices: list[sparse.csr_matrix] = []
        for k, tree_ids in enumerate(self.trees_of):
            rows, offsets, start = [], [], 0
            for t in tree_ids:
                structure = trees[t]["tree_structure"]
                root = structure.get("internal_value", structure.get("leaf_value", 0.0))
                self.base[k] += root
                leaves: dict[int, dict[int, float]] = {}
                self._walk(structure, root, {}, leaves)
                offsets.append(start)
                rows += [leaves[i] for i in range(len(leaves))]
                start += len(leaves)
            leaf_rows = [r for r, path in enumerate(rows) for _column in path]
            columns = [column for path in rows for column in path]
            values = [value for path in rows for value in path.values()]
            self.offsets.append(np.asarray(offsets))
            self.matrices.append(sparse.csr_matrix((values, (leaf_rows, columns)), shape=(start, n_columns)))

    def _walk(self, node: dict, value: float, path: dict[int, float], leaves: dict[int, dict[int, float]]) -> None:
        if "leaf_index" in node or "split_feature" not in node:
            leaves[int(node.get("leaf_index", 0))] = path
            return
        feature = int(node["split_feature"])
        for side in ("left_child", "right_child"):
            child = node[side]
            child_value = child.get("internal_value", child.get("leaf_value", 0.0))
            step = dict(path)
            step[feature] = step.get(feature, 0.0) + child_value - value
            self._walk(child, child_value, step, leaves)

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
