import csv
import io
import json

import numpy as np
import pytest
from django.urls import reverse, reverse_lazy

from clinic.blobs import blob_save
from clinic.models import AuditEvent, BlobKind
from clinic.testing import audit_write_queries, session_read_queries
from mltraining import services
from mltraining.ml.metrics import ROC_MAX_POINTS, classification_metrics, curve_points
from mltraining.ml.train import TrainingConfig
from mltraining.models import DriftReport, ModelStatus, ModelVersion
from mltraining.tests.factories import CHEAP_CONFIG, SYNTHETIC_PROVENANCE, ModelVersionFactory, TrainingRunFactory
from patients.demo import demo_cohort_load

CLASSES = ["ckd", "diabetes", "healthy"]
CHARTS = [
    "candidates", "confusion_matrix", "roc_curves", "calibration", "feature_importance", "permutation_importance",
    "drift", "versions",
]  # fmt: skip
# The user with their clinic, the version, the clinic's version history, its latest drift report; then the audit
# row, and the session unless it is read from Redis.
PAGE_QUERIES = 4
URL = reverse_lazy("mltraining:dashboard")


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    return settings.MODEL_DIR


def _held_out(seed: int = 0, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_idx = rng.integers(0, len(CLASSES), n)
    logits = rng.normal(size=(n, len(CLASSES)))
    logits[np.arange(n), y_idx] += 1.5
    return np.array(CLASSES)[y_idx], np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _stored_metrics(*, curves: bool = True, seed: int = 0) -> dict:
    """Metrics shaped as training stores them, from a small made-up test set."""
    test = classification_metrics(*_held_out(seed), CLASSES)
    if not curves:
        del test["curves"]
    metrics = {"test": test, "ci": {"roc_auc_ovr_macro": [0.7, 0.8]}, "baseline": {"roc_auc_ovr_macro": 0.5},
               "n_train": 1200, "n_test": 300}  # fmt: skip
    return json.loads(json.dumps(metrics))


def _candidate(name: str, auc: float, error: str = "") -> dict:
    if error:
        return {"name": name, "cv_scores": {}, "cv_mean": {}, "cv_std": {}, "fit_seconds": 0.1, "error": error}
    return {"name": name, "cv_scores": {"roc_auc_ovr_macro": [auc - 0.01, auc + 0.01]},
            "cv_mean": {"roc_auc_ovr_macro": auc}, "cv_std": {"roc_auc_ovr_macro": 0.014}, "fit_seconds": 0.5,
            "error": ""}  # fmt: skip


def _version(clinic, *, version: int, status: str = ModelStatus.ARCHIVED, curves: bool = True, plots=None):
    run = TrainingRunFactory(
        clinic=clinic,
        chosen="lightgbm",
        configuration={"selection_metric": "roc_auc_ovr_macro"},
        candidates=[_candidate("dummy", 0.5), _candidate("lightgbm", 0.8), _candidate("svc", 0, "ValueError: boom")],
        importances={
            "model": {"hba1c": 0.5, "creatinine": 0.3, "age": 0.2},
            "permutation": {"hba1c": [0.2, 0.01], "egfr": [0.05, 0.02]},
        },  # fmt: skip
        plots=plots or {},
    )
    return ModelVersionFactory(clinic=clinic, training_run=run, version=version, status=status, classes=CLASSES,
                               metrics=_stored_metrics(curves=curves, seed=version))  # fmt: skip


@pytest.fixture
def version_a(clinic_a):
    return _version(clinic_a, version=1, status=ModelStatus.ACTIVE)


@pytest.fixture
def drift_a(version_a):
    features = {
        "creatinine": {"psi": 2.4, "band": "major", "n": 140, "missing_share": 0.05},
        "hba1c": {"psi": 0.14, "band": "moderate", "n": 120, "missing_share": 0.2},
        "age": {"psi": 0.01, "band": "stable", "n": 150, "missing_share": 0.0},
    }
    return DriftReport.objects.create(
        clinic=version_a.clinic, model_version=version_a, window_days=30, n_recent=150, overall_band="major",
        report={"features": features, "predictions": {"psi": 0.03, "band": "stable"}},
    )  # fmt: skip


def _get(client, user, **params):
    client.force_login(user)
    return client.get(URL, params)


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# --- access ---------------------------------------------------------------------------------------------------------


def test_an_admin_sees_every_chart_of_the_clinics_active_version(client, admin_a, version_a, drift_a):
    response = _get(client, admin_a)

    page = response.content.decode()
    assert response.status_code == 200
    for key in CHARTS:
        assert f'data-chart="{key}"' in page, key
    assert 'data-testid="stored-plot"' not in page
    assert "Type 2 diabetes" in page  # class names in words
    assert "Chronic kidney disease" in page
    assert "Hemoglobin A1c" in page  # feature labels, not column names
    assert "Major shift" in page
    assert "plotly/plotly.min.js" in page
    assert reverse("mltraining:model_card", args=[version_a.pk]) in page
    assert "Trained on this clinic&#x27;s records: 1,200 patients, 310 doctor-confirmed diagnoses." in page
    assert 'data-testid="unusable"' not in page


def test_the_dashboard_says_a_synthetic_version_active_in_a_real_clinic_scores_nobody(client, admin_a, version_a):
    ModelVersion.objects.filter(pk=version_a.pk).update(provenance=SYNTHETIC_PROVENANCE)

    page = _get(client, admin_a).content.decode()

    assert "Trained on synthetic demo data (2,000 patients)." in page
    assert 'data-testid="unusable"' in page


@pytest.mark.parametrize("role_fixture", ["doctor_a", "staff_a", "patient_user_a"])
def test_the_dashboard_is_forbidden_to_other_roles(client, request, role_fixture, version_a):
    assert _get(client, request.getfixturevalue(role_fixture)).status_code == 403


def test_the_dashboard_needs_a_login(client, version_a):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_another_clinics_version_is_a_404(client, admin_b, version_a):
    assert _get(client, admin_b, version=version_a.pk).status_code == 404


@pytest.mark.parametrize("value", ["abc", "²", "9" * 30])
def test_a_version_id_that_is_no_database_id_is_a_404(client, admin_a, version_a, value):
    assert _get(client, admin_a, version=value).status_code == 404


def test_an_admin_of_a_clinic_without_a_model_sees_no_other_clinics_model(client, admin_b, version_a):
    response = _get(client, admin_b)

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="no-model"' in page
    assert 'data-testid="chart"' not in page
    assert str(version_a.clinic) not in page


def test_a_superuser_chooses_the_clinic(client, superuser, version_a, clinic_b):
    version_b = _version(clinic_b, version=1, status=ModelStatus.ACTIVE)

    response = _get(client, superuser, clinic=clinic_b.pk)

    page = response.content.decode()
    assert response.status_code == 200
    assert response.context["board"].version == version_b
    assert f'<option value="{clinic_b.pk}" selected>' in page
    assert version_a.clinic.name in page  # in the chooser


# --- which version --------------------------------------------------------------------------------------------------


def test_the_active_version_is_shown_before_a_newer_candidate(client, admin_a, version_a):
    _version(admin_a.clinic, version=2, status=ModelStatus.CANDIDATE)

    assert _get(client, admin_a).context["board"].version == version_a


def test_the_version_chooser_shows_another_version_of_the_clinic(client, admin_a, version_a):
    older = _version(admin_a.clinic, version=2, status=ModelStatus.CANDIDATE)

    response = _get(client, admin_a, version=older.pk)

    assert response.context["board"].version == older
    assert f'<option value="{older.pk}" selected>' in response.content.decode()


def test_a_version_without_curve_points_shows_its_stored_pictures_with_a_note(client, admin_a, model_dir):
    stored = [blob_save(kind=BlobKind.PLOT, pieces=[b"\x89PNG picture"]) for _ in range(2)]
    version = _version(admin_a.clinic, version=1, curves=False,
                       plots={"roc_curves": stored[0].pk, "calibration": stored[1].pk})  # fmt: skip

    response = _get(client, admin_a)

    page = response.content.decode()
    picture = reverse("admin:mltraining_trainingrun_plot", args=[version.training_run_id, "roc_curves"])
    assert 'data-chart="roc_curves"' not in page
    assert 'data-chart="calibration"' not in page
    assert picture in page
    assert reverse("admin:mltraining_trainingrun_plot", args=[version.training_run_id, "calibration"]) in page
    assert client.get(picture).content == b"\x89PNG picture"
    assert "trained before the points of this curve were stored" in page
    assert 'data-chart="confusion_matrix"' in page


def test_a_version_without_curve_points_or_pictures_says_so(client, admin_a):
    _version(admin_a.clinic, version=1, curves=False)

    page = _get(client, admin_a).content.decode()

    assert page.count("stored neither the points of this curve nor its picture") == 2


# --- audit, downloads and queries -----------------------------------------------------------------------------------


def test_each_view_records_one_audit_row_on_the_version(client, admin_a, version_a):
    _get(client, admin_a)

    event = AuditEvent.objects.get(action="dashboard.model.view")
    assert (event.actor, event.object_id, event.clinic_id) == (admin_a, str(version_a.pk), version_a.clinic_id)
    assert event.detail == {"version": 1}


@pytest.mark.parametrize("key", CHARTS)
def test_every_chart_downloads_its_data_as_csv(client, admin_a, version_a, drift_a, key):
    response = _get(client, admin_a, download=key)

    rows = _csv(response)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="model-riverside-v1-{key}.csv"' in response["Content-Disposition"]
    assert len(rows) > 1
    assert AuditEvent.objects.get(action="dashboard.model.view").detail == {"version": 1, "download": key}


def test_the_csv_data_is_what_the_charts_draw(client, admin_a, version_a, drift_a):
    confusion = _csv(_get(client, admin_a, download="confusion_matrix"))
    drift = _csv(_get(client, admin_a, download="drift"))
    roc = _csv(_get(client, admin_a, download="roc_curves"))

    matrix = version_a.metrics["test"]["confusion_matrix"]
    assert confusion[0] == ["recorded_diagnosis", "predicted_diagnosis", "patients", "share_of_recorded"]
    assert confusion[1][:3] == ["Chronic kidney disease", "Chronic kidney disease", str(matrix[0][0])]
    assert sum(int(row[2]) for row in confusion[1:]) == 300
    assert [row[0] for row in drift[1:]] == ["Creatinine", "Hemoglobin A1c", "Predicted diagnoses (class mix)", "Age"]
    assert {row[0] for row in roc[1:]} == {"Chronic kidney disease", "Type 2 diabetes", "No target condition"}


def test_an_unknown_download_is_a_404(client, admin_a, version_a):
    assert _get(client, admin_a, download="nonsense").status_code == 404


def test_the_query_count_does_not_grow_with_the_versions(client, admin_a, django_assert_num_queries):
    _version(admin_a.clinic, version=1, status=ModelStatus.ACTIVE)
    client.force_login(admin_a)
    client.get(URL)  # warm up: session activity

    with django_assert_num_queries(PAGE_QUERIES + session_read_queries() + audit_write_queries()):
        one = client.get(URL)
    for number in (2, 3, 4):
        _version(admin_a.clinic, version=number)
    with django_assert_num_queries(PAGE_QUERIES + session_read_queries() + audit_write_queries()):
        four = client.get(URL)

    assert (len(one.context["board"].history), len(four.context["board"].history)) == (1, 4)


# --- links ----------------------------------------------------------------------------------------------------------


def test_the_model_card_links_to_the_dashboard_of_its_version(client, admin_a, version_a):
    client.force_login(admin_a)

    page = client.get(reverse("mltraining:model_card", args=[version_a.pk])).content.decode()

    assert f"{reverse('mltraining:dashboard')}?version={version_a.pk}" in page


# --- what training stores -------------------------------------------------------------------------------------------


def test_curve_points_are_few_and_agree_with_scikit_learn():
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import roc_auc_score

    y, proba = _held_out(n=2000)

    curves = curve_points(y, proba, CLASSES)

    for j, label in enumerate(CLASSES):
        roc = curves["roc"][label]
        assert len(roc["fpr"]) <= ROC_MAX_POINTS
        assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
        assert roc["auc"] == pytest.approx(roc_auc_score(y == label, proba[:, j]))
        observed, predicted = calibration_curve(y == label, proba[:, j], n_bins=10, strategy="quantile")
        assert curves["calibration"][label]["observed"] == pytest.approx(observed, abs=1e-4)
        assert curves["calibration"][label]["predicted"] == pytest.approx(predicted, abs=1e-4)
        assert sum(curves["calibration"][label]["n"]) == len(y)


def test_a_class_with_too_few_patients_gets_a_roc_curve_but_no_calibration_bins():
    y, proba = _held_out(n=200)
    y[y == "ckd"] = "healthy"
    y[:3] = "ckd"

    curves = curve_points(y, proba, CLASSES)

    assert "ckd" in curves["roc"]
    assert "ckd" not in curves["calibration"]


def test_a_trained_version_stores_its_curves_and_the_dashboard_draws_them(client, admin_a, clinic_a):
    demo_cohort_load(clinic=clinic_a, n_patients=300, seed=5)
    run = services.training_run_request(clinic=clinic_a, by=None, config=TrainingConfig(**CHEAP_CONFIG), enqueue=False)
    version = services.training_run_execute(run_id=run.pk).model_version

    page = _get(client, admin_a, version=version.pk).content.decode()

    curves, support = version.metrics["test"]["curves"], version.metrics["test"]["support"]
    assert set(curves["roc"]) == {label for label, n in support.items() if n}
    assert all(len(curve["fpr"]) <= ROC_MAX_POINTS for curve in curves["roc"].values())
    assert "curves" not in version.metrics["baseline"]
    assert len(json.dumps(version.metrics)) < 40_000
    for key in ("roc_curves", "calibration", "feature_importance", "permutation_importance", "candidates"):
        assert f'data-chart="{key}"' in page, key
