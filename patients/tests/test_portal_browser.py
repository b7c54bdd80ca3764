"""The patient's own pages on a 390 px phone, and the printable report, in Debian's Chromium."""

import datetime

import pytest
from django.utils import timezone

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, screenshot
from patients.models import Sex
from patients.services import ObservationInput, observations_record
from patients.tests.factories import PatientFactory
from recommendations.models import Recommendation
from recommendations.services import item_approve

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
PHONE = {"width": 390, "height": 844}
ADVICE = "Please book a visit: your long-term sugar is high."


def a_patient_with_results_and_approved_advice(clinic):
    staff = UserFactory(clinic=clinic, role=Role.STAFF, username="nurse", password=PASSWORD)
    doctor = UserFactory(clinic=clinic, role=Role.DOCTOR, username="dr", password=PASSWORD)
    account = UserFactory(clinic=clinic, role=Role.PATIENT, username="pat", password=PASSWORD)
    patient = PatientFactory(clinic=clinic, user=account, given_name="Ida", family_name="Berg", sex=Sex.FEMALE,
                             birth_date=datetime.date(1968, 2, 9))  # fmt: skip
    values = {"hemoglobin": (13.1, "g/dL"), "mchc": (30.2, "g/dL"), "rdw_sd": (48.5, "fL"), "wbc": (6.2, "10*9/L"),
              "hba1c": (7.3, "%"), "ldl": (4.4, "mmol/L"), "potassium": (6.6, "mmol/L"), "creatinine": (71, "umol/L"),
              "egfr_reported": (88, "mL/min/{1.73_m2}"), "systolic_bp": (138, "mm[Hg]")}  # fmt: skip
    entries = [ObservationInput(code, value, unit) for code, (value, unit) in values.items()]
    observations_record(patient=patient, by=staff, entries=entries, effective_at=timezone.now() - datetime.timedelta(2))
    # Saving the results scored the patient and wrote advice from the guideline rules: a doctor approves one item.
    rec = Recommendation.objects.filter(patient=patient).latest("created_at")
    item_approve(item=rec.items.get(advice__code="diabetes_range_confirm"), by=doctor, patient_text=ADVICE)
    return patient


PAST_THE_RIGHT_EDGE = """() => [...document.querySelectorAll("main *")]
    .filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > window.innerWidth + 0.5; })
    .map(e => e.tagName + ": " + e.textContent.trim().slice(0, 40))"""


def no_sideways_scrolling(page) -> None:
    """Nothing runs off the phone's right edge: the page does not scroll sideways, and nothing scrolls sideways
    inside it either (the old result tables did, in their own scroll box: the range and the date were cut off)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], page.url
    assert page.evaluate(PAST_THE_RIGHT_EDGE) == [], page.url


def inside_the_screen(page, selector: str) -> None:
    """Every element matched lies within the phone's width: nothing cut off at the right edge."""
    boxes = page.locator(selector).evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.right]; })"
    )
    assert boxes, selector
    assert all(left >= 0 and right <= PHONE["width"] for left, right in boxes), (selector, boxes)


def printed(page) -> bytes:
    """The page as Chromium prints it: the navigation and the buttons are gone, and it makes a PDF."""
    page.emulate_media(media="print")
    assert not page.locator("nav.navbar").is_visible()
    assert not page.get_by_test_id("print").is_visible()
    assert page.get_by_test_id("report").is_visible()
    pdf = page.pdf(format="A4")
    page.emulate_media(media="screen")
    return pdf


def test_a_patient_reads_results_advice_and_the_report_on_a_390px_phone_without_scrolling_sideways(
    browser_page, clinic_a
):
    patient = a_patient_with_results_and_approved_advice(clinic_a)
    page = browser_page
    page.set_viewport_size(PHONE)
    browser_login(page, "pat", PASSWORD)

    page.goto(f"/patients/{patient.pk}/")  # the address of the patient's own record
    no_sideways_scrolling(page)
    inside_the_screen(page, "[data-testid=range]")
    inside_the_screen(page, "[data-testid=taken]")
    mchc = page.locator("[data-testid=result][data-code=mchc]")
    assert "How concentrated hemoglobin is in red cells (MCHC)" in mchc.inner_text()
    assert mchc.get_by_test_id("flag").inner_text() == "Below the usual range"
    assert "What this test measures:" in mchc.inner_text()
    assert "What your value means:" in mchc.inner_text()
    flags = page.get_by_test_id("flag").all_inner_texts()
    assert {"Within the usual range", "Above the usual range", "Below the usual range",
            "Far outside the usual range: flagged to your clinic as urgent"} <= set(flags)  # fmt: skip
    assert "6.2 ×10⁹/L" in page.locator("[data-testid=result][data-code=wbc]").inner_text()
    assert page.get_by_test_id("urgent-results").is_visible()
    screenshot(page, "patient-results-390")

    page.click("button.navbar-toggler")
    page.locator("#main-nav.collapse.show").wait_for()  # opened, its animation over
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "patient-navigation-390")
    browser_follow(page, "nav >> text=My advice")
    no_sideways_scrolling(page)
    assert ADVICE in page.get_by_test_id("approved-advice").inner_text()
    assert page.get_by_test_id("contact-clinic").is_visible()
    screenshot(page, "patient-advice-390")

    page.click("button.navbar-toggler")
    browser_follow(page, "nav >> text=My results")
    browser_follow(page, page.get_by_test_id("report-link"))
    no_sideways_scrolling(page)
    inside_the_screen(page, "[data-testid=report-result] td")
    report = page.get_by_test_id("report").inner_text()
    assert "Ida Berg" in report
    assert "9 February 1968" in report
    assert "Riverside Clinic" in report
    assert ADVICE in report
    assert "Decision support reviewed by your doctor." in report
    screenshot(page, "patient-report-390")

    page.evaluate("window.print = () => { window.printAsked = true; }")  # headless: no dialog to wait for
    page.get_by_test_id("print").click()
    assert page.evaluate("window.printAsked") is True
    assert printed(page).startswith(b"%PDF")


def test_staff_print_the_report_from_the_patients_page(browser_page, clinic_a):
    patient = a_patient_with_results_and_approved_advice(clinic_a)
    page = browser_page
    browser_login(page, "nurse", PASSWORD)

    page.goto(f"/patients/{patient.pk}/")
    browser_follow(page, page.get_by_test_id("report-link"))

    report = page.get_by_test_id("report").inner_text()
    assert "Results report" in report
    assert "Ida Berg" in report
    assert ADVICE in report
    assert "Back to the patient's page" in page.get_by_test_id("report-actions").inner_text()
    screenshot(page, "staff-report")
    page.emulate_media(media="print")
    screenshot(page, "staff-report-print")
    page.emulate_media(media="screen")
    assert printed(page).startswith(b"%PDF")
