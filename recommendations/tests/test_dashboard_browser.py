"""The review dashboard in a real browser: every chart draws, for a doctor and for an admin."""

import datetime
import random

import pytest
from django.utils import timezone

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, screenshot
from patients.tests.factories import PatientFactory
from recommendations.demo import demo_reviews_seed
from recommendations.generation import recommendations_generate
from recommendations.models import FeedbackEvent, Recommendation
from recommendations.tests.factories import prediction_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


def _review_history(clinic, *, patients=24, reviewed=18, weeks=8, seed=5):
    """Varied advice for `patients` patients, the demo doctors' decisions on `reviewed` of them, spread over the
    last `weeks` weeks with review delays from minutes to days; the rest waits in the queue for up to 10 days."""
    rng = random.Random(seed)
    predictions = []
    for _ in range(patients):
        sex = rng.choice(["female", "male"])
        patient = PatientFactory(clinic=clinic, sex=sex)
        diabetes = rng.random()
        predictions.append(
            prediction_for(
                patient, sex=sex, age=rng.randint(32, 84), hba1c=rng.choice([5.2, 5.9, 6.3, 7.1, 8.4]),
                ldl=rng.choice([2.4, 3.6, 4.2, 5.1]), triglycerides=rng.choice([1.0, 1.9, 2.6]),
                systolic_bp=rng.choice([118, 128, 136, 148]), bmi=rng.choice([22.0, 26.5, 31.0, 36.0]),
                steps=rng.choice([3500.0, 6500.0, 9000.0]), risk_level=rng.choice(["low", "moderate", "high"]),
                probabilities={"healthy": 1 - diabetes, "diabetes": diabetes * 0.8, "dyslipidemia": diabetes * 0.2},
            )
        )  # fmt: skip
    recommendations_generate(predictions=predictions, clinic_id=clinic.pk)
    demo_reviews_seed(clinic=clinic, patients=reviewed, seed=seed)
    now = timezone.now()
    for recommendation in Recommendation.objects.filter(clinic=clinic):
        if recommendation.pending:
            waiting = datetime.timedelta(hours=rng.uniform(1, 240))
            Recommendation.objects.filter(pk=recommendation.pk).update(created_at=now - waiting)
            continue
        decided = now - datetime.timedelta(days=rng.uniform(0, 7 * weeks))
        waited = datetime.timedelta(hours=rng.choice([0.3, 2, 5, 9, 20, 30, 60, 120]) * rng.uniform(0.5, 1.5))
        Recommendation.objects.filter(pk=recommendation.pk).update(created_at=decided - waited)
        FeedbackEvent.objects.filter(item__recommendation=recommendation).update(created_at=decided)


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.ADMIN])
def test_doctors_and_admins_see_every_chart_of_the_review_dashboard(browser_page, clinic_a, role):
    UserFactory(clinic=clinic_a, role=role, username="viewer", password=PASSWORD, first_name="Mara", last_name="Lind")
    _review_history(clinic_a)
    page = browser_page

    browser_login(page, "viewer", PASSWORD)
    page.goto("/advice/dashboard/")
    page.wait_for_load_state("networkidle")

    charts = page.locator("[data-testid=chart]")
    assert charts.count() == 7
    for index in range(charts.count()):
        charts.nth(index).locator("svg.main-svg").first.wait_for()
    assert int(page.get_by_test_id("summary-decisions").inner_text()) > 0
    if role == Role.DOCTOR:
        screenshot(page, "review-dashboard")


def test_the_dashboard_without_decisions_explains_itself(browser_page, clinic_a):
    UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="dr", password=PASSWORD)
    _review_history(clinic_a, patients=4, reviewed=0)
    page = browser_page

    browser_login(page, "dr", PASSWORD)
    browser_follow(page, "nav >> text=Review advice")
    browser_follow(page, page.get_by_test_id("review-dashboard-link"))

    assert "No review decisions yet" in page.get_by_test_id("dashboard-empty").inner_text()
    page.locator("[data-chart=pending-backlog] svg.main-svg").first.wait_for()
    screenshot(page, "review-dashboard-empty")
