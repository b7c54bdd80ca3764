"""The population dashboard and the patient page's radar and flow: access, charts, CSV, no identifiers, queries."""

import csv
import datetime
import io
import json
import re
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from django.core.cache import cache
from django.core.cache.backends import locmem
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from clinic.models import AuditEvent, Role
from clinic.testing import audit_write_queries, session_read_queries, wait_for, worker_start, worker_stop
from patients import dashboard, tasks
from patients.demo import demo_cohort_load
from patients.models import Patient, Sex
from patients.services import ObservationInput, observations_record
from patients.tests.factories import PatientFactory
from predictions.models import Prediction
from predictions.selectors import latest_predictions_frame
from predictions.services import predictions_create
from recommendations.models import OverrideReason, Recommendation
from recommendations.services import item_approve, item_reject

URL = reverse("patients:dashboard")
CHART_KEYS = ["registrations", "results", "correlations", "labs_by_condition", "patterns", "confidence", "risk_mix"]
WHEN = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)


@pytest.fixture
def cohort(clinic_a, active_model):
    """60 synthetic patients of clinic A with results, diagnoses, predictions and advice."""
    demo_cohort_load(clinic=clinic_a, n_patients=60, seed=1)
    patients = list(Patient.objects.filter(clinic=clinic_a))
    predictions_create(patient_ids=[p.pk for p in patients])
    return patients


def csv_of(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def figures_of(html):
    """The plotly data and layout of every chart on a page, as JSON."""
    figures = re.findall(r'<script type="application/json" data-plotly-figure="[\w-]+">(.*?)</script>', html, re.S)
    return [(figure["data"], figure["layout"]) for figure in map(json.loads, figures)]


# --- access --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [(Role.DOCTOR, 200), (Role.ADMIN, 200), (Role.STAFF, 403),
                                              (Role.PATIENT, 403)])  # fmt: skip
def test_doctors_and_admins_see_the_dashboard_staff_and_patients_get_403(client, users_by_role, role, status):
    client.force_login(users_by_role[role])

    response = client.get(URL)

    assert response.status_code == status


def test_a_superuser_sees_the_aggregates_of_every_clinic(client, superuser, clinic_a, clinic_b):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    demo_cohort_load(clinic=clinic_b, n_patients=10, seed=2)
    client.force_login(superuser)

    response = client.get(URL)

    assert response.context["board"].summary["patients"] == 30


def test_anonymous_visitors_are_sent_to_login(client, db):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_doctor_of_another_clinic_sees_only_their_own_clinic(client, cohort, clinic_b, doctor_b):
    demo_cohort_load(clinic=clinic_b, n_patients=20, seed=2)
    client.force_login(doctor_b)

    response = client.get(URL)

    summary = response.context["board"].summary
    assert (summary["patients"], summary["predicted"]) == (20, 0)
    assert sum(int(row[1]) for row in csv_of(client.get(URL, {"download": "registrations"}))[1:]) == 20
    assert csv_of(client.get(URL, {"download": "patterns"}))[1:] == []


# --- charts --------------------------------------------------------------------------------------------------


def test_every_chart_is_drawn_with_a_title_named_axes_and_a_caption(client, doctor_a, cohort):
    client.force_login(doctor_a)

    response = client.get(URL)

    html = response.content.decode()
    board = response.context["board"]
    assert [chart.key for chart in board.charts] == CHART_KEYS
    assert html.count('data-testid="chart"') == len(CHART_KEYS)
    for chart in board.charts:
        layout = chart.plotly_figure()["layout"]
        assert chart.title in html
        assert chart.caption
        assert f'id="chart-{chart.key}"' in html
        assert layout["title"]["text"] == chart.title
        assert layout["xaxis"]["title"]["text"], chart.key
        assert layout["yaxis"]["title"]["text"], chart.key
        assert chart.rows, f"{chart.key} has no data"


def test_each_chart_downloads_its_aggregated_data_as_csv(client, doctor_a, cohort):
    client.force_login(doctor_a)
    board = client.get(URL).context["board"]

    for chart in board.charts:
        response = client.get(URL, {"download": chart.key})

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert f"population-{chart.key}.csv" in response["Content-Disposition"]
        header, *rows = csv_of(response)
        assert header == list(chart.columns)
        assert len(rows) == len(chart.rows) > 0


