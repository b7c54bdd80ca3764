import datetime
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from clinic.models import AuditEvent, Blob
from mltraining import selectors, services
from mltraining.ml.train import TrainingConfig
from mltraining.models import DriftBand, DriftReport, ModelStatus, ModelVersion, TrainingRun, TrainingStatus
from mltraining.tests.factories import (
    CHEAP_CONFIG,
    FAST_CONFIG,
    SYNTHETIC_PROVENANCE,
    ModelVersionFactory,
    artifact_remove,
    artifact_tamper,
)
from patients.catalog import catalog
from patients.demo import demo_cohort_load
from patients.models import Observation, ObservationSource


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    settings.MODEL_PROMOTION_TOLERANCE = 0.01
    return settings.MODEL_DIR


# The synthetic cohort lives in a demo clinic: the only kind where a model trained on it may go live.
@pytest.fixture
def cohort_a(demo_clinic_a):
    demo_cohort_load(clinic=demo_clinic_a, n_patients=400, seed=5)
    return demo_clinic_a


@pytest.fixture
def small_cohort_a(demo_clinic_a):
    demo_cohort_load(clinic=demo_clinic_a, n_patients=150, seed=7)
    return demo_clinic_a


@pytest.fixture
def active_v1(clinic_a, trained_artifact):
    return ModelVersionFactory.create_with_artifact(
        trained_artifact, clinic=clinic_a, version=1, status=ModelStatus.ACTIVE, auc=0.9
    )


def _train(clinic, config=FAST_CONFIG, **kwargs) -> TrainingRun:
    run = services.training_run_request(clinic=clinic, by=None, config=TrainingConfig(**config), enqueue=False)
    return services.training_run_execute(run_id=run.pk, **kwargs)


def _files(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()] if directory.exists() else []


def _with_auc(monkeypatch, auc: float) -> None:
    """Train for real (cheaply), then report `auc` as the held-out macro ROC-AUC, to steer the gate."""
    real_train = services.ml_train.train

    def train(*args, **kwargs):
        result = real_train(*args, **kwargs)
        result.test_metrics["roc_auc_ovr_macro"] = auc
        return result

    monkeypatch.setattr(services.ml_train, "train", train)


# --- a full run --------------------------------------------------------------------------------------------


@pytest.fixture
def trained_a(cohort_a):
    progress = []
    run = _train(cohort_a, on_progress=progress.append)
    run.progress_seen = progress
    return run


def test_a_full_run_produces_an_active_version_that_beats_the_dummy(trained_a, model_dir):
    run = TrainingRun.objects.get(pk=trained_a.pk)
    version = run.model_version

    assert run.status == TrainingStatus.SUCCEEDED
    assert version.status == ModelStatus.ACTIVE
    assert version.version == 1
    assert selectors.active_model_for(clinic=run.clinic) == version
    assert run.metrics["test"]["roc_auc_ovr_macro"] > run.metrics["baseline"]["roc_auc_ovr_macro"] + 0.1
    model = selectors.model_version_model(version=version)  # from the database, checked against its sha256
    assert list(model.classes_) == version.classes
    assert version.artifact.sha256 == version.sha256
    assert hasattr(model, "predict_proba")
    assert version.reference_profile["n"] == run.data_summary["rows"]
    assert "synthetic demo data" in version.model_card["limitations"][0]
    assert version.provenance["synthetic"] is True
    assert version.training_data == f"Trained on synthetic demo data ({run.data_summary['rows']:,} patients)."
    assert version.model_card["training_data"] == version.training_data
    event = AuditEvent.objects.get(action="training_run.succeed")
    assert event.object_id == str(run.pk)
    assert event.detail["activated"] is True
    assert event.detail["version"] == 1


