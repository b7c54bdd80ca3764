import hashlib
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mltraining.ml.artifact import ArtifactError, model_dumps, model_loads
from mltraining.ml.candidates import CANDIDATES, build_pipeline

NUMERIC = ["glucose", "hemoglobin"]
CATEGORICAL = ["sex"]
SCHEMA = {"numeric": NUMERIC, "categorical": CATEGORICAL}


def _frame(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    y = pd.Series(rng.choice(["anemia", "diabetes", "healthy"], n))
    X = pd.DataFrame(
        {
            "glucose": rng.normal(5, 1, n) + np.where(y == "diabetes", 2.0, 0.0),
            "hemoglobin": rng.normal(14, 1, n) - np.where(y == "anemia", 2.5, 0.0),
            "sex": rng.choice(["female", "male"], n),
        }
    )
    X.loc[::9, "hemoglobin"] = np.nan
    return X, y


def _calibrated(name: str, X: pd.DataFrame, y: pd.Series):
    """The shape training stores: the candidate's pipeline inside CalibratedClassifierCV(ensemble=False)."""
    estimator = CANDIDATES[name](0)
    if name == "svc":
        estimator.set_params(max_samples=120)  # exercise the subsampling wrapper on a small frame
    model = CalibratedClassifierCV(build_pipeline(estimator, NUMERIC, CATEGORICAL), cv=3, ensemble=False)
    with threadpool_limits(limits=1):
        return model.fit(X, y)


@pytest.fixture(scope="module")
def data():
    return _frame()


@pytest.fixture
def saved(data):
    X, y = data
    model = _calibrated("logistic_regression", X, y)
    payload, info = model_dumps(
        model, feature_schema=SCHEMA, data_hash="d" * 64, rows=len(X), classes=["anemia", "diabetes", "healthy"]
    )
    return model, payload, info


def _loads(payload: bytes, info, **changes):
    expected = {"expected_sha256": info.sha256, "sklearn_version": info.sklearn_version, **changes}
    return model_loads(payload, **expected)


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_every_candidate_saves_and_loads_with_identical_probabilities(data, name):
    X, y = data
    model = _calibrated(name, X, y)

    payload, info = model_dumps(model, feature_schema=SCHEMA, data_hash="d" * 64, rows=len(X),
                                classes=list(model.classes_))  # fmt: skip
    loaded = _loads(payload, info)

    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_the_artifact_is_a_skops_zip_described_by_its_metadata(saved):
    _, payload, info = saved

    assert zipfile.is_zipfile(io.BytesIO(payload))  # skops' format, never a pickle
    assert info.sha256 == hashlib.sha256(payload).hexdigest()
    assert info.feature_schema == SCHEMA
    assert info.rows == 240
    assert info.library_versions["scikit-learn"] == info.sklearn_version
    assert info.created_at.endswith("+00:00")


def test_a_tampered_artifact_is_refused(saved):
    _, payload, info = saved
    data = bytearray(payload)
    data[len(data) // 2] ^= 0x01  # one byte changed

    with pytest.raises(ArtifactError, match="does not match its registered checksum"):
        _loads(bytes(data), info)


def test_a_wrong_expected_hash_is_refused(saved):
    _, payload, info = saved

    with pytest.raises(ArtifactError, match="changed or corrupted"):
        _loads(payload, info, expected_sha256="0" * 64)


def test_a_model_saved_with_another_scikit_learn_version_is_refused(saved):
    _, payload, info = saved

    with pytest.raises(ArtifactError, match="saved with scikit-learn 0.24.2"):
        _loads(payload, info, sklearn_version="0.24.2")


class Shady(TransformerMixin, BaseEstimator):
    """A type nobody put on the allow-list."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


def test_a_type_outside_the_allow_list_is_refused(data):
    X, y = data
    model = Pipeline([("shady", Shady()), ("model", build_pipeline(CANDIDATES["dummy"](0), NUMERIC, CATEGORICAL))])
    model.fit(X, y)
    payload, info = model_dumps(model, feature_schema=SCHEMA, data_hash="d" * 64, rows=len(X), classes=["a"])

    with pytest.raises(ArtifactError, match=r"outside the allow-list: mltraining\.tests\.ml\.test_artifact\.Shady"):
        _loads(payload, info)


def test_starting_django_does_not_import_skops_but_a_worker_does_before_forking():
    """Web processes and commands never load a model: they must not pay skops' seconds of imports at start-up;
    the Celery worker's parent imports it once so its pool processes share it."""
    import subprocess
    import sys

    script = (
        "import sys, django\n"
        "django.setup()\n"
        "print('skops.io' in sys.modules)\n"
        "from celery.signals import worker_init\n"
        "import predictions.tasks\n"
        "worker_init.send(sender=None)\n"
        "print('skops.io' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