def test_an_unknown_chart_download_is_404(client, doctor_a, db):
    client.force_login(doctor_a)

    assert client.get(URL, {"download": "nope"}).status_code == 404


def test_no_name_mrn_or_id_of_a_patient_reaches_the_page_or_a_csv(client, doctor_a, cohort):
    client.force_login(doctor_a)

    html = client.get(URL).content.decode()
    downloads = "\n".join(
        "\n".join(",".join(row) for row in csv_of(client.get(URL, {"download": key}))) for key in CHART_KEYS
    )

    for patient in cohort:
        for text in (html, downloads):
            assert patient.mrn not in text
            assert patient.full_name not in text
    for data, _layout in figures_of(html):
        for trace in data:
            assert not {"ids", "customdata", "text"} & set(trace) or trace["type"] in ("heatmap", "bar")
    scatter = [t for data, _ in figures_of(html) for t in data if t["type"] == "scatter" and t.get("mode") == "markers"]
    assert scatter
    assert all(set(t) <= {"x", "y", "mode", "name", "marker", "hovertemplate", "type"} for t in scatter)


def test_a_page_view_and_a_download_each_write_one_audit_row(client, doctor_a, cohort):
    client.force_login(doctor_a)

    client.get(URL)
    client.get(URL, {"download": "results"})

    first, second = AuditEvent.objects.filter(action="dashboard.population.view").order_by("id")
    assert (first.actor, first.detail["patients"]) == (doctor_a, 60)
    assert "download" not in first.detail
    assert second.detail["download"] == "results"


def test_the_dashboard_runs_the_same_queries_for_20_or_60_patients(
    client, doctor_a, clinic_a, active_model, django_assert_num_queries
):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    predictions_create(patient_ids=list(Patient.objects.values_list("pk", flat=True)))
    client.force_login(doctor_a)
    client.get(URL)  # warm up: session activity and the analyte catalog

    # the session (unless read from Redis), the user with their clinic, audit row, registrations per month,
    # results per month, latest key labs, confirmed diagnoses, latest predictions, the inputs of those the pattern
    # map draws, risk levels per month
    queries = 8 + session_read_queries() + audit_write_queries()
    dashboard.dashboard_caches_forget()
    with django_assert_num_queries(queries):
        few = client.get(URL)
    # The demo numbers its MRNs from 1: move the first patients aside to load 40 more into the same clinic.
    Patient.objects.update(mrn=Concat(Value("first-"), F("mrn")))
    demo_cohort_load(clinic=clinic_a, n_patients=40, seed=2)
    predictions_create(patient_ids=list(Patient.objects.filter(mrn__startswith="D").values_list("pk", flat=True)))
    dashboard.dashboard_caches_forget()
    with django_assert_num_queries(queries):
        many = client.get(URL)

    # a risk estimate for every patient with recent enough results (the others: "not enough recent results")
    estimated = Prediction.objects.filter(status="succeeded").values("patient").distinct().count()
    assert 20 < estimated < 60
    assert many.context["board"].summary["predicted"] == estimated
    assert few.context["board"].summary["predicted"] < 20


def test_the_pattern_map_reads_the_inputs_of_the_patients_it_draws_only(
    client, doctor_a, clinic_a, active_model, monkeypatch
):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    predictions_create(patient_ids=list(Patient.objects.values_list("pk", flat=True)))
    monkeypatch.setattr(dashboard, "MAX_POINTS", 6)
    read, inputs_of = [], dashboard.prediction_selectors.prediction_inputs

    def recorded(*, prediction_ids):
        read.append(list(prediction_ids))
        return inputs_of(prediction_ids=prediction_ids)

    monkeypatch.setattr(dashboard.prediction_selectors, "prediction_inputs", recorded)
    client.force_login(doctor_a)

    board = client.get(URL).context["board"]

    [ids] = read
    assert len(ids) == len(set(ids)) == 6
    assert set(Prediction.objects.filter(pk__in=ids).values_list("patient__clinic", flat=True)) == {clinic_a.pk}
    assert len(board.by_key["patterns"].rows) == 6
    # the counts and the confidence chart still cover every patient with a risk estimate
    assert board.summary["predicted"] == Prediction.objects.filter(status="succeeded").count() > 6
    assert sum(row[3] for row in board.by_key["confidence"].rows) == board.summary["predicted"]


