"""Explanations are faithful: base value plus contributions equal the model's own raw output, per class."""

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from mltraining.ml.candidates import CANDIDATES, build_pipeline
from mltraining.ml.explain import UNAVAILABLE, base_raw_output, explain, top_contributions
from mltraining.ml.treeshap import TreeShap

ROOT = Path(__file__).resolve().parents[3]

NUMERIC = ["glucose", "hemoglobin", "noise"]
CATEGORICAL = ["sex"]


def frame(n=400, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = pd.DataFrame(
        {
            "glucose": 5 + 2.0 * (y == 1) + rng.normal(0, 0.5, n),
            "hemoglobin": 14 - 3.0 * (y == 2) + rng.normal(0, 0.7, n),
            "noise": rng.normal(0, 1, n),
            "sex": rng.choice(["female", "male"], n),
        }
    )
    X.loc[rng.random(n) < 0.1, "glucose"] = np.nan  # missing values go through the indicator columns
    labels = np.array(["healthy", "diabetes", "anemia", "other"])[y]
    return X, pd.Series(labels)


def fitted(name, X, y):
    pipeline = build_pipeline(CANDIDATES[name](0), NUMERIC, CATEGORICAL)
    return CalibratedClassifierCV(pipeline, cv=3, ensemble=False).fit(X, y)


# What each candidate's explanation is; the others (no exact method) say they have none.
EXPLAINED = {
    "lightgbm": "tree_path",
    "hist_gradient_boosting": "treeshap",
    "random_forest": "treeshap",
    "decision_tree": "treeshap",
    "logistic_regression": "linear",
}


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("name", list(CANDIDATES))
def test_base_value_plus_contributions_equals_the_models_raw_output(name, classes):
    X, y = frame(classes=classes)
    model = fitted(name, X, y)

    explanation = explain(model, X.iloc[:50])

    if name not in EXPLAINED:
        assert explanation.method == UNAVAILABLE
        return
    assert explanation.method == EXPLAINED[name]
    assert explanation.contributions.shape == (50, len(X.columns), classes)
    np.testing.assert_allclose(explanation.raw_output, base_raw_output(model, X.iloc[:50]), rtol=1e-5, atol=1e-6)


def test_the_feature_that_carries_the_signal_explains_the_prediction():
    X, y = frame()
    model = fitted("lightgbm", X, y)
    anemic = X.index[(y == "anemia").to_numpy()][0]
    explanation = explain(model, X.loc[[anemic]])

    top = top_contributions(explanation, 0, explanation.classes.index("anemia"), k=1)

    assert top[0][0] == "hemoglobin"
    assert top[0][1] > 0  # low hemoglobin raises the anemia score


def test_models_without_an_exact_method_say_so_instead_of_inventing_one():
    X, y = frame()
    model = fitted("mlp", X, y)

    explanation = explain(model, X.iloc[:5])

    assert explanation.method == UNAVAILABLE
    assert not explanation.available


@pytest.fixture
def builds(monkeypatch):
    """Every build of what a model's explanations need: LightGBM's tree paths, the TreeSHAP leaf paths."""
    from mltraining.ml import explain as module

    built = []

    def counting(build):
        def counted(*args, **kwargs):
            built.append(build)
            return build(*args, **kwargs)

        return counted

    monkeypatch.setattr(module._LightGBMPaths, "of", counting(module._LightGBMPaths.of))
    monkeypatch.setattr(module.treeshap, "TreeShap", counting(module.treeshap.TreeShap))
    return built


@pytest.mark.parametrize("name", ["lightgbm", "hist_gradient_boosting", "random_forest"])
def test_two_models_explained_in_turn_are_each_prepared_once(name, builds):
    """A worker scoring two clinics' patients in turn: switching model must not rebuild the other's explainer."""
    X, y = frame()
    first, second = fitted(name, X, y), fitted(name, X, y.sample(frac=1, random_state=1).to_numpy())

    explanations = [explain(model, X.iloc[:20]) for model in (first, second, first, second)]

    assert len(builds) == 2
    np.testing.assert_allclose(explanations[2].raw_output, base_raw_output(first, X.iloc[:20]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(explanations[3].raw_output, base_raw_output(second, X.iloc[:20]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lightgbm", "hist_gradient_boosting"])
def test_a_dropped_models_explainer_is_freed_with_it(name):
    import gc

    from mltraining.ml import explain as module

    X, y = frame()
    model = fitted(name, X, y)
    explain(model, X.iloc[:5])
    held = len(module._PREPARED)

    del model
    gc.collect()

    assert len(module._PREPARED) == held - 1


# Faithfulness of the project's TreeSHAP against the definition, computed the slow way: the tree's expected output
# given the known features S (a split on a known feature follows the row, one on an unknown feature averages its
# children weighted by their training cover), and each feature's Shapley value over every subset of the others.


def _trees(estimator):
    """Each tree as (children left, right, feature, threshold, NaN goes left, cover, leaf value per output)."""
    if isinstance(estimator, HistGradientBoostingClassifier):
        per_iteration = len(estimator._predictors[0])
        for trees in estimator._predictors:
            for k, predictor in enumerate(trees):
                n = predictor.nodes
                value = np.zeros((len(n), per_iteration))
                value[:, k] = n["value"]
                leaf = n["is_leaf"].astype(bool)
                yield (np.where(leaf, -1, n["left"].astype(int)), np.where(leaf, -1, n["right"].astype(int)),
                       n["feature_idx"], n["num_threshold"], n["missing_go_to_left"], n["count"], value)  # fmt: skip
        return
    forest = [estimator] if isinstance(estimator, DecisionTreeClassifier) else estimator.estimators_
    for tree in forest:
        t = tree.tree_
        value = t.value[:, 0, :] / t.value[:, 0, :].sum(axis=1, keepdims=True) / len(forest)
        yield (t.children_left, t.children_right, t.feature, t.threshold, t.missing_go_to_left,
               t.weighted_n_node_samples, value)  # fmt: skip


def _expected(tree, node, x, known) -> np.ndarray:
    left, right, feature, threshold, nan_left, cover, value = tree
    if left[node] < 0:
        return value[node]
    f = feature[node]
    if f in known:
        goes_left = bool(nan_left[node]) if np.isnan(x[f]) else x[f] <= threshold[node]
        return _expected(tree, left[node] if goes_left else right[node], x, known)
    a, b = left[node], right[node]
    return (cover[a] * _expected(tree, a, x, known) + cover[b] * _expected(tree, b, x, known)) / cover[node]


def _brute_force(estimator, x) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E[f], Shapley values (features, outputs), f(x)) by enumerating every subset of the features."""
    if not isinstance(estimator, HistGradientBoostingClassifier):
        x = x.astype(np.float32).astype(float)  # scikit-learn's trees compare float32 inputs
    trees = list(_trees(estimator))
    offset = np.ravel(estimator._baseline_prediction) if isinstance(estimator, HistGradientBoostingClassifier) else 0
    m = len(x)
    v = {
        known: offset + sum(_expected(tree, 0, x, set(known)) for tree in trees)
        for size in range(m + 1)
        for known in itertools.combinations(range(m), size)
    }
    phi = np.zeros((m, len(v[()])))
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for known in itertools.combinations(others, size):
                phi[i] += weight * (v[tuple(sorted((*known, i)))] - v[known])
    return v[()], phi, v[tuple(range(m))]


def _raw(estimator, X) -> np.ndarray:
    if isinstance(estimator, HistGradientBoostingClassifier):
        raw = estimator.decision_function(X)
        return raw[:, None] if raw.ndim == 1 else raw
    return estimator.predict_proba(X)


def _small_data(classes: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features that interact, a tenth of the values missing (NaN reaches scikit-learn's trees and boosting)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(300, features))
    score = X[:, 0] + 0.8 * X[:, 1] * (X[:, 2] > 0) + rng.normal(0, 0.3, 300)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    X[rng.random(X.shape) < 0.1] = np.nan
    return X, y


SMALL_MODELS = {
    "decision_tree": lambda: DecisionTreeClassifier(max_depth=6, min_samples_leaf=5, class_weight="balanced"),
    "random_forest": lambda: RandomForestClassifier(
        n_estimators=8, max_depth=5, min_samples_leaf=5, class_weight="balanced", random_state=0
    ),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(
        max_iter=6, max_leaf_nodes=8, class_weight="balanced", random_state=0
    ),
}


@pytest.mark.parametrize(("classes", "features"), [(2, 4), (3, 5), (2, 6)])
@pytest.mark.parametrize("name", list(SMALL_MODELS))
def test_treeshap_equals_the_shapley_values_of_the_trees_conditional_expectation(name, classes, features):
    X, y = _small_data(classes, features)
    estimator = SMALL_MODELS[name]().fit(X, y)
    rows = np.vstack([X[:4], X[np.isnan(X).any(axis=1)][:3]])  # rows with missing values among them

    base, values = TreeShap(estimator, features).values(rows)

    for x, phi, raw in zip(rows, values, _raw(estimator, rows), strict=True):
        expected_base, expected_phi, expected_raw = _brute_force(estimator, x)
        np.testing.assert_allclose(expected_raw, raw, atol=1e-9)  # the slow way follows the model's own splits
        np.testing.assert_allclose(base, expected_base, atol=1e-9)
        np.testing.assert_allclose(phi, expected_phi, atol=1e-9)


def test_tree_models_are_explained_without_shap_installed():
    """shap is no longer a requirement: a tree model is explained in a process where importing it fails."""
    code = (
        "import sys; sys.modules['shap'] = None\n"
        "from mltraining.tests.ml.test_explain import fitted, frame\n"
        "from mltraining.ml.explain import explain\n"
        "X, y = frame()\n"
        "print(explain(fitted('hist_gradient_boosting', X, y), X.iloc[:3]).method)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "treeshap"


def test_a_tree_that_is_one_leaf_is_explained_by_its_base_value_alone():
    X, y = _small_data(2, 4)
    estimator = DecisionTreeClassifier(min_samples_split=len(X) + 1).fit(X, y)  # never splits

    base, values = TreeShap(estimator, 4).values(X[:3])

    np.testing.assert_allclose(base, estimator.predict_proba(X[:1])[0])
    assert not values.any()


# LightGBM's tree paths are read from the model's text; they were read from `dump_model`'s JSON, walked in Python.
# The walk, kept here as the reference: a model loaded from its artifact (as every prediction's is) gets the same
# matrices (to a bit or two: the text's 6-digit node values are read by Python, correctly rounded, and by LightGBM's
# own parser, which may differ in the last bit), so its patients' explanations are the same numbers as before.
def _paths_from_json(booster, n_columns):
    from scipy import sparse

    def walk(node, value, path, leaves):
        if "leaf_index" in node or "split_feature" not in node:
            leaves[int(node.get("leaf_index", 0))] = path
            return
        feature = int(node["split_feature"])
        for side in ("left_child", "right_child"):
            child = node[side]
            child_value = child.get("internal_value", child.get("leaf_value", 0.0))
            step = dict(path)
            step[feature] = step.get(feature, 0.0) + child_value - value
            walk(child, child_value, step, leaves)

    dump = booster.dump_model()
    n_outputs = max(int(dump["num_class"]), 1)
    trees = dump["tree_info"]
    base, matrices = np.zeros(n_outputs), []
    for k in range(n_outputs):
        rows = []
        for t in range(k, len(trees), n_outputs):
            structure = trees[t]["tree_structure"]
            root = structure.get("internal_value", structure.get("leaf_value", 0.0))
            base[k] += root
            leaves = {}
            walk(structure, root, {}, leaves)
            rows += [leaves[i] for i in range(len(leaves))]
        entries = [(r, column, value) for r, path in enumerate(rows) for column, value in path.items()]
        r, c, v = zip(*entries, strict=True) if entries else ((), (), ())
        matrices.append(sparse.csr_matrix((v, (r, c)), shape=(len(rows), n_columns)).toarray())
    return base, matrices


@pytest.mark.parametrize("classes", [2, 3])
def test_lightgbm_paths_read_from_the_model_text_equal_the_json_walk_for_a_loaded_model(classes):
    from mltraining.ml import explain as module
    from mltraining.ml.artifact import model_dumps, model_loads

    X, y = frame(n=600, classes=classes, seed=3)
    payload, info = model_dumps(fitted("lightgbm", X, y), feature_schema={}, data_hash="", rows=len(X), classes=[])
    model = model_loads(payload, expected_sha256=info.sha256, sklearn_version=info.sklearn_version)
    estimator = module.base_pipeline(model).named_steps["model"]
    n_columns = estimator.n_features_in_

    paths = module._LightGBMPaths.of(estimator.booster_, n_columns)
    base, matrices = _paths_from_json(estimator.booster_, n_columns)

    np.testing.assert_allclose(paths.base, base, rtol=1e-14, atol=1e-15)
    assert len(paths.matrices) == len(matrices) == (1 if classes == 2 else classes)
    for ours, reference in zip(paths.matrices, matrices, strict=True):
        assert (ours.toarray() != 0).sum() == (reference != 0).sum()  # the same splits on the same columns
        np.testing.assert_allclose(ours.toarray(), reference, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("classes", [2, 3])
def test_lightgbm_paths_stored_and_read_back_explain_exactly_as_those_prepared_from_the_model(classes, builds):
    """What training stores beside the artifact (`prepared_dumps`) and a worker reads (`prepared_loads`) instead of
    preparing the paths again: the same contributions, to the bit, and no preparation by the worker."""
    from mltraining.ml.artifact import model_dumps, model_loads
    from mltraining.ml.explain import prepared_dumps, prepared_loads

    X, y = frame(n=600, classes=classes, seed=3)
    payload, info = model_dumps(fitted("lightgbm", X, y), feature_schema={}, data_hash="", rows=len(X), classes=[])
    trained, worker = (model_loads(payload, expected_sha256=info.sha256, sklearn_version=info.sklearn_version)
                       for _ in range(2))  # fmt: skip
    expected = explain(trained, X.iloc[:50])
    assert len(builds) == 1

    prepared_loads(worker, prepared_dumps(trained))
    explanation = explain(worker, X.iloc[:50])

    assert len(builds) == 1  # the first model's preparation only
    np.testing.assert_array_equal(explanation.contributions, expected.contributions)
    np.testing.assert_array_equal(explanation.base_values, expected.base_values)
