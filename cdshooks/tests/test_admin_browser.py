"""A clinic admin registers their EHR in the admin from a browser (Debian's chromium), keys pasted as a JWK Set."""

from __future__ import annotations

import json

import pytest

from cdshooks.models import EhrConnection
from cdshooks.tests.conftest import ISS, MRN_SYSTEM
from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple 42"


def test_an_admin_registers_the_clinics_ehr(browser_page, clinic_a, ehr):
    UserFactory(clinic=clinic_a, role=Role.ADMIN, username="clinic-admin", password=PASSWORD, is_staff=True)
    page = browser_page
    browser_login(page, "clinic-admin", PASSWORD)

    page.goto("/admin/cdshooks/ehrconnection/add/")
    page.fill("input[name=name]", "Riverside EHR")
    page.fill("input[name=iss]", ISS)
    page.fill("textarea[name=jwks]", json.dumps(ehr.jwks(), indent=1))
    page.fill("input[name=mrn_system]", MRN_SYSTEM)
    screenshot(page, "cdshooks-admin-add")
    browser_follow(page, "input[name=_save]")

    assert "was added successfully" in page.content()
    screenshot(page, "cdshooks-admin-list")
    connection = EhrConnection.objects.get()
    assert (connection.clinic_id, connection.iss, connection.jwks) == (clinic_a.pk, ISS, ehr.jwks())
