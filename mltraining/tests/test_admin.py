import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from clinic.blobs import blob_save
from clinic.models import AuditEvent, BlobKind
from clinic.testing import session_read_queries
from mltraining import selectors, services
from mltraining.models import DriftBand, DriftReport, ModelStatus, TrainingRun, TrainingStatus
from mltraining.tests.factories import SYNTHETIC_PROVENANCE, ModelVersionFactory, TrainingRunFactory, artifact_tamper


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    return settings.MODEL_DIR


@pytest.fixture
def active_v1(clinic_a, trained_artifact):
    return ModelVersionFactory.create_with_artifact(
        trained_artifact, clinic=clinic_a, version=1, status=ModelStatus.ACTIVE
    )


@pytest.fixture
def candidate_v2(clinic_a, active_v1, trained_artifact):
    return ModelVersionFactory.create_with_artifact(trained_artifact, clinic=clinic_a, version=2)


@pytest.fixture
def finished_run(clinic_a):
    plot = blob_save(kind=BlobKind.PLOT, pieces=[b"\x89PNG fake"])
    return TrainingRunFactory(
        clinic=clinic_a,
        log="12:00:00 Read 400 patients\n12:00:09 Chosen: random_forest.",
        candidates=[
            {"name": "dummy", "cv_mean": {"roc_auc_ovr_macro": 0.5}, "cv_std": {"roc_auc_ovr_macro": 0.0},
             "fit_seconds": 0.1, "error": ""},
            {"name": "random_forest", "cv_mean": {"roc_auc_ovr_macro": 0.81}, "cv_std": {"roc_auc_ovr_macro": 0.02},
             "fit_seconds": 1.5, "error": ""},
            {"name": "svc", "cv_mean": {}, "cv_std": {}, "fit_seconds": 0.2, "error": "ValueError: bad input"},
        ],
        chosen="random_forest",
        metrics={
            "test": {"roc_auc_ovr_macro": 0.83, "accuracy": 0.7},
            "ci": {"roc_auc_ovr_macro": [0.78, 0.88]},
            "baseline": {"roc_auc_ovr_macro": 0.5},
            "subgroups": {"sex": {"female": {"n": 40.0, "roc_auc_ovr_macro": 0.8}}},
        },
        audit={"warnings": ["Classes with fewer than 10 unique rows: thrombocytopenia (6)."]},
        plots={"roc_curves": plot.pk},
    )  # fmt: skip


def _login(client, user):
    client.force_login(user)
    return client


