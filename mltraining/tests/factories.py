"""Rows of the model registry for tests, and a cheap stand-in for a real training run."""

import factory

from clinic.blobs import blob_save
from clinic.models import Blob, BlobChunk, BlobKind
from clinic.tests.factories import ClinicFactory
from mltraining.models import ModelStatus, ModelVersion, TrainingRun, TrainingStatus

FAST_CONFIG = {
    "candidates": ("dummy", "logistic_regression", "random_forest"),
    "cv_folds": 3,
    "bootstrap_rounds": 50,
    "permutation_repeats": 2,
}
# For tests about what happens around training rather than its quality.
CHEAP_CONFIG = {"candidates": ("dummy", "logistic_regression"), "cv_folds": 2, "bootstrap_rounds": 10,
                "permutation_repeats": 1}  # fmt: skip
# What `mltraining.provenance.provenance_build` records for a model of a clinic's own records, and for one of the demo.
CLINIC_PROVENANCE = {
    "schema": 1, "patients": 1200, "synthetic_patients": 0, "patients_by_source": {"fhir": 900, "manual": 1200},
    "observations_by_source": {"fhir": 40000, "manual": 9000}, "labels": {"doctor": 310, "trusted": 0, "demo": 0},
    "trusted_sources": [], "synthetic": False, "synthetic_share": 0.0,
}  # fmt: skip
SYNTHETIC_PROVENANCE = {
    "schema": 1, "patients": 2000, "synthetic_patients": 2000, "patients_by_source": {"demo": 2000},
    "observations_by_source": {"demo": 90000}, "labels": {"doctor": 0, "trusted": 0, "demo": 700},
    "trusted_sources": [], "synthetic": True, "synthetic_share": 1.0,
}  # fmt: skip


class TrainingRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrainingRun

    clinic = factory.SubFactory(ClinicFactory)
    status = TrainingStatus.SUCCEEDED
    chosen = "lightgbm"
    reason = "Best mean cross-validated macro ROC-AUC."


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A version whose artifact is the session's trained model (conftest `trained_artifact`), stored in the test's
    database as training stores it (a copy per version, so tampering with one touches only it)."""

    class Meta:
        model = ModelVersion

    clinic = factory.SubFactory(ClinicFactory)
    version = factory.Sequence(lambda n: n + 1)
    training_run = factory.SubFactory(TrainingRunFactory, clinic=factory.SelfAttribute("..clinic"))
    sha256 = ""
    sklearn_version = ""
    data_hash = "0" * 64
    rows = 1200
    classes = factory.LazyFunction(lambda: ["ckd", "diabetes", "healthy"])
    metrics = factory.LazyFunction(lambda: {"test": {"roc_auc_ovr_macro": 0.9}})
    risk_thresholds = factory.LazyFunction(lambda: [0.2, 0.5])
    provenance = factory.LazyFunction(lambda: dict(CLINIC_PROVENANCE))
    status = ModelStatus.CANDIDATE

    @classmethod
    def create_with_artifact(cls, artifact, *, clinic, auc: float = 0.9, **kwargs) -> ModelVersion:
        info = artifact[2]
        version = cls.build(
            clinic=clinic,
            training_run=TrainingRunFactory(clinic=clinic),
            sha256=info.sha256,
            sklearn_version=info.sklearn_version,
            classes=info.classes,
            metrics={"test": {"roc_auc_ovr_macro": auc}},
            **kwargs,
        )
        version.artifact, version.explainer = artifact_blobs(artifact).values()
        version.save()
        return version


def artifact_blobs(artifact) -> dict[str, Blob | None]:
    """The session's trained artifact (`trained_artifact`) stored as training stores a version's: the model's bytes
    and its explanation's preparation, each a blob."""
    directory, name, _ = artifact
    explainer = directory / name.replace(".skops", ".explainer.npz")
    return {
        "artifact": blob_save(kind=BlobKind.ARTIFACT, pieces=[(directory / name).read_bytes()]),
        "explainer": blob_save(kind=BlobKind.ARTIFACT, pieces=[explainer.read_bytes()]) if explainer.exists() else None,
    }


def artifact_tamper(version: ModelVersion, change) -> None:
    """Change the stored bytes of the version's artifact in place, as a faulty disk or a hand in the database
    would: `change(bytes) -> bytes`. Its recorded checksum stays as it was."""
    chunk = BlobChunk.objects.get(blob_id=version.artifact_id, seq=0)
    chunk.data = change(bytes(chunk.data))
    chunk.save(update_fields=["data"])


def artifact_remove(version: ModelVersion) -> None:
    """Lose the version's stored artifact (a restore that left it out): its chunks are gone."""
    BlobChunk.objects.filter(blob_id=version.artifact_id).delete()
