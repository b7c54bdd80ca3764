"""Patients contacting their clinic: who may write and handle a request, its limits, audit rows and statuses."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from clinic.models import AuditEvent, Role
from clinic.tests.factories import UserFactory
from patients import contact
from patients.models import CONTACT_MESSAGE_MAX, CONTACT_TIMES_MAX, ContactKind, ContactRequest, ContactStatus
from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.services import item_approve
from recommendations.tests.factories import prediction_for

pytestmark = pytest.mark.django_db


def ask(patient, by, message="When should I repeat the test?", **options):
    return contact.contact_request_create(patient=patient, by=by, kind=options.pop("kind", ContactKind.QUESTION),
                                          message=message, **options)  # fmt: skip


def test_a_patient_asks_a_question_about_their_own_record_and_it_is_audited(own_record, patient_user_a):
    request = ask(own_record, patient_user_a, "  When should I repeat the test?  ")

    assert (request.clinic_id, request.patient_id, request.status) == (own_record.clinic_id, own_record.pk, "open")
    assert request.message == "When should I repeat the test?"
    row = AuditEvent.objects.get(action="contact_request.create")
    assert (row.actor_id, row.patient_id, row.object_id) == (patient_user_a.pk, own_record.pk, str(request.pk))


def test_a_patient_cannot_write_for_another_patient(clinic_a, own_record, patient_user_a):
    someone_else = PatientFactory(clinic=clinic_a)

    with pytest.raises(PermissionDenied):
        ask(someone_else, patient_user_a)

    assert not ContactRequest.objects.exists()


def test_staff_cannot_write_a_request_in_a_patients_name(own_record, staff_a):
    with pytest.raises(PermissionDenied):
        ask(own_record, staff_a)


@pytest.mark.parametrize(
    ("message", "error"),
    [("   ", "Write your question"), ("x" * (CONTACT_MESSAGE_MAX + 1), f"At most {CONTACT_MESSAGE_MAX} characters")],
)
def test_an_empty_or_too_long_message_is_refused_and_nothing_is_written(own_record, patient_user_a, message, error):
    with pytest.raises(ValidationError, match=error):
        ask(own_record, patient_user_a, message)

    assert not ContactRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="contact_request.create").exists()


def test_the_times_that_suit_the_patient_are_kept_and_limited(own_record, patient_user_a):
    appointment = ask(own_record, patient_user_a, kind=ContactKind.APPOINTMENT, preferred_times=" Mornings ")

    assert appointment.preferred_times == "Mornings"
    with pytest.raises(ValidationError, match="At most"):
        ask(own_record, patient_user_a, kind=ContactKind.APPOINTMENT, preferred_times="x" * (CONTACT_TIMES_MAX + 1))
    assert ContactRequest.objects.count() == 1


def test_an_unknown_kind_is_refused(own_record, patient_user_a):
    with pytest.raises(ValidationError, match="Choose a question or an appointment"):
        ask(own_record, patient_user_a, kind="emergency")


def test_a_request_about_approved_advice_links_it(own_record, patient_user_a, advice):
    item = advice["diabetes_range_confirm"]

    request = ask(own_record, patient_user_a, kind=ContactKind.APPOINTMENT, advice_item=item)

    assert request.advice_item == item
    assert AuditEvent.objects.get(action="contact_request.create").detail["advice_item"] == item.pk


def test_a_request_cannot_be_about_another_patients_advice(clinic_a, own_record, patient_user_a, doctor_a):
    other = PatientFactory(clinic=clinic_a, sex="male")
    [rec] = recommendations_generate(predictions=[prediction_for(other, hba1c=7.2, sex="male")], clinic_id=clinic_a.pk)
    item = item_approve(item=rec.items.first(), by=doctor_a)

    with pytest.raises(ValidationError, match="not yours"):
        ask(own_record, patient_user_a, advice_item=item)
    with pytest.raises(Http404):
        contact.advice_item_for_contact(user=patient_user_a, patient=own_record, pk=item.pk)


def test_a_flood_of_unanswered_requests_is_stopped_with_a_clear_message(own_record, patient_user_a, staff_a):
    sent = [ask(own_record, patient_user_a) for _ in range(contact.OPEN_PER_DAY)]

    with pytest.raises(ValidationError, match="not answered yet. Please wait for its reply, or telephone the clinic"):
        ask(own_record, patient_user_a)
    assert ContactRequest.objects.count() == contact.OPEN_PER_DAY

    contact.contact_request_handle(request=sent[0], by=staff_a, action="done", reply="Repeat it in 3 months.")
    assert ask(own_record, patient_user_a).pk  # an answered request no longer counts


def test_requests_older_than_a_day_do_not_count_towards_the_limit(own_record, patient_user_a):
    for _ in range(contact.OPEN_PER_DAY):
        ask(own_record, patient_user_a)
    ContactRequest.objects.update(created_at=timezone.now() - datetime.timedelta(hours=25))

    assert ask(own_record, patient_user_a).pk


def test_staff_take_a_request_on_then_finish_it_with_the_reply_the_patient_reads(own_record, patient_user_a, staff_a):
    request = ask(own_record, patient_user_a)

    started = contact.contact_request_handle(request=request, by=staff_a, action="start")
    done = contact.contact_request_handle(request=started, by=staff_a, action="done", reply="Repeat it in 3 months.")

    assert (started.status, started.handled_by) == (ContactStatus.IN_PROGRESS, staff_a)
    assert (done.status, done.reply, done.handled_by) == (ContactStatus.DONE, "Repeat it in 3 months.", staff_a)
    assert done.handled_at is not None
    rows = AuditEvent.objects.filter(action__in=["contact_request.start", "contact_request.done"]).order_by("pk")
    assert [(row.action, row.patient_id, row.detail["to"]) for row in rows] == [
        ("contact_request.start", own_record.pk, "in_progress"),
        ("contact_request.done", own_record.pk, "done"),
    ]
    [mine] = contact.my_contact_requests_read(user=patient_user_a, patient=own_record)
    assert mine.reply == "Repeat it in 3 months."


def test_marking_done_needs_a_reply(own_record, patient_user_a, doctor_a):
    request = ask(own_record, patient_user_a)

    with pytest.raises(ValidationError, match="Write the reply"):
        contact.contact_request_handle(request=request, by=doctor_a, action="done", reply="  ")

    request.refresh_from_db()
    assert request.status == ContactStatus.OPEN


def test_a_reply_given_when_taking_it_on_is_enough_to_finish(own_record, patient_user_a, admin_a):
    request = ask(own_record, patient_user_a)
    contact.contact_request_handle(request=request, by=admin_a, action="start", reply="We will call you on Monday.")

    done = contact.contact_request_handle(request=request, by=admin_a, action="done")

    assert done.reply == "We will call you on Monday."


@pytest.mark.parametrize("action", ["start", "done"])
def test_a_finished_request_stays_finished(own_record, patient_user_a, staff_a, action):
    request = ask(own_record, patient_user_a)
    contact.contact_request_handle(request=request, by=staff_a, action="done", reply="Done.")

    with pytest.raises(ValidationError, match="already done"):
        contact.contact_request_handle(request=request, by=staff_a, action=action, reply="Again.")


def test_a_request_in_progress_cannot_be_taken_on_twice(own_record, patient_user_a, staff_a, doctor_a):
    request = ask(own_record, patient_user_a)
    contact.contact_request_handle(request=request, by=staff_a, action="start")

    with pytest.raises(ValidationError, match="already in progress"):
        contact.contact_request_handle(request=request, by=doctor_a, action="start")
    assert ContactRequest.objects.get().handled_by == staff_a


def test_another_clinic_cannot_see_or_handle_a_request(own_record, patient_user_a, doctor_b, admin_b):
    request = ask(own_record, patient_user_a)

    assert not contact.worklist_for(user=doctor_b).exists()
    assert contact.waiting_count(user=admin_b) == 0
    with pytest.raises(Http404):
        contact.contact_request_get_for_handling(user=doctor_b, pk=request.pk)
    with pytest.raises(PermissionDenied):
        contact.contact_request_handle(request=request, by=admin_b, action="done", reply="Not ours.")
    assert ContactRequest.objects.get().status == ContactStatus.OPEN


def test_a_patient_cannot_handle_requests(own_record, patient_user_a):
    request = ask(own_record, patient_user_a)

    assert not contact.worklist_for(user=patient_user_a).exists()
    with pytest.raises(PermissionDenied):
        contact.contact_request_handle(request=request, by=patient_user_a, action="done", reply="Answered myself.")


def _sent(patient, by, minutes_ago: int, **options) -> ContactRequest:
    request = ask(patient, by, **options)
    ContactRequest.objects.filter(pk=request.pk).update(
        created_at=timezone.now() - datetime.timedelta(minutes=minutes_ago)
    )
    return request


def test_the_worklist_shows_open_requests_first_the_oldest_first(clinic_a, own_record, patient_user_a, staff_a):
    older_done = _sent(own_record, patient_user_a, 90)
    contact.contact_request_handle(request=older_done, by=staff_a, action="done", reply="Answered.")
    in_progress = _sent(own_record, patient_user_a, 120)
    contact.contact_request_handle(request=in_progress, by=staff_a, action="start")
    newer_open = _sent(own_record, patient_user_a, 10)
    older_open = _sent(own_record, patient_user_a, 60, kind=ContactKind.APPOINTMENT)

    order = list(contact.worklist_for(user=staff_a))

    assert order == [older_open, newer_open, in_progress, older_done]
    assert contact.waiting_count(user=staff_a) == 3


def test_the_worklist_filters_by_kind_and_status(own_record, patient_user_a, staff_a):
    question = ask(own_record, patient_user_a)
    appointment = ask(own_record, patient_user_a, kind=ContactKind.APPOINTMENT)
    contact.contact_request_handle(request=question, by=staff_a, action="done", reply="Answered.")

    def filtered(**params):
        return list(contact.worklist_for(user=staff_a, filters=contact.WorklistFilters.parse(params)))

    assert filtered(kind="appointment") == [appointment]
    assert filtered(status="done") == [question]
    assert filtered(kind="question", status="open") == []
    assert filtered(kind="junk", status="'; DROP") == [appointment, question]  # junk is ignored


def test_a_patient_reads_only_their_own_requests_and_the_read_is_audited(clinic_a, own_record, patient_user_a):
    mine = ask(own_record, patient_user_a)
    other_account = UserFactory(clinic=clinic_a, role=Role.PATIENT)
    ask(PatientFactory(clinic=clinic_a, user=other_account), other_account)

    assert contact.my_contact_requests_read(user=patient_user_a, patient=own_record) == [mine]
    row = AuditEvent.objects.get(action="contact_request.patient_view")
    assert (row.patient_id, row.detail) == (own_record.pk, {"requests": [mine.pk]})
