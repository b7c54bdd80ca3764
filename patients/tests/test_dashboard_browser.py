"""The population dashboard and the patient radar in a real browser: every chart is drawn, with no console error."""

import pytest

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_login, screenshot
from patients.demo import demo_cohort_load
from patients.models import Patient
from predictions.services import predictions_create
from recommendations.models import Recommendation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def cohort(clinic_a, active_model):
    demo_cohort_load(clinic=clinic_a, n_patients=200, seed=1)
    predictions_create(patient_ids=list(Patient.objects.filter(clinic=clinic_a).values_list("pk", flat=True)))


def charts_drawn(page) -> tuple[int, int]:
    page.wait_for_load_state("networkidle")
    charts = page.locator("[data-testid=chart]")
    charts.last.locator("svg.main-svg").first.wait_for()
    return charts.count(), page.locator("[data-testid=chart]:has(svg.main-svg)").count()


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.ADMIN])
def test_doctors_and_admins_see_every_chart_of_the_dashboard_drawn(browser_page, clinic_a, cohort, role):
    UserFactory(clinic=clinic_a, role=role, username="reader", password=PASSWORD)
    page = browser_page
    browser_login(page, "reader", PASSWORD)

    page.goto("/patients/dashboard/")

    assert charts_drawn(page) == (7, 7)
    assert page.locator("#chart-labs_by_condition .updatemenu-container").count() == 1  # the lab picker
    if role == Role.DOCTOR:
        screenshot(page, "population-dashboard")


def test_a_doctor_sees_the_radar_and_the_flow_on_a_patient_page(browser_page, clinic_a, cohort):
    UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="doc", password=PASSWORD)
    patient = Recommendation.objects.filter(clinic=clinic_a).order_by("-severity", "pk").first().patient
    page = browser_page
    browser_login(page, "doc", PASSWORD)

    fetched = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(f"/patients/{patient.pk}/")

    page.wait_for_load_state("networkidle")
    radar = page.locator("[data-testid=radar] svg.radar-chart")
    assert radar.get_attribute("role") == "img"
    assert radar.locator("circle[data-lab]").count() >= 3
    assert radar.bounding_box()["width"] > 300  # drawn, not squeezed
    assert [url for url in fetched if "plotly" in url] == []  # the radar needs no chart library
    page.get_by_text("The values as a table").click()
    table = page.get_by_test_id("radar-table")
    assert table.is_visible()
    assert table.locator("tbody tr").count() == radar.locator("circle[data-lab]").count()
    assert "waiting for a doctor" in page.get_by_test_id("flow-review").inner_text()
    assert page.get_by_test_id("flow-prediction").inner_text().count("risk") == 1
    screenshot(page, "patient-radar-flow")