def test_the_figures_are_computed_once_for_every_process_and_again_once_they_are_older_than_the_max_age(
    client, doctor_a, clinic_a, active_model, django_assert_num_queries, monkeypatch
):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    predictions_create(patient_ids=list(Patient.objects.values_list("pk", flat=True)))
    client.force_login(doctor_a)
    first = client.get(URL)
    assert first.context["board"].summary["patients"] == 20
    assert "Figures as of" in first.content.decode()

    Patient.objects.update(mrn=Concat(Value("first-"), F("mrn")))
    demo_cohort_load(clinic=clinic_a, n_patients=5, seed=2)
    dashboard._local.clear()  # another process: its own copy is empty, the shared cache has the figures
    # the session (unless read from Redis), the user with their clinic, the audit row: no aggregate
    with django_assert_num_queries(1 + session_read_queries() + audit_write_queries()):
        kept = client.get(URL)
    assert kept.context["board"].summary["patients"] == 20
    assert kept.context["board"].computed_at == first.context["board"].computed_at
    assert AuditEvent.objects.filter(action="dashboard.population.view").count() == 2  # every view is audited

    later = time.time() + dashboard.DASHBOARD_MAX_AGE + 1
    monkeypatch.setattr(dashboard, "time", SimpleNamespace(time=lambda: later))  # this module's clock only
    assert client.get(URL).context["board"].summary["patients"] == 25


def test_figures_past_their_age_are_shown_while_one_worker_computes_them_again(client, doctor_a, clinic_a, monkeypatch):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    client.force_login(doctor_a)
    first = client.get(URL).context["board"]
    Patient.objects.update(mrn=Concat(Value("first-"), F("mrn")))
    demo_cohort_load(clinic=clinic_a, n_patients=5, seed=2)
    sent = []  # the workers' queue, not run
    monkeypatch.setattr(tasks, "dashboard_figure_refresh", SimpleNamespace(delay=lambda *args: sent.append(args)))
    later = time.time() + dashboard.DASHBOARD_MAX_AGE + 1
    monkeypatch.setattr(dashboard, "time", SimpleNamespace(time=lambda: later))

    boards = [client.get(URL).context["board"] for _ in range(3)]

    assert [board.computed_at for board in boards] == [first.computed_at] * 3  # shown at once, not recomputed
    assert sent == [("population", clinic_a.pk, [])]  # one refresh, however many views meanwhile
    dashboard.figure_refresh(*sent[0])  # the worker
    assert client.get(URL).context["board"].summary["patients"] == 25


def test_figures_not_viewed_overnight_are_shown_at_once_in_the_morning_while_a_worker_computes_them_again(
    client, doctor_a, clinic_a, monkeypatch, settings
):
    # The in-memory cache, whose clock a test can move (Redis keeps its own); it is shared like Redis would be.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "night"}}
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    client.force_login(doctor_a)
    evening = client.get(URL).context["board"]
    Patient.objects.update(mrn=Concat(Value("first-"), F("mrn")))
    demo_cohort_load(clinic=clinic_a, n_patients=5, seed=2)
    sent = []
    monkeypatch.setattr(tasks, "dashboard_figure_refresh", SimpleNamespace(delay=lambda *args: sent.append(args)))
    morning = SimpleNamespace(time=lambda: time.time() + 14 * 3600)  # no view for 14 hours
    monkeypatch.setattr(dashboard, "time", morning)
    monkeypatch.setattr(locmem, "time", morning)
    dashboard._local.clear()  # the server was restarted overnight: its processes' own copies are gone

    shown = client.get(URL).context["board"]

    assert shown.computed_at == evening.computed_at  # not computed in the request
    assert sent == [("population", clinic_a.pk, [])]
    dashboard.figure_refresh(*sent[0])  # the worker
    assert client.get(URL).context["board"].summary["patients"] == 25