def test_a_lightgbm_version_keeps_its_explanation_paths_and_scoring_explains_with_them_unprepared(
    small_cohort_a, monkeypatch, caplog
):
    """Preparing LightGBM's tree paths cost every worker about 90 ms of CPU for every clinic's model each night: they
    are stored with the version at training, and scoring reads them instead, explaining exactly as before."""
    from mltraining.ml import explain as ml_explain
    from predictions import services as prediction_services
    from predictions.models import Prediction

    run = _train(small_cohort_a, config={**FAST_CONFIG, "candidates": ("dummy", "lightgbm")})
    version = run.model_version
    assert (run.chosen, version.status) == ("lightgbm", ModelStatus.ACTIVE)
    assert version.explainer is not None
    prepared = ml_explain._LightGBMPaths.of
    built = []
    monkeypatch.setattr(ml_explain._LightGBMPaths, "of", lambda *args: built.append(args) or prepared(*args))
    patient_ids = list(small_cohort_a.patients.order_by("pk").values_list("pk", flat=True)[:40])

    def scored() -> list:
        prediction_services._loaded.clear()  # another worker: the model read from the database again
        Prediction.objects.all().delete()
        prediction_services.predictions_create(patient_ids=patient_ids)
        return list(Prediction.objects.order_by("patient_id").values_list("patient_id", "contributions"))

    with_stored = scored()
    assert built == []
    ModelVersion.objects.filter(pk=version.pk).update(explainer=None)  # as a version registered before they were kept
    assert scored() == with_stored
    assert len(built) == 1
    assert sum(bool(contributions) for _, contributions in with_stored) > 20
    assert not caplog.records


def test_stored_explanation_paths_that_do_not_fit_the_model_are_not_used(clinic_a, trained_artifact, caplog):
    from clinic.blobs import blob_save
    from clinic.models import BlobKind
    from mltraining.ml import explain as ml_explain

    version = ModelVersionFactory.create_with_artifact(trained_artifact, clinic=clinic_a, status=ModelStatus.ACTIVE)
    model = selectors.model_version_model(version=version, explainer=True)
    estimator = ml_explain.base_pipeline(model).named_steps["model"]
    assert ml_explain._PREPARED.get(estimator) is not None  # the session's model, stored as training stores it
    for wrong in (b"not numpy's npz", ml_explain.prepared_dumps(_other_lightgbm_model())):
        version.explainer = blob_save(kind=BlobKind.ARTIFACT, pieces=[wrong])
        caplog.clear()

        model = selectors.model_version_model(version=version, explainer=True)

        assert ml_explain._PREPARED.get(ml_explain.base_pipeline(model).named_steps["model"]) is None
        assert (
            f"stored explanation paths of model v{version.version} of clinic {clinic_a.pk} are not used" in caplog.text
        )


def _other_lightgbm_model():
    """A LightGBM model other than the session's: another number of columns and trees."""
    import numpy as np
    import pandas as pd

    from mltraining.ml.candidates import CANDIDATES, build_pipeline

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    return build_pipeline(CANDIDATES["lightgbm"](0), ["a", "b"], []).fit(X, np.where(X["a"] > 0, "x", "y"))


def test_a_run_records_its_data_candidates_plots_timings_log_and_progress(trained_a, model_dir):
    run = TrainingRun.objects.get(pk=trained_a.pk)

    assert run.data_summary["rows"] > 200  # of 400: the others lack a recent value of an input the model needs
    assert run.data_summary["not_enough_data"] > 50
    assert sum(run.data_summary["labels"].values()) == run.data_summary["rows"]
    assert run.data_summary["synthetic_share"] == 1.0
    assert [c["name"] for c in run.candidates] == ["dummy", "logistic_regression", "random_forest"]
    assert run.chosen in {"logistic_regression", "random_forest"}
    assert run.reason
    assert set(run.plots) == {"confusion_matrix", "roc_curves", "calibration", "importances", "cv_comparison"}
    assert all(selectors.training_run_plot(run=run, name=name).startswith(b"\x89PNG") for name in run.plots)
    assert {"load_data", "features", "train", "save", "total"} <= set(run.timings)
    assert run.metrics["ci"]["roc_auc_ovr_macro"][0] <= run.metrics["test"]["roc_auc_ovr_macro"]
    assert set(run.metrics["subgroups"]) == {"sex", "age_band"}
    assert run.started_at <= run.finished_at
    assert run.progress == 1.0
    assert "Read 400 patients" in run.log
    assert "Chosen: " in run.log
    assert "activated it" in run.log
    assert trained_a.progress_seen == sorted(trained_a.progress_seen)
    assert len(trained_a.progress_seen) > 5