# --- access ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role_fixture", ["doctor_a", "staff_a", "patient_user_a"])
@pytest.mark.parametrize("model", ["trainingrun", "modelversion", "driftreport"])
def test_only_admins_reach_the_registry_in_the_admin(client, request, role_fixture, model):
    _login(client, request.getfixturevalue(role_fixture))

    response = client.get(reverse(f"admin:mltraining_{model}_changelist"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_clinic_admin_sees_only_their_clinics_runs(client, admin_a, finished_run, clinic_b):
    other = TrainingRunFactory(clinic=clinic_b)
    _login(client, admin_a)

    response = client.get(reverse("admin:mltraining_trainingrun_changelist"))

    assert {run.pk for run in response.context["cl"].result_list} == {finished_run.pk}
    assert client.get(reverse("admin:mltraining_trainingrun_change", args=[other.pk])).status_code == 404


def test_another_clinics_version_is_a_404(client, admin_b, active_v1):
    _login(client, admin_b)

    response = client.get(reverse("admin:mltraining_modelversion_change", args=[active_v1.pk]))

    assert response.status_code == 404


def test_nobody_adds_edits_or_deletes_registry_rows_by_hand(client, admin_a, finished_run):
    _login(client, admin_a)

    assert client.get(reverse("admin:mltraining_trainingrun_add")).status_code == 403
    assert client.get(reverse("admin:mltraining_trainingrun_delete", args=[finished_run.pk])).status_code == 403
    page = client.get(reverse("admin:mltraining_trainingrun_change", args=[finished_run.pk])).content.decode()
    assert 'name="_save"' not in page


# --- training runs -------------------------------------------------------------------------------------------


def test_the_run_page_shows_candidates_metrics_warnings_plots_and_log(client, admin_a, finished_run):
    _login(client, admin_a)

    response = client.get(reverse("admin:mltraining_trainingrun_change", args=[finished_run.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "0.810 ± 0.020" in page
    assert "ValueError: bad input" in page
    assert "0.830" in page
    assert "0.780 – 0.880" in page
    assert "thrombocytopenia (6)" in page
    assert reverse("admin:mltraining_trainingrun_plot", args=[finished_run.pk, "roc_curves"]) in page
    assert "Chosen: random_forest." in page
    assert 'http-equiv="refresh"' not in page


def test_a_running_run_page_follows_its_progress_in_a_live_region_without_reloading(client, admin_a, clinic_a):
    run = TrainingRun.objects.create(clinic=clinic_a, status=TrainingStatus.RUNNING, progress=0.4, log="working")
    _login(client, admin_a)

    page = client.get(reverse("admin:mltraining_trainingrun_change", args=[run.pk])).content.decode()
    progress = client.get(reverse("admin:mltraining_trainingrun_progress", args=[run.pk]))

    assert 'http-equiv="refresh"' not in page  # a timed reload fails WCAG 2.2.1
    assert 'aria-live="polite"' in page
    assert f'data-live-status="{reverse("admin:mltraining_trainingrun_progress", args=[run.pk])}"' in page
    assert "40 % done" in page
    assert progress.json() == {"finished": False, "status_display": "Running", "progress": 0.4}


def test_another_clinics_run_progress_does_not_exist_for_an_admin(client, admin_b, clinic_a):
    run = TrainingRun.objects.create(clinic=clinic_a, status=TrainingStatus.RUNNING, progress=0.4)
    _login(client, admin_b)

    assert client.get(reverse("admin:mltraining_trainingrun_progress", args=[run.pk])).status_code == 404


def test_a_failed_run_page_shows_its_error(client, admin_a, clinic_a):
    run = TrainingRun.objects.create(clinic=clinic_a, status=TrainingStatus.FAILED, error="RuntimeError: boom")
    _login(client, admin_a)

    page = client.get(reverse("admin:mltraining_trainingrun_change", args=[run.pk])).content.decode()

    assert "RuntimeError: boom" in page


def test_a_plot_is_served_to_the_clinics_admin_only(client, admin_a, admin_b, finished_run):
    url = reverse("admin:mltraining_trainingrun_plot", args=[finished_run.pk, "roc_curves"])

    response = _login(client, admin_a).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    assert client.get(reverse("admin:mltraining_trainingrun_plot", args=[finished_run.pk, "nope"])).status_code == 404
    assert _login(client, admin_b).get(url).status_code == 404


def test_start_training_now_queues_a_run_for_the_admins_clinic(
    client, admin_a, clinic_a, django_capture_on_commit_callbacks, monkeypatch
):
    delivered = []  # what the outbox hands the broker once the run is committed
    monkeypatch.setattr(
        "clinic.outbox._send", lambda message, connection: delivered.append((message.task, message.args))
    )
    _login(client, admin_a)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:mltraining_trainingrun_start"))

    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:mltraining_trainingrun_change", args=[run.pk])
    assert run.clinic == clinic_a
    assert run.requested_by == admin_a
    assert run.trigger == "manual"
    assert delivered == [("mltraining.tasks.train_model_task", [run.pk])]


def test_start_training_twice_says_a_run_is_in_progress(client, admin_a, clinic_a, monkeypatch):
    monkeypatch.setattr("mltraining.tasks.train_model_task.delay", lambda run_id: None)
    _login(client, admin_a)
    client.post(reverse("admin:mltraining_trainingrun_start"))

    response = client.post(reverse("admin:mltraining_trainingrun_start"), follow=True)

    assert TrainingRun.objects.count() == 1
    assert "has not finished yet" in response.content.decode()


def test_the_start_button_is_on_the_changelist_and_needs_a_post(client, admin_a):
    _login(client, admin_a)

    page = client.get(reverse("admin:mltraining_trainingrun_changelist")).content.decode()

    assert "Start training now" in page
    assert "csrfmiddlewaretoken" in page
    assert client.get(reverse("admin:mltraining_trainingrun_start")).status_code == 405


@pytest.mark.parametrize("role_fixture", ["doctor_a", "staff_a"])
def test_start_training_is_not_for_doctors_or_staff(client, request, role_fixture):
    _login(client, request.getfixturevalue(role_fixture))

    response = client.post(reverse("admin:mltraining_trainingrun_start"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not TrainingRun.objects.exists()


def test_a_superuser_starts_training_for_the_clinic_they_pick(client, superuser, clinic_b, monkeypatch):
    monkeypatch.setattr("mltraining.tasks.train_model_task.delay", lambda run_id: None)
    _login(client, superuser)

    client.post(reverse("admin:mltraining_trainingrun_start"), {"clinic": clinic_b.pk})

    assert TrainingRun.objects.get().clinic == clinic_b


@pytest.mark.django_db(transaction=True)
def test_start_training_now_answers_before_the_run_trains_when_celery_runs_in_process(
    client, admin_a, clinic_a, settings, monkeypatch
):
    settings.TRAINING_RUNS_IN_THREAD = True  # what `make run` does: Celery eager, no worker
    started, release, ran_on = threading.Event(), threading.Event(), []

    def held_training(*, run_id):  # stands in for the ~44 s run; it ends only when the test lets it
        ran_on.append((run_id, threading.current_thread()))
        started.set()
        release.wait(30)

    monkeypatch.setattr(services, "training_run_execute", held_training)
    _login(client, admin_a)

    response = client.post(reverse("admin:mltraining_trainingrun_start"))

    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:mltraining_trainingrun_change", args=[run.pk])
    assert started.wait(30), "the run was never started"
    assert not release.is_set()  # the response came back while the run was still training
    release.set()
    assert ran_on[0][0] == run.pk
    assert ran_on[0][1] is not threading.current_thread()
    page = client.get(response["Location"]).content.decode()
    assert "data-live-status=" in page  # the run's page follows its progress


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_run_changelist_query_count_does_not_grow_with_rows(client, admin_a, clinic_a):
    TrainingRunFactory(clinic=clinic_a)
    _login(client, admin_a)
    url = reverse("admin:mltraining_trainingrun_changelist")
    client.get(url)  # the first request of a session warms caches
    few = _queries(client, url)

    TrainingRunFactory.create_batch(10, clinic=clinic_a)

    assert _queries(client, url) == few == 6 + session_read_queries()  # the session, unless read from Redis


# --- model versions ----------------------------------------------------------------------------------------


def test_the_version_changelist_query_count_does_not_grow_with_rows(client, admin_a, active_v1, clinic_a):
    _login(client, admin_a)
    url = reverse("admin:mltraining_modelversion_changelist")
    client.get(url)  # the first request of a session warms caches
    few = _queries(client, url)

    ModelVersionFactory.create_batch(5, clinic=clinic_a, activated_by=admin_a)

    assert _queries(client, url) == few == 6 + session_read_queries()  # the session, unless read from Redis


def _action(client, name, version, reason="The held-out figures are better."):
    """The changelist action, then its confirmation page with a reason (when the action got that far)."""
    picked = client.post(
        reverse("admin:mltraining_modelversion_changelist"), {"action": name, "_selected_action": [version.pk]}
    )
    confirm = reverse(f"admin:mltraining_modelversion_{name}", args=[version.pk])
    if picked.status_code == 302 and picked["Location"] == confirm:
        return client.post(confirm, {"reason": reason}, follow=True)
    return client.get(picked["Location"]) if picked.status_code == 302 else picked


def test_an_admin_activates_a_version_with_the_admin_action(client, admin_a, active_v1, candidate_v2):
    _login(client, admin_a)

    response = _action(client, "activate", candidate_v2)

    assert "is active now" in response.content.decode()
    assert selectors.active_model_for(clinic=candidate_v2.clinic_id) == candidate_v2
    active_v1.refresh_from_db()
    assert active_v1.status == ModelStatus.ARCHIVED
    assert AuditEvent.objects.filter(action="model_version.activate", actor=admin_a).count() == 1


def test_an_admin_rolls_back_with_the_admin_action(client, admin_a, active_v1, candidate_v2):
    _login(client, admin_a)
    _action(client, "activate", candidate_v2)

    response = _action(client, "rollback", active_v1)

    assert "is active again" in response.content.decode()
    assert selectors.active_model_for(clinic=active_v1.clinic_id) == active_v1
    assert AuditEvent.objects.filter(action="model_version.rollback", actor=admin_a).count() == 1


def test_the_change_page_buttons_activate_and_roll_back(client, admin_a, active_v1, candidate_v2):
    _login(client, admin_a)
    page = client.get(reverse("admin:mltraining_modelversion_change", args=[candidate_v2.pk])).content.decode()
    assert "Activate this version" in page
    assert reverse("admin:mltraining_modelversion_compare", args=[candidate_v2.pk]) in page
    assert reverse("mltraining:model_card", args=[candidate_v2.pk]) in page

    client.post(reverse("admin:mltraining_modelversion_activate", args=[candidate_v2.pk]), {"reason": "newer"})
    client.post(reverse("admin:mltraining_modelversion_rollback", args=[active_v1.pk]), {"reason": "v2 misfires"})

    assert selectors.active_model_for(clinic=active_v1.clinic_id) == active_v1


def test_the_confirmation_page_says_what_changes_and_switches_nothing(client, admin_a, active_v1, candidate_v2):
    _login(client, admin_a)
    url = reverse("admin:mltraining_modelversion_activate", args=[candidate_v2.pk])

    page = client.get(url).content.decode()

    assert "Model v2 (candidate)</strong>" in page
    assert "becomes active" in page
    assert "Model v1 (active)</strong>" in page
    assert "is archived" in page
    assert 'name="reason"' in page
    assert reverse("admin:mltraining_modelversion_compare", args=[candidate_v2.pk]) + f"?with={active_v1.pk}" in page
    assert selectors.active_model_for(clinic=active_v1.clinic_id) == active_v1
    assert not AuditEvent.objects.filter(action__startswith="model_version.").exists()


@pytest.mark.parametrize("name", ["activate", "rollback"])
def test_a_switch_without_a_reason_shows_the_page_again_with_the_error(client, admin_a, active_v1, candidate_v2, name):
    if name == "rollback":
        services.model_version_activate(version=candidate_v2, by=admin_a, reason="newer")
    before = selectors.model_version_active_of(clinic_id=active_v1.clinic_id)
    target = candidate_v2 if name == "activate" else active_v1
    _login(client, admin_a)

    response = client.post(reverse(f"admin:mltraining_modelversion_{name}", args=[target.pk]), {"reason": "  "})

    assert response.status_code == 200
    assert "Give a reason for switching the clinic&#x27;s model; nothing was changed." in response.content.decode()
    assert selectors.model_version_active_of(clinic_id=active_v1.clinic_id) == before
    assert not AuditEvent.objects.filter(action=f"model_version.{name}").exists()


def test_a_rollback_with_a_reason_is_audited_and_shown_in_the_version_history(client, admin_a, active_v1, candidate_v2):
    _login(client, admin_a)
    _action(client, "activate", candidate_v2)

    response = _action(client, "rollback", active_v1, reason="v2 flags too many healthy patients")

    assert "is active again" in response.content.decode()
    event = AuditEvent.objects.get(action="model_version.rollback")
    assert (event.actor, event.detail["reason"]) == (admin_a, "v2 flags too many healthy patients")
    card = client.get(reverse("mltraining:model_card", args=[candidate_v2.pk])).content.decode()
    history = card[card.index('data-testid="version-history"') :]
    assert "v2 flags too many healthy patients" in history
    assert "The held-out figures are better." in history  # v2's own activation reason


# --- comparing versions ------------------------------------------------------------------------------------


def test_two_versions_of_a_clinic_are_compared_side_by_side(client, admin_a, active_v1, candidate_v2):
    active_v1.metrics = {
        "test": {"roc_auc_ovr_macro": 0.81, "brier": 0.21, "class_roc_auc": {"ckd": {"auc": 0.77, "positives": 30}}},
        "ci": {"roc_auc_ovr_macro": [0.78, 0.84]},
        "subgroups": {"sex": {"female": {"n": 40.0, "roc_auc_ovr_macro": 0.79}}},
    }
    active_v1.feature_schema = {"features": [{"name": "age"}, {"name": "hba1c"}]}
    active_v1.save()
    candidate_v2.metrics = {
        "test": {"roc_auc_ovr_macro": 0.86, "brier": 0.18},
        "ci": {"roc_auc_ovr_macro": [0.83, 0.89]},
    }
    candidate_v2.feature_schema = {"features": [{"name": "age"}]}
    candidate_v2.save()
    _login(client, admin_a)

    url = reverse("admin:mltraining_modelversion_compare", args=[candidate_v2.pk])
    page = client.get(url, {"with": active_v1.pk}).content.decode()

    metrics = page[page.index('data-testid="compare-metrics"') :]
    assert "0.860 (0.830 – 0.890)" in metrics
    assert "0.810 (0.780 – 0.840)" in metrics
    calibration = page[page.index('data-testid="compare-calibration"') :]
    assert "0.180" in calibration
    assert "0.210" in calibration
    subgroups = page[page.index('data-testid="compare-subgroups"') :]
    assert "0.790 (n=40)" in subgroups
    inputs = page[page.index('data-testid="compare-inputs"') :]
    assert "<td>used</td><td>used</td>" in inputs  # age, in both
    assert "<td>not used</td><td>used</td>" in inputs  # HbA1c, only in v1


def test_a_version_of_another_clinic_cannot_be_compared(
    client, admin_a, admin_b, active_v1, trained_artifact, clinic_b
):
    theirs = ModelVersionFactory.create_with_artifact(trained_artifact, clinic=clinic_b, version=1)
    url = reverse("admin:mltraining_modelversion_compare", args=[active_v1.pk])

    assert _login(client, admin_a).get(url, {"with": theirs.pk}).status_code == 404
    assert client.get(url, {"with": "nope"}).status_code == 404
    assert _login(client, admin_b).get(url).status_code == 404


@pytest.mark.parametrize("role_fixture", ["doctor_a", "staff_a"])
def test_the_compare_page_is_for_admins_only(client, request, role_fixture, active_v1, candidate_v2):
    _login(client, request.getfixturevalue(role_fixture))

    response = client.get(reverse("admin:mltraining_modelversion_compare", args=[active_v1.pk]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_activating_a_tampered_artifact_is_refused_with_a_clear_message(
    client, admin_a, active_v1, candidate_v2, model_dir
):
    artifact_tamper(candidate_v2, lambda data: data[:-10] + b"0123456789")
    _login(client, admin_a)

    response = _action(client, "activate", candidate_v2)

    page = response.content.decode()
    assert "cannot be activated" in page
    assert "does not match its recorded checksum" in page
    assert selectors.active_model_for(clinic=active_v1.clinic_id) == active_v1


def test_another_clinics_admin_cannot_activate_a_version(client, admin_b, active_v1, candidate_v2):
    _login(client, admin_b)

    url = reverse("admin:mltraining_modelversion_activate", args=[candidate_v2.pk])
    button = client.post(url, {"reason": "mine now"})
    _action(client, "activate", candidate_v2)

    assert button.status_code == 404
    assert client.get(url).status_code == 404
    assert selectors.active_model_for(clinic=active_v1.clinic_id) == active_v1
    assert not AuditEvent.objects.filter(action="model_version.activate").exists()


@pytest.mark.parametrize("how", ["action", "button"])
def test_activating_a_synthetic_version_in_a_real_clinic_is_refused_with_the_reason(
    client, admin_a, active_v1, trained_artifact, how
):
    synthetic = ModelVersionFactory.create_with_artifact(
        trained_artifact, clinic=active_v1.clinic, version=2, provenance=SYNTHETIC_PROVENANCE
    )
    _login(client, admin_a)

    if how == "action":
        response = _action(client, "activate", synthetic)
    else:
        url = reverse("admin:mltraining_modelversion_activate", args=[synthetic.pk])
        response = client.post(url, {"reason": "try it"}, follow=True)

    page = response.content.decode()
    assert "cannot be activated: it was trained on synthetic demo data and Riverside Clinic is not a demo" in page
    assert "Nothing was changed." in page
    assert selectors.active_model_for(clinic=active_v1.clinic_id) == active_v1
    synthetic.refresh_from_db()
    assert synthetic.status == ModelStatus.CANDIDATE
    assert not AuditEvent.objects.filter(action="model_version.activate").exists()


def test_the_version_pages_say_what_each_version_was_trained_on(client, admin_a, active_v1):
    _login(client, admin_a)

    listed = client.get(reverse("admin:mltraining_modelversion_changelist")).content.decode()
    shown = client.get(reverse("admin:mltraining_modelversion_change", args=[active_v1.pk])).content.decode()

    sentence = "Trained on this clinic&#x27;s records: 1,200 patients, 310 doctor-confirmed diagnoses."
    assert sentence in listed
    assert sentence in shown


@pytest.mark.parametrize("role_fixture", ["doctor_a", "staff_a"])
def test_doctors_and_staff_cannot_activate_a_version(client, request, role_fixture, active_v1, candidate_v2):
    _login(client, request.getfixturevalue(role_fixture))

    button = client.post(reverse("admin:mltraining_modelversion_activate", args=[candidate_v2.pk]), {"reason": "x"})
    action = client.post(
        reverse("admin:mltraining_modelversion_changelist"),
        {"action": "activate", "_selected_action": [candidate_v2.pk]},
    )

    assert button.status_code == 302
    assert action.status_code == 302
    assert selectors.active_model_for(clinic=active_v1.clinic_id) == active_v1


def test_the_action_wants_exactly_one_version(client, admin_a, active_v1, candidate_v2):
    _login(client, admin_a)

    response = client.post(
        reverse("admin:mltraining_modelversion_changelist"),
        {"action": "activate", "_selected_action": [active_v1.pk, candidate_v2.pk]},
        follow=True,
    )

    assert "Select exactly one version." in response.content.decode()


# --- drift reports -------------------------------------------------------------------------------------------


def test_a_drift_report_page_lists_psi_per_feature_worst_first(client, admin_a, active_v1):
    report = DriftReport.objects.create(
        clinic=active_v1.clinic,
        model_version=active_v1,
        window_days=30,
        n_recent=120,
        overall_band=DriftBand.MAJOR,
        report={
            "features": {
                "glucose": {"psi": 0.02, "band": "stable", "n": 110, "missing_share": 0.1},
                "creatinine": {"psi": 7.5, "band": "major", "n": 118, "missing_share": 0.0},
            },
            "predictions": {"psi": 0.3, "band": "major", "reference": {"healthy": 0.6}, "recent": {"healthy": 0.2}},
        },
        predicted_mix={"healthy": 0.2, "ckd": 0.8},
    )
    _login(client, admin_a)

    page = client.get(reverse("admin:mltraining_driftreport_change", args=[report.pk])).content.decode()

    assert page.index("Creatinine") < page.index("Glucose")
    assert "(µmol/L)" in page  # the unit as clinicians write it, not its UCUM code umol/L
    assert "7.500" in page
    assert "0.800" in page  # the ckd share now


def test_check_drift_now_stores_a_report(client, admin_a, active_v1):
    _login(client, admin_a)

    response = client.post(reverse("admin:mltraining_driftreport_check"))

    report = DriftReport.objects.get()
    assert response["Location"] == reverse("admin:mltraining_driftreport_change", args=[report.pk])
    assert report.overall_band == DriftBand.NO_DATA
