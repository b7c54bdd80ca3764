"""Case 20: a corrupt or missing model artifact fails predictions clearly, keeps earlier results and can be
rolled back by an admin. A worker loads the active model once per process; here the cache is cleared to act
as a fresh worker process, which is when damaged bytes in the database are read."""

import pytest
from django.urls import reverse

from mltraining.models import ModelStatus
from mltraining.tests.factories import ModelVersionFactory, artifact_remove, artifact_tamper
from patients.demo import demo_cohort_load
from patients.models import Patient
from predictions import services
from predictions.models import Prediction, PredictionStatus


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    services._loaded.clear()
    yield settings.MODEL_DIR
    services._loaded.clear()


def _truncate(version):
    artifact_tamper(version, lambda data: data[: len(data) // 2])


def _remove(version):
    artifact_remove(version)


@pytest.mark.reliability(20, "The active model's stored bytes cut in half, then lost, under a fresh worker: the "
                             "prediction fails with the reason on the patient page, the earlier one stays "
                             "shown, an admin rolls back to the previous version and scoring works again")  # fmt: skip
@pytest.mark.parametrize("damage", [_truncate, _remove], ids=["corrupt", "missing"])
def test_a_damaged_artifact_fails_clearly_keeps_earlier_results_and_an_admin_rolls_back(
    client, clinic_a, admin_a, doctor_a, trained_artifact, damage
):
    demo_cohort_load(clinic=clinic_a, n_patients=3, seed=5)
    patient = Patient.objects.filter(clinic=clinic_a).first()
    v1 = ModelVersionFactory.create_with_artifact(trained_artifact, clinic=clinic_a, version=1,
                                                  status=ModelStatus.ARCHIVED)  # fmt: skip
    v2 = ModelVersionFactory.create_with_artifact(trained_artifact, clinic=clinic_a, version=2,
                                                  status=ModelStatus.ACTIVE)  # fmt: skip
    earlier = services.prediction_create(patient_id=patient.pk)
    assert (earlier.status, earlier.model_version) == (PredictionStatus.SUCCEEDED, v2)

    damage(v2)
    services._loaded.clear()  # a worker process started after the damage
    failed = services.prediction_create(patient_id=patient.pk)

    assert failed.status == PredictionStatus.FAILED
    assert failed.model_version == v2  # never a silent fallback to another version
    assert failed.error
    client.force_login(doctor_a)
    page = client.get(reverse("patients:detail", args=[patient.pk])).content.decode()
    assert "The model could not be used" in page
    assert "The last successful prediction is shown below" in page
    assert Prediction.objects.filter(pk=earlier.pk, status=PredictionStatus.SUCCEEDED).exists()

    client.force_login(admin_a)
    client.post(reverse("admin:mltraining_modelversion_rollback", args=[v1.pk]), {"reason": "v2 artifact damaged"})
    v1.refresh_from_db()
    assert v1.status == ModelStatus.ACTIVE

    again = services.prediction_create(patient_id=patient.pk)
    assert (again.status, again.model_version) == (PredictionStatus.SUCCEEDED, v1)
