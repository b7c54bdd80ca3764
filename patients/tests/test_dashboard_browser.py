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
        picker_shows_one_lab_at_a_time(page)


def shown_boxes(page) -> tuple[str, list[str]]:
    """The lab picker's chart as drawn: its x-axis title and the boxes it shows."""
    return page.evaluate("""() => {
      const box = document.getElementById("chart-labs_by_condition");
      return [box.layout.xaxis.title.text, box.data.filter(t => t.visible === true).map(t => t.y[0])];
    }""")


def picker_shows_one_lab_at_a_time(page):
    """The picker's lists of which boxes show are built in the browser (static/js/charts.js): the first lab's
    boxes show at first, and picking another lab shows its boxes and only those."""
    first_title, first = shown_boxes(page)
    box_count = page.evaluate("() => document.getElementById('chart-labs_by_condition').data.length")
    assert 0 < len(first) < box_count

    page.locator("#chart-labs_by_condition .updatemenu-header-group").click()  # opens the list of labs
    page.locator("#chart-labs_by_condition .updatemenu-dropdown-button").nth(1).click()
    page.wait_for_function("() => document.getElementById('chart-labs_by_condition').layout.xaxis.title.text "
                           f"!== {first_title!r}")  # fmt: skip

    second_title, second = shown_boxes(page)
    assert second_title != first_title
    assert 0 < len(second) < box_count
    hidden = page.evaluate("() => document.getElementById('chart-labs_by_condition').data.filter("
                           "t => t.visible === false).length")  # fmt: skip
    assert hidden == box_count - len(second)


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
