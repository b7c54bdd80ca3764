"""The portal in a real browser: each role signs in and sees its own home and navigation."""

import pytest

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
EXPECTED_NAV = {
    Role.ADMIN: [
        "Home",
        "Patients",
        "Import results",
        "Requests",
        "Population",
        "Reviews",
        "Models",
        "Audit trail",
        "Administration",
        "API",
    ],
    Role.DOCTOR: [
        "Home",
        "Patients",
        "Import results",
        "Review advice",
        "Requests",
        "Population",
        "Reviews",
        "API",
    ],
    Role.STAFF: ["Home", "Patients", "Import results", "Requests", "API"],
    Role.PATIENT: ["Home", "My advice", "Contact the clinic"],
}


@pytest.mark.parametrize("role", list(EXPECTED_NAV))
def test_each_role_signs_in_and_sees_its_navigation(browser_page, clinic_a, role):
    UserFactory(clinic=clinic_a, role=role, username=f"{role}-user", password=PASSWORD)

    browser_login(browser_page, f"{role}-user", PASSWORD)

    labels = browser_page.locator("nav .nav-link").all_inner_texts()
    assert [label.strip() for label in labels if label.strip() in sum(EXPECTED_NAV.values(), [])] == EXPECTED_NAV[role]
    assert "/accounts/login/" not in browser_page.url
    screenshot(browser_page, f"home-{role}")


def test_a_wrong_password_shows_an_error_and_stays_on_the_login_page(browser_page, clinic_a):
    UserFactory(clinic=clinic_a, role=Role.STAFF, username="staff-user", password=PASSWORD)

    browser_login(browser_page, "staff-user", "not the password at all")

    assert "/accounts/login/" in browser_page.url
    assert browser_page.locator(".alert-danger, .invalid-feedback, .errorlist").count() > 0
