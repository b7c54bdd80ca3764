"""`manage.py import_model_files`: artifacts and plots kept under MODEL_DIR before they moved into the database
are moved there, checked against the sha256 each version recorded; nothing unusable is imported."""

from io import StringIO

import pytest
from django.core.management import call_command

from clinic.models import AuditEvent, Blob
from mltraining import selectors
from mltraining.models import ModelStatus
from mltraining.tests.factories import ModelVersionFactory, TrainingRunFactory
from patients.demo import demo_cohort_load
from patients.models import Patient
from predictions import services as prediction_services
from predictions.models import PredictionStatus

pytestmark = pytest.mark.django_db


def _legacy_version(clinic, trained_artifact, model_dir, *, number, content=None, **kwargs):
    """A version as it was before this change: its artifact a file under MODEL_DIR, named by `artifact_path`."""
    directory, name, info = trained_artifact
    relative = f"clinic-{clinic.pk}/run-{number}/model.skops"
    path = model_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if content is not None else (directory / name).read_bytes())
    run = TrainingRunFactory(
        clinic=clinic,
        plots={
            "roc_curves": f"clinic-{clinic.pk}/run-{number}/roc_curves.png",
            "calibration": f"clinic-{clinic.pk}/run-{number}/gone.png",
        },
    )
    (model_dir / run.plots["roc_curves"]).write_bytes(b"\x89PNG roc")
    return ModelVersionFactory(clinic=clinic, version=number, training_run=run, artifact=None, artifact_path=relative,
                               sha256=info.sha256, sklearn_version=info.sklearn_version, classes=info.classes,
                               **kwargs)  # fmt: skip


def test_old_model_files_are_moved_into_the_database_and_score_again(clinic_a, trained_artifact, settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    demo_cohort_load(clinic=clinic_a, n_patients=3, seed=5)
    active = _legacy_version(clinic_a, trained_artifact, settings.MODEL_DIR, number=1, status=ModelStatus.ACTIVE)
    damaged = _legacy_version(clinic_a, trained_artifact, settings.MODEL_DIR, number=2, content=b"not the model")
    prediction_services._loaded.clear()
    patient = Patient.objects.filter(clinic=clinic_a).first()
    before = prediction_services.prediction_create(patient_id=patient.pk)
    assert before.status == PredictionStatus.FAILED
    assert "import_model_files" in before.error

    output = StringIO()
    call_command("import_model_files", stdout=output)

    active.refresh_from_db()
    damaged.refresh_from_db()
    assert active.artifact.sha256 == active.sha256
    assert active.explainer is not None  # its explanation paths, as training now stores them
    assert hasattr(selectors.model_version_model(version=active), "predict_proba")
    assert damaged.artifact is None  # never usable: not imported, and said so
    assert "does not match the version's recorded sha256; not imported" in output.getvalue()
    assert selectors.training_run_plot(run=active.training_run, name="roc_curves") == b"\x89PNG roc"
    active.training_run.refresh_from_db()
    assert set(active.training_run.plots) == {"roc_curves"}  # the missing plot is dropped, not left broken
    assert AuditEvent.objects.filter(action="model_version.artifact_import", object_id=str(active.pk)).exists()
    prediction_services._loaded.clear()
    after = prediction_services.prediction_create(patient_id=patient.pk)
    assert after.status == PredictionStatus.SUCCEEDED

    blobs_after_first_run = Blob.objects.count()
    call_command("import_model_files", stdout=StringIO())
    assert Blob.objects.count() == blobs_after_first_run  # run again: nothing imported twice
