import hashlib
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mltraining.ml.artifact import ArtifactError, load_model, metadata_path, save_model
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
def saved(tmp_path, data):
    X, y = data
    model = _calibrated("logistic_regression", X, y)
    path = tmp_path / "model.skops"
    info = save_model(
        model, path, feature_schema=SCHEMA, data_hash="d" * 64, rows=len(X), classes=["anemia", "diabetes", "healthy"]
    )
    return model, path, info


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_every_candidate_saves_and_loads_with_identical_probabilities(tmp_path, data, name):
    X, y = data
    model = _calibrated(name, X, y)
    path = tmp_path / f"{name}.skops"

    info = save_model(model, path, feature_schema=SCHEMA, data_hash="d" * 64, rows=len(X), classes=list(model.classes_))
    loaded, loaded_info = load_model(path, expected_sha256=info.sha256)

    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded_info == info


def test_the_artifact_is_a_skops_zip_with_metadata_beside_it_and_no_temp_files(saved, tmp_path):
    _, path, info = saved

    assert zipfile.is_zipfile(path)  # skops' format, never a pickle
    meta = json.loads(metadata_path(path).read_text())
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() == info.sha256
    assert meta["feature_schema"] == SCHEMA
    assert meta["rows"] == 240
    assert meta["library_versions"]["scikit-learn"] == info.sklearn_version
    assert meta["created_at"].endswith("+00:00")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.skops"]


def test_a_tampered_artifact_is_refused(saved):
    _, path, info = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte changed
    path.write_bytes(bytes(data))

    with pytest.raises(ArtifactError, match="does not match its registered checksum"):
        load_model(path, expected_sha256=info.sha256)


def test_a_wrong_expected_hash_is_refused(saved):
    _, path, _ = saved

    with pytest.raises(ArtifactError, match="changed or corrupted"):
        load_model(path, expected_sha256="0" * 64)


def test_a_model_saved_with_another_scikit_learn_version_is_refused(saved):
    _, path, info = saved
    meta = json.loads(metadata_path(path).read_text())
    meta["sklearn_version"] = "0.24.2"
    metadata_path(path).write_text(json.dumps(meta))

    with pytest.raises(ArtifactError, match="saved with scikit-learn 0.24.2"):
        load_model(path, expected_sha256=info.sha256)


def test_a_missing_file_or_missing_metadata_is_refused(saved, tmp_path):
    _, path, info = saved

    with pytest.raises(ArtifactError, match="is missing"):
        load_model(tmp_path / "other.skops", expected_sha256=info.sha256)
    metadata_path(path).unlink()
    with pytest.raises(ArtifactError, match="Metadata file .* is missing"):
        load_model(path, expected_sha256=info.sha256)


def test_metadata_that_belongs_to_another_file_is_refused(saved):
    _, path, info = saved
    meta = json.loads(metadata_path(path).read_text())
    meta["sha256"] = "f" * 64
    metadata_path(path).write_text(json.dumps(meta))

    with pytest.raises(ArtifactError, match="describes a different model file"):
        load_model(path, expected_sha256=info.sha256)


class Shady(TransformerMixin, BaseEstimator):
    """A type nobody put on the allow-list."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


def test_a_type_outside_the_allow_list_is_refused(tmp_path, data):
    X, y = data
    model = Pipeline([("shady", Shady()), ("model", build_pipeline(CANDIDATES["dummy"](0), NUMERIC, CATEGORICAL))])
    model.fit(X, y)
    path = tmp_path / "shady.skops"
    info = save_model(model, path, feature_schema=SCHEMA, data_hash="d" * 64, rows=len(X), classes=["a"])

    with pytest.raises(ArtifactError, match=r"outside the allow-list: mltraining\.tests\.ml\.test_artifact\.Shady"):
        load_model(path, expected_sha256=info.sha256)


def test_saving_again_replaces_the_file_in_one_step(saved, data):
    model, path, first = saved
    X, y = data
    other = _calibrated("dummy", X, y)

    second = save_model(other, path, feature_schema=SCHEMA, data_hash="e" * 64, rows=1, classes=list(other.classes_))

    assert second.sha256 != first.sha256
    loaded, info = load_model(path, expected_sha256=second.sha256)
    assert info.data_hash == "e" * 64
    with pytest.raises(ArtifactError):
        load_model(path, expected_sha256=first.sha256)


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