def test_figures_never_computed_are_sent_to_a_worker_and_the_dashboard_says_so_until_they_are_ready(
    client, doctor_a, clinic_a, monkeypatch
):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    client.force_login(doctor_a)
    sent = []  # the workers' queue, not run
    monkeypatch.setattr(tasks, "dashboard_figure_refresh", SimpleNamespace(delay=lambda *args: sent.append(args)))

    first = client.get(URL)
    again = client.get(URL)
    csv_meanwhile = client.get(URL, {"download": "results"})

    html = first.content.decode()
    assert first.status_code == 200
    assert first.context["board"] is None
    assert 'data-testid="computing"' in html
    assert "being computed" in html
    assert 'http-equiv="refresh"' not in html  # no timed reload (WCAG 2.2.1): a live region polls instead
    assert f'data-live-status="{reverse("patients:dashboard_status")}"' in html
    assert 'data-testid="summary"' not in html
    assert again.status_code == 200
    assert sent == [("population", clinic_a.pk, [])]  # one computation, however many views meanwhile
    assert csv_meanwhile.status_code == 503
    assert csv_meanwhile["Retry-After"] == "5"
    views = AuditEvent.objects.filter(action="dashboard.population.view").order_by("id")
    assert [event.detail for event in views] == [{"scope": clinic_a.pk, "computing": True}] * 2 + [
        {"scope": clinic_a.pk, "computing": True, "download": "results"}
    ]  # every view is audited, the ones without figures too

    dashboard.figure_refresh(*sent[0])  # the worker
    ready = client.get(URL)

    assert ready.context["board"].summary["patients"] == 20
    assert 'http-equiv="refresh"' not in ready.content.decode()


def test_a_dashboard_no_worker_brings_within_a_minute_says_since_when_it_waits_and_where_to_look(
    client, doctor_a, clinic_a, monkeypatch
):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    client.force_login(doctor_a)
    sent = []  # a broker that takes the message, and no worker that runs it
    monkeypatch.setattr(tasks, "dashboard_figure_refresh", SimpleNamespace(delay=lambda *args: sent.append(args)))
    asked = client.get(URL)
    two_minutes_on = SimpleNamespace(time=lambda: time.time() + 120)
    monkeypatch.setattr(dashboard, "time", two_minutes_on)

    late = client.get(URL)

    assert 'data-testid="computing"' in asked.content.decode()
    assert 'data-testid="worker-late"' not in asked.content.decode()  # under a minute: simply being computed
    html = late.content.decode()
    assert late.context["board"] is None
    assert late.context["waiting"].late
    assert 'data-testid="worker-late"' in html
    assert 'data-testid="computing"' not in html
    assert f"at {timezone.localtime(asked.context['waiting'].asked_at):%H:%M} (2 minutes ago)" in html
    assert "/healthz" in html  # where an administrator sees whether workers answer
    assert 'data-live-status="' in html  # it still follows the figures by itself
    assert len(sent) == 1  # the same ask, not sent again
    assert late.context["waiting"].asked_at == asked.context["waiting"].asked_at  # since the first ask

    dashboard.figure_refresh(*sent[0])  # a worker at last
    ready = client.get(URL)

    assert ready.context["board"].summary["patients"] == 20
    assert "waiting" not in ready.context
    assert 'data-testid="worker-late"' not in ready.content.decode()


def test_the_status_the_computing_page_polls_says_when_the_figures_are_ready(client, doctor_a, clinic_a, monkeypatch):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    client.force_login(doctor_a)
    sent = []
    monkeypatch.setattr(tasks, "dashboard_figure_refresh", SimpleNamespace(delay=lambda *args: sent.append(args)))
    client.get(URL)
    audited = AuditEvent.objects.count()

    computing = client.get(reverse("patients:dashboard_status")).json()
    dashboard.figure_refresh(*sent[0])
    ready = client.get(reverse("patients:dashboard_status")).json()

    assert computing == {"finished": False, "message": "The figures are being computed."}
    assert ready == {"finished": True, "message": "The figures are ready."}
    assert AuditEvent.objects.count() == audited  # no figures and no patient in it: nothing to audit


@pytest.mark.parametrize("role", [Role.STAFF, Role.PATIENT])
def test_roles_without_dashboards_are_refused_their_status(client, users_by_role, role):
    client.force_login(users_by_role[role])

    assert client.get(reverse("patients:dashboard_status")).status_code == 403


