"""The review workflow in a real browser: a doctor approves and rejects advice, then the patient reads it."""

import pytest

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, browser_sign_out, screenshot
from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, ItemStatus
from recommendations.tests.factories import prediction_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.mark.hazard(
    "H5", "In Chromium a doctor approves one item and rejects another; the patient then reads only the approved one"
)
def test_a_doctor_reviews_advice_and_the_patient_then_reads_what_was_approved(browser_page, clinic_a):
    UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="dr", password=PASSWORD)
    account = UserFactory(clinic=clinic_a, role=Role.PATIENT, username="pat", password=PASSWORD)
    patient = PatientFactory(clinic=clinic_a, user=account, given_name="Ida", family_name="Berg", sex="female")
    prediction = prediction_for(patient, hba1c=7.3, ldl=4.4, bmi=31.0, risk_level="high",
                                probabilities={"healthy": 0.2, "diabetes": 0.7, "dyslipidemia": 0.1})  # fmt: skip
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)
    page = browser_page

    browser_login(page, "dr", PASSWORD)
    browser_follow(page, "nav >> text=Review advice")
    assert page.get_by_test_id("queue-row").count() == 1
    screenshot(page, "review-queue")
    browser_follow(page, page.get_by_test_id("queue-row").get_by_role("link", name="Review", exact=True))

    first = page.locator("[data-testid=item][data-advice=diabetes_range_confirm]")
    first.locator("textarea[name=patient_text]").fill("Please book a visit: your long-term sugar is high.")
    browser_follow(page, first.locator("[data-testid=approve-form] button"))
    assert "Approved" in page.locator("[data-testid=item][data-advice=diabetes_range_confirm]").inner_text()

    other = page.locator("[data-testid=item][data-advice=bmi_obesity_lifestyle]")
    other.locator("select[name=reason]").select_option("already_addressed")
    other.locator("input[name=comment]").fill("Discussed at the last visit; on a programme since May.")
    browser_follow(page, other.locator("[data-testid=reject-form] button"))
    screenshot(page, "review-decided")

    assert rec.items.get(advice__code="diabetes_range_confirm").status == ItemStatus.APPROVED
    assert rec.items.get(advice__code="bmi_obesity_lifestyle").override_reason == "already_addressed"
    assert FeedbackEvent.objects.count() == 2

    browser_sign_out(page)
    browser_login(page, "pat", PASSWORD)
    browser_follow(page, "nav >> text=My advice")
    advice = page.get_by_test_id("approved-advice").inner_text()
    assert "Please book a visit: your long-term sugar is high." in advice
    assert "revisit in 3 months" not in page.content()
    screenshot(page, "patient-my-advice")