def test_a_major_unit_shift_in_creatinine_shows_as_major_drift(trained_a):
    # After training the laboratory starts reporting creatinine 88.42 times larger (mg/dL mistaken for umol/L).
    creatinine = catalog().ids["creatinine"]
    recent = timezone.now() - datetime.timedelta(days=3)
    latest = (
        Observation.objects.filter(analyte_id=creatinine, patient__clinic=trained_a.clinic)
        .order_by("patient_id", "-effective_at")
        .values_list("patient_id", "value")
    )
    seen, rows = set(), []
    for patient_id, value in latest:
        if patient_id not in seen:
            seen.add(patient_id)
            rows.append(
                Observation(
                    patient_id=patient_id,
                    analyte_id=creatinine,
                    value=value * 88.42,
                    entered_value=value,
                    entered_unit="mg/dL",
                    effective_at=recent,
                    source=ObservationSource.CSV,
                )  # fmt: skip
            )
    Observation.objects.bulk_create(rows)

    report = services.drift_check(clinic=trained_a.clinic)

    assert report.overall_band == DriftBand.MAJOR
    assert report.n_recent >= len(rows)  # a few patients had a visit in the window already
    assert report.report["features"]["creatinine"]["band"] == "major"
    assert {"creatinine", "egfr"} & set(report.report["worst"][:2])
    assert sum(report.predicted_mix.values()) == pytest.approx(1.0)
    assert AuditEvent.objects.filter(action="drift.check", object_id=str(report.pk)).exists()


def test_drift_without_recent_results_is_recorded_as_no_data(clinic_a, active_v1):
    report = services.drift_check(clinic=clinic_a, window_days=7)

    assert report.overall_band == DriftBand.NO_DATA
    assert report.n_recent == 0
    assert report.model_version == active_v1


def test_drift_needs_an_active_model(clinic_a):
    with pytest.raises(ValidationError, match="no active model"):
        services.drift_check(clinic=clinic_a)


def test_the_weekly_drift_check_covers_each_clinic_with_an_active_model(clinic_a, clinic_b, active_v1):
    reports = services.drift_check_all_clinics()

    assert [report.clinic_id for report in reports] == [clinic_a.pk]
    assert DriftReport.objects.get().clinic_id == clinic_a.pk


# --- failures and redelivery ------------------------------------------------------------------------------


def test_a_failing_run_is_marked_failed_and_leaves_nothing_behind(small_cohort_a, monkeypatch, model_dir):
    def explode(*args, **kwargs):
        raise RuntimeError("the estimator exploded")

    monkeypatch.setattr(services.ml_train, "train", explode)

    run = _train(small_cohort_a, CHEAP_CONFIG)

    assert run.status == TrainingStatus.FAILED
    assert run.error.startswith("RuntimeError: the estimator exploded")
    assert "Failed: RuntimeError" in run.log
    assert run.finished_at is not None
    assert not ModelVersion.objects.exists()
    assert not Blob.objects.exists()  # the artifact and plots were written in the transaction that rolled back
    assert _files(model_dir) == []
    assert AuditEvent.objects.filter(action="training_run.fail", outcome="failure").count() == 1


def test_a_failure_after_the_artifact_was_written_removes_it(small_cohort_a, monkeypatch, model_dir):
    def refuse(**kwargs):
        raise IntegrityError("disk full, say")

    monkeypatch.setattr(services, "_model_card", lambda *args: refuse())

    run = _train(small_cohort_a, CHEAP_CONFIG)

    assert run.status == TrainingStatus.FAILED
    assert "disk full" in run.error
    assert not ModelVersion.objects.exists()
    assert not Blob.objects.exists()  # the artifact and plots were written in the transaction that rolled back
    assert _files(model_dir) == []


def test_a_clinic_without_labelled_patients_fails_with_a_clear_error(clinic_a):
    run = _train(clinic_a, CHEAP_CONFIG)

    assert run.status == TrainingStatus.FAILED
    assert "nothing to learn from" in run.error


