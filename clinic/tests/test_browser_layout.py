"""In Chromium: progress followed without reloading the page, and the admin's header at a laptop's width (issue 32)."""

from types import SimpleNamespace

import pytest
from django.urls import reverse

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, screenshot
from patients import dashboard, tasks
from patients.demo import demo_cohort_load

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


def test_the_population_page_says_when_its_figures_are_ready_without_reloading_itself(
    browser_page, clinic_a, monkeypatch
):
    demo_cohort_load(clinic=clinic_a, n_patients=20, seed=1)
    UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="dr", password=PASSWORD)
    sent = []  # a worker that has not run yet
    monkeypatch.setattr(tasks, "dashboard_figure_refresh", SimpleNamespace(delay=lambda *args: sent.append(args)))
    page = browser_page
    browser_login(page, "dr", PASSWORD)

    page.goto(reverse("patients:dashboard"))
    page.evaluate("window.sameDocument = true")
    live = page.get_by_test_id("live-status")
    assert live.get_attribute("aria-live") == "polite"
    assert page.locator('meta[http-equiv="refresh"]').count() == 0
    screenshot(page, "population-computing")
    dashboard.figure_refresh(*sent[0])  # the worker brings the figures

    live.get_by_role("link", name="Show the figures").wait_for(timeout=15_000)
    assert "The figures are ready." in live.inner_text()
    assert page.evaluate("window.sameDocument") is True  # announced in place, never reloaded
    assert not page.get_by_test_id("computing").is_visible()  # no longer says they are being computed
    screenshot(page, "population-ready-announced")
    browser_follow(page, live.get_by_role("link", name="Show the figures"))
    assert page.get_by_test_id("summary").is_visible()


@pytest.mark.parametrize("width", [1200, 1280, 1366])
def test_an_admins_navigation_bar_stays_on_one_row_at_a_laptops_width(browser_page, clinic_a, width):
    UserFactory(clinic=clinic_a, role=Role.ADMIN, username="clinic-admin", password=PASSWORD,
                first_name="Alexandra", last_name="Montgomery")  # fmt: skip
    page = browser_page
    page.set_viewport_size({"width": width, "height": 768})
    browser_login(page, "clinic-admin", PASSWORD)
    screenshot(page, f"admin-navbar-{width}")

    links = page.locator("nav .nav-link")
    tops = {round(box["y"]) for box in (links.nth(i).bounding_box() for i in range(links.count()))}
    heights = {round(links.nth(i).bounding_box()["height"]) for i in range(links.count())}

    assert links.count() == 10  # Home to API, "Requests" (from patients) included
    assert len(tops) == 1, tops  # every entry on the same row
    assert len(heights) == 1, heights  # and none broken over two lines
    assert page.locator("nav.navbar").bounding_box()["height"] < 80
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # and nothing pushed off the side
    brand = page.locator(".navbar-brand")
    assert brand.evaluate("e => e.scrollWidth <= e.clientWidth")  # the clinic's name whole, not cut
    account = page.get_by_test_id("account-menu").bounding_box()
    assert account["x"] + account["width"] <= width  # the last control in view
    assert account["y"] < 80  # on the bar
    page.get_by_test_id("account-menu").click()
    sign_out = page.get_by_role("button", name="Sign out").bounding_box()
    assert sign_out["x"] + sign_out["width"] <= width  # its menu opens inside the window
    assert "Alexandra Montgomery · Clinic admin" in page.get_by_test_id("signed-in-as").inner_text()
    screenshot(page, f"admin-navbar-{width}-account")


def test_the_first_tab_reaches_a_visible_skip_link_that_moves_to_the_main_content(browser_page, clinic_a):
    UserFactory(clinic=clinic_a, role=Role.PATIENT, username="pat", password=PASSWORD)
    page = browser_page
    browser_login(page, "pat", PASSWORD)

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    assert skip.evaluate("e => e === document.activeElement")
    assert skip.is_visible()
    screenshot(page, "skip-link-focused")
    page.keyboard.press("Enter")

    assert page.evaluate("document.activeElement.id") == "content"


def test_a_page_above_the_role_shows_the_403_page_in_the_sites_layout(browser_page, clinic_a):
    UserFactory(clinic=clinic_a, role=Role.PATIENT, username="pat", password=PASSWORD)
    page = browser_page
    browser_login(page, "pat", PASSWORD)

    response = page.goto(reverse("patients:list"))

    assert response.status == 403
    assert page.get_by_test_id("forbidden").is_visible()
    assert page.get_by_test_id("main-nav").is_visible()
    page.problems.clear()  # the browser logs the 403 itself as a failed resource
    screenshot(page, "forbidden-403")
