"""Save and load a fitted model safely: skops format, checksum, version check, explicit type allow-list.

A pickle runs arbitrary code when loaded, so a model file that someone could swap on disk would be a
remote-code hole. skops stores the object tree as data and refuses types it does not trust; on top of
that the loader checks the file's sha256 against the one recorded when it was registered, and refuses a
file written by another scikit-learn version (estimators' internals change between releases). There is
no pickle fallback anywhere.

skops is imported where a model is saved or loaded, not with this module: importing it enumerates every
scikit-learn estimator (seconds of imports), which every web process and management command would otherwise
pay at start-up without ever touching a model. Celery workers import it once in their parent process
(`import_libraries`, from predictions.tasks) so the forked pool processes share it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
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


def metadata_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target, flush to disk, then rename: a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(
    model: Any, path: Path, *, feature_schema: dict, data_hash: str, rows: int, classes: list[str]
) -> ArtifactInfo:
    """Write `path` (skops) and `path.with_suffix(".json")` (metadata, including the sha256 of the model bytes)."""
    import skops.io as sio

    path = Path(path)
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
    # The model first: metadata that points at a file not yet written would be a lie.
    _write_atomic(path, payload)
    _write_atomic(metadata_path(path), json.dumps(info.to_dict(), indent=2, sort_keys=True).encode())
    return info


def load_model(path: Path, *, expected_sha256: str) -> tuple[Any, ArtifactInfo]:
    """Load a model saved by `save_model`, or raise ArtifactError saying why it is refused."""
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"Model file {path} is missing. Restore it from backup or retrain the model.")
    payload = path.read_bytes()
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected_sha256:
        raise ArtifactError(
            f"Model file {path} does not match its registered checksum (expected {expected_sha256[:12]}..., "
            f"found {actual[:12]}...): it was changed or corrupted after it was saved. It will not be loaded; "
            "retrain or restore the original file."
        )
    info = _read_metadata(path, actual)
    installed = _installed("scikit-learn")
    if info.sklearn_version != installed:
        raise ArtifactError(
            f"Model file {path} was saved with scikit-learn {info.sklearn_version}, but this server runs "
            f"{installed}. Estimators change between releases, so it will not be loaded; retrain the model here."
        )
    untrusted = sio.get_untrusted_types(data=payload)
    refused = sorted(set(untrusted) - ALLOWED_TYPES)
    if refused:
        raise ArtifactError(
            f"Model file {path} contains types outside the allow-list: {', '.join(refused)}. It will not be loaded."
        )
    try:
        model = sio.loads(payload, trusted=untrusted)
    except Exception as exc:  # skops raises a variety of errors on a damaged tree; all mean "do not use"
        raise ArtifactError(f"Model file {path} could not be read: {exc}") from exc
    return model, info


def _read_metadata(path: Path, sha256: str) -> ArtifactInfo:
    meta = metadata_path(path)
    if not meta.is_file():
        raise ArtifactError(f"Metadata file {meta} for model {path} is missing; the model will not be loaded.")
    try:
        info = ArtifactInfo(**json.loads(meta.read_text()))
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"Metadata file {meta} is unreadable ({exc}); the model will not be loaded.") from exc
    if info.sha256 != sha256:
        raise ArtifactError(f"Metadata file {meta} describes a different model file than {path}; refusing to load.")
    return info