def test_a_patient_page_does_not_wait_for_the_clinic_medians_a_worker_computes_for_the_first_time(
    client, doctor_a, cohort, monkeypatch
):
    client.force_login(doctor_a)
    sent = []
    monkeypatch.setattr(tasks, "dashboard_figure_refresh", SimpleNamespace(delay=lambda *args: sent.append(args)))

    response = client.get(detail_url(cohort[0]))

    radar = response.context["radar"]
    assert response.status_code == 200
    assert [row[8] for row in radar.rows] == [None] * len(radar.rows)  # no clinic median yet, the patient's own all
    assert "Clinic median" not in radar.svg
    assert "being computed" in radar.caption
    assert sent == [("medians", cohort[0].clinic_id, list(dashboard.RADAR_LABS))]

    dashboard.figure_refresh(*sent[0])  # the worker
    radar = client.get(detail_url(cohort[0])).context["radar"]

    assert all(row[8] is not None for row in radar.rows)
    assert "Clinic median" in radar.svg


def test_figures_past_their_age_are_computed_in_the_request_when_no_worker_can_be_reached(
    client, doctor_a, clinic_a, monkeypatch
):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    client.force_login(doctor_a)
    client.get(URL)
    Patient.objects.update(mrn=Concat(Value("first-"), F("mrn")))
    demo_cohort_load(clinic=clinic_a, n_patients=5, seed=2)

    def broker_down(*args):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks, "dashboard_figure_refresh", SimpleNamespace(delay=broker_down))
    later = time.time() + dashboard.DASHBOARD_MAX_AGE + 1
    monkeypatch.setattr(dashboard, "time", SimpleNamespace(time=lambda: later))

    response = client.get(URL)

    assert response.status_code == 200
    assert response.context["board"].summary["patients"] == 25


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_computes_a_missing_figure_and_a_due_one_and_shares_them_with_the_server(
    client, doctor_a, clinic_a, on_real_workers, monkeypatch
):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    client.force_login(doctor_a)
    key = dashboard._key("population", clinic_a.pk, ())
    worker = worker_start(on_real_workers)
    try:
        assert client.get(URL).context["board"] is None  # never computed: sent to the worker, the page says so
        computed = wait_for(lambda: cache.get(key) is not None, seconds=60)
        assert computed, "the worker did not compute the figures:\n" + worker_stop(worker)
        first = client.get(URL).context["board"]
        assert first.summary["patients"] == 20
        Patient.objects.update(mrn=Concat(Value("first-"), F("mrn")))
        demo_cohort_load(clinic=clinic_a, n_patients=5, seed=2)
        later = time.time() + dashboard.DASHBOARD_MAX_AGE + 1
        monkeypatch.setattr(dashboard, "time", SimpleNamespace(time=lambda: later))

        shown = client.get(URL).context["board"]  # due: shown as it was, the refresh sent to the worker
        refreshed = wait_for(lambda: cache.get(key)[1].computed_at > first.computed_at, seconds=60)
        assert refreshed, "the worker did not compute the figures again:\n" + worker_stop(worker)
    finally:
        worker_stop(worker)

    assert shown.computed_at == first.computed_at
    assert cache.get(key)[1].summary["patients"] == 25


# --- the aggregates ------------------------------------------------------------------------------------------


def test_a_box_holds_the_quartiles_and_tukey_whiskers_of_the_values():
    values = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 100])

    box = dashboard._box(values)

    assert (box["q1"], box["median"], box["q3"]) == (3, 5, 7)
    assert (box["lowerfence"], box["upperfence"]) == (1, 8)  # 100 lies beyond q3 + 1.5 IQR


def test_groups_under_five_patients_are_not_drawn_and_a_patient_counts_in_each_of_their_diagnoses(db):
    latest = pd.DataFrame({"hba1c": [5.0, 5.2, 5.4, 5.6, 5.8, 7.0, 7.5, 8.0, 8.5, 9.0]}, index=range(1, 11))
    classes = pd.DataFrame(
        [(6, "diabetes"), (7, "diabetes"), (8, "diabetes"), (9, "diabetes"), (10, "diabetes"), (10, "ckd")],
        columns=["patient_id", "class_key"],
    )

    chart = dashboard.labs_by_condition_chart(latest, classes)

    groups = {row[2]: row for row in chart.rows if row[0] == "HbA1c"}
    assert set(groups) == {dashboard.NO_CONFIRMED, "Type 2 diabetes"}  # CKD has one patient
    assert groups["Type 2 diabetes"][3:7] == (5, 7.5, 8.0, 8.5)
    assert groups[dashboard.NO_CONFIRMED][3] == 5


