"""The patient workflow in a real browser: register a patient, enter a panel in another unit, read the flags."""

import pytest

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, screenshot
from patients.models import Observation, Patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


def test_staff_register_a_patient_enter_a_panel_and_see_it_flagged(browser_page, clinic_a):
    UserFactory(clinic=clinic_a, role=Role.STAFF, username="nurse", password=PASSWORD)
    page = browser_page
    browser_login(page, "nurse", PASSWORD)

    browser_follow(page, "text=Open the patient list")
    browser_follow(page, "text=Register")
    page.fill("input[name=mrn]", "B-42")
    page.fill("input[name=given_name]", "Bea")
    page.fill("input[name=family_name]", "Lind")
    page.fill("input[name=birth_date]", "1980-04-02")
    page.select_option("select[name=sex]", "male")
    browser_follow(page, "main form [type=submit]")
    assert page.get_by_test_id("patient-name").inner_text() == "Bea Lind"

    page.click("text=Enter results")
    browser_follow(page, ".dropdown-menu >> text=Complete blood count")
    page.fill("input[name=hemoglobin]", "125")
    page.select_option("select[name=hemoglobin__unit]", "g/L")
    browser_follow(page, "main form [type=submit]")

    row = page.locator("[data-testid=panel-cbc] tr", has_text="Hemoglobin")
    assert "12.5 g/dL" in row.inner_text()
    assert "(125 g/L)" in row.inner_text()
    assert row.locator(".badge").inner_text() == "L"  # 12.5 g/dL is low for a man
    screenshot(page, "patient-detail-after-panel")
    patient = Patient.objects.get(mrn="B-42")
    assert Observation.objects.get(patient=patient).entered_unit == "g/L"


def test_an_impossible_value_is_explained_in_the_form_and_nothing_is_saved(browser_page, clinic_a):
    UserFactory(clinic=clinic_a, role=Role.STAFF, username="nurse", password=PASSWORD)
    patient = Patient.objects.create(
        clinic=clinic_a, mrn="C-1", given_name="Cy", family_name="Moe", birth_date="1970-01-01", sex="female"
    )
    page = browser_page
    browser_login(page, "nurse", PASSWORD)

    page.goto(f"/patients/{patient.pk}/results/new/?panel=cbc")
    page.fill("input[name=hemoglobin]", "180")
    browser_follow(page, "main form [type=submit]")

    assert "Did you mean g/L?" in page.locator("#div_id_hemoglobin").inner_text()
    assert not Observation.objects.exists()
    screenshot(page, "panel-impossible-value")
