"""Rolling back the clinic's model in a real browser: the link asks first, and the reason lands in the history."""

import pytest
from django.urls import reverse

from clinic.models import AuditEvent, Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, screenshot
from mltraining import selectors
from mltraining.models import ModelStatus
from mltraining.tests.factories import ModelVersionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


def test_an_admin_rolls_back_only_after_confirming_with_a_reason(
    browser_page, clinic_a, trained_artifact, settings, tmp_path
):
    settings.MODEL_DIR = tmp_path / "models"
    v1 = ModelVersionFactory.create_with_artifact(trained_artifact, clinic=clinic_a, version=1,
                                                  status=ModelStatus.ARCHIVED)  # fmt: skip
    ModelVersionFactory.create_with_artifact(trained_artifact, clinic=clinic_a, version=2, status=ModelStatus.ACTIVE)
    UserFactory(clinic=clinic_a, role=Role.ADMIN, username="clinic-admin", password=PASSWORD)
    page = browser_page
    browser_login(page, "clinic-admin", PASSWORD)
    page.goto(reverse("admin:mltraining_modelversion_change", args=[v1.pk]))

    browser_follow(page, page.get_by_role("link", name="Roll back to this version"))

    confirm = page.get_by_test_id("confirm-switch")
    assert "Model v2 (active)" in confirm.inner_text()
    assert selectors.active_model_for(clinic=clinic_a).version == 2  # asking changed nothing
    screenshot(page, "model-rollback-confirm")
    page.fill("textarea[name=reason]", "v2 flags too many healthy patients")
    browser_follow(page, page.get_by_role("button", name="Roll back to Model v1 (archived)"))

    assert "is active again" in page.content()
    assert selectors.active_model_for(clinic=clinic_a).version == 1
    assert AuditEvent.objects.get(action="model_version.rollback").detail["reason"] == (
        "v2 flags too many healthy patients"
    )
    page.goto(reverse("mltraining:model_card", args=[v1.pk]))
    assert "v2 flags too many healthy patients" in page.get_by_test_id("version-history").inner_text()
