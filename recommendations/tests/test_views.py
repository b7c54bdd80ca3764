"""The review pages, the advice card and the patient's advice page: access per role and what each shows."""

import datetime
import re
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from clinic.testing import audit_write_queries, session_read_queries
from patients.models import Patient
from patients.tests.factories import PatientFactory
from recommendations import services
from recommendations.generation import recommendations_generate
from recommendations.models import Category, FeedbackEvent, ItemStatus, Recommendation, RecommendationItem
from recommendations.tests.factories import prediction_for
from recommendations.views import SEVERITY_BADGES

XSS = "<script>alert(1)</script>"


def _recommendations(clinic, n, risk_level="high", **inputs):
    patients = [PatientFactory(clinic=clinic, sex="male") for _ in range(n)]
    predictions = [prediction_for(p, sex="male", risk_level=risk_level, **(inputs or {"hba1c": 7.2})) for p in patients]
    return recommendations_generate(predictions=predictions, clinic_id=clinic.pk)


@pytest.fixture
def rec(clinic_a):
    return _recommendations(clinic_a, 1)[0]


def test_the_queue_is_for_doctors(client, users_by_role, rec):
    for role, user in users_by_role.items():
        client.force_login(user)
        response = client.get(reverse("recommendations:queue"))
        assert response.status_code == (200 if role == "doctor" else 403), role


@pytest.mark.hazard("H1", "The review queue lists a patient with a critical potassium before a mild case")
def test_the_queue_lists_pending_advice_most_severe_first(client, doctor_a, clinic_a):
    mild = _recommendations(clinic_a, 1, hba1c=6.0, risk_level="low")[0]
    severe = _recommendations(clinic_a, 1, potassium=7.0)[0]
    client.force_login(doctor_a)

    response = client.get(reverse("recommendations:queue"))

    rows = [row["rec"].pk for row in response.context["rows"]]
    assert rows.index(severe.pk) < rows.index(mild.pk)
    assert "Approve all items of the ticked patients" in response.content.decode()


def test_a_queue_row_lists_the_items_still_to_review_besides_the_headline(client, doctor_a, clinic_a):
    rec = _recommendations(clinic_a, 1, hba1c=7.2, ldl=5.5, hemoglobin=9.0)[0]
    items = list(rec.items.select_related("advice").order_by("position"))
    headline, decided, *waiting = items
    decided.status = ItemStatus.APPROVED
    decided.save()
    client.force_login(doctor_a)

    response = client.get(reverse("recommendations:queue"))

    (row,) = response.context["rows"]
    assert [item.pk for item in row["waiting"]] == [item.pk for item in waiting]
    waiting_cell = response.content.decode().split('data-testid="queue-row"')[1].split("<td")[5]
    assert all(escape(item.advice.title) in waiting_cell for item in waiting)
    assert escape(decided.advice.title) not in waiting_cell
    assert escape(headline.advice.title) not in waiting_cell


def queue_rows(html):
    """Each row of the queue's table as its cells' inner HTML."""
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_a_queue_row_names_the_patient_escaped_links_to_both_pages_and_dates_the_advice_in_the_clinics_time_zone(
    client, doctor_a, clinic_a, settings
):
    clinic_a.time_zone = "Pacific/Auckland"
    clinic_a.save(update_fields=["time_zone"])
    rec = _recommendations(clinic_a, 1, hba1c=7.2, ldl=5.5)[0]
    Patient.objects.filter(pk=rec.patient_id).update(given_name="Ann & Bo", family_name=XSS, mrn="M<1>")
    created = timezone.now() - datetime.timedelta(hours=3)
    Recommendation.objects.filter(pk=rec.pk).update(created_at=created)
    first, *others = rec.items.filter(is_headline=False).select_related("advice").order_by("position")
    RecommendationItem.objects.filter(pk=first.pk).update(pinned=True)
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:queue")).content.decode()
    empty = client.get(reverse("recommendations:queue"), {"q": "nobody by this name"}).content.decode()

    name = "Ann &amp; Bo &lt;script&gt;alert(1)&lt;/script&gt;"
    assert XSS not in html
    [cells] = queue_rows(html)
    assert cells[0] == (
        f'<input class="form-check-input" type="checkbox" name="recommendation" value="{rec.pk}" '
        f'aria-label="Select {name}">'
    )
    assert cells[1] == (
        f'<a href="/patients/{rec.patient_id}/">{name}</a><div class="small text-body-secondary">MRN M&lt;1&gt;</div>'
    )
    assert cells[2] == rec.get_headline_display()
    assert cells[3] == f'<span class="badge {SEVERITY_BADGES[rec.severity]}">{rec.get_severity_display()}</span>'
    titles = [f"<strong>{escape(first.advice.title)}</strong>", *(escape(item.advice.title) for item in others)]
    assert cells[4] == "".join(f'<span class="d-block">{title}</span>' for title in titles)  # the pinned one in bold
    local = created.astimezone(ZoneInfo("Pacific/Auckland"))
    assert f'title="{local:%Y-%m-%d %H:%M}">3\xa0hours ago</td>' in html
    assert cells[6] == f'<a class="btn btn-sm btn-primary" href="/advice/review/{rec.pk}/">Review</a>'
    assert queue_rows(empty) == [["Nothing waiting for review."]]


