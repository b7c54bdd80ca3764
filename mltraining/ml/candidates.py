"""The candidate classifiers the training run compares, and the one preprocessing pipeline they share.

Every candidate is single-threaded (n_jobs=1) so a worker's cost is predictable, and uses balanced class
weights where the estimator supports them: the diagnoses are imbalanced and a rare condition must not be
traded away for accuracy on the healthy majority.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, TransformerMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import _safe_indexing

from mltraining.ml.features import DERIVED, NORMAL_RANGES, derived_features, normal_limits
from mltraining.ml.labels import HEALTHY

# A kernel SVM costs O(n^2) to O(n^3) in the rows it is fitted on; above this many rows it is fitted on a
# stratified subsample, so the full comparison stays within its time budget. The run log says so.
SVC_MAX_ROWS = 3000


class SubsampledClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Fit `estimator` on a stratified random subsample of at most `max_samples` rows; predict with it."""

    def __init__(self, estimator: ClassifierMixin, max_samples: int = SVC_MAX_ROWS, random_state: int | None = None):
        self.estimator = estimator
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X, y):
        y = np.asarray(y)
        idx = stratified_subsample(y, self.max_samples, self.random_state)
        self.estimator_ = clone(self.estimator).fit(_safe_indexing(X, idx), y[idx])
        self.classes_ = self.estimator_.classes_
        self.n_fit_rows_ = len(idx)
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self.estimator_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        return self.estimator_.predict(X)


class NormalMasker(TransformerMixin, BaseEstimator):
    """Read every lab or vital inside its adult reference range (for the row's sex; the narrower range when the sex
    is not recorded) as one typical normal value (`typical_normal`), and a test not done as that same value; then
    compute the derived values (eGFR, ratios, indices) again from what is left.

    So a normal result and a test not done weigh exactly alike (removing a normal result cannot change a risk),
    a patient whose every result is normal is scored as the typical healthy profile, and the model learns from
    abnormal results and their size. Columns it does not know (`NORMAL_RANGES`) pass through.
    """

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = X.copy()
        # Every lab at once, in numpy: this runs for every frame scored or explained.
        codes = [code for code in NORMAL_RANGES if code in X.columns]
        low, high = normal_limits(X, codes)
        values = X[codes].to_numpy(dtype=float)
        normal_or_missing = np.isnan(values) | ((values >= low) & (values <= high))
        X[codes] = np.where(normal_or_missing, typical_normal(low, high), values)
        if all(column in X.columns for column in DERIVED) and "age" in X.columns:
            for name, column in derived_features(X, age=X["age"], sex=X["sex"]).items():
                X[name] = column
        return X

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features, dtype=object)


