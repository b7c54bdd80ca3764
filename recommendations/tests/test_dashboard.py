"""The review dashboard: access per role, clinic scoping, the numbers on a small hand-made history, CSVs, queries."""

import csv
import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clinic.models import AuditEvent, Role
from clinic.testing import audit_write_queries, session_read_queries
from clinic.tests.factories import UserFactory
from patients.tests.factories import PatientFactory
from recommendations import services
from recommendations.dashboard import weighted_median, wilson_interval
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, ItemStatus, Recommendation, RecommendationItem
from recommendations.tests.factories import prediction_for

ITEM = "diabetes_range_confirm"
URL = "/advice/dashboard/"
CHART_KEYS = [
    "acceptance-by-item",
    "acceptance-by-clinician",
    "override-reasons",
    "most-rejected",
    "review-time",
    "decisions-over-time",
    "pending-backlog",
]


def _recommendations(clinic, n, *, hours_ago=None):
    """n patients of `clinic` whose advice includes ITEM, generated `hours_ago[i]` hours ago."""
    patients = [PatientFactory(clinic=clinic, sex="male") for _ in range(n)]
    predictions = [prediction_for(patient, sex="male", hba1c=7.2, risk_level="high") for patient in patients]
    recommendations = recommendations_generate(predictions=predictions, clinic_id=clinic.pk)
    for recommendation, hours in zip(recommendations, hours_ago or [], strict=False):
        created = timezone.now() - datetime.timedelta(hours=hours)
        Recommendation.objects.filter(pk=recommendation.pk).update(created_at=created)
    return recommendations


def _item(recommendation, code=ITEM):
    return RecommendationItem.objects.get(recommendation=recommendation, advice__code=code)


def _reviewed(clinic, doctor, n):
    """n patients with every item decided: approved, except each third patient's, which are rejected."""
    for index, recommendation in enumerate(_recommendations(clinic, n)):
        for item in recommendation.items.all():
            if index % 3 == 2:
                services.item_reject(item=item, by=doctor, reason="already_addressed")
            else:
                services.item_approve(item=item, by=doctor)


def _csv(client, key):
    response = client.get(URL, {"download": key})
    assert response.status_code == 200, key
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def history(clinic_a, doctor_a):
    """One item decided on four patients: three approvals and one rejection ("duplicate"); the advice
    was generated 2, 4, 6 and 30 hours before the decision. The other items stay pending."""
    recommendations = _recommendations(clinic_a, 4, hours_ago=[2, 4, 6, 30])
    for recommendation in recommendations[:3]:
        services.item_approve(item=_item(recommendation), by=doctor_a)
    services.item_reject(item=_item(recommendations[3]), by=doctor_a, reason="duplicate", comment="Listed twice.")
    return recommendations


def test_the_dashboard_is_for_doctors_and_admins(client, users_by_role, history):
    for role, user in users_by_role.items():
        client.force_login(user)
        response = client.get(reverse("recommendations:dashboard"))
        assert response.status_code == (200 if role in (Role.DOCTOR, Role.ADMIN) else 403), role


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_three_approvals_and_one_rejection_of_an_item_make_75_percent(client, doctor_a, history):
    client.force_login(doctor_a)

    board = client.get(URL).context["board"]
    [row] = [row for row in _csv(client, "acceptance-by-item") if row["code"] == ITEM]

    assert (board.decisions, board.acceptance) == (4, 0.75)
    assert (row["decisions"], row["approved"], row["rejected"], row["acceptance_rate"]) == ("4", "3", "1", "0.75")
    # Wilson 95 % for 3 of 4, by hand: (0.75 + 1.96²/8 ± 1.96·sqrt(0.75·0.25/4 + 1.96²/64)) / (1 + 1.96²/4)
    assert float(row["wilson_low"]) == pytest.approx(0.3006, abs=1e-3)
    assert float(row["wilson_high"]) == pytest.approx(0.9544, abs=1e-3)


