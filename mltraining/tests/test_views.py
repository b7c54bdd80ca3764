import pytest
from django.urls import reverse

from clinic.models import AuditEvent
from mltraining import services
from mltraining.ml.labels import CLASS_DISPLAY
from mltraining.ml.train import TrainingConfig
from mltraining.models import ModelStatus
from mltraining.tests.factories import CLINIC_PROVENANCE, FAST_CONFIG, SYNTHETIC_PROVENANCE, ModelVersionFactory
from patients.demo import demo_cohort_load


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    return settings.MODEL_DIR


@pytest.fixture
def trained_version(demo_clinic_a):
    demo_cohort_load(clinic=demo_clinic_a, n_patients=400, seed=9)
    run = services.training_run_request(
        clinic=demo_clinic_a, by=None, config=TrainingConfig(**FAST_CONFIG), enqueue=False
    )
    return services.training_run_execute(run_id=run.pk).model_version


@pytest.fixture
def version_a(clinic_a, trained_artifact):
    return ModelVersionFactory.create_with_artifact(trained_artifact, clinic=clinic_a, status=ModelStatus.ACTIVE)


def test_the_model_card_gives_each_condition_its_roc_auc_with_an_interval_and_its_patients(
    client, admin_a, trained_version
):
    per_class = trained_version.metrics["test"]["class_roc_auc"]
    page = _card(client, admin_a, trained_version).content.decode()

    table = page[page.index('data-testid="conditions-table"') :].split("</table>")[0]
    assert len(per_class) >= 3
    for name, row in per_class.items():
        assert CLASS_DISPLAY[name] in table
        assert (
            f"<td>{row['positives']}</td><td>{row['auc']:.3f}</td><td>{row['low']:.3f}–{row['high']:.3f}</td>" in table
        )
        assert row["low"] <= row["auc"] <= row["high"]


def _card(client, user, version):
    client.force_login(user)
    return client.get(reverse("mltraining:model_card", args=[version.pk]))


@pytest.mark.hazard(
    "H6", "The model card states 'not a diagnosis', what is out of scope, its training data and confidence intervals"
)
def test_the_model_card_of_a_trained_version_tells_its_use_data_metrics_and_limits(client, admin_a, trained_version):
    response = _card(client, admin_a, trained_version)

    page = response.content.decode()
    assert response.status_code == 200
    assert "not a diagnosis" in page
    assert "Out of scope" in page
    assert trained_version.data_hash in page
    assert str(trained_version.rows) in page
    assert "95 % CI" in page
    assert "Female" in page.title()
    assert "age band" in page.lower()
    assert "random_forest" in page
    assert "logistic_regression" in page
    assert "synthetic demo data" in page
    assert "co-occur" in page
    assert "label noise" in page
    assert 'data-testid="version-history"' in page
    assert "promotion gate" in page
    assert f"Trained on synthetic demo data ({trained_version.rows:,} patients)." in page
    assert "Synthetic demo diagnoses" in page
    assert AuditEvent.objects.filter(action="model_version.view_card", actor=admin_a).exists()


def test_the_model_card_says_how_many_labels_came_from_a_trusted_import_source(client, admin_a, trained_artifact):
    trusted = {**CLINIC_PROVENANCE, "labels": {"doctor": 10, "trusted": 52, "demo": 0}, "trusted_sources": ["fhir"]}
    version = ModelVersionFactory.create_with_artifact(trained_artifact, clinic=admin_a.clinic, provenance=trusted)

    page = _card(client, admin_a, version).content.decode()

    assert (
        "Trained on this clinic&#x27;s records: 1,200 patients, 10 doctor-confirmed diagnoses, 52 from a trusted"
        in page
    )
    assert '<tr><td>Labels from a trusted import source</td><td class="text-end">52</td></tr>' in page
    assert "Patients with results from: FHIR import" in page


def test_the_model_card_warns_that_a_synthetic_version_active_in_a_real_clinic_scores_nobody(
    client, admin_a, trained_artifact
):
    version = ModelVersionFactory.create_with_artifact(
        trained_artifact, clinic=admin_a.clinic, status=ModelStatus.ACTIVE, provenance=SYNTHETIC_PROVENANCE
    )

    page = _card(client, admin_a, version).content.decode()

    assert 'data-testid="unusable"' in page
    assert "Trained on synthetic demo data (2,000 patients)." in page


def test_the_model_card_is_linked_from_the_version_admin(client, admin_a, version_a):
    client.force_login(admin_a)

    page = client.get(reverse("admin:mltraining_modelversion_changelist")).content.decode()

    assert reverse("mltraining:model_card", args=[version_a.pk]) in page


def test_a_superuser_reads_any_clinics_model_card(client, superuser, version_a):
    assert _card(client, superuser, version_a).status_code == 200


def test_the_model_card_of_another_clinic_is_a_404(client, admin_b, version_a):
    assert _card(client, admin_b, version_a).status_code == 404


@pytest.mark.parametrize("role_fixture", ["doctor_a", "staff_a", "patient_user_a"])
def test_the_model_card_is_forbidden_to_other_roles(client, request, role_fixture, version_a):
    assert _card(client, request.getfixturevalue(role_fixture), version_a).status_code == 403


def test_the_model_card_needs_a_login(client, version_a):
    response = client.get(reverse("mltraining:model_card", args=[version_a.pk]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
