"""Batches and predictions in the Django admin: clinic admins only, scoped, read-only, one button that scores."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from clinic.models import AuditEvent
from clinic.testing import session_read_queries
from conftest import make_model_version
from patients.demo import demo_cohort_load
from patients.models import Patient
from predictions import services, tasks
from predictions.models import BatchStatus, Prediction, PredictionBatch, PredictionChunk


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    services._loaded.clear()
    yield
    services._loaded.clear()


@pytest.fixture
def cohort(clinic_a):
    demo_cohort_load(clinic=clinic_a, n_patients=30, seed=12)
    return list(Patient.objects.filter(clinic=clinic_a).order_by("pk"))


@pytest.fixture
def batch(active_model, cohort, admin_a, django_capture_on_commit_callbacks, monkeypatch):
    """A finished batch of clinic A: 30 patients in 3 chunks."""
    monkeypatch.setattr(services, "CHUNK_SIZE", 10)
    with django_capture_on_commit_callbacks(execute=True):
        started = services.prediction_batch_start(clinic=active_model.clinic, by=admin_a, trigger="portal")
    started.refresh_from_db()
    return started


@pytest.fixture
def other_batch(clinic_b):
    return PredictionBatch.objects.create(clinic=clinic_b, trigger="portal", total=0)


def admin_url(name, *args):
    return reverse(f"admin:predictions_{name}", args=args)


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


# --- access ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role_fixture", ["doctor_a", "staff_a", "patient_user_a"])
@pytest.mark.parametrize("page", ["predictionbatch_changelist", "prediction_changelist", "predictionbatch_start"])
def test_doctors_staff_and_patients_cannot_reach_the_predictions_admin(client, request, role_fixture, page):
    client.force_login(request.getfixturevalue(role_fixture))

    for response in (client.get(admin_url(page)), client.post(admin_url(page))):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert not PredictionBatch.objects.exists()


def test_the_admin_index_lists_predictions_for_clinic_admins(client, admin_a):
    client.force_login(admin_a)

    html = client.get(reverse("admin:index")).content.decode()

    assert admin_url("predictionbatch_changelist") in html
    assert admin_url("prediction_changelist") in html


def test_a_clinic_admin_sees_only_their_clinics_batches(client, admin_a, batch, other_batch):
    client.force_login(admin_a)

    response = client.get(admin_url("predictionbatch_changelist"))

    assert [b.pk for b in response.context["cl"].result_list] == [batch.pk]
    assert client.get(admin_url("predictionbatch_change", other_batch.pk)).status_code == 404


def test_a_clinic_admin_sees_only_their_clinics_predictions(client, admin_a, admin_b, batch):
    client.force_login(admin_b)

    response = client.get(admin_url("prediction_changelist"))

    assert list(response.context["cl"].result_list) == []
    prediction = Prediction.objects.first()
    assert client.get(admin_url("prediction_change", prediction.pk)).status_code == 404


def test_nobody_adds_edits_or_deletes_batches_or_predictions_by_hand(client, admin_a, batch):
    client.force_login(admin_a)
    prediction = Prediction.objects.first()

    assert client.get(admin_url("predictionbatch_add")).status_code == 403
    assert client.get(admin_url("prediction_add")).status_code == 403
    assert client.get(admin_url("predictionbatch_delete", batch.pk)).status_code == 403
    assert client.get(admin_url("prediction_delete", prediction.pk)).status_code == 403
    for page in (admin_url("predictionbatch_change", batch.pk), admin_url("prediction_change", prediction.pk)):
        assert 'name="_save"' not in client.get(page).content.decode()


# --- batches -----------------------------------------------------------------------------------------------------


def test_the_batch_page_shows_counts_timings_and_its_chunks(client, admin_a, batch):
    client.force_login(admin_a)

    response = client.get(admin_url("predictionbatch_change", batch.pk))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Succeeded" in html
    assert "100%" in html
    assert reverse("predictions:batch_detail", args=[batch.pk]) in html
    assert html.count('class="field-attempts"') == 3
    assert 'http-equiv="refresh"' not in html


def test_a_running_batch_page_follows_its_progress_without_reloading_and_lists_failed_chunks(client, admin_a, clinic_a):
    running = PredictionBatch.objects.create(
        clinic=clinic_a, trigger="portal", status=BatchStatus.RUNNING, total=20, chunks_total=2, chunks_finished=1
    )
    PredictionChunk.objects.create(batch=running, index=0, patient_ids=[1, 2], status="failed", error="disk on fire")
    client.force_login(admin_a)

    html = client.get(admin_url("predictionbatch_change", running.pk)).content.decode()

    assert 'http-equiv="refresh"' not in html  # a timed reload fails WCAG 2.2.1
    assert f'data-live-status="{reverse("predictions:batch_progress", args=[running.pk])}"' in html
    assert 'data-testid="auto-refresh"' in html
    assert "disk on fire" in html


def test_score_all_patients_starts_a_batch_for_the_admins_clinic(client, admin_a, active_model, cohort):
    client.force_login(admin_a)

    response = client.post(admin_url("predictionbatch_start"))

    batch = PredictionBatch.objects.get()
    assert response["Location"] == admin_url("predictionbatch_change", batch.pk)
    assert (batch.clinic, batch.requested_by, batch.trigger, batch.total) == (active_model.clinic, admin_a, "admin", 30)
    assert AuditEvent.objects.filter(action="prediction.batch.start", actor=admin_a).count() == 1


def test_score_all_patients_is_a_button_on_the_changelist_and_needs_a_post(client, admin_a):
    client.force_login(admin_a)

    html = client.get(admin_url("predictionbatch_changelist")).content.decode()

    assert f'action="{admin_url("predictionbatch_start")}"' in html
    assert "Score all patients" in html
    assert reverse("predictions:batch_list") in html
    assert client.get(admin_url("predictionbatch_start")).status_code == 405


def test_score_all_patients_without_an_active_model_shows_why(client, admin_a, cohort):
    client.force_login(admin_a)

    response = client.post(admin_url("predictionbatch_start"), follow=True)

    assert "no active model" in [str(m) for m in response.context["messages"]][0]
    assert not PredictionBatch.objects.exists()


def test_a_superuser_scores_the_clinic_they_pick(client, superuser, active_model, cohort, clinic_b):
    client.force_login(superuser)

    assert 'name="clinic"' in client.get(admin_url("predictionbatch_changelist")).content.decode()
    assert client.post(admin_url("predictionbatch_start")).status_code == 404
    client.post(admin_url("predictionbatch_start"), {"clinic": active_model.clinic_id})

    assert PredictionBatch.objects.get().clinic == active_model.clinic


def test_the_batch_changelist_query_count_does_not_grow_with_rows(client, admin_a, batch, clinic_a):
    client.force_login(admin_a)
    url = admin_url("predictionbatch_changelist")
    client.get(url)  # the first request of a session warms caches
    few = _queries(client, url)

    for _ in range(10):
        PredictionBatch.objects.create(clinic=clinic_a, trigger="portal", requested_by=admin_a)

    # the session (unless read from Redis), user, count, the user's and their groups' permissions (the sidebar
    # asks every app's admin), the page (clinic, model version and requester joined)
    assert _queries(client, url) == few == 5 + session_read_queries()


# --- predictions ---------------------------------------------------------------------------------------------------


def test_the_prediction_list_shows_mrn_class_risk_version_batch_and_status(client, admin_a, batch, cohort):
    client.force_login(admin_a)

    html = client.get(admin_url("prediction_changelist")).content.decode()

    assert cohort[0].mrn in html
    assert f"Batch #{batch.pk}" in html
    assert "Model v1 (active)" in html
    assert "Succeeded" in html


@pytest.mark.parametrize("query", [{"status__exact": "failed"}, {"risk_level__exact": "high"}, {"q": "D0000001"}])
def test_the_prediction_list_filters_by_status_risk_level_version_and_mrn(client, admin_a, batch, cohort, query):
    client.force_login(admin_a)

    response = client.get(admin_url("prediction_changelist"), query)

    rows = list(response.context["cl"].result_list)
    expected = Prediction.objects.filter(
        **{key: value for key, value in query.items() if key != "q"},
        **({"patient__mrn": query["q"]} if "q" in query else {}),
    )
    assert {p.pk for p in rows} == set(expected.values_list("pk", flat=True)[:50])


def test_the_prediction_list_filters_by_model_version(client, admin_a, batch, active_model):
    client.force_login(admin_a)

    response = client.get(admin_url("prediction_changelist"), {"model_version__id__exact": active_model.pk})

    assert len(response.context["cl"].result_list) == 30


def test_the_version_filter_lists_the_clinics_versions_without_reading_its_predictions(
    client, admin_a, batch, active_model, clinic_b, trained_artifact
):
    archived = make_model_version(active_model.clinic, trained_artifact, version=2, status="archived")
    other = make_model_version(clinic_b, trained_artifact, version=7, status="active")
    client.force_login(admin_a)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(admin_url("prediction_changelist"))

    version_filter = next(f for f in response.context["cl"].filter_specs if f.field_path == "model_version")
    listed = {pk for pk, _label in version_filter.lookup_choices}
    assert listed == {active_model.pk, archived.pk}  # a version without predictions yet is offered; clinic B's not
    assert other.pk not in listed
    assert not [q for q in queries if "DISTINCT" in q["sql"] and "predictions_prediction" in q["sql"]]


@pytest.mark.postgres
def test_the_prediction_list_reads_its_page_newest_first_without_sorting_the_clinics_predictions(
    client, admin_a, batch
):
    """At 600,000 predictions, sorting them all for each page of 50 took 0.6 s; an index hands them over in order."""
    client.force_login(admin_a)
    page = client.get(admin_url("prediction_changelist")).context["cl"].result_list

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")  # sorts only when nothing else can give this order
        plan = page.explain()

    assert "Sort" not in plan, plan
    assert "prediction_time" in plan


def test_reading_predictions_in_the_admin_is_audited(client, admin_a, batch):
    client.force_login(admin_a)
    prediction = Prediction.objects.first()

    client.get(admin_url("prediction_changelist"), {"status__exact": "succeeded"})
    client.get(admin_url("prediction_change", prediction.pk))

    listed = AuditEvent.objects.get(action="prediction.list")
    succeeded = Prediction.objects.filter(status="succeeded").count()
    assert 0 < succeeded < 30  # the others had not enough recent results
    assert listed.detail == {"filters": {"status__exact": ["succeeded"]}, "count": succeeded}
    viewed = AuditEvent.objects.get(action="prediction.view")
    assert (viewed.actor, viewed.patient_id) == (admin_a, prediction.patient_id)


def test_an_audited_prediction_page_reads_its_prediction_once(client, admin_a, batch):
    client.force_login(admin_a)
    prediction = Prediction.objects.first()
    url = admin_url("prediction_change", prediction.pk)
    client.get(url)

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)

    assert escape(str(prediction)) in response.content.decode()
    reads = [q["sql"] for q in queries if q["sql"].startswith('SELECT "predictions_prediction"."id"')]
    assert len(reads) == 1  # once to audit the read, and the page renders that same object


def test_the_prediction_changelist_query_count_does_not_grow_with_rows(
    client, admin_a, active_model, cohort, monkeypatch
):
    client.force_login(admin_a)
    url = admin_url("prediction_changelist")
    services.prediction_create(patient_id=cohort[0].pk)
    client.get(url)
    few = _queries(client, url)

    services.predictions_create(patient_ids=[p.pk for p in cohort])

    assert _queries(client, url) == few


def test_a_batch_with_a_failing_chunk_shows_the_chunks_error(
    client, admin_a, active_model, cohort, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(services, "CHUNK_SIZE", 10)
    monkeypatch.setattr(tasks, "RETRY_BACKOFF_SECONDS", 0.0)
    real_score = services._score

    def flaky(patient_ids, **kwargs):
        if cohort[0].pk in patient_ids:
            raise RuntimeError("disk on fire")
        return real_score(patient_ids, **kwargs)

    monkeypatch.setattr(services, "_score", flaky)
    client.force_login(admin_a)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(admin_url("predictionbatch_start"))
    html = client.get(admin_url("predictionbatch_change", PredictionBatch.objects.get().pk)).content.decode()

    assert "Finished with failed chunks" in html
    assert "RuntimeError: disk on fire" in html
