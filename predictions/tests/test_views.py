"""The risk card of the patient page, "Score now", and the batch pages for clinic admins."""

import datetime
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clinic.models import AuditEvent, Role
from clinic.testing import session_read_queries
from conftest import scorable
from patients.demo import demo_cohort_load
from patients.models import Observation, Patient
from patients.services import ObservationInput, observations_record
from patients.tests.factories import PatientFactory
from predictions import services, tasks
from predictions.charts import contributions_svg, value_text
from predictions.models import BatchStatus, Prediction, PredictionBatch, PredictionChunk, RiskLevel
from recommendations.models import Recommendation

CLINICAL_ROLES = [Role.ADMIN, Role.DOCTOR, Role.STAFF]
XSS = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    services._loaded.clear()
    yield
    services._loaded.clear()


@pytest.fixture
def cohort(clinic_a, patient_user_a):
    """40 synthetic patients of clinic A; the first is the record of the patient account `patient_user_a`."""
    demo_cohort_load(clinic=clinic_a, n_patients=40, seed=7, link_user=patient_user_a)
    return list(Patient.objects.filter(clinic=clinic_a).order_by("pk"))


@pytest.fixture
def patient(cohort):
    return scorable(cohort[1:])


@pytest.fixture
def own_record(cohort, patient_user_a):
    return Patient.objects.get(user=patient_user_a)


