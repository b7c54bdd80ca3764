"""Patients contacting their clinic, in a real browser: a patient requests an appointment from approved advice, the
staff see it counted on their home page and in the worklist, answer it, and the patient reads the answer."""

import pytest

from clinic.models import AuditEvent, Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, browser_sign_out, screenshot
from patients.models import ContactRequest, ContactStatus
from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.services import item_approve
from recommendations.tests.factories import prediction_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


def test_a_patient_requests_an_appointment_from_advice_and_reads_the_clinics_reply(browser_page, clinic_a):
    doctor = UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="dr", password=PASSWORD)
    UserFactory(clinic=clinic_a, role=Role.STAFF, username="desk", password=PASSWORD, first_name="Sam",
                last_name="Reed")  # fmt: skip
    account = UserFactory(clinic=clinic_a, role=Role.PATIENT, username="pat", password=PASSWORD)
    patient = PatientFactory(clinic=clinic_a, user=account, given_name="Ida", family_name="Berg", sex="male",
                             phone="+44 20 7946 0000")  # fmt: skip
    prediction = prediction_for(patient, hba1c=7.2, bmi=31.0, sex="male", risk_level="high")
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)
    for item in rec.items.all():
        item_approve(item=item, by=doctor)
    page = browser_page

    browser_login(page, "pat", PASSWORD)
    browser_follow(page, "nav >> text=My advice")
    assert page.get_by_test_id("request-appointment").count() == 2  # see a doctor, a follow-up test
    screenshot(page, "contact-my-advice")
    follow_up = page.get_by_test_id("approved-advice").locator("li", has_text="A follow-up test")
    browser_follow(page, follow_up.get_by_test_id("request-appointment"))
    assert "call your local emergency number" in page.get_by_test_id("not-an-emergency").inner_text()
    assert "A follow-up test" in page.get_by_test_id("about-advice").inner_text()
    assert page.locator("input[name=kind][value=appointment]").is_checked()
    page.fill("textarea[name=message]", "Could I come in for the repeat blood test?")
    page.fill("input[name=preferred_times]", "Weekday mornings")
    screenshot(page, "contact-form")
    browser_follow(page, "main form [type=submit]")
    assert "Could I come in for the repeat blood test?" in page.get_by_test_id("my-request").inner_text()
    screenshot(page, "contact-my-requests-sent")
    browser_sign_out(page)

    browser_login(page, "desk", PASSWORD)
    assert "1 request from patients waiting" in page.get_by_test_id("home-patient-requests").inner_text()
    screenshot(page, "contact-staff-home")
    browser_follow(page, "nav >> text=Requests")
    row = page.get_by_test_id("request-row")
    assert row.count() == 1
    assert "Ida Berg" in row.inner_text()
    screenshot(page, "contact-worklist")
    browser_follow(page, row.get_by_role("link", name="Handle"))
    assert "Weekday mornings" in page.get_by_test_id("request").inner_text()
    assert "Glucose or HbA1c in the diabetes range" in page.get_by_test_id("request-advice").inner_text()
    screenshot(page, "contact-request-detail")
    page.fill("textarea[name=reply]", "Booked: Tuesday 9:00, fasting from midnight. Send a new request to change it.")
    browser_follow(page, "button[value=done]")
    assert page.get_by_test_id("request-row").get_attribute("data-status") == "done"
    screenshot(page, "contact-worklist-done")
    browser_sign_out(page)

    browser_login(page, "pat", PASSWORD)
    browser_follow(page, "nav >> text=Contact the clinic")
    assert "Booked: Tuesday 9:00" in page.get_by_test_id("clinic-reply").inner_text()
    screenshot(page, "contact-my-requests-replied")

    request = ContactRequest.objects.get()
    assert (request.status, request.handled_by.username) == (ContactStatus.DONE, "desk")
    actions = set(AuditEvent.objects.filter(patient_id=patient.pk).values_list("action", flat=True))
    assert {"contact_request.create", "contact_request.view", "contact_request.done"} <= actions
