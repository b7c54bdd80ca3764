"""A critical result waits, the home worklist shows it, a doctor opens it and acknowledges it: in a real browser."""

import datetime

import pytest
from django.utils import timezone

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, screenshot
from patients.escalation import critical_escalations_run
from patients.models import Observation
from patients.services import ObservationInput, observations_record
from patients.tests.factories import PatientFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


def test_a_waiting_critical_result_is_on_the_worklist_until_the_doctor_opens_and_acknowledges_it(
    browser_page, clinic_a, mailoutbox
):
    nurse = UserFactory(clinic=clinic_a, role=Role.STAFF, username="nurse")
    UserFactory(
        clinic=clinic_a, role=Role.DOCTOR, username="okafor", first_name="Grace", last_name="Okafor",
        email="okafor@riverside.example", password=PASSWORD,
    )  # fmt: skip
    patient = PatientFactory(clinic=clinic_a, given_name="Ada", family_name="Quill", mrn="Q-771")
    taken = timezone.now() - datetime.timedelta(hours=3)
    observations_record(  # the normal potassium came first ...
        patient=patient, by=nurse, entries=[ObservationInput("potassium", 4.4, "mmol/L")], effective_at=taken
    )
    [critical] = observations_record(  # ... then a critical one taken an hour earlier, imported 40 minutes ago
        patient=patient,
        by=nurse,
        entries=[ObservationInput("potassium", 7.1, "mmol/L")],
        effective_at=taken - datetime.timedelta(hours=1),
    )
    Observation.all_objects.filter(pk=critical.pk).update(created_at=timezone.now() - datetime.timedelta(minutes=40))
    page = browser_page
    browser_login(page, "okafor", PASSWORD)

    browser_follow(page, "[data-testid=duty] button")
    assert page.get_by_test_id("duty").inner_text().startswith("You are on duty")
    critical_escalations_run()  # beat's minute: the doctor on duty is e-mailed
    page.reload()
    row = page.get_by_test_id("worklist-row")
    assert "Ada Quill" in row.inner_text()
    assert "Potassium 7.1 mmol/L (critically high)" in row.inner_text()
    assert "on-duty doctors e-mailed" in row.inner_text()
    assert [message.to for message in mailoutbox] == [["okafor@riverside.example"]]
    screenshot(page, "home-critical-worklist")

    browser_follow(page, row.get_by_role("link", name="Ada Quill"))
    banner = page.get_by_test_id("critical-results")
    assert "Potassium 7.1 mmol/L (critically high)" in banner.inner_text()
    assert "not yet acknowledged · a later result: 4.4 mmol/L (normal)" in banner.inner_text()
    page.fill("#critical-note", "Patient called, sent for a repeat potassium at the ED")
    screenshot(page, "patient-critical-banner-older-than-normal")
    browser_follow(page, "[data-testid=critical-acknowledge] button")

    assert (
        "Acknowledged: Potassium 7.1 mmol/L (critically high)."
        in page.locator(".alert-success[role=alert]").inner_text()
    )
    assert page.get_by_test_id("critical-results").count() == 0  # the latest potassium is normal
    browser_follow(page, "nav >> text=Home")
    assert page.get_by_test_id("worklist-row").count() == 0
    assert "No critical result is waiting for a doctor." in page.get_by_test_id("critical-worklist").inner_text()
    screenshot(page, "home-critical-worklist-empty")


def test_a_clinic_admin_sets_when_and_to_whom_critical_results_escalate(browser_page, clinic_a):
    UserFactory(clinic=clinic_a, role=Role.ADMIN, username="boss", password=PASSWORD)
    page = browser_page
    # Django's admin pages name no icon, so the browser asks for /favicon.ico, which the portal does not serve.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    browser_login(page, "boss", PASSWORD)

    page.goto(f"/admin/clinic/clinic/{clinic_a.pk}/change/")
    page.fill("input[name=escalation_minutes]", "15")
    page.fill("input[name=escalation_contact_minutes]", "10")
    page.fill("input[name=escalation_contact_email]", "lead@riverside.example")
    screenshot(page, "admin-clinic-escalation")
    browser_follow(page, "input[name=_save]")

    clinic_a.refresh_from_db()
    assert (clinic_a.escalation_minutes, clinic_a.escalation_contact_minutes) == (15, 10)
    assert clinic_a.escalation_contact_email == "lead@riverside.example"
    page.goto("/")
    assert (
        "Not acknowledged 15 minutes after it reached the clinic"
        in page.get_by_test_id("critical-worklist").inner_text()
    )
