"""The model dashboard in a real browser, on a really trained and drift-checked version: every chart is drawn."""

import pytest

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_follow, browser_login, screenshot
from mltraining import services
from mltraining.ml.train import TrainingConfig
from mltraining.models import ModelStatus
from mltraining.tests.factories import FAST_CONFIG, ModelVersionFactory
from patients.demo import demo_cohort_load

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def trained_and_checked(demo_clinic_a, settings, tmp_path):
    clinic_a = demo_clinic_a  # a model of the synthetic cohort is active only in a demo clinic
    """v1: an older archived version (figures only); v2: trained here, active, with a drift report."""
    settings.MODEL_DIR = tmp_path / "models"
    older = {"roc_auc_ovr_macro": 0.81, "balanced_accuracy": 0.52, "f1_macro": 0.47, "accuracy": 0.66}
    ModelVersionFactory(clinic=clinic_a, version=1, status=ModelStatus.ARCHIVED,
                        metrics={"test": older, "baseline": {"roc_auc_ovr_macro": 0.5}})  # fmt: skip
    demo_cohort_load(clinic=clinic_a, n_patients=400, seed=9)
    run = services.training_run_request(clinic=clinic_a, by=None, config=TrainingConfig(**FAST_CONFIG), enqueue=False)
    version = services.training_run_execute(run_id=run.pk).model_version
    services.drift_check(clinic=clinic_a)
    return version


def charts_drawn(page) -> tuple[int, int]:
    page.wait_for_load_state("networkidle")
    charts = page.locator("[data-testid=chart]")
    charts.last.locator("svg.main-svg").first.wait_for()
    return charts.count(), page.locator("[data-testid=chart]:has(svg.main-svg)").count()


def test_an_admin_sees_every_chart_of_the_model_dashboard_drawn(browser_page, clinic_a, trained_and_checked):
    UserFactory(clinic=clinic_a, role=Role.ADMIN, username="clinic-admin", password=PASSWORD)
    page = browser_page
    browser_login(page, "clinic-admin", PASSWORD)

    page.goto("/models/dashboard/")

    assert charts_drawn(page) == (8, 8)
    assert page.get_by_test_id("dashboard-title").inner_text().endswith("v2")
    assert page.locator("#version option").count() == 2
    screenshot(page, "model-dashboard")

    browser_follow(page, page.get_by_test_id("model-card-link"))
    browser_follow(page, page.get_by_test_id("dashboard-link"))
    assert charts_drawn(page) == (8, 8)