def typical_normal(low, high):
    """A value in the middle of a normal range, or well inside an open one (70 % of an upper limit, 120 % of a
    lower one); an open side is infinite (`features.normal_range`). For numbers or arrays of them."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    with np.errstate(invalid="ignore"):  # the middle of an open range (inf - inf) is computed, then not taken
        middle = (low + high) / 2
    return np.where(np.isfinite(low) & np.isfinite(high), middle, np.where(np.isfinite(high), 0.7 * high, 1.2 * low))


class ReferenceImputer(TransformerMixin, BaseEstimator):
    """Fill a missing value with the median of the training rows labelled `reference` (no target condition).

    A test that was not done is read as the typical value of a patient without any target condition, never as
    the population's median (which the sick pull towards abnormal) and never as a signal of its own: no missing-
    value indicators, so which panels a clinician ordered cannot become evidence of disease. A column empty among
    the reference rows falls back to all rows, then to 0. Fitted with the labels (`fit(X, y)`), which a Pipeline
    and CalibratedClassifierCV pass down.
    """

    def __init__(self, reference: str = "healthy"):
        self.reference = reference

    def fit(self, X, y=None):
        values = np.asarray(X, dtype=float)
        rows = values if y is None else values[np.asarray(y) == self.reference]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: handled below
            fill = np.nanmedian(rows, axis=0) if len(rows) else np.full(values.shape[1], np.nan)
            overall = np.nanmedian(values, axis=0) if len(values) else np.full(values.shape[1], np.nan)
        self.statistics_ = np.where(np.isnan(fill), np.where(np.isnan(overall), 0.0, overall), fill)
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, X):
        values = np.array(X, dtype=float)
        missing = np.isnan(values)
        values[missing] = np.broadcast_to(self.statistics_, values.shape)[missing]
        return values

    def get_feature_names_out(self, input_features=None):
        return np.asarray(
            input_features if input_features is not None else [f"x{i}" for i in range(self.n_features_in_)],
            dtype=object,
        )


def stratified_subsample(y: np.ndarray, max_samples: int, random_state: int | None) -> np.ndarray:
    """Sorted row indices: all rows when there are few enough, else the same share of every class.

    Each class keeps at least one row (a class of one would make a stratified splitter fail).
    """
    n = len(y)
    if n <= max_samples:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    share = max_samples / n
    picked = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        take = max(1, round(len(rows) * share))
        picked.append(rng.choice(rows, size=take, replace=False))
    return np.sort(np.concatenate(picked))


def _dummy(random_state: int) -> ClassifierMixin:
    # "prior" predicts the training class shares for everyone: the baseline every model must beat.
    return DummyClassifier(strategy="prior", random_state=random_state)


def _logistic_regression(random_state: int) -> ClassifierMixin:
    return LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced", random_state=random_state)


def _decision_tree(random_state: int) -> ClassifierMixin:
    # Bounded depth and leaf size: an unbounded tree predicts 0/1 probabilities and is useless for risk.
    return DecisionTreeClassifier(max_depth=8, min_samples_leaf=10, class_weight="balanced", random_state=random_state)


def _random_forest(random_state: int) -> ClassifierMixin:
    return RandomForestClassifier(
        n_estimators=100,
        min_samples_leaf=3,
        max_features="sqrt",
        class_weight="balanced",
        n_jobs=1,
        random_state=random_state,
    )


def _hist_gradient_boosting(random_state: int) -> ClassifierMixin:
    # 63 bins instead of 255: half the fitting time on the demo cohort for the same held-out AUC.
    return HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=200,
        max_leaf_nodes=15,
        max_bins=63,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        class_weight="balanced",
        random_state=random_state,
    )


def _svc(random_state: int) -> ClassifierMixin:
    # SVC(probability=True) is deprecated in scikit-learn 1.9; its documented replacement is
    # CalibratedClassifierCV(SVC(), ensemble=False), Platt scaling on 3-fold out-of-fold decision values.
    svc = SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced", random_state=random_state)
    calibrated = CalibratedClassifierCV(svc, method="sigmoid", cv=3, ensemble=False)
    return SubsampledClassifier(calibrated, max_samples=SVC_MAX_ROWS, random_state=random_state)


def _mlp(random_state: int) -> ClassifierMixin:
    # MLPClassifier has no class_weight; early stopping on a 10 % validation split bounds its cost.
    return MLPClassifier(
        hidden_layer_sizes=(64, 32),
        alpha=1e-3,
        learning_rate_init=1e-3,
        max_iter=300,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        random_state=random_state,
    )


def _lightgbm(random_state: int) -> ClassifierMixin:
    return LGBMClassifier(
        n_estimators=100,
        learning_rate=0.1,
        num_leaves=15,
        min_child_samples=20,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        class_weight="balanced",
        importance_type="gain",
        n_jobs=1,
        verbose=-1,
        random_state=random_state,
    )


CANDIDATES: dict[str, Callable[[int], ClassifierMixin]] = {
    "dummy": _dummy,
    "logistic_regression": _logistic_regression,
    "decision_tree": _decision_tree,
    "random_forest": _random_forest,
    "hist_gradient_boosting": _hist_gradient_boosting,
    "svc": _svc,
    "mlp": _mlp,
    "lightgbm": _lightgbm,
}


def build_pipeline(estimator: ClassifierMixin, numeric: list[str], categorical: list[str]) -> Pipeline:
    """Impute, scale and one-hot encode the raw columns, then the estimator.

    Absence is not evidence: a missing numeric value is the median of the patients without a target condition
    (`ReferenceImputer`), with no missing-value indicator. Every column is kept, an empty one too, so the
    transformed layout is always "every numeric, then the one-hot columns", which `output_feature_sources`
    relies on.
    """
    numeric_steps = make_pipeline(ReferenceImputer(reference=HEALTHY), StandardScaler())
    categorical_steps = make_pipeline(
        SimpleImputer(strategy="most_frequent", keep_empty_features=True), OneHotEncoder(handle_unknown="ignore")
    )
    pre = ColumnTransformer([("num", numeric_steps, list(numeric)), ("cat", categorical_steps, list(categorical))])
    return Pipeline([("normal", NormalMasker()), ("pre", pre), ("model", estimator)])


def output_feature_sources(pipeline: Pipeline) -> list[str]:
    """The raw column each transformed column comes from (missing indicators and one-hot columns included)."""
    pre: ColumnTransformer = pipeline.named_steps["pre"]
    sources: list[str] = []
    for name, transformer, columns in pre.transformers_:
        if len(columns) == 0:
            continue  # an empty selection is never fitted
        if name == "num":
            sources += list(columns)
        elif name == "cat":
            encoder: OneHotEncoder = transformer.steps[-1][1]
            for column, categories in zip(columns, encoder.categories_, strict=True):
                sources += [column] * len(categories)
    return sources


def base_pipeline(model) -> Pipeline:
    """The fitted pipeline inside a calibrated model (or the model itself when it is a pipeline)."""
    if isinstance(model, CalibratedClassifierCV):
        return model.calibrated_classifiers_[0].estimator
    return model


def native_importance(model) -> dict[str, float]:
    """Model-native importance per raw column, summing its one-hot and indicator columns, normalised to 1.

    Trees: impurity decrease (LightGBM: split gain); linear: mean |coefficient| over classes (inputs are
    standardised, so magnitudes compare). Empty for models without one (SVC, MLP, boosting by histograms).
    """
    pipeline = base_pipeline(model)
    estimator = pipeline.named_steps["model"]
    if hasattr(estimator, "feature_importances_"):
        values = np.asarray(estimator.feature_importances_, dtype=float)
    elif hasattr(estimator, "coef_"):
        values = np.abs(np.atleast_2d(estimator.coef_)).mean(axis=0)
    else:
        return {}
    sources = output_feature_sources(pipeline)
    totals = pd.Series(values, index=sources).groupby(level=0, sort=False).sum()
    if totals.sum() > 0:
        totals = totals / totals.sum()
    return {str(k): float(v) for k, v in totals.sort_values(ascending=False).items()}
