"""Standing protocols in a real browser: a doctor signs one, the queue shrinks, the patient reads the attribution."""

import datetime

import pytest
from django.utils import timezone

from clinic.models import AuditEvent, Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, browser_sign_out, screenshot
from patients.tests.factories import PatientFactory
from recommendations import protocols
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent
from recommendations.tests.factories import prediction_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.mark.hazard("H5", "In Chromium a doctor signs a protocol: routine advice leaves the queue, serious stays")
def test_a_doctor_signs_a_protocol_the_queue_shrinks_and_the_patient_reads_whose_protocol(browser_page, clinic_a):
    UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="dr", password=PASSWORD, first_name="Wei",
                last_name="Chen")  # fmt: skip
    account = UserFactory(clinic=clinic_a, role=Role.PATIENT, username="pat", password=PASSWORD)
    routine = PatientFactory(clinic=clinic_a, user=account, given_name="Ida", family_name="Berg", sex="female")
    serious = PatientFactory(clinic=clinic_a, given_name="Ola", family_name="Nes", sex="male")
    predictions = [prediction_for(routine, systolic_bp=134.0, bmi=27.5),
                   prediction_for(serious, sex="male", systolic_bp=134.0, hba1c=7.4, risk_level="high")]  # fmt: skip
    recommendations_generate(predictions=predictions, clinic_id=clinic_a.pk)
    page = browser_page

    browser_login(page, "dr", PASSWORD)
    browser_follow(page, "nav >> text=Review advice")
    assert page.get_by_test_id("queue-row").count() == 2
    browser_follow(page, page.get_by_test_id("protocols-link"))
    screenshot(page, "protocols-empty")
    browser_follow(page, page.get_by_test_id("new-protocol"))

    form = page.get_by_test_id("protocol-form")
    form.get_by_label("Title").fill("Routine lifestyle advice for raised BP and weight")
    form.get_by_label("Blood pressure 130-139 / 80-89 mm Hg (stage 1) (low)").check()
    form.get_by_label("BMI 25 to under 30 kg/m² (low)").check()
    form.get_by_label("Ends on").fill((timezone.localdate() + datetime.timedelta(days=180)).isoformat())
    screenshot(page, "protocol-sign-form")
    browser_follow(page, page.get_by_test_id("sign-protocol"))

    assert "Released 3 waiting items under it." in page.locator(".alert").first.inner_text()
    assert (
        page.get_by_test_id("protocols-current").get_by_test_id("released").inner_text() == "3"
    )  # not the BP item beside the HbA1c finding
    screenshot(page, "protocols-signed")

    browser_follow(page, "nav >> text=Review advice")
    rows = page.get_by_test_id("queue-row")
    assert rows.count() == 1
    assert "Nes" in rows.first.inner_text()
    screenshot(page, "review-queue-after-protocol")

    browser_sign_out(page)
    browser_login(page, "pat", PASSWORD)
    browser_follow(page, "nav >> text=My advice")
    advice = page.get_by_test_id("approved-advice")
    assert advice.get_by_test_id("protocol-attribution").count() == 3
    assert "From your clinic's care protocol, approved by Dr Wei Chen" in advice.inner_text()
    screenshot(page, "patient-advice-from-protocol")

    assert not FeedbackEvent.objects.exists()
    assert AuditEvent.objects.filter(action="recommendation.release_under_protocol").count() == 1


def test_a_doctor_revokes_a_protocol_with_a_reason_and_new_routine_advice_then_waits(browser_page, clinic_a):
    doctor = UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="dr", password=PASSWORD, first_name="Wei",
                         last_name="Chen")  # fmt: skip
    today = timezone.localdate()
    protocol = protocols.protocol_sign(by=doctor, title="Routine BP advice", advice_codes=["bp_stage1_lifestyle"],
                                       starts_on=today, ends_on=today + datetime.timedelta(days=90))  # fmt: skip
    page = browser_page

    browser_login(page, "dr", PASSWORD)
    page.goto("/advice/protocols/")
    current = page.get_by_test_id("protocols-current")
    current.get_by_label("Reason to revoke").fill("Our BP pathway changed; each case is reviewed again.")
    browser_follow(page, current.get_by_role("button", name="Revoke"))

    assert "Revoked: Routine BP advice. It releases nothing more." in page.locator(".alert").first.inner_text()
    revoked = page.get_by_test_id("protocols-revoked").inner_text()
    assert "Our BP pathway changed; each case is reviewed again." in revoked
    assert page.get_by_test_id("protocols-current").get_by_test_id("protocol").count() == 0
    screenshot(page, "protocols-revoked")

    patient = PatientFactory(clinic=clinic_a, sex="female")
    recommendations_generate(predictions=[prediction_for(patient, systolic_bp=134.0)], clinic_id=clinic_a.pk)
    browser_follow(page, "nav >> text=Review advice")
    assert page.get_by_test_id("queue-row").count() == 1
    assert not protocol.released_items.exists()
