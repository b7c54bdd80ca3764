"""In Chromium, a doctor decides advice from the review page alone: the values, their trend, the model's explanation."""

import datetime
import os

import pytest

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import SCREENSHOTS, browser_follow, browser_login, screenshot
from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, ItemStatus
from recommendations.tests.factories import prediction_for
from recommendations.tests.test_review_evidence import CONTRIBUTIONS, record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.mark.hazard("H5", "In Chromium a doctor approves and rejects advice seeing only the review page's evidence")
def test_a_doctor_decides_from_the_values_trend_and_explanation_on_the_review_page(browser_page, clinic_a):
    UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="dr", password=PASSWORD)
    patient = PatientFactory(clinic=clinic_a, given_name="Ida", family_name="Berg", sex="female",
                             birth_date=datetime.date(1968, 4, 2))  # fmt: skip
    for value, days in ((5.9, 400), (6.3, 200), (6.8, 90), (7.3, 2)):
        record(patient, "hba1c", value, days)
    record(patient, "mcv", 66.0, 2, source="fhir")
    prediction = prediction_for(patient, sex="female", hba1c=7.3, mcv=66.0, risk_level="high",
                                probabilities={"healthy": 0.1, "thalassemia_trait": 0.6, "diabetes": 0.3})  # fmt: skip
    prediction.contributions, prediction.explanation_method = CONTRIBUTIONS, "tree_path"
    prediction.save()
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)
    page = browser_page

    browser_login(page, "dr", PASSWORD)
    browser_follow(page, "nav >> text=Review advice")
    browser_follow(page, page.get_by_test_id("queue-row").get_by_role("link", name="Review", exact=True))
    screenshot(page, "review-evidence")

    diabetes = page.locator("[data-testid=item][data-advice=diabetes_range_confirm]")
    value = diabetes.get_by_test_id("evidence-value")
    assert value.count() == 1
    assert "Hemoglobin A1c" in value.inner_text()
    assert "7.3 %" in value.inner_text()
    assert "HL7 v2 lab feed" in value.inner_text()
    assert "4–5.6 %" in value.inner_text()
    assert diabetes.locator(".trend-chart circle").count() == 4
    assert diabetes.locator(".trend-chart").is_visible()
    diabetes.screenshot(path=os.path.join(SCREENSHOTS, "review-evidence-diabetes-item.png"))
    diabetes.locator("textarea[name=patient_text]").fill("Your long-term sugar has risen over a year: please book.")
    browser_follow(page, diabetes.locator("[data-testid=approve-form] button"))

    model_item = page.locator("[data-testid=item][data-advice=model_thalassemia_trait_follow_up]")
    assert model_item.locator(".explanation-chart").is_visible()
    assert "Decision support, not a diagnosis." in model_item.get_by_test_id("evidence-provenance").inner_text()
    model_item.screenshot(path=os.path.join(SCREENSHOTS, "review-evidence-model-item.png"))
    model_item.locator("select[name=reason]").select_option("disagree_evidence")
    model_item.locator("input[name=comment]").fill("MCV 66 with a normal haemoglobin: ferritin first.")
    browser_follow(page, model_item.locator("[data-testid=reject-form] button"))
    screenshot(page, "review-evidence-decided")

    assert rec.items.get(advice__code="diabetes_range_confirm").status == ItemStatus.APPROVED
    assert rec.items.get(advice__code="model_thalassemia_trait_follow_up").override_reason == "disagree_evidence"
    assert FeedbackEvent.objects.count() == 2