def test_the_queue_filters_by_severity_and_ignores_malformed_parameters(client, doctor_a, clinic_a):
    mild = _recommendations(clinic_a, 1, hba1c=6.0, risk_level="low")[0]
    client.force_login(doctor_a)

    strict = client.get(reverse("recommendations:queue"), {"severity": 3})
    malformed = client.get(reverse("recommendations:queue"), {"severity": "x'; DROP", "ordering": "password"})

    assert mild.pk not in [row["rec"].pk for row in strict.context["rows"]]
    assert malformed.status_code == 200
    assert mild.pk in [row["rec"].pk for row in malformed.context["rows"]]


def test_the_queue_filters_by_the_category_of_a_pending_item_and_lists_each_patient_once(client, doctor_a, clinic_a):
    rec = _recommendations(clinic_a, 1, hba1c=7.2, ldl=5.5, hemoglobin=9.0)[0]
    pending = list(rec.items.filter(status=ItemStatus.PENDING).values_list("advice__category", flat=True))
    most = max(set(pending), key=pending.count)  # several items of it, when any category has several
    absent = next(category for category in Category.values if category not in pending)
    client.force_login(doctor_a)

    listed = client.get(reverse("recommendations:queue"), {"category": most}).context["rows"]
    other = client.get(reverse("recommendations:queue"), {"category": absent}).context["rows"]

    assert [row["rec"].pk for row in listed] == [rec.pk]
    assert other == []


def test_the_queue_runs_the_same_queries_for_3_or_20_patients(client, doctor_a, clinic_a):
    client.force_login(doctor_a)
    client.get(reverse("recommendations:queue"))  # the session's first request also saves it
    counts = []
    for n in (3, 17):
        _recommendations(clinic_a, n)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("recommendations:queue")).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    # the session (unless read from Redis), the user with their clinic, count, page, items prefetch, and the audit
    # row
    assert counts[0] == 4 + session_read_queries() + audit_write_queries()
    (count,) = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert "patients_patient" not in count  # the count needs no patient, only the page's rows do


def test_the_review_page_reads_its_reviewers_in_the_same_queries_as_none(client, doctor_a, clinic_a):
    rec = _recommendations(clinic_a, 1, hba1c=7.2, ldl=5.5, hemoglobin=9.0)[0]
    client.force_login(doctor_a)
    url = reverse("recommendations:review", args=[rec.pk])
    client.get(url)  # the session's first request also saves it
    with CaptureQueriesContext(connection) as unreviewed:
        client.get(url)
    reviewed_items = rec.items.exclude(is_headline=True)
    reviewed_items.update(status=ItemStatus.APPROVED, reviewed_by=doctor_a, reviewed_at=rec.created_at)

    with CaptureQueriesContext(connection) as reviewed:
        response = client.get(url)

    assert response.content.decode().count(f"Approved by {escape(doctor_a.get_full_name() or doctor_a.username)}") == 3
    assert len(reviewed) == len(unreviewed)


@pytest.mark.hazard("H12", "Clinic B's doctor gets 404 on clinic A's review page and cannot approve its items")
def test_a_doctor_of_another_clinic_gets_404(client, doctor_b, rec):
    client.force_login(doctor_b)
    item = rec.items.get(position=1)

    assert client.get(reverse("recommendations:review", args=[rec.pk])).status_code == 404
    assert client.post(reverse("recommendations:item_approve", args=[item.pk])).status_code == 404
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING


@pytest.mark.hazard("H5", "Staff posting an approval get 404 and nothing is decided")
def test_staff_cannot_approve_through_the_page(client, staff_a, rec):
    client.force_login(staff_a)
    item = rec.items.get(position=1)

    response = client.post(reverse("recommendations:item_approve", args=[item.pk]))

    assert response.status_code == 404
    assert not FeedbackEvent.objects.exists()


def test_a_doctor_approves_and_rejects_through_the_review_page(client, doctor_a, rec):
    client.force_login(doctor_a)
    first, headline = rec.items.get(position=1), rec.items.get(position=0)

    page = client.get(reverse("recommendations:review", args=[rec.pk]))
    assert page.status_code == 200
    assert first.rationale in page.content.decode()

    client.post(reverse("recommendations:item_approve", args=[first.pk]), {"patient_text": "Edited for you."})
    client.post(
        reverse("recommendations:item_reject", args=[headline.pk]), {"reason": "other", "comment": "Too vague."}
    )

    first.refresh_from_db()
    headline.refresh_from_db()
    assert (first.status, first.patient_text) == (ItemStatus.APPROVED, "Edited for you.")
    assert (headline.status, headline.override_reason) == (ItemStatus.REJECTED, "other")


def test_the_review_page_offers_the_reasons_that_fit_a_review_before_release(client, doctor_a, rec):
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    select = html[html.index('name="reason"') : html.index("</select>")]
    assert re.findall(r'<option value="(\w+)">([^<]+)</option>', select) == [
        ("not_relevant", "Not indicated for this patient"),
        ("already_addressed", "Already addressed"),
        ("duplicate", "Duplicate of another item"),
        ("disagree_evidence", "Disagree with the evidence"),
        ("other", "Other"),
    ]


def test_an_item_rejected_as_patient_declined_before_the_change_still_shows_its_reason(client, doctor_a, rec):
    item = rec.items.get(position=1)
    services.item_reject(item=item, by=doctor_a, reason="other", comment="Before the change.")
    RecommendationItem.objects.filter(pk=item.pk).update(override_reason="patient_declined")  # as stored back then
    client.force_login(doctor_a)

    html = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    assert "reason: Patient declined (no longer offered)" in html


def test_the_review_page_says_what_the_model_was_trained_on(client, doctor_a, rec):
    client.force_login(doctor_a)

    page = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    assert (
        '<span class="d-block small" data-testid="training-data">Trained on this clinic&#x27;s records: 1,200 '
        "patients, 310 doctor-confirmed diagnoses.</span>"
    ) in page


def test_advice_stored_before_provenance_was_kept_reads_it_from_its_model_version(client, doctor_a, rec):
    Recommendation.objects.filter(pk=rec.pk).update(
        rationale={key: value for key, value in rec.rationale.items() if key != "training_data"}
    )
    client.force_login(doctor_a)

    page = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()

    assert "Trained on this clinic&#x27;s records: 1,200 patients" in page


def test_rejecting_without_a_reason_shows_why_and_writes_nothing(client, doctor_a, rec):
    client.force_login(doctor_a)
    item = rec.items.get(position=1)

    response = client.post(reverse("recommendations:item_reject", args=[item.pk]), {"reason": ""}, follow=True)

    assert "Choose why this advice does not apply." in response.content.decode()
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING
    assert not FeedbackEvent.objects.exists()


def test_bulk_approve_from_the_queue(client, doctor_a, clinic_a):
    recs = _recommendations(clinic_a, 3)
    client.force_login(doctor_a)

    client.post(reverse("recommendations:bulk_approve"), {"recommendation": [recs[0].pk, recs[1].pk]})

    assert set(recs[0].items.values_list("status", flat=True)) == {ItemStatus.APPROVED}
    assert set(recs[1].items.values_list("status", flat=True)) == {ItemStatus.APPROVED}
    assert set(recs[2].items.values_list("status", flat=True)) == {ItemStatus.PENDING}


def test_the_patient_page_shows_the_advice_and_its_review_status(client, staff_a, rec):
    client.force_login(staff_a)

    response = client.get(reverse("patients:detail", args=[rec.patient_id]))

    body = response.content.decode()
    assert 'data-testid="advice-card"' in body
    assert "waiting for a doctor" in body
    assert reverse("recommendations:review", args=[rec.pk]) not in body  # staff cannot review