def test_the_rejected_item_shows_its_share_and_most_common_reason(client, doctor_a, history):
    client.force_login(doctor_a)

    page = client.get(URL)
    [row] = _csv(client, "most-rejected")
    reasons = {row["reason_code"]: row for row in _csv(client, "override-reasons")}

    assert (row["code"], row["rejections"], row["decisions"], row["share_rejected"]) == (ITEM, "1", "4", "0.25")
    assert row["most_common_reason"] == "Duplicate of another item"
    assert (reasons["duplicate"]["rejections"], reasons["duplicate"]["share"]) == ("1", "1.0")
    assert reasons["other"]["rejections"] == "0"
    assert "patient_declined" not in reasons  # a legacy reason nobody recorded here is not charted
    assert [item.label for item in page.context["board"].most_rejected_rows] == [row["item"]]
    assert "Duplicate of another item" in page.content.decode()


def test_a_rejection_recorded_as_patient_declined_before_it_was_withdrawn_still_reads(client, doctor_a, history):
    FeedbackEvent.objects.filter(override_reason="duplicate").update(override_reason="patient_declined")
    client.force_login(doctor_a)

    [row] = _csv(client, "most-rejected")
    reasons = {row["reason_code"]: row for row in _csv(client, "override-reasons")}

    assert row["most_common_reason"] == "Patient declined (no longer offered)"
    assert reasons["patient_declined"]["rejections"] == "1"


def test_review_time_is_hours_from_generation_to_decision_with_the_median_in_the_caption(client, doctor_a, history):
    client.force_login(doctor_a)

    board = client.get(URL).context["board"]
    bands = {row["band"]: int(row["decisions"]) for row in _csv(client, "review-time")}

    assert board.median_hours == pytest.approx(5.0)  # the middle of 2, 4, 6 and 30 hours
    assert "Median 5.0 hours" in board.review_time.caption
    assert (bands["1–4 h"], bands["4–8 h"], bands["1–2 d"], sum(bands.values())) == (1, 2, 1, 4)


def test_decisions_are_counted_per_clinician_and_per_week(client, doctor_a, history):
    client.force_login(doctor_a)

    [clinician] = _csv(client, "acceptance-by-clinician")
    weeks = _csv(client, "decisions-over-time")

    assert (clinician["clinician"], clinician["decisions"], clinician["acceptance_rate"]) == (
        doctor_a.get_full_name() or doctor_a.username,
        "4",
        "0.75",
    )
    assert [(row["approved"], row["rejected"]) for row in weeks] == [("3", "1")]
    week = datetime.date.fromisoformat(weeks[0]["week_starting"])
    assert week.weekday() == 0
    assert week <= timezone.localdate() < week + datetime.timedelta(days=7)


def test_the_backlog_counts_pending_items_by_severity_and_wait(client, doctor_a, history):
    client.force_login(doctor_a)
    pending = RecommendationItem.objects.filter(status=ItemStatus.PENDING)

    rows = {row["severity"]: row for row in _csv(client, "pending-backlog")}

    assert sum(int(row["total"]) for row in rows.values()) == pending.count() > 0
    # The fourth patient's advice was generated 30 hours ago: it has waited 1–7 days.
    assert (
        sum(int(row["waiting_1_to_7_days"]) for row in rows.values())
        == pending.filter(recommendation=history[3]).count()
    )


def test_another_clinics_decisions_are_left_out(client, doctor_a, doctor_b, clinic_b, history):
    _reviewed(clinic_b, doctor_b, 2)
    client.force_login(doctor_b)

    board = client.get(URL).context["board"]
    clinicians = [row["clinician"] for row in _csv(client, "acceptance-by-clinician")]

    assert board.decisions == RecommendationItem.objects.filter(recommendation__clinic=clinic_b).count()
    assert board.pending == 0
    assert clinicians == [doctor_b.get_full_name() or doctor_b.username]


def test_a_clinic_without_decisions_sees_the_empty_state(client, admin_a, clinic_a):
    _recommendations(clinic_a, 1)
    client.force_login(admin_a)

    response = client.get(URL)

    content = response.content.decode()
    assert response.context["board"].decisions == 0
    assert 'data-testid="dashboard-empty"' in content
    assert "No review decisions yet" in content
    assert 'data-chart="pending-backlog"' in content
    assert 'data-chart="acceptance-by-item"' not in content


