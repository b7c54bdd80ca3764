"""Shared fixtures: one clinic with a user per role, a second clinic to prove scoping, service markers.

Tests marked `postgres`, `redis`, `celery_worker` or `browser` need a real service. Locally they skip
when it is missing; with CI=true they fail, so a CI run can never pass by skipping them.
"""

import os
import shutil

import pytest
from django.db import connection
from django.db.backends.signals import connection_created

from clinic.models import Role
from clinic.tests.factories import ClinicFactory, UserFactory

CI = os.environ.get("CI", "").lower() == "true"

pytest_plugins = ["reliability.plugin"]


def _postgres_available() -> bool:
    return connection.vendor == "postgresql"


def _redis_available() -> bool:
    url = os.environ.get("REDIS_URL")
    if not url:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _browser_available() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return shutil.which("chromium") is not None or os.path.exists("/usr/bin/chromium")


_SERVICES = {
    "postgres": (_postgres_available, "PostgreSQL is not configured (set DATABASE_URL=postgres://...)"),
    "redis": (_redis_available, "Redis is not reachable (set REDIS_URL=redis://...)"),
    "celery_worker": (
        lambda: _postgres_available() and _redis_available(),
        "a real Celery worker needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    ),
    "browser": (_browser_available, "Playwright and /usr/bin/chromium are needed"),
}


@pytest.fixture(autouse=True)
def _require_marked_services(request):
    for name, (available, reason) in _SERVICES.items():
        if request.node.get_closest_marker(name) and not available():
            if CI:
                pytest.fail(f"CI=true and {reason}")
            pytest.skip(reason)


def _audit_truncate_allow(sender, connection, **kwargs):
    """The test suite empties its PostgreSQL database between transactional tests with TRUNCATE, which the audit
    table refuses unless the session says otherwise (migration clinic 0006); only the tests' sessions do."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET clinic.audit_truncate = 'allowed'")


connection_created.connect(_audit_truncate_allow)


@pytest.fixture(autouse=True)
def _audit_checkpoint_of_the_test(settings, tmp_path_factory):
    """Each test checkpoints the audit chain of its own database into a file of its own, never into var/."""
    directory = tmp_path_factory.getbasetemp() / "audit-checkpoints"
    directory.mkdir(exist_ok=True)
    path = directory / "checkpoint.json"
    path.unlink(missing_ok=True)
    settings.AUDIT_CHECKPOINT_PATH = path
    yield
    path.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run in-process in tests; the real-worker tests switch this off for themselves."""
    from clinic.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _analyte_catalog(request):
    """Tests that use the database see the analyte and advice catalogs, even after a transactional test emptied
    them (both are loaded by data migrations)."""
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif "db" in request.fixturenames or marker:
        request.getfixturevalue("db")
    else:
        return
    from django.apps import apps

    from patients.catalog import analyte_rows, catalog, catalog_clear, catalog_sync
    from patients.models import Analyte

    if not Analyte.objects.exists():
        catalog_sync(apps)
        catalog_clear()
    catalog()  # loaded now, as a running process has it, not inside a test that counts its queries
    analyte_rows()

    from recommendations.catalog import advice_sync
    from recommendations.models import AdviceItem

    if not AdviceItem.objects.exists():
        advice_sync(apps)


@pytest.fixture(autouse=True)
def _per_process_caches(monkeypatch):
    """Caches a server process keeps for minutes would carry one test's clinic into the next (ids are reused)."""
    from django.core.cache.backends.locmem import LocMemCache
    from rest_framework.throttling import SimpleRateThrottle

    from patients.dashboard import dashboard_caches_forget
    from recommendations import rankers

    # The API's rate counters start at zero in each test (a whole run's requests come from one address in a minute).
    throttle_counts = LocMemCache("api-throttles", {})
    throttle_counts.clear()
    monkeypatch.setattr(SimpleRateThrottle, "cache", throttle_counts)

    dashboard_caches_forget()
    rankers._cache.clear()  # keyed by clinic id and snapshot version, both of which the next test may reuse


@pytest.fixture
def clinic_a(db):
    return ClinicFactory(name="Riverside Clinic", slug="riverside")


@pytest.fixture
def demo_clinic_a(clinic_a):
    """Clinic A flagged as a demo clinic (as `seed_demo` flags its own): the one kind of clinic where a model trained
    on the synthetic demo cohort may be active. For tests that train on `demo_cohort_load` and need the result live."""
    clinic_a.is_demo = True
    clinic_a.save(update_fields=["is_demo"])
    return clinic_a


@pytest.fixture
def clinic_b(db):
    return ClinicFactory(name="Hillcrest Clinic", slug="hillcrest")


@pytest.fixture
def admin_a(clinic_a):
    return UserFactory(clinic=clinic_a, role=Role.ADMIN, username="admin_a")


@pytest.fixture
def doctor_a(clinic_a):
    return UserFactory(clinic=clinic_a, role=Role.DOCTOR, username="doctor_a")


@pytest.fixture
def staff_a(clinic_a):
    return UserFactory(clinic=clinic_a, role=Role.STAFF, username="staff_a")


@pytest.fixture
def patient_user_a(clinic_a):
    return UserFactory(clinic=clinic_a, role=Role.PATIENT, username="patient_a")


@pytest.fixture
def admin_b(clinic_b):
    return UserFactory(clinic=clinic_b, role=Role.ADMIN, username="admin_b")


@pytest.fixture
def doctor_b(clinic_b):
    return UserFactory(clinic=clinic_b, role=Role.DOCTOR, username="doctor_b")


@pytest.fixture
def superuser(db):
    return UserFactory(clinic=None, role=Role.ADMIN, username="root", is_superuser=True)


@pytest.fixture
def users_by_role(admin_a, doctor_a, staff_a, patient_user_a):
    return {Role.ADMIN: admin_a, Role.DOCTOR: doctor_a, Role.STAFF: staff_a, Role.PATIENT: patient_user_a}


# --- browser tests ------------------------------------------------------------------------------------------------

SCREENSHOTS = os.path.join(os.path.dirname(__file__), "var", "test-artifacts", "screenshots")
CHROMIUM_ARGS = [
    # Offline machine: no background network, no updates, no sync; root needs --no-sandbox.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium driven by Playwright; never a downloaded browser."""
    if not _browser_available():
        pytest.fail("CI=true and Playwright with /usr/bin/chromium is needed") if CI else pytest.skip(
            "Playwright and /usr/bin/chromium are needed"
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls tests make around it are
    # ordinary blocking calls, which Django would otherwise refuse.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium, live_server):
    """A fresh browser context on the live server; console errors and failed requests fail the test."""
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"{request.url}: {request.failure}"))
    page.problems = problems
    yield page
    context.close()
    assert not problems, problems


def browser_login(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    browser_follow(page, "main form [type=submit]")


def browser_follow(page, target) -> None:
    """Click a link or a submit button (a selector or a locator) and wait for the page it leads to.

    Waiting for a load state after the click is not enough: the page being left is already loaded, so
    the wait can return before the navigation starts and the test then reads the old page.
    """
    with page.expect_navigation():
        page.click(target) if isinstance(target, str) else target.click()
    page.wait_for_load_state("networkidle")


def browser_sign_out(page) -> None:
    """Open the navbar's account menu and sign out through it."""
    page.get_by_test_id("account-menu").click()
    browser_follow(page, page.get_by_role("button", name="Sign out"))


def screenshot(page, name: str) -> str:
    """Save a full-page screenshot as a test artifact (var/test-artifacts/screenshots/NAME.png)."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    return path


# --- a trained model, for the apps that score with one ---------------------------------------------------------


@pytest.fixture(scope="session")
def trained_artifact(tmp_path_factory):
    """A small real model (dummy vs LightGBM, calibrated) trained once per session on a synthetic cohort.

    Pure: no database. Returns (directory, file name of the model's skops bytes, ArtifactInfo); `make_model_version`
    stores those bytes in the test's database, as training does.
    """
    import datetime

    import pandas as pd

    from mltraining.ml.artifact import model_dumps, model_loads
    from mltraining.ml.explain import prepared_dumps
    from mltraining.ml.features import CATEGORICAL, NUMERIC, build_features, feature_schema
    from mltraining.ml.labels import label_patients
    from mltraining.ml.train import TrainingConfig, train
    from patients.demo_cohort import cohort_frames, generate_cohort

    today = datetime.date.today()  # noqa: DTZ011  (the cohort's visits are dated back from a calendar day)
    observations, patients, conditions = cohort_frames(generate_cohort(1500, seed=11, today=today))
    ids = list(patients["patient_id"])
    X = build_features(observations, patients, as_of=pd.Timestamp.now(tz="UTC"))
    y = label_patients(conditions, ids)
    keep = y.notna().to_numpy()
    config = TrainingConfig(candidates=("dummy", "lightgbm"), cv_folds=3, bootstrap_rounds=20, permutation_repeats=1)
    result = train(X[keep], y[keep].astype(str), groups=pd.Series(X.index[keep], index=X.index[keep]),
                   numeric=NUMERIC, categorical=CATEGORICAL, config=config)  # fmt: skip
    directory = tmp_path_factory.mktemp("models")
    payload, info = model_dumps(result.model, feature_schema=feature_schema(), data_hash=result.data_hash,
                                rows=result.n_train, classes=result.classes)  # fmt: skip
    (directory / "test-model.skops").write_bytes(payload)
    explainer = prepared_dumps(model_loads(payload, expected_sha256=info.sha256, sklearn_version=info.sklearn_version))
    if explainer is not None:  # stored beside the artifact, as training stores it (`artifact_blobs`)
        (directory / "test-model.explainer.npz").write_bytes(explainer)
    return directory, "test-model.skops", info


def scorable(patients):
    """The first of `patients` with every input a model needs, each recent enough (`REQUIRED_INPUTS`): a patient
    the model gives a risk estimate, not "not enough recent results"."""
    import datetime

    from django.utils import timezone

    from mltraining.ml.features import RECENT_DAYS, REQUIRED_INPUTS

    def has(patient, codes) -> bool:
        return any(
            patient.observations.filter(
                analyte__code=code,
                effective_at__gte=timezone.now() - datetime.timedelta(days=RECENT_DAYS.get(code, 730)),
            ).exists()
            for code in codes
        )

    return next(patient for patient in patients if all(has(patient, codes) for _, codes in REQUIRED_INPUTS))


def make_model_version(clinic, artifact, *, version=1, status="active"):
    """A version of the clinic's own records (see `CLINIC_PROVENANCE`) backed by the session's artifact, stored in
    the database as training stores it."""
    from mltraining.models import ModelVersion, TrainingRun
    from mltraining.tests.factories import CLINIC_PROVENANCE, artifact_blobs

    info = artifact[2]
    run = TrainingRun.objects.create(clinic=clinic, status="succeeded", chosen="lightgbm")
    return ModelVersion.objects.create(
        clinic=clinic, version=version, training_run=run, **artifact_blobs(artifact), sha256=info.sha256,
        sklearn_version=info.sklearn_version, classes=info.classes, data_hash=info.data_hash, rows=info.rows,
        risk_thresholds=[0.2, 0.5], status=status, metrics={"roc_auc_ovr_macro": 0.9}, provenance=CLINIC_PROVENANCE,
    )  # fmt: skip


@pytest.fixture
def active_model(clinic_a, trained_artifact, settings):
    """Clinic A's active model version, backed by the session's trained artifact."""
    settings.MODEL_DIR = trained_artifact[0]
    return make_model_version(clinic_a, trained_artifact)


@pytest.fixture
def on_real_workers():
    """Send tasks to a queue of this test's own, through Redis, instead of running them in-process; yields
    the queue's name, for the worker processes the test starts."""
    from clinic.testing import tasks_on_real_workers

    with tasks_on_real_workers() as queue:
        yield queue
