"""Explanations are faithful: base value plus contributions equal the model's own raw output, per class."""

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV

from mltraining.ml.candidates import CANDIDATES, build_pipeline
from mltraining.ml.explain import UNAVAILABLE, base_raw_output, explain, top_contributions

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


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize(
    "name", ["lightgbm", "hist_gradient_boosting", "random_forest", "decision_tree", "logistic_regression"]
)
def test_base_value_plus_contributions_equals_the_models_raw_output(name, classes):
    X, y = frame(classes=classes)
    model = fitted(name, X, y)

    explanation = explain(model, X.iloc[:50])

    assert explanation.available
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
    """Every build of what a model's explanations need: LightGBM's tree paths, shap's TreeExplainer."""
    import shap

    from mltraining.ml import explain as module

    built = []

    def counting(build):
        def counted(*args, **kwargs):
            built.append(build)
            return build(*args, **kwargs)

        return counted

    monkeypatch.setattr(module, "_LightGBMPaths", counting(module._LightGBMPaths))
    monkeypatch.setattr(shap, "TreeExplainer", counting(shap.TreeExplainer))
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