def test_each_chart_downloads_its_data_as_csv_without_patient_identifiers(client, doctor_a, history):
    client.force_login(doctor_a)
    # Full names, not surnames alone: a generated surname can be a word of the page ("Wilson interval").
    identifiers = [value for rec in history for value in (rec.patient.mrn, rec.patient.full_name)]

    for key in CHART_KEYS:
        response = client.get(URL, {"download": key})
        content = b"".join(response.streaming_content).decode()
        assert response["Content-Disposition"] == f'attachment; filename="review-dashboard-{key}.csv"'
        assert content.count("\n") >= 2, key
        assert not [value for value in identifiers if value in content], key
    page = client.get(URL).content.decode()
    assert not [value for value in identifiers if value in page]
    assert page.count('data-testid="chart"') == len(CHART_KEYS)


def test_an_unknown_download_is_a_404(client, doctor_a):
    client.force_login(doctor_a)

    assert client.get(URL, {"download": "patients"}).status_code == 404


def test_every_view_and_download_writes_one_audit_row(client, admin_a, history):
    client.force_login(admin_a)

    client.get(URL)
    _csv(client, "override-reasons")

    rows = AuditEvent.objects.filter(action="dashboard.review.view").order_by("pk")
    assert [(row.actor_id, row.clinic_id, row.patient_id, row.detail) for row in rows] == [
        (admin_a.pk, admin_a.clinic_id, None, {}),
        (admin_a.pk, admin_a.clinic_id, None, {"download": "override-reasons"}),
    ]


def test_the_dashboard_runs_the_same_queries_for_5_or_40_reviewed_patients(client, clinic_a, doctor_a):
    client.force_login(doctor_a)
    client.get(URL)  # the session's first request also saves it
    counts = []
    for n in (5, 35):
        _reviewed(clinic_a, doctor_a, n)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    # the session (unless read from Redis), the user with their clinic, decisions by item, by clinician, review
    # hours, pending backlog, by week, and the audit row
    assert counts[0] == 6 + session_read_queries() + audit_write_queries()


def test_a_csv_download_runs_one_query_less_than_the_page(client, doctor_a, history):
    client.force_login(doctor_a)
    client.get(URL)

    with CaptureQueriesContext(connection) as queries:
        _csv(client, "review-time")

    # the session (unless read from Redis), the user, the figures and the audit row; no navigation on a download
    assert len(queries) == 6 + session_read_queries() + audit_write_queries()


def test_the_review_queue_links_to_the_dashboard(client, doctor_a):
    client.force_login(doctor_a)

    response = client.get(reverse("recommendations:queue"))

    assert f'href="{URL}"' in response.content.decode()


def test_a_doctor_with_the_same_name_as_another_is_counted_apart(client, clinic_a, doctor_a, history):
    twin = UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="twin", first_name=doctor_a.first_name,
                       last_name=doctor_a.last_name)  # fmt: skip
    services.item_approve(item=history[0].items.get(position=0), by=twin)
    client.force_login(doctor_a)

    rows = _csv(client, "acceptance-by-clinician")

    assert sorted(int(row["decisions"]) for row in rows) == [1, 4]


@pytest.mark.parametrize(
    ("counts", "median"),
    [
        ([], None),
        ([(2.0, 1)], 2.0),
        ([(1.0, 1), (3.0, 1)], 2.0),
        ([(1.0, 2), (5.0, 1)], 1.0),
        ([(1.0, 1), (4.0, 3)], 4.0),
    ],
)
def test_the_median_of_counted_values(counts, median):
    assert weighted_median(counts) == median


def test_the_wilson_interval_stays_within_0_and_1():
    assert wilson_interval(0, 0) == (0.0, 0.0)
    low, high = wilson_interval(5, 5)
    assert 0.5 < low < 1.0
    assert high == pytest.approx(1.0)