def test_the_lab_pickers_buttons_each_name_the_boxes_of_their_lab(db):
    rng = np.random.default_rng(2)
    latest = pd.DataFrame({"hba1c": rng.normal(6, 1, 30), "ldl": rng.normal(3, 0.5, 30)}, index=range(1, 31))
    classes = pd.DataFrame([(n, "diabetes") for n in range(1, 11)], columns=["patient_id", "class_key"])

    figure = dashboard.labs_by_condition_chart(latest, classes).plotly_figure()

    buttons = figure["layout"]["updatemenus"][0]["buttons"]
    shown = {}
    for button in buttons:  # a run of trace indexes each (static/js/charts.js expands it), not a list per trace
        start, stop = button["args"][0]["visible"]["traces"]
        shown[button["label"]] = [trace["y"][0] for trace in figure["data"][start:stop]]
    assert [label.split(" (")[0] for label in shown] == ["HbA1c", "LDL"]
    assert all(boxes == [f"{dashboard.NO_CONFIRMED} (20)", "Type 2 diabetes (10)"] for boxes in shown.values())
    assert sum(len(boxes) for boxes in shown.values()) == len(figure["data"])


@pytest.mark.parametrize("with_data", [True, False], ids=["cohort", "empty clinic"])
def test_every_chart_built_as_plain_data_is_a_figure_plotly_accepts_and_writes_back_unchanged(
    cohort, clinic_b, with_data
):
    """The charts are built as plain data (`clinic.charts.Figure`), without plotly checking each property as it is
    set (most of a clinic's dashboard CPU, paid for every clinic each night): plotly, given each finished figure,
    must accept every property (it raises on a misspelt one or a value of the wrong kind) and write back what the
    chart holds, so plotly.js draws what plotly would have drawn. An empty clinic's charts say so in words."""
    import plotly.graph_objects as go
    from plotly.io.json import to_json_plotly

    def drawn(figure):  # as the page sends it; a layout list left empty is the same drawing as none
        data = json.loads(to_json_plotly(figure))
        data["layout"] = {key: value for key, value in data["layout"].items() if value != [] and key != "template"}
        return data

    board = dashboard._population_dashboard(cohort[0].clinic_id if with_data else clinic_b.pk)

    assert [chart.key for chart in board.charts] == CHART_KEYS
    for chart in board.charts:
        validated = go.Figure(chart.figure).to_dict()
        assert drawn(validated) == drawn(chart.figure), chart.key
        assert bool(chart.figure["data"]) == with_data, chart.key
        assert bool(chart.figure["layout"].get("annotations")) != with_data, chart.key  # "No ... yet"


def test_a_worker_keeps_the_figures_of_a_bounded_number_of_clinics_in_its_own_memory(db, monkeypatch):
    """A worker refreshing every clinic's figures in turn keeps only the most recent LOCAL_KEPT; the others are
    read again from the shared cache, each clinic's own."""
    from clinic.models import Clinic

    monkeypatch.setattr(dashboard, "LOCAL_KEPT", 3)
    dashboard._local.clear()
    clinics = [Clinic.objects.create(name=f"Clinic {i}", slug=f"clinic-{i}") for i in range(5)]
    for clinic in clinics:
        PatientFactory(clinic=clinic)
        dashboard.figure_refresh("population", clinic.pk, ())

    assert len(dashboard._local) == 3
    for clinic in clinics:  # the two dropped come from the shared cache, as computed for that clinic
        board = dashboard._shared("population", clinic.pk)
        assert board.summary["patients"] == 1
        assert dashboard._key("population", clinic.pk, ()) in dashboard._local
    assert len(dashboard._local) == 3


def test_the_correlations_are_pearsons_of_the_latest_values(db):
    rng = np.random.default_rng(0)
    glucose = rng.normal(5.5, 1, 40)
    latest = pd.DataFrame({"glucose": glucose, "hba1c": glucose * 0.8 + rng.normal(0, 0.3, 40)})

    chart = dashboard.correlation_chart(latest)

    [(lab, other, r, n)] = chart.rows
    assert (lab, other, n) == ("Glucose", "HbA1c", 40)
    assert r == pytest.approx(np.corrcoef(latest["glucose"], latest["hba1c"])[0, 1], abs=1e-3)