@pytest.mark.hazard(
    "H6", "Advice made without the model says so on the review page and the patient page, and shows no model finding"
)
def test_advice_from_the_rules_alone_says_the_model_could_not_be_used(client, doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, sex="male")
    prediction = prediction_for(patient, sex="male", potassium=7.0)
    prediction.status, prediction.error = "failed", "Model version 1 cannot be used: its file is missing"
    prediction.save()
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)
    client.force_login(doctor_a)

    review = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()
    detail = client.get(reverse("patients:detail", args=[patient.pk])).content.decode()

    notice = review[review.index('data-testid="rules-only"') :]
    assert "Guideline rules only: the model could not be used (Model version 1 cannot be used" in notice
    assert "from the guideline rules alone (model v" in review
    assert "Model: most likely pattern" not in review
    card = detail[detail.index('data-testid="advice-card"') :]
    assert "from the guideline rules alone: the model could not be used" in card


def test_advice_before_the_clinic_has_a_model_says_so(client, doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, sex="male")
    prediction = prediction_for(patient, sex="male", potassium=7.0)
    prediction.status, prediction.model_version, prediction.error = "failed", None, "the clinic has no active model yet"
    prediction.save()
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)
    client.force_login(doctor_a)

    review = client.get(reverse("recommendations:review", args=[rec.pk])).content.decode()
    detail = client.get(reverse("patients:detail", args=[patient.pk])).content.decode()

    assert "from the guideline rules alone (no active model yet)" in review
    notice = review[review.index('data-testid="rules-only"') :]
    assert "the model could not be used (the clinic has no active model yet)" in notice
    card = detail[detail.index('data-testid="advice-card"') :]
    assert "from the guideline rules alone: no active model yet" in card


@pytest.mark.hazard("H5", "The portal's 'My advice' and patient page show an item only once a doctor approved it")
def test_a_patient_sees_only_approved_advice_on_their_pages(client, clinic_a, patient_user_a, doctor_a):
    patient = PatientFactory(clinic=clinic_a, user=patient_user_a, sex="male")
    rec = recommendations_generate(
        predictions=[prediction_for(patient, hba1c=7.2, sex="male", risk_level="high")], clinic_id=clinic_a.pk
    )[0]
    item = rec.items.get(position=1)
    client.force_login(patient_user_a)

    before = client.get(reverse("recommendations:mine")).content.decode()
    assert item.patient_text not in before
    assert "No advice yet" in before

    client.force_login(doctor_a)
    client.post(
        reverse("recommendations:item_approve", args=[item.pk]), {"patient_text": "See your doctor about sugar."}
    )
    client.force_login(patient_user_a)

    after = client.get(reverse("recommendations:mine")).content.decode()
    detail = client.get(reverse("patients:detail", args=[patient.pk])).content.decode()
    assert "See your doctor about sugar." in after
    assert "See your doctor about sugar." in detail
    assert rec.items.get(position=0).patient_text not in after  # the headline is still pending
    assert item.rationale not in detail  # clinician rationale stays with the clinicians


def test_my_advice_is_only_for_patients(client, doctor_a):
    client.force_login(doctor_a)
    assert client.get(reverse("recommendations:mine")).status_code == 404


def test_a_patient_reads_plain_headings_not_the_clinicians_titles(client, clinic_a, patient_user_a, doctor_a):
    patient = PatientFactory(clinic=clinic_a, user=patient_user_a, sex="male")
    rec = recommendations_generate(
        predictions=[prediction_for(patient, hba1c=7.2, sex="male", risk_level="high")], clinic_id=clinic_a.pk
    )[0]
    item = rec.items.get(advice__code="diabetes_range_confirm")
    client.force_login(doctor_a)
    client.post(reverse("recommendations:item_approve", args=[item.pk]), follow=True)  # the doctor reads the message
    client.force_login(patient_user_a)

    page = client.get(reverse("recommendations:mine")).content.decode()

    assert escape(item.advice.title) not in page  # "Glucose or HbA1c in the diabetes range: confirm" is for clinicians
    assert "A follow-up test" in page  # the item's category, in plain words