@pytest.fixture
def start(active_model, django_capture_on_commit_callbacks):
    """Start a batch and run what it enqueues on commit (tasks are eager in tests)."""

    def run(by, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            batch = services.prediction_batch_start(clinic=active_model.clinic, by=by, trigger="portal", **kwargs)
        batch.refresh_from_db()
        return batch

    return run


def detail_url(patient):
    return reverse("patients:detail", args=[patient.pk])


def score_url(patient):
    return reverse("predictions:score", args=[patient.pk])


def page(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def risk_card_html(html):
    start = html.index('data-testid="risk-card"')
    return html[start : html.index("</section>", html.index('data-testid="prediction-history"', start))]


# --- the risk card -------------------------------------------------------------------------------------------


def _stored_prediction(patient, version) -> Prediction:
    """A successful prediction as scoring stores one, written directly: the card's reading of it is under test."""
    return Prediction.objects.create(
        patient=patient, model_version=version, created_at=timezone.now(), status="succeeded",
        probabilities={"healthy": 0.6, "ckd": 0.4}, predicted_class="healthy", risk_score=0.4, risk_level="moderate",
        risk_thresholds=[0.2, 0.5], explanation_method="unavailable",
    )  # fmt: skip


@pytest.mark.hazard("H6", "Every score states what its model was trained on (provenance)")
def test_the_risk_card_says_what_the_model_was_trained_on(client, doctor_a, active_model, patient):
    _stored_prediction(patient, active_model)
    client.force_login(doctor_a)

    card = risk_card_html(page(client, detail_url(patient)))

    assert (
        '<p class="small mb-0" data-testid="training-data">Trained on this clinic&#x27;s records: 1,200 patients, '
        "310 doctor-confirmed diagnoses.</p>"
    ) in card


@pytest.mark.hazard(
    "H6", "The risk card says 'decision support, not a diagnosis' and shows the thresholds and the model version"
)
@pytest.mark.parametrize("role", CLINICAL_ROLES)
def test_clinical_roles_see_the_latest_prediction_in_plain_words_with_its_risk_and_model(
    client, users_by_role, active_model, patient, role
):
    prediction = services.prediction_create(patient_id=patient.pk)
    client.force_login(users_by_role[role])

    html = page(client, detail_url(patient))

    assert "Risk (decision support)" in html
    assert "Decision support for clinicians, not a diagnosis" in html
    card = html[html.index('data-testid="latest-prediction"') :]
    display = {"prediabetes": "Prediabetes", "diabetes": "Type 2 diabetes",
               "dyslipidemia": "Dyslipidemia", "ckd": "Chronic kidney disease", "iron_deficiency":
               "Iron-deficiency anemia", "thalassemia_trait": "Thalassemia trait",
               "thrombocytopenia": "Thrombocytopenia"}  # fmt: skip
    p = prediction.probabilities
    if prediction.risk_level == "low":
        summary = f"No target condition likely ({round(100 * p['healthy'])} %)"
    else:  # the conditions at 10 % or more, most likely first, at most three
        named = sorted((k for k in display if p.get(k, 0) >= 0.10), key=lambda k: -p[k])[:3]
        named = named or [max(display, key=lambda k: p.get(k, 0))]
        summary = ", ".join(f"{display[k]} {round(100 * p[k])} %" for k in named)
    assert f'data-testid="predicted-class">{summary}<' in card
    assert f"{prediction.get_risk_level_display()} risk</span>" in card
    assert f"score {prediction.risk_score:.2f}" in card
    assert "low below 0.20, moderate from 0.20, high from 0.50" in card
    assert "Model v1 · " in card
    assert card.count('role="progressbar"') == len(prediction.probabilities)
    assert prediction.predicted_class not in re.findall(r"<dt[^>]*>([^<]*)</dt>", card)  # keys never shown raw


@pytest.mark.hazard(
    "H6", "Beside a critical potassium a low risk turns grey and the card says the score does not cover it"
)
def test_beside_a_critical_result_a_low_risk_is_grey_and_the_card_says_the_score_does_not_cover_it(
    client, doctor_a, active_model, patient
):
    prediction = services.prediction_create(patient_id=patient.pk)
    Prediction.objects.filter(pk=prediction.pk).update(risk_level=RiskLevel.LOW)
    client.force_login(doctor_a)
    html = page(client, detail_url(patient))
    assert '<span class="badge text-bg-success" data-testid="risk-level">Low risk</span>' in risk_card_html(html)
    assert "risk-beside-critical" not in html

    potassium = ObservationInput("potassium", 6.9, "mmol/L")
    observations_record(patient=patient, by=doctor_a, entries=[potassium], effective_at=timezone.now())

    html = page(client, detail_url(patient))
    card = risk_card_html(html)
    assert '<span class="badge text-bg-secondary" data-testid="risk-level">Low risk</span>' in card
    assert '<span class="badge text-bg-success">' not in card  # nor in the history below it
    assert "This score does not cover the critical result above</strong> (Potassium): the model estimates" in card
    flow = html[html.index('data-testid="flow-prediction"') :]
    assert '<span class="badge text-bg-secondary">Low risk</span>' in flow[: flow.index("</li>")]
    # A high risk stays red beside a critical value: it reassures no one.
    Prediction.objects.filter(pk=prediction.pk).update(risk_level=RiskLevel.HIGH)
    assert '<span class="badge text-bg-danger" data-testid="risk-level">High risk</span>' in page(
        client, detail_url(patient)
    )


def test_the_explanation_is_an_svg_bar_chart_with_values_units_and_ranges(client, doctor_a, active_model, cohort):
    predictions = (services.prediction_create(patient_id=p.pk) for p in cohort[1:])
    prediction = next(p for p in predictions if any(c["reference"] for c in p.contributions))
    client.force_login(doctor_a)

    html = page(client, detail_url(prediction.patient))

    chart = html[html.index('<svg xmlns="http://www.w3.org/2000/svg" class="explanation-chart"') :]
    chart = chart[: chart.index("</svg>")]
    assert "What moved the model towards or away from" in chart
    assert "Contribution to the model's score (bar length relative to the largest)" in chart
    assert chart.count('class="explanation-row"') == len(prediction.contributions)
    for item in prediction.contributions:
        assert item["label"][:20] in chart
    directions = re.findall(r'data-direction="(\w+)"', chart)
    assert directions == ["towards" if c["contribution"] >= 0 else "away" for c in prediction.contributions]
    lab = next(c for c in prediction.contributions if c["reference"])
    assert f"{value_text(lab)}</text>" in chart
    assert value_text(lab).endswith(lab["reference"])


def test_a_value_is_shown_with_its_unit_and_where_it_lies_against_the_range():
    item = {"value": 6.006, "unit": "%", "analyte": "hba1c", "reference": "above range"}

    assert value_text(item) == "6.01 % · above range"
    assert value_text({"value": 8123.0, "unit": "/d", "analyte": "steps", "reference": ""}) == "8,123 per day"
    assert value_text({"value": 88.25, "unit": "mm[Hg]", "analyte": None, "reference": ""}) == "88.2 mmHg"
    assert value_text({"value": None, "unit": "g/dL", "analyte": "hemoglobin", "reference": ""}) == "not recorded"
    assert value_text({"value": "former_smoker", "unit": "", "analyte": None, "reference": ""}) == "former smoker"


def test_contribution_labels_and_values_are_escaped_in_the_svg():
    svg = contributions_svg(
        contributions=[
            {
                "feature": "x",
                "label": XSS,
                "analyte": None,
                "value": XSS,
                "unit": "",
                "contribution": 0.5,
                "direction": "towards",
                "reference": "",
            },
            {
                "feature": "y",
                "label": "A & B",
                "analyte": None,
                "value": 1.5,
                "unit": '"><img src=x onerror=alert(1)>',
                "contribution": -0.2,
                "direction": "away from",
                "reference": "",
            },
        ],  # fmt: skip
        predicted=XSS,
        method=XSS,
    )

    assert "<script>" not in svg
    assert "<img" not in svg
    assert "&lt;script&gt;" in svg
    assert "A &amp; B" in svg


def test_a_stored_label_with_markup_is_escaped_on_the_patient_page(client, doctor_a, active_model, patient):
    prediction = services.prediction_create(patient_id=patient.pk)
    prediction.contributions[0]["label"] = XSS
    Prediction.objects.filter(pk=prediction.pk).update(contributions=prediction.contributions)
    client.force_login(doctor_a)

    html = page(client, detail_url(patient))

    assert XSS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.hazard(
    "H4", "An input too old for the model is shown with the date it was last measured, not 'not recorded'"
)
def test_an_input_measured_too_long_ago_for_the_model_says_when_it_was_last_measured(
    client, doctor_a, active_model, patient
):
    long_ago = timezone.now() - datetime.timedelta(days=3 * 365)
    observations_record(
        patient=patient, by=doctor_a, entries=[ObservationInput("ldl", 4.9, "mmol/L")], effective_at=long_ago
    )
    Observation.objects.filter(patient=patient, analyte__code="ldl").exclude(effective_at=long_ago).delete()
    prediction = services.prediction_create(patient_id=patient.pk)
    assert prediction.inputs["ldl"] is None  # older than its window: not shown to the model as current
    absent = {"feature": "ldl", "label": "LDL cholesterol", "analyte": "ldl", "value": None, "unit": "mmol/L",
              "contribution": 0.2, "direction": "towards", "reference": ""}  # fmt: skip
    Prediction.objects.filter(pk=prediction.pk).update(contributions=[absent])
    client.force_login(doctor_a)

    card = risk_card_html(page(client, detail_url(patient)))

    assert f"none recent enough for the model; last measured {long_ago.date().isoformat()}" in card
    assert "not recorded" not in card


def test_a_failed_latest_prediction_shows_its_error_and_keeps_the_earlier_success_visible(
    client, doctor_a, active_model, patient
):
    earlier = services.prediction_create(patient_id=patient.pk)
    active_model.sha256 = "0" * 64  # what a changed artifact looks like to the check
    active_model.save()
    services._loaded.clear()
    failed = services.prediction_create(patient_id=patient.pk)
    assert failed.status == "failed"
    client.force_login(doctor_a)

    html = page(client, detail_url(patient))

    error = html[html.index('data-testid="prediction-error"') :]
    assert "The model could not be used:</strong>" in error
    assert "cannot be used" in error
    assert "The last successful prediction is shown below." in error
    assert 'data-testid="latest-prediction"' in html
    assert f"score {earlier.risk_score:.2f}" in html
    history = risk_card_html(html)[risk_card_html(html).index('data-testid="prediction-history"') :]
    assert history.index("Failed") < history.index(earlier.get_risk_level_display())


def test_an_error_without_any_earlier_success_is_shown_alone(client, doctor_a, active_model, patient):
    active_model.sha256 = "0" * 64
    active_model.save()
    services.prediction_create(patient_id=patient.pk)
    client.force_login(doctor_a)

    html = page(client, detail_url(patient))

    assert 'data-testid="prediction-error"' in html
    assert 'data-testid="latest-prediction"' not in html


def test_the_history_lists_the_last_10_with_class_risk_model_and_source(
    client, doctor_a, active_model, patient, start, admin_a
):
    for _ in range(11):
        services.prediction_create(patient_id=patient.pk)
    batch = start(by=admin_a)
    client.force_login(doctor_a)

    html = page(client, detail_url(patient))

    history = html[html.index('data-testid="prediction-history"') :]
    history = history[: history.index("</table>")]
    rows = re.findall(r"<tr>\s*<td", history)
    assert len(rows) == 10
    assert "Last 10 predictions" in history
    assert f"Batch #{batch.pk}" in history
    assert history.count("Online") == 9
    assert history.count("<td>v1</td>") == 10


def test_a_patient_without_predictions_shows_how_they_are_made(client, staff_a, active_model, patient):
    client.force_login(staff_a)

    html = page(client, detail_url(patient))

    assert 'data-testid="no-prediction"' in html
    assert 'data-testid="score-now"' in html


def test_a_patient_does_not_see_predictions_on_their_own_record(client, patient_user_a, active_model, own_record):
    services.prediction_create(patient_id=own_record.pk)
    client.force_login(patient_user_a)

    html = page(client, detail_url(own_record))

    assert "Risk (decision support)" not in html
    assert 'data-testid="risk-card"' not in html
    assert "explanation-chart" not in html
    assert "Score now" not in html
    assert reverse("predictions:score", args=[own_record.pk]) not in html


def _detail_queries(client, patient):
    with CaptureQueriesContext(connection) as queries:
        page(client, detail_url(patient))
    return len(queries)


def test_the_patient_page_runs_the_same_queries_for_1_or_15_predictions(
    client, doctor_a, active_model, cohort, start, admin_a
):
    few, many = cohort[2], cohort[3]
    services.prediction_create(patient_id=few.pk)
    for _ in range(14):
        services.prediction_create(patient_id=many.pk)
    start(by=admin_a)
    client.force_login(doctor_a)
    page(client, detail_url(few))  # warm up: session activity and the analyte catalog

    assert _detail_queries(client, few) == _detail_queries(client, many)


def test_the_patient_page_reads_predictions_in_one_query(client, doctor_a, active_model, patient):
    services.prediction_create(patient_id=patient.pk)
    client.force_login(doctor_a)
    page(client, detail_url(patient))

    with CaptureQueriesContext(connection) as queries:
        page(client, detail_url(patient))

    assert sum('FROM "predictions_prediction"' in q["sql"] for q in queries.captured_queries) == 1


# --- score now -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", CLINICAL_ROLES)
def test_score_now_scores_the_patient_and_returns_to_the_card(client, users_by_role, active_model, patient, role):
    client.force_login(users_by_role[role])

    response = client.post(score_url(patient), follow=True)

    assert response.redirect_chain[-1][0] == detail_url(patient) + "#risk"
    prediction = Prediction.objects.get(patient=patient)
    assert prediction.batch is None
    messages = [str(m) for m in response.context["messages"]]
    assert messages
    assert messages[0].startswith("Scored with model v1: ")
    event = AuditEvent.objects.get(action="prediction.create")
    assert (event.actor, event.patient_id) == (users_by_role[role], patient.pk)


def test_score_now_without_an_active_model_says_the_advice_comes_from_the_rules(client, doctor_a, patient):
    client.force_login(doctor_a)

    response = client.post(score_url(patient), follow=True)

    message = [str(m) for m in response.context["messages"]][0]
    assert "the clinic has no active model yet, so the advice comes from the guideline rules alone" in message
    assert Prediction.objects.get(patient=patient).model_version is None
    card = response.content.decode()
    notice = card[card.index('data-testid="no-active-model"') :]
    assert "No risk score yet:</strong> the clinic has no active model" in notice
    assert 'data-testid="prediction-error"' not in card  # not shown as a broken model
    history = card[card.index('data-testid="prediction-history"') :]
    assert ">No model</span>" in history
    assert "<td>—</td>" in history
    flow = card[card.index('data-testid="flow-prediction"') :]
    assert "Not scored: no active model yet" in flow[: flow.index("</li>")]


def test_score_now_with_an_unusable_model_shows_the_error(client, doctor_a, active_model, patient):
    active_model.sha256 = "0" * 64
    active_model.save()
    client.force_login(doctor_a)

    response = client.post(score_url(patient), follow=True)

    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("The model could not be used: Model version 1 cannot be used")
    html = response.content.decode()
    flow = html[html.index('data-testid="flow-prediction"') :]
    assert "Not scored: the model could not be used" in flow[: flow.index("</li>")]


def test_score_now_needs_a_post_and_the_csrf_token(client, doctor_a, active_model, patient):
    client.force_login(doctor_a)
    assert client.get(score_url(patient)).status_code == 405

    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(doctor_a)
    assert strict.post(score_url(patient)).status_code == 403
    assert not Prediction.objects.exists()


def test_a_patient_cannot_score_their_own_record(client, patient_user_a, active_model, own_record):
    client.force_login(patient_user_a)

    assert client.post(score_url(own_record)).status_code == 403
    assert not Prediction.objects.exists()


def test_a_patient_gets_404_for_another_patients_record(client, patient_user_a, active_model, patient):
    client.force_login(patient_user_a)

    assert client.post(score_url(patient)).status_code == 404


def test_a_doctor_of_another_clinic_gets_404_on_score_now(client, doctor_b, active_model, patient):
    client.force_login(doctor_b)

    assert client.post(score_url(patient)).status_code == 404
    assert not Prediction.objects.exists()


def test_anonymous_visitors_are_sent_to_login_from_score_now(client, active_model, patient):
    response = client.post(score_url(patient))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- batch pages ---------------------------------------------------------------------------------------------


def batch_for(clinic, model_version=None, **fields):
    """A batch row as the services leave it (list pages need rows, not a scoring run)."""
    now = timezone.now()
    values = {
        "trigger": "portal",
        "status": BatchStatus.SUCCEEDED,
        "total": 10,
        "done": 10,
        "chunks_total": 1,
        "chunks_finished": 1,
        "started_at": now - datetime.timedelta(seconds=3),
        "finished_at": now,
    } | fields
    return PredictionBatch.objects.create(clinic=clinic, model_version=model_version, **values)  # fmt: skip


BATCH_PAGES = ["batch_list", "batch_detail", "batch_progress"]


def batch_url(name, batch=None):
    return reverse(f"predictions:{name}", args=[batch.pk] if name != "batch_list" else [])


@pytest.mark.parametrize("name", BATCH_PAGES)
@pytest.mark.parametrize("role", [Role.DOCTOR, Role.STAFF, Role.PATIENT])
def test_batch_pages_are_for_admins_only(client, users_by_role, clinic_a, name, role):
    batch = batch_for(clinic_a)
    client.force_login(users_by_role[role])

    assert client.get(batch_url(name, batch)).status_code == 403
    assert client.post(reverse("predictions:batch_start")).status_code == 403


@pytest.mark.parametrize("name", BATCH_PAGES)
def test_anonymous_visitors_are_sent_to_login_from_batch_pages(client, clinic_a, name):
    response = client.get(batch_url(name, batch_for(clinic_a)))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ["batch_detail", "batch_progress"])
def test_another_clinics_batch_is_a_404(client, admin_b, clinic_a, name):
    client.force_login(admin_b)

    assert client.get(batch_url(name, batch_for(clinic_a))).status_code == 404


def test_the_batch_list_shows_the_clinics_batches_only(client, admin_a, admin_b, clinic_a, clinic_b, active_model):
    mine = batch_for(clinic_a, active_model, requested_by=admin_a)
    batch_for(clinic_b)
    client.force_login(admin_a)

    response = client.get(batch_url("batch_list"))

    assert [row["batch"] for row in response.context["rows"]] == [mine]
    html = response.content.decode()
    assert "Succeeded" in html
    assert "v1" in html
    assert "3.0 s" in html
    assert admin_a.get_full_name() in html
    assert "Score all patients" in html
    assert 'name="clinic"' not in html  # an admin scores their own clinic


def test_a_superuser_sees_every_clinics_batches_and_picks_the_clinic(client, superuser, clinic_a, clinic_b):
    batch_for(clinic_a)
    batch_for(clinic_b)
    client.force_login(superuser)

    response = client.get(batch_url("batch_list"))

    assert len(response.context["rows"]) == 2
    assert 'name="clinic"' in response.content.decode()


def _list_queries(client):
    with CaptureQueriesContext(connection) as queries:
        page(client, batch_url("batch_list"))
    return len(queries)


def test_the_batch_list_runs_a_constant_number_of_queries(client, admin_a, clinic_a, active_model):
    batch_for(clinic_a, active_model, requested_by=admin_a)
    client.force_login(admin_a)
    page(client, batch_url("batch_list"))  # warm up: session activity

    few = _list_queries(client)
    for _ in range(24):
        batch_for(clinic_a, active_model, requested_by=admin_a)

    # the session (unless read from Redis), the user with their clinic, count, the page of batches (clinic, model
    # version and requester joined)
    assert _list_queries(client) == few == 3 + session_read_queries()


def test_score_all_patients_starts_a_batch_and_opens_its_page(client, admin_a, cohort, active_model):
    client.force_login(admin_a)

    response = client.post(reverse("predictions:batch_start"))

    batch = PredictionBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == batch_url("batch_detail", batch)
    assert (batch.clinic, batch.requested_by, batch.trigger, batch.total) == (admin_a.clinic, admin_a, "portal", 40)


def test_score_all_patients_without_an_active_model_says_so(client, admin_a, cohort):
    client.force_login(admin_a)

    response = client.post(reverse("predictions:batch_start"), follow=True)

    assert response.redirect_chain[-1][0] == batch_url("batch_list")
    assert "no active model" in [str(m) for m in response.context["messages"]][0]
    assert not PredictionBatch.objects.exists()


def test_score_all_patients_needs_a_post(client, admin_a):
    client.force_login(admin_a)

    assert client.get(reverse("predictions:batch_start")).status_code == 405


def test_a_superuser_scores_the_clinic_they_pick(client, superuser, active_model, cohort, clinic_b):
    client.force_login(superuser)

    assert client.post(reverse("predictions:batch_start")).status_code == 404  # no clinic picked
    for junk in ("abc", "²", "9" * 30):
        assert client.post(reverse("predictions:batch_start"), {"clinic": junk}).status_code == 404
    client.post(reverse("predictions:batch_start"), {"clinic": active_model.clinic_id})

    assert PredictionBatch.objects.get().clinic == active_model.clinic


def test_the_batch_page_shows_progress_and_failed_chunks(client, admin_a, cohort, start, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 15)
    monkeypatch.setattr(tasks, "RETRY_BACKOFF_SECONDS", 0.0)
    real_score = services._score

    def flaky(patient_ids, **kwargs):
        if cohort[0].pk in patient_ids:
            raise RuntimeError("disk <b>on</b> fire")
        return real_score(patient_ids, **kwargs)

    monkeypatch.setattr(services, "_score", flaky)
    batch = start(by=admin_a)
    client.force_login(admin_a)

    html = page(client, batch_url("batch_detail", batch))

    assert batch.status == BatchStatus.PARTIAL
    assert "Finished with failed chunks" in html
    assert f'data-progress-url="{batch_url("batch_progress", batch)}"' in html
    assert 'data-finished="true"' in html
    assert "<strong>Chunk 0</strong>" in html
    assert "disk &lt;b&gt;on&lt;/b&gt; fire" in html
    assert '25</span> of <span data-field="total">40' in html


def test_the_progress_endpoint_answers_counts_chunks_and_seconds(client, admin_a, cohort, start, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_SIZE", 15)
    batch = start(by=admin_a)
    client.force_login(admin_a)

    response = client.get(batch_url("batch_progress", batch))

    data = response.json()
    assert response["Cache-Control"].startswith("max-age=0")
    assert {key: data[key] for key in ["status", "done", "failed", "total", "progress", "chunks_finished",
                                       "chunks_total", "failed_chunks", "finished"]} == {
        "status": "succeeded", "done": 40, "failed": 0, "total": 40, "progress": 1.0, "chunks_finished": 3,
        "chunks_total": 3, "failed_chunks": [], "finished": True,
    }  # fmt: skip
    assert data["seconds"] >= 0


def test_a_running_batch_reports_its_elapsed_time_and_is_not_finished(client, admin_a, clinic_a):
    batch = batch_for(clinic_a, status=BatchStatus.RUNNING, done=4, total=10, chunks_total=2, chunks_finished=1,
                      finished_at=None)  # fmt: skip
    PredictionChunk.objects.create(batch=batch, index=1, patient_ids=[1], status="failed", error="boom")
    client.force_login(admin_a)

    data = client.get(batch_url("batch_progress", batch)).json()
    html = page(client, batch_url("batch_detail", batch))

    assert (data["finished"], data["progress"], data["failed_chunks"]) == (False, 0.4, [{"index": 1, "error": "boom"}])
    assert 2.5 < data["seconds"] < 60
    assert 'data-finished="false"' in html
    assert "updates every 2 seconds" in html


def test_the_batch_page_says_when_its_chunks_were_sent_again(client, admin_a, clinic_a):
    quiet = batch_for(clinic_a, status=BatchStatus.RUNNING, finished_at=None)
    resent = batch_for(clinic_a, status=BatchStatus.RUNNING, finished_at=None, resends=2, resent_at=timezone.now())
    client.force_login(admin_a)

    assert 'data-testid="batch-resends"' not in page(client, batch_url("batch_detail", quiet))
    assert "2 times" in page(client, batch_url("batch_detail", resent)).split('data-testid="batch-resends"')[1]


def test_the_batch_page_polls_with_our_own_script_served_locally(client, admin_a, clinic_a):
    client.force_login(admin_a)

    html = page(client, batch_url("batch_detail", batch_for(clinic_a, status=BatchStatus.RUNNING)))

    scripts = re.findall(r'<script src="/static/([^"]+)"', html)
    assert "js/batch_progress.js" in scripts
    assert all(finders.find(script) for script in scripts)
    assert re.findall(r"https?://(?!www\.w3\.org/2000/svg)", html) == []
    source = Path(finders.find("js/batch_progress.js")).read_text()
    assert "2000" in source
    assert "innerHTML" not in source


def test_the_admin_home_links_the_batch_pages(client, admin_a, doctor_a):
    client.force_login(admin_a)
    assert batch_url("batch_list") in page(client, reverse("home"))

    client.force_login(doctor_a)
    assert batch_url("batch_list") not in page(client, reverse("home"))


@pytest.mark.hazard(
    "H6", "A new patient with four normal blood-count values gets no risk estimate, naming what is missing"
)
def test_a_patient_with_only_four_normal_blood_count_values_gets_no_risk_estimate_and_advice_from_the_rules(
    client, doctor_a, active_model, clinic_a
):
    new = PatientFactory(clinic=clinic_a)
    observations_record(
        patient=new, by=doctor_a, effective_at=timezone.now() - datetime.timedelta(days=3),
        entries=[ObservationInput("hemoglobin", 14.5, "g/dL"), ObservationInput("wbc", 6.0, "10*9/L"),
                 ObservationInput("platelets", 250, "10*9/L"), ObservationInput("mcv", 90, "fL")],
    )  # fmt: skip
    client.force_login(doctor_a)

    response = client.post(score_url(new), follow=True)

    prediction = Prediction.objects.get(patient=new)
    assert (prediction.status, prediction.risk_level, prediction.probabilities) == ("insufficient", "", {})
    assert prediction.error == (
        "Not enough recent results for a risk estimate: no HbA1c or fasting glucose in the last 365 days; "
        "no creatinine in the last 365 days."
    )
    assert prediction.inputs["hemoglobin"] == 14.5  # kept for the rules
    card = risk_card_html(response.content.decode())
    assert 'data-testid="not-enough-data"' in card
    assert "Moderate risk" not in card
    assert "No target condition" not in card
    recommendation = Recommendation.objects.get(patient=new)
    assert recommendation.headline == "no_action_needed"  # four normal values: nothing from the rules either
    assert recommendation.rationale["not_enough_data"] == prediction.error


def test_a_newer_too_old_record_hides_the_earlier_score_and_says_when_each_input_was_last_measured(
    client, doctor_a, active_model, patient
):
    services.prediction_create(patient_id=patient.pk)
    Observation.objects.filter(patient=patient, analyte__code="creatinine").update(
        effective_at=timezone.now() - datetime.timedelta(days=400)
    )
    latest = services.prediction_create(patient_id=patient.pk)
    client.force_login(doctor_a)

    card = risk_card_html(page(client, detail_url(patient)))

    assert latest.status == "insufficient"
    assert "no creatinine in the last 365 days (last " in latest.error
    assert 'data-testid="not-enough-data"' in card
    assert 'data-testid="latest-prediction"' not in card  # the earlier score is not shown as current
    assert "Not enough data" in card.split('data-testid="prediction-history"')[1]


@pytest.mark.hazard("H6", "A high risk whose single most likely class is 'no target condition' names the conditions")
@pytest.mark.parametrize(
    ("probabilities", "level", "summary"),
    [
        # the reported case: "No target condition (47 %)" beside "High risk 0.53"
        ({"healthy": 0.47, "ckd": 0.30, "diabetes": 0.15, "prediabetes": 0.08}, "high",
         "Chronic kidney disease 30 %, Type 2 diabetes 15 %"),
        ({"healthy": 0.61, "ckd": 0.09, "diabetes": 0.08, "prediabetes": 0.22}, "moderate", "Prediabetes 22 %"),
        ({"healthy": 0.64, "ckd": 0.09, "diabetes": 0.08, "prediabetes": 0.19}, "moderate", "Prediabetes 19 %"),
        ({"healthy": 0.70, "ckd": 0.06, "diabetes": 0.08, "iron_deficiency": 0.06, "prediabetes": 0.09}, "moderate",
         "Prediabetes 9 %"),
        ({"healthy": 0.91, "ckd": 0.05, "diabetes": 0.04}, "low", "No target condition likely (91 %)"),
        ({"healthy": 0.05, "ckd": 0.4, "diabetes": 0.3, "prediabetes": 0.15, "dyslipidemia": 0.1}, "high",
         "Chronic kidney disease 40 %, Type 2 diabetes 30 %, Prediabetes 15 %"),
    ],
)  # fmt: skip
def test_the_card_names_the_conditions_behind_a_raised_risk_and_never_no_target_condition(
    probabilities, level, summary
):
    from predictions.selectors import risk_summary

    assert risk_summary(probabilities=probabilities, risk_level=level) == summary
    if level != "low":
        assert "No target condition" not in summary


@pytest.mark.hazard("H6", "A high score with no lab or vital outside its range is shown as moderate, and says why")
def test_a_high_score_without_any_abnormal_result_is_shown_as_moderate():
    from predictions.scoring import risk_level

    assert risk_level(0.7, [0.2, 0.5], abnormal=True) == "high"
    assert risk_level(0.7, [0.2, 0.5], abnormal=False) == "moderate"
    assert risk_level(0.3, [0.2, 0.5], abnormal=False) == "moderate"
    assert risk_level(0.1, [0.2, 0.5], abnormal=False) == "low"