def test_executing_a_run_twice_trains_once(small_cohort_a, monkeypatch):
    calls = []
    real_train = services.ml_train.train
    monkeypatch.setattr(services.ml_train, "train", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    run = services.training_run_request(
        clinic=small_cohort_a, by=None, config=TrainingConfig(**CHEAP_CONFIG), enqueue=False
    )

    first = services.training_run_execute(run_id=run.pk)
    second = services.training_run_execute(run_id=run.pk)  # the message was delivered again

    assert first.status == TrainingStatus.SUCCEEDED
    assert second is None
    assert len(calls) == 1
    assert ModelVersion.objects.count() == 1


# --- requesting runs ----------------------------------------------------------------------------------------


def test_a_request_enqueues_the_task_after_commit(clinic_a, admin_a, django_capture_on_commit_callbacks, monkeypatch):
    delivered = []
    monkeypatch.setattr(
        "mltraining.tasks.train_model_task.apply_async", lambda args, **options: delivered.append(args[0])
    )

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = services.training_run_request(clinic=clinic_a, by=admin_a)
        assert delivered == []  # nothing is sent while the transaction is open

    assert len(callbacks) == 1
    assert delivered == [run.pk]
    assert run.status == TrainingStatus.QUEUED
    assert run.requested_by == admin_a
    assert AuditEvent.objects.filter(action="training_run.request", actor=admin_a).exists()


@pytest.mark.parametrize("role_fixture", ["doctor_a", "staff_a", "admin_b"])
def test_only_an_admin_of_the_clinic_may_request_training(request, clinic_a, role_fixture):
    with pytest.raises(PermissionDenied):
        services.training_run_request(clinic=clinic_a, by=request.getfixturevalue(role_fixture), enqueue=False)

    assert not TrainingRun.objects.exists()


def test_a_superuser_may_request_training_for_any_clinic(clinic_a, superuser):
    run = services.training_run_request(clinic=clinic_a, by=superuser, enqueue=False)

    assert run.clinic == clinic_a


def test_a_second_request_while_one_is_queued_is_refused(clinic_a, admin_a):
    first = services.training_run_request(clinic=clinic_a, by=admin_a, enqueue=False)

    with pytest.raises(ValidationError, match=f"#{first.pk}"):
        services.training_run_request(clinic=clinic_a, by=admin_a, enqueue=False)


def test_the_database_allows_one_run_in_flight_per_clinic(clinic_a):
    TrainingRun.objects.create(clinic=clinic_a)

    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingRun.objects.create(clinic=clinic_a, status=TrainingStatus.RUNNING)


def test_a_run_whose_worker_died_is_expired_by_the_next_request(clinic_a, admin_a, settings):
    long_ago = timezone.now() - datetime.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 120)
    lost = TrainingRun.objects.create(clinic=clinic_a, status=TrainingStatus.RUNNING, started_at=long_ago)

    run = services.training_run_request(clinic=clinic_a, by=admin_a, enqueue=False)

    lost.refresh_from_db()
    assert lost.status == TrainingStatus.FAILED
    assert "worker was lost" in lost.error
    assert run.status == TrainingStatus.QUEUED


def _queued_since(run, minutes):
    past = timezone.now() - datetime.timedelta(minutes=minutes)
    TrainingRun.objects.filter(pk=run.pk).update(created_at=past, resent_at=past if run.resent_at else None)
    run.refresh_from_db()