def test_the_pattern_map_draws_at_most_the_cap_of_anonymous_points(monkeypatch):
    monkeypatch.setattr(dashboard, "MAX_POINTS", 25)
    rng = np.random.default_rng(1)
    glucose = rng.normal(5, 1, 40)
    inputs = [{"glucose": g, "hba1c": g * 0.8 + rng.normal(), "age": rng.integers(20, 80)} for g in glucose]
    predictions = pd.DataFrame({"inputs": inputs, "predicted_class": ["healthy"] * 20 + ["diabetes"] * 20})

    chart = dashboard.pca_chart(predictions)

    assert len(chart.rows) == 25
    assert {row[2] for row in chart.rows} == {"No target condition", "Type 2 diabetes"}
    assert "of the differences" in chart.figure.layout["xaxis"]["title"]["text"]


def test_the_latest_predictions_frame_has_one_row_per_patient_with_the_newest(clinic_a, staff_a, active_model):
    patient = PatientFactory(clinic=clinic_a, sex=Sex.MALE)
    scorable = [
        ObservationInput("glucose", 9.0, "mmol/L"),
        ObservationInput("hemoglobin", 14.0, "g/dL"),
        ObservationInput("creatinine", 90, "umol/L"),
    ]  # every input a model needs, recent enough
    observations_record(patient=patient, by=staff_a, entries=scorable,
                        effective_at=timezone.now() - datetime.timedelta(days=2))  # fmt: skip
    predictions_create(patient_ids=[patient.pk])
    predictions_create(patient_ids=[patient.pk])
    newest = Prediction.objects.filter(patient=patient).latest("created_at", "id")

    frame = latest_predictions_frame(clinic_id=clinic_a.pk)

    assert Prediction.objects.filter(patient=patient).count() == 2
    assert list(frame["patient_id"]) == [patient.pk]
    assert frame.loc[0, "created_at"] == newest.created_at
    assert frame.loc[0, "confidence"] == max(newest.probabilities.values())
    assert latest_predictions_frame(clinic_id=clinic_a.pk + 1000).empty


# --- the patient page: radar and flow ------------------------------------------------------------------------


def detail_url(patient):
    return reverse("patients:detail", args=[patient.pk])


def test_the_radar_puts_the_low_limit_at_0_and_the_high_limit_at_1(doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, sex=Sex.FEMALE)
    entries = [ObservationInput("hemoglobin", 12.0, "g/dL"), ObservationInput("glucose", 5.5, "mmol/L"),
               ObservationInput("ldl", 1.68, "mmol/L")]  # fmt: skip
    latest = observations_record(patient=patient, by=doctor_a, entries=entries, effective_at=WHEN)

    chart = dashboard.patient_radar_chart(patient=patient, latest=latest, medians={"glucose": 4.7})

    positions = {row[0]: (row[5], row[9]) for row in chart.rows}
    # women's hemoglobin 12.0-15.5; glucose 3.9-5.5 with the median half way; LDL only has an upper limit of 3.36
    assert positions == {"Hemoglobin": (0.0, None), "Glucose": (1.0, 0.5), "LDL": (0.5, None)}


def test_a_doctor_sees_the_radar_and_the_flow_from_results_to_review(client, doctor_a, cohort):
    recommendation = Recommendation.objects.filter(patient__in=cohort).prefetch_related("items").first()
    first, second, *_ = recommendation.items.all()
    item_approve(item=first, by=doctor_a)
    item_reject(item=second, by=doctor_a, reason=OverrideReason.NOT_RELEVANT)
    client.force_login(doctor_a)

    response = client.get(detail_url(recommendation.patient))

    html = response.content.decode()
    flow = response.context["flow"]
    assert response.context["radar"].key == "radar"
    assert 'data-testid="radar"' in html
    assert flow["prediction"]["prediction"].pk == recommendation.prediction_id
    assert (flow["approved"], flow["rejected"], flow["pending"]) == (1, 1, recommendation.items.count() - 2)
    assert flow["abnormal"] == len(response.context["flagged"])
    assert 'data-testid="flow-review"' in html
    assert "1 approved · 1 rejected" in html


