"""The contact pages: the patient's form and requests, the team's worklist and request page, the home page count."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from clinic.models import AuditEvent
from patients import contact
from patients.models import ContactKind, ContactRequest, ContactStatus
from patients.tests.factories import PatientFactory
from patients.tests.test_contact import ask

pytestmark = pytest.mark.django_db
EMERGENCY = "For an emergency call your local emergency number; this form is read during opening hours"


def test_advice_that_says_to_see_a_doctor_offers_to_request_an_appointment_about_it(client, patient_user_a, advice):
    """Issue 31: "the advice says 'book an appointment' and offers no way to contact the clinic"."""
    client.force_login(patient_user_a)

    page = client.get(reverse("recommendations:mine")).content.decode()

    new = reverse("patients:contact_new")
    for code in ("diabetes_range_confirm", "consult_professional"):  # a follow-up test, see a doctor
        assert escape(f"{new}?kind=appointment&about={advice[code].pk}") in page
    assert f"about={advice['bmi_obesity_lifestyle'].pk}" not in page  # everyday habits: nothing to book
    assert page.count("Request an appointment about this") == 2


def test_the_form_about_an_advice_item_shows_it_says_it_is_not_for_emergencies_and_audits_the_read(
    client, own_record, patient_user_a, advice
):
    item = advice["diabetes_range_confirm"]
    client.force_login(patient_user_a)

    response = client.get(reverse("patients:contact_new"), {"kind": "appointment", "about": item.pk})

    page = response.content.decode()
    assert EMERGENCY in page
    assert escape(item.patient_text) in page
    assert response.context["form"]["kind"].value() == ContactKind.APPOINTMENT
    row = AuditEvent.objects.get(action="recommendation.patient_view")
    assert (row.patient_id, row.detail) == (own_record.pk, {"items": [item.pk]})


def test_a_patient_sends_an_appointment_request_and_then_reads_it_on_their_requests_page(
    client, own_record, patient_user_a, advice
):
    item = advice["diabetes_range_confirm"]
    client.force_login(patient_user_a)

    response = client.post(
        reverse("patients:contact_new"),
        {"kind": "appointment", "message": "Can I come in for the repeat test?", "preferred_times": "Mornings",
         "about": item.pk},
    )  # fmt: skip

    assert response.status_code == 302
    request = ContactRequest.objects.get()
    assert (request.patient, request.kind, request.advice_item, request.preferred_times) == (
        own_record, "appointment", item, "Mornings"
    )  # fmt: skip
    page = client.get(response.url).content.decode()
    assert "Can I come in for the repeat test?" in page
    assert "Waiting for the clinic." in page


def test_an_empty_message_is_shown_as_an_error_and_nothing_is_sent(client, own_record, patient_user_a):
    client.force_login(patient_user_a)

    response = client.post(reverse("patients:contact_new"), {"kind": "question", "message": "   "})

    assert response.status_code == 200
    assert response.context["form"].errors["message"]
    assert not ContactRequest.objects.exists()


def test_a_patient_over_the_daily_limit_reads_why_nothing_was_sent(client, own_record, patient_user_a):
    for _ in range(contact.OPEN_PER_DAY):
        ask(own_record, patient_user_a)
    client.force_login(patient_user_a)

    response = client.post(reverse("patients:contact_new"), {"kind": "question", "message": "Any news?"})

    assert response.status_code == 200
    assert "Please wait for its reply, or telephone the clinic." in response.content.decode()
    assert ContactRequest.objects.count() == contact.OPEN_PER_DAY


def test_a_patient_cannot_ask_about_another_patients_advice(client, clinic_a, own_record, patient_user_a, doctor_a):
    from recommendations.generation import recommendations_generate
    from recommendations.services import item_approve
    from recommendations.tests.factories import prediction_for

    other = PatientFactory(clinic=clinic_a, sex="male")
    [rec] = recommendations_generate(predictions=[prediction_for(other, hba1c=7.2, sex="male")], clinic_id=clinic_a.pk)
    item = item_approve(item=rec.items.first(), by=doctor_a)
    client.force_login(patient_user_a)

    get = client.get(reverse("patients:contact_new"), {"about": item.pk})
    post = client.post(reverse("patients:contact_new"), {"kind": "question", "message": "Hi", "about": item.pk})

    assert (get.status_code, post.status_code) == (404, 404)
    assert not ContactRequest.objects.exists()


def test_an_account_without_a_patient_record_is_told_to_telephone(client, patient_user_a):
    client.force_login(patient_user_a)

    response = client.post(reverse("patients:contact_new"), {"kind": "question", "message": "Hello?"})

    assert "Please telephone the clinic" in response.content.decode()
    assert not ContactRequest.objects.exists()


@pytest.mark.parametrize("name", ["patients:contact_new", "patients:contact_mine"])
def test_the_patient_pages_are_for_patients_only(client, staff_a, name):
    client.force_login(staff_a)
    assert client.get(reverse(name)).status_code == 404


@pytest.mark.parametrize("role", ["admin", "doctor", "staff"])
def test_the_clinical_team_opens_the_worklist_and_a_patient_cannot(client, users_by_role, role):
    client.force_login(users_by_role[role])
    assert client.get(reverse("patients:requests")).status_code == 200
    client.force_login(users_by_role["patient"])
    assert client.get(reverse("patients:requests")).status_code == 403


def _sent(patient, by, minutes_ago, **options):
    request = ask(patient, by, **options)
    ContactRequest.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - datetime.timedelta(minutes=minutes_ago)
    )
    return request


def test_the_worklist_page_lists_open_first_oldest_first_filters_and_audits_the_page(
    client, own_record, patient_user_a, staff_a
):
    done = _sent(own_record, patient_user_a, 300)
    contact.contact_request_handle(request=done, by=staff_a, action="done", reply="Answered.")
    newer = _sent(own_record, patient_user_a, 5, message="Newer question")
    older = _sent(own_record, patient_user_a, 50, kind=ContactKind.APPOINTMENT, message="Older appointment")
    client.force_login(staff_a)

    everything = client.get(reverse("patients:requests"))
    appointments = client.get(reverse("patients:requests"), {"kind": "appointment"})

    assert [row["request"] for row in everything.context["rows"]] == [older, newer, done]
    assert [row["request"] for row in appointments.context["rows"]] == [older]
    rows = AuditEvent.objects.filter(action="contact_request.list").order_by("pk")
    assert rows[0].detail["patient_ids"] == [own_record.pk] * 3
    assert rows[1].detail["filters"] == {"kind": "appointment", "status": ""}


def test_the_worklist_never_shows_another_clinics_requests(client, own_record, patient_user_a, doctor_b):
    ask(own_record, patient_user_a, message="Riverside only")
    client.force_login(doctor_b)

    response = client.get(reverse("patients:requests"))

    assert "Riverside only" not in response.content.decode()
    assert list(response.context["rows"]) == []


def test_staff_take_a_request_on_then_answer_it_and_the_patient_reads_the_reply(
    client, own_record, patient_user_a, staff_a
):
    request = ask(own_record, patient_user_a, "Can I have my results by post?")
    url = reverse("patients:request_detail", args=[request.pk])
    client.force_login(staff_a)

    page = client.get(url).content.decode()
    started = client.post(url, {"action": "start", "reply": ""})
    without_reply = client.post(url, {"action": "done", "reply": ""})
    done = client.post(url, {"action": "done", "reply": "Yes: they are in the post today."})

    assert "Can I have my results by post?" in page
    assert started.status_code == 302
    assert "Write the reply the patient will read" in without_reply.content.decode()
    assert done.status_code == 302
    assert done.url == reverse("patients:requests")
    request.refresh_from_db()
    assert (request.status, request.handled_by) == (ContactStatus.DONE, staff_a)
    client.force_login(patient_user_a)
    assert "Yes: they are in the post today." in client.get(reverse("patients:contact_mine")).content.decode()


def test_another_clinic_gets_404_on_a_request_and_cannot_answer_it(client, own_record, patient_user_a, doctor_b):
    request = ask(own_record, patient_user_a)
    url = reverse("patients:request_detail", args=[request.pk])
    client.force_login(doctor_b)

    assert client.get(url).status_code == 404
    assert client.post(url, {"action": "done", "reply": "Not ours."}).status_code == 404
    assert ContactRequest.objects.get().status == ContactStatus.OPEN


def test_the_home_page_counts_the_requests_waiting_for_staff(client, own_record, patient_user_a, staff_a, doctor_b):
    first = ask(own_record, patient_user_a)
    ask(own_record, patient_user_a)
    ask(own_record, patient_user_a)
    contact.contact_request_handle(request=first, by=staff_a, action="done", reply="Answered.")
    client.force_login(staff_a)

    home = client.get(reverse("home")).content.decode()

    assert '2</span> <a href="/patients/requests/">requests from patients waiting</a>' in home
    client.force_login(doctor_b)
    assert "No request from patients is waiting" in client.get(reverse("home")).content.decode()


def _queries(client, url) -> int:
    client.get(url)  # the first request after signing in also loads what the session caches
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_worklist_and_the_patients_requests_cost_the_same_queries_for_one_row_or_many(
    client, own_record, patient_user_a, staff_a, advice
):
    item = advice["diabetes_range_confirm"]
    first = ask(own_record, patient_user_a, kind=ContactKind.APPOINTMENT, advice_item=item)
    contact.contact_request_handle(request=first, by=staff_a, action="done", reply="Booked.")
    client.force_login(staff_a)
    worklist_one = _queries(client, reverse("patients:requests"))
    client.force_login(patient_user_a)
    mine_one = _queries(client, reverse("patients:contact_mine"))

    for _ in range(contact.OPEN_PER_DAY):
        ask(own_record, patient_user_a, kind=ContactKind.APPOINTMENT, advice_item=item)

    assert _queries(client, reverse("patients:contact_mine")) == mine_one
    client.force_login(staff_a)
    assert _queries(client, reverse("patients:requests")) == worklist_one