@pytest.mark.reliability(16, "A queued training run whose message was lost: sent again by the sweep")
def test_a_run_queued_unclaimed_for_long_is_sent_again(
    clinic_a, admin_a, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("mltraining.tasks.train_model_task.delay", sent.append)
    run = services.training_run_request(clinic=clinic_a, by=admin_a, enqueue=False)  # its message never arrives
    assert services.training_runs_resume_queued() == []  # queued a moment ago: left alone
    _queued_since(run, minutes=40)

    with django_capture_on_commit_callbacks(execute=True):
        resumed = services.training_runs_resume_queued()

    run.refresh_from_db()
    assert resumed == [run.pk]
    assert sent == [run.pk]
    assert (run.status, run.resends) == (TrainingStatus.QUEUED, 1)
    assert AuditEvent.objects.get(action="training_run.resend").detail == {"resends": 1}
    assert services.training_runs_resume_queued() == []  # sent again just now: waits its turn again


@pytest.mark.reliability(16, "A training run no worker ever starts: failed with the reason, the clinic may retrain")
def test_a_run_no_worker_starts_fails_with_the_reason_and_frees_the_clinic(
    clinic_a, admin_a, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("mltraining.tasks.train_model_task.delay", lambda run_id: None)  # lost every time
    run = services.training_run_request(clinic=clinic_a, by=admin_a, enqueue=False)
    for _ in range(services.RUN_RESENDS + 1):
        _queued_since(run, minutes=40)
        with django_capture_on_commit_callbacks(execute=True):
            services.training_runs_resume_queued()

    run.refresh_from_db()
    assert (run.status, run.resends) == (TrainingStatus.FAILED, services.RUN_RESENDS)
    assert "start the Celery workers" in run.error
    assert services.training_run_request(clinic=clinic_a, by=admin_a, enqueue=False).status == TrainingStatus.QUEUED


def test_a_run_sent_often_enough_waits_while_workers_train_other_clinics(clinic_a, clinic_b, admin_a):
    run = services.training_run_request(clinic=clinic_a, by=admin_a, enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(resends=services.RUN_RESENDS)
    _queued_since(run, minutes=40)
    TrainingRun.objects.create(clinic=clinic_b, status=TrainingStatus.RUNNING, started_at=timezone.now())

    acted = services.training_runs_resume_queued()

    run.refresh_from_db()
    assert acted == []
    assert run.status == TrainingStatus.QUEUED  # queued behind busy workers, not failed


def test_a_bad_configuration_is_refused(clinic_a, admin_a):
    with pytest.raises(ValidationError, match="2 folds"):
        services.training_run_request(clinic=clinic_a, by=admin_a, config=TrainingConfig(cv_folds=1))


def test_the_weekly_retraining_requests_one_run_per_clinic_with_patients(clinic_a, clinic_b, monkeypatch):
    from patients.tests.factories import PatientFactory

    monkeypatch.setattr("mltraining.tasks.train_model_task.delay", lambda run_id: None)
    PatientFactory(clinic=clinic_a)
    TrainingRun.objects.create(clinic=clinic_b, status=TrainingStatus.SUCCEEDED)

    runs = services.training_run_schedule_all()
    again = services.training_run_schedule_all()  # the first run is still queued

    assert [(run.clinic_id, run.trigger) for run in runs] == [(clinic_a.pk, "scheduled")]
    assert again == []


def test_a_stored_configuration_round_trips(clinic_a):
    config = TrainingConfig(**FAST_CONFIG)

    assert services.training_config_from_json(config.to_dict()) == config


# --- the promotion gate ------------------------------------------------------------------------------------


def test_a_candidate_worse_by_more_than_the_tolerance_waits_for_an_admin(small_cohort_a, active_v1, monkeypatch):
    _with_auc(monkeypatch, 0.85)

    run = _train(small_cohort_a, CHEAP_CONFIG)

    active_v1.refresh_from_db()
    assert run.model_version.status == ModelStatus.CANDIDATE
    assert run.model_version.version == 2
    assert active_v1.status == ModelStatus.ACTIVE
    assert "waits for an admin" in run.log


def test_a_candidate_within_the_tolerance_is_activated_and_the_old_one_archived(small_cohort_a, active_v1, monkeypatch):
    _with_auc(monkeypatch, 0.895)

    run = _train(small_cohort_a, CHEAP_CONFIG)

    active_v1.refresh_from_db()
    version = run.model_version
    assert version.status == ModelStatus.ACTIVE
    assert version.activated_by is None
    assert version.activated_at
    assert active_v1.status == ModelStatus.ARCHIVED


def test_a_candidate_no_better_than_the_dummy_is_never_activated(small_cohort_a, monkeypatch):
    _with_auc(monkeypatch, 0.5)

    run = _train(small_cohort_a, CHEAP_CONFIG)

    assert run.model_version.status == ModelStatus.CANDIDATE
    assert "dummy baseline" in run.log


@pytest.mark.parametrize(
    ("candidate", "active", "activate"),
    [(0.80, None, True), (0.80, 0.81, True), (0.80, 0.8101, False), (0.90, 0.80, True), (None, None, False)],
)
def test_the_promotion_gate_compares_with_the_active_version(candidate, active, activate):
    current = None if active is None else ModelVersion(version=3, metrics={"test": {"roc_auc_ovr_macro": active}})

    decision = services.promotion_decide(candidate_auc=candidate, baseline_auc=0.5, active=current, tolerance=0.01)

    assert decision.activate is activate


def test_the_database_refuses_a_second_active_version_in_a_clinic(clinic_a, active_v1, trained_artifact):
    second = ModelVersionFactory.create_with_artifact(trained_artifact, clinic=clinic_a, version=2)

    second.status = ModelStatus.ACTIVE
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


def test_two_clinics_each_have_their_own_active_version(clinic_b, active_v1, trained_artifact):
    other = ModelVersionFactory.create_with_artifact(
        trained_artifact, clinic=clinic_b, version=1, status=ModelStatus.ACTIVE
    )

    assert selectors.active_model_for(clinic=clinic_b) == other


# --- activation and rollback ---------------------------------------------------------------------------------


@pytest.fixture
def candidate_v2(clinic_a, active_v1, trained_artifact):
    return ModelVersionFactory.create_with_artifact(trained_artifact, clinic=clinic_a, version=2)


def test_an_admin_activates_a_candidate_and_the_active_one_is_archived(admin_a, active_v1, candidate_v2):
    services.model_version_activate(version=candidate_v2, by=admin_a, reason="better")

    active_v1.refresh_from_db()
    candidate_v2.refresh_from_db()
    assert candidate_v2.status == ModelStatus.ACTIVE
    assert candidate_v2.activated_by == admin_a
    assert active_v1.status == ModelStatus.ARCHIVED
    event = AuditEvent.objects.get(action="model_version.activate")
    assert event.detail == {"version": 2, "previous_active": 1, "reason": "better"}
    assert candidate_v2.activation_reason == "better"


@pytest.mark.parametrize("reason", ["", "   \n"])
def test_a_switch_without_a_reason_is_refused_and_changes_nothing(admin_a, active_v1, candidate_v2, reason):
    with pytest.raises(ValidationError, match="Give a reason"):
        services.model_version_activate(version=candidate_v2, by=admin_a, reason=reason)

    active_v1.refresh_from_db()
    candidate_v2.refresh_from_db()
    assert (active_v1.status, candidate_v2.status) == (ModelStatus.ACTIVE, ModelStatus.CANDIDATE)
    assert not AuditEvent.objects.filter(action__startswith="model_version.").exists()


def test_a_rollback_records_its_reason_in_the_audit_row_and_on_the_version(admin_a, active_v1, candidate_v2):
    services.model_version_activate(version=candidate_v2, by=admin_a, reason="better")
    active_v1.refresh_from_db()

    services.model_version_rollback(version=active_v1, by=admin_a, reason="  v2 flags too many healthy patients ")

    active_v1.refresh_from_db()
    assert active_v1.activation_reason == "v2 flags too many healthy patients"
    event = AuditEvent.objects.get(action="model_version.rollback")
    assert event.detail["reason"] == "v2 flags too many healthy patients"
    assert event.actor == admin_a


def test_a_rollback_reactivates_the_archived_version(admin_a, active_v1, candidate_v2):
    services.model_version_activate(version=candidate_v2, by=admin_a, reason="better")
    active_v1.refresh_from_db()

    services.model_version_rollback(version=active_v1, by=admin_a, reason="worse")

    assert selectors.active_model_for(clinic=active_v1.clinic_id) == active_v1
    assert AuditEvent.objects.filter(action="model_version.rollback", object_id=str(active_v1.pk)).exists()


def test_a_rollback_needs_an_archived_version(admin_a, candidate_v2):
    with pytest.raises(ValidationError, match="candidate"):
        services.model_version_rollback(version=candidate_v2, by=admin_a, reason="worse")


def test_activating_a_tampered_artifact_is_refused(admin_a, active_v1, candidate_v2, model_dir):
    artifact_tamper(candidate_v2, lambda data: data + b"tampered")

    with pytest.raises(ValidationError, match="failed verification"):
        services.model_version_activate(version=candidate_v2, by=admin_a, reason="better")

    assert selectors.active_model_for(clinic=active_v1.clinic_id) == active_v1


def test_activating_a_missing_artifact_is_refused(admin_a, candidate_v2, model_dir):
    artifact_remove(candidate_v2)

    with pytest.raises(ValidationError, match="missing"):
        services.model_version_activate(version=candidate_v2, by=admin_a, reason="better")


@pytest.mark.parametrize("role_fixture", ["doctor_a", "staff_a", "admin_b"])
def test_only_an_admin_of_the_clinic_may_activate(request, candidate_v2, role_fixture):
    with pytest.raises(PermissionDenied):
        services.model_version_activate(version=candidate_v2, by=request.getfixturevalue(role_fixture), reason="better")


# --- a model trained on synthetic data is active only in a demo clinic ------------------------------------------


@pytest.fixture
def synthetic_v2(clinic_a, active_v1, trained_artifact):
    return ModelVersionFactory.create_with_artifact(
        trained_artifact, clinic=clinic_a, version=2, provenance=SYNTHETIC_PROVENANCE
    )


def _unchanged(active: ModelVersion, refused: ModelVersion, status: str) -> None:
    active.refresh_from_db()
    refused.refresh_from_db()
    assert active.status == ModelStatus.ACTIVE
    assert (refused.status, refused.activated_at, refused.activated_by) == (status, None, None)
    assert not AuditEvent.objects.filter(action__in=["model_version.activate", "model_version.rollback"]).exists()


@pytest.mark.hazard("H6", "A version trained on synthetic data is activated only in a demo clinic")
def test_an_admin_cannot_activate_a_synthetic_version_in_a_real_clinic_and_nothing_changes(
    admin_a, active_v1, synthetic_v2
):
    with pytest.raises(ValidationError, match="trained on synthetic demo data and Riverside Clinic is not a demo"):
        services.model_version_activate(version=synthetic_v2, by=admin_a, reason="better")

    _unchanged(active_v1, synthetic_v2, ModelStatus.CANDIDATE)


def test_a_rollback_to_a_synthetic_version_in_a_real_clinic_is_refused(admin_a, active_v1, synthetic_v2):
    ModelVersion.objects.filter(pk=synthetic_v2.pk).update(status=ModelStatus.ARCHIVED)
    synthetic_v2.refresh_from_db()

    with pytest.raises(ValidationError, match="never scores real patients"):
        services.model_version_rollback(version=synthetic_v2, by=admin_a, reason="worse")

    _unchanged(active_v1, synthetic_v2, ModelStatus.ARCHIVED)


def test_an_admin_activates_a_synthetic_version_in_a_demo_clinic(demo_clinic_a, admin_a, active_v1, synthetic_v2):
    services.model_version_activate(version=synthetic_v2, by=admin_a, reason="better")

    assert selectors.active_model_for(clinic=demo_clinic_a) == synthetic_v2


@pytest.mark.hazard("H6", "The promotion gate never activates a model of the demo cohort in a real clinic")
def test_the_gate_leaves_a_model_of_the_demo_cohort_a_candidate_in_a_real_clinic(clinic_a):
    demo_cohort_load(clinic=clinic_a, n_patients=150, seed=7)  # a real clinic given the synthetic cohort

    run = _train(clinic_a, CHEAP_CONFIG)

    version = run.model_version
    assert run.status == TrainingStatus.SUCCEEDED
    assert version.status == ModelStatus.CANDIDATE
    assert selectors.active_model_for(clinic=clinic_a) is None
    assert "trained on synthetic demo data and Riverside Clinic is not a demo clinic" in run.log
    event = AuditEvent.objects.get(action="training_run.succeed")
    assert event.detail["activated"] is False
    assert event.detail["training_data"] == version.training_data
    assert "it can be active only in a demo clinic" in version.model_card["limitations"][0]


def test_a_synthetic_version_left_active_in_a_real_clinic_scores_nobody(clinic_a, trained_artifact):
    # Activated before activation checked provenance (or written by hand): the selectors do not hand it out.
    left = ModelVersionFactory.create_with_artifact(
        trained_artifact, clinic=clinic_a, status=ModelStatus.ACTIVE, provenance=SYNTHETIC_PROVENANCE
    )

    assert selectors.active_model_for(clinic=clinic_a) is None
    assert selectors.active_model_brief(clinic_id=clinic_a.pk) is None
    assert left not in selectors.active_models()
    assert selectors.active_version_unusable(version=left)
    clinic_a.is_demo = True
    clinic_a.save()
    assert selectors.active_model_for(clinic=clinic_a) == left


def test_a_version_trained_before_provenance_was_kept_still_scores(clinic_a, trained_artifact):
    older = ModelVersionFactory.create_with_artifact(
        trained_artifact, clinic=clinic_a, status=ModelStatus.ACTIVE, provenance={}
    )

    assert selectors.active_model_for(clinic=clinic_a) == older
    assert list(selectors.clinics_with_active_model()) == [clinic_a]
    assert older.training_data == "Training data not recorded: this version was trained before provenance was kept."