def test_the_radar_data_downloads_as_csv_from_the_patient_page(client, doctor_a, cohort):
    client.force_login(doctor_a)

    response = client.get(detail_url(cohort[0]), {"download": "radar"})

    header, *rows = csv_of(response)
    assert header[:3] == ["lab", "value", "unit"]
    assert len(rows) >= 3


def test_a_patient_sees_neither_the_radar_nor_the_flow_on_their_own_record(client, patient_user_a, staff_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, user=patient_user_a)
    observations_record(patient=patient, by=staff_a, effective_at=WHEN, entries=[
        ObservationInput("hemoglobin", 12.0, "g/dL"), ObservationInput("glucose", 5.5, "mmol/L"),
        ObservationInput("wbc", 6.0, "10*9/L")])  # fmt: skip
    client.force_login(patient_user_a)

    response = client.get(detail_url(patient))

    assert response.status_code == 200
    assert (response.context.get("radar"), response.context.get("flow")) == (None, None)
    assert 'data-testid="flow"' not in response.content.decode()
    assert "plotly" not in response.content.decode()


# --- the patient page is light: no plotly, no render-blocking script, the radar drawn on the server ----------

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def test_the_patient_page_loads_no_plotly_and_no_render_blocking_script(client, doctor_a, cohort):
    client.force_login(doctor_a)

    html = client.get(detail_url(cohort[0])).content.decode()

    assert 'data-testid="radar"' in html
    assert "plotly" not in html.lower()  # neither the 4.8 MB bundle nor a chart that needs it
    external = [attrs for attrs in SCRIPT_TAG.findall(html) if "src=" in attrs]
    assert external  # Bootstrap's bundle, at least
    # Every script the page fetches waits for the document: none holds up its first paint.
    assert all(re.search(r"\bdefer\b|type=\"module\"", attrs) for attrs in external)


def test_the_radar_is_drawn_on_the_server_with_a_text_alternative_and_the_charts_numbers(
    client, doctor_a, staff_a, clinic_a
):
    patient = PatientFactory(clinic=clinic_a, sex=Sex.FEMALE)
    observations_record(patient=patient, by=staff_a, effective_at=WHEN, entries=[
        ObservationInput("hemoglobin", 12.0, "g/dL"), ObservationInput("glucose", 7.1, "mmol/L"),
        ObservationInput("ldl", 1.68, "mmol/L"), ObservationInput("crp", 80.0, "mg/L")])  # fmt: skip
    client.force_login(doctor_a)

    response = client.get(detail_url(patient))

    html = response.content.decode()
    radar = response.context["radar"]
    svg = re.search(r'<svg[^>]*class="radar-chart".*?</svg>', html, re.DOTALL).group(0)
    assert 'role="img"' in svg
    assert "<title" in svg
    assert "<desc" in svg
    drawn = {
        label: (float(position), text)
        for label, position, text in re.findall(
            r'<circle[^>]*data-lab="([^"]+)"[^>]*data-position="([-\d.]+)"[^>]*><title>([^<]+)</title>', svg
        )
    }
    # The same points as the CSV (clipped to the drawn range as before), with their values and ranges on hover.
    assert {lab: position for lab, (position, _) in drawn.items()} == {
        row[0]: min(max(row[5], dashboard.RADAR_RANGE[0]), dashboard.RADAR_RANGE[1]) for row in radar.rows
    }
    assert drawn["Glucose"][1] == "Glucose: 7.1 mmol/L (range 3.9–5.5)"
    assert drawn["CRP"][0] == dashboard.RADAR_RANGE[1]  # far beyond: drawn at the edge
    # The text alternative: every value as a table a screen reader reads out, the flagged ones said in words.
    table = re.search(r'<table[^>]*data-testid="radar-table".*?</table>', html, re.DOTALL).group(0)
    for label in ("Hemoglobin", "Glucose", "LDL", "CRP"):
        assert f'<th scope="row">{label}</th>' in table
    assert "<td>7.1 mmol/L</td>" in table.replace(' class="text-nowrap"', "")  # as the point's title says it
    assert "above the reference range" in svg  # the description names what is out of range
