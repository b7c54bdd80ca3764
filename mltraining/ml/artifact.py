"""Turn a fitted model into bytes and back safely: skops format, checksum, version check, explicit type allow-list.

A pickle runs arbitrary code when loaded, so a stored model that someone could swap would be a remote-code
hole. skops stores the object tree as data and refuses types it does not trust; on top of that the loader
checks the bytes' sha256 against the one recorded when the model was registered, and refuses a model written
by another scikit-learn version (estimators' internals change between releases). There is no pickle fallback
anywhere. Where the bytes are kept is the Django side's business (`mltraining.services`: in the database).

skops is imported where a model is saved or loaded, not with this module: importing it enumerates every
scikit-learn estimator (seconds of imports), which every web process and management command would otherwise
pay at start-up without ever touching a model. Celery workers import it once in their parent process
(`import_libraries`, from predictions.tasks) so the forked pool processes share it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

# Types skops does not trust by default that our candidates legitimately contain. Everything else is
# refused. Found by saving every candidate (calibrated, as training stores them) and asking
# skops.io.get_untrusted_types; the artifact tests re-check that each candidate loads with exactly this list.
ALLOWED_TYPES = frozenset(
    {
        "collections.OrderedDict",
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        # Our own stratified-subsample wrapper around the SVC (plain data attributes only).
        "mltraining.ml.candidates.SubsampledClassifier",
        # Our own imputer (a fitted array of medians).
        "mltraining.ml.candidates.ReferenceImputer",
        "mltraining.ml.candidates.NormalMasker",
    }
)
LIBRARIES = ("scikit-learn", "numpy", "scipy", "pandas", "lightgbm", "skops")


def import_libraries() -> None:
    """Import what loading a model needs, ahead of the first load (see the module docstring)."""
    import skops.io  # noqa: F401


class ArtifactError(Exception):
    """A model file that must not be loaded; the message says why and what to do."""


@dataclass
class ArtifactInfo:
    sha256: str
    sklearn_version: str
    library_versions: dict[str, str]
    feature_schema: dict
    data_hash: str
    rows: int
    classes: list[str]
    created_at: str  # ISO 8601, UTC

    def to_dict(self) -> dict:
        return asdict(self)


def _installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def model_dumps(
    model: Any, *, feature_schema: dict, data_hash: str, rows: int, classes: list[str]
) -> tuple[bytes, ArtifactInfo]:
    """The model as skops bytes, and what is recorded beside them (including the sha256 of those bytes)."""
    import skops.io as sio

    payload = sio.dumps(model)
    info = ArtifactInfo(
        sha256=hashlib.sha256(payload).hexdigest(),
        sklearn_version=_installed("scikit-learn"),
        library_versions={name: _installed(name) for name in LIBRARIES},
        feature_schema=feature_schema,
        data_hash=data_hash,
        rows=int(rows),
        classes=[str(c) for c in classes],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return payload, info


def model_loads(payload: bytes, *, expected_sha256: str, sklearn_version: str, name: str = "The model") -> Any:
    """Load bytes written by `model_dumps`, or raise ArtifactError saying why they are refused.

    `expected_sha256` and `sklearn_version` are what was recorded when the model was registered; `name` says
    which model in the messages."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected_sha256:
        raise ArtifactError(
            f"{name} does not match its registered checksum (expected {expected_sha256[:12]}..., "
            f"found {actual[:12]}...): it was changed or corrupted after it was saved. It will not be loaded; "
            "retrain or restore the original."
        )
    installed = _installed("scikit-learn")
    if sklearn_version != installed:
        raise ArtifactError(
            f"{name} was saved with scikit-learn {sklearn_version}, but this server runs {installed}. "
            "Estimators change between releases, so it will not be loaded; retrain the model here."
        )
    # skops refuses the artifact if it holds a type outside ALLOWED_TYPES (and those it trusts by default), in the
    # one walk of its tree that loading makes; only then is the tree walked again, to name the refused types.
    try:
        return sio.loads(payload, trusted=sorted(ALLOWED_TYPES))
    except UntrustedTypesFoundException:
        refused = sorted(set(sio.get_untrusted_types(data=payload)) - ALLOWED_TYPES)
        raise ArtifactError(
            f"{name} contains types outside the allow-list: {', '.join(refused)}. It will not be loaded."
        ) from None
    except Exception as exc:  # skops raises a variety of errors on a damaged tree; all mean "do not use"
        raise ArtifactError(f"{name} could not be read: {exc}") from exc
