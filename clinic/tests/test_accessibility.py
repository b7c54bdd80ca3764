"""Accessibility of every page, for every role, checked with axe-core (WCAG 2.1 A and AA rules) in Chromium.

Each role signs in once (one browser context) and opens its pages in `PAGES`; the admin roles then open every
changelist of the project's apps that the Django admin's index offers them, and each list's first change form.
A critical or serious violation fails the test; everything axe finds is written to docs/ACCESSIBILITY.md once every
role has been checked in the run. Adding a page is one line of `PAGES`.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from django.utils import timezone

from clinic.models import Role
from clinic.tests.factories import UserFactory
from conftest import browser_login, make_model_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple"
VISITOR, SUPERUSER = "visitor", "superuser"
ROLES = [VISITOR, Role.ADMIN, Role.DOCTOR, Role.STAFF, Role.PATIENT, SUPERUSER]
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = ("critical", "serious")
REPORT = Path(__file__).resolve().parents[2] / "docs" / "ACCESSIBILITY.md"
# Each role's findings, kept per run: `make test` spreads the roles over two processes, and whichever finishes last
# writes the report from all of them.
FINDINGS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "accessibility"

# One line per page: who opens it, its URL name, and the seeded objects (`Seed` attributes) its address takes.
PAGES: list[tuple[str, str, tuple[str, ...]]] = [
    (VISITOR, "login", ()),
    (Role.PATIENT, "home", ()),
    (Role.PATIENT, "recommendations:mine", ()),
    (Role.PATIENT, "patients:mine", ()),
    (Role.PATIENT, "patients:my_report", ()),
    (Role.PATIENT, "patients:contact_new", ()),
    (Role.PATIENT, "patients:contact_mine", ()),
    (Role.PATIENT, "password_change", ()),
    (Role.STAFF, "home", ()),
    (Role.STAFF, "patients:list", ()),
    (Role.STAFF, "patients:create", ()),
    (Role.STAFF, "patients:detail", ("patient",)),
    (Role.STAFF, "patients:edit", ("patient",)),
    (Role.STAFF, "patients:panel", ("patient",)),
    (Role.STAFF, "patients:observation_amend", ("patient", "observation")),
    (Role.STAFF, "patients:medication_add", ("patient",)),
    (Role.STAFF, "patients:allergy_add", ("patient",)),
    (Role.STAFF, "patients:report", ("patient",)),
    (Role.STAFF, "patients:requests", ()),
    (Role.STAFF, "patients:request_detail", ("contact_request",)),
    (Role.STAFF, "imports:upload", ()),
    (Role.STAFF, "imports:job_list", ()),
    (Role.STAFF, "imports:job_new", ()),
    (Role.STAFF, "imports:job_detail", ("import_job",)),
    (Role.STAFF, "labfeed:unmatched", ()),
    (Role.STAFF, "labfeed:unmatched_detail", ("unmatched",)),
    (Role.STAFF, "api-docs", ()),
    (Role.DOCTOR, "home", ()),
    (Role.DOCTOR, "patients:list", ()),
    (Role.DOCTOR, "patients:detail", ("patient",)),
    (Role.DOCTOR, "patients:condition_add", ("patient",)),
    (Role.DOCTOR, "recommendations:queue", ()),
    (Role.DOCTOR, "recommendations:review", ("recommendation",)),
    (Role.DOCTOR, "recommendations:dashboard", ()),
    (Role.DOCTOR, "recommendations:protocols", ()),
    (Role.DOCTOR, "recommendations:protocol_sign", ()),
    (Role.DOCTOR, "patients:dashboard", ()),
    (Role.DOCTOR, "imports:diagnoses", ()),
    (Role.ADMIN, "home", ()),
    (Role.ADMIN, "patients:dashboard", ()),
    (Role.ADMIN, "mltraining:dashboard", ()),
    (Role.ADMIN, "mltraining:model_card", ("model_version",)),
    (Role.ADMIN, "predictions:batch_list", ()),
    (Role.ADMIN, "predictions:batch_detail", ("batch",)),
    (Role.ADMIN, "predictions:batch_detail", ("running_batch",)),
    (SUPERUSER, "home", ()),
]
# Roles whose Django admin is crawled from its index, and the apps whose models are the project's.
ADMIN_CRAWLED = [Role.ADMIN, SUPERUSER]
PROJECT_APPS = ["clinic", "patients", "predictions", "recommendations", "mltraining", "labfeed", "cdshooks"]


@dataclass
class Seed:
    """A small clinic: a scored cohort with critical results and advice waiting, batches, a job, held HL7 results."""

    patient: int
    observation: int
    recommendation: int
    model_version: int
    batch: int
    running_batch: int
    import_job: int
    unmatched: int
    contact_request: int


def seed_clinic(clinic, trained_artifact, settings) -> Seed:
    from cdshooks.models import EhrConnection
    from labfeed.models import LabConnection, UnmatchedResult
    from labfeed.services import hl7_message_receive
    from labfeed.tests.factories import AUTHORITY, FACILITY, oru, potassium
    from patients.demo import demo_cohort_load, demo_critical_results_enter
    from patients.models import ContactKind, ContactRequest, ImportJob, ImportJobKind, ImportJobStatus, Patient
    from predictions.models import BatchStatus, BatchTrigger, PredictionBatch
    from recommendations.models import Recommendation

    settings.MODEL_DIR = trained_artifact[0]
    version = make_model_version(clinic, trained_artifact)
    account = UserFactory(clinic=clinic, role=Role.PATIENT, username="a11y-patient", password=PASSWORD)
    demo_cohort_load(clinic=clinic, n_patients=12, seed=3, link_user=account)
    UserFactory(clinic=clinic, role=Role.STAFF, username="a11y-staff", password=PASSWORD)
    [critical, *_] = demo_critical_results_enter(clinic=clinic, seed=3)
    now = timezone.now()
    finished = PredictionBatch.objects.create(
        clinic=clinic, model_version=version, trigger=BatchTrigger.PORTAL, status=BatchStatus.SUCCEEDED, total=12,
        done=12, chunks_total=1, chunks_finished=1, started_at=now - datetime.timedelta(minutes=1), finished_at=now,
    )  # fmt: skip
    running = PredictionBatch.objects.create(
        clinic=clinic, model_version=version, trigger=BatchTrigger.PORTAL, status=BatchStatus.RUNNING, total=12,
        done=5, chunks_total=2, chunks_finished=1, started_at=now,
    )  # fmt: skip
    job = ImportJob.objects.create(clinic=clinic, kind=ImportJobKind.CSV, status=ImportJobStatus.QUEUED,
                                   files=[{"name": "labs.csv", "path": "x/labs.csv", "size": 120}])  # fmt: skip
    LabConnection.objects.create(clinic=clinic, name="Central Lab", sending_facility=FACILITY,
                                 assigning_authority=AUTHORITY)  # fmt: skip
    hl7_message_receive(raw=oru(potassium("4.4"), mrn="NOSUCH1", born="19900101", control_id="A11Y1"))
    EhrConnection.objects.create(clinic=clinic, name="Clinic EHR", iss="https://ehr.a11y.example",
                                 jwks_url="https://ehr.a11y.example/jwks", mrn_system="urn:a11y:mrn")  # fmt: skip
    own = Patient.objects.get(user=account)
    request = ContactRequest.objects.create(clinic=clinic, patient=own, kind=ContactKind.APPOINTMENT,
                                            message="Can I come in next week?", preferred_times="Mornings")  # fmt: skip
    return Seed(
        patient=critical.patient_id,
        observation=critical.pk,
        recommendation=Recommendation.objects.filter(patient__clinic=clinic).order_by("pk").first().pk,
        model_version=version.pk,
        batch=finished.pk,
        running_batch=running.pk,
        import_job=job.pk,
        unmatched=UnmatchedResult.objects.get().pk,
        contact_request=request.pk,
    )


@dataclass
class Checked:
    """What axe found on one page: (rule id, impact, help, nodes) per violation, and the first few elements of each."""

    role: str
    page: str
    violations: list[tuple[str, str, str, int]] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)


RESULTS: dict[str, list[Checked]] = {}


def _check(page, axe: Axe, role: str, name: str, *, idle: bool = True) -> Checked:
    """Run axe on the open page. `idle`: first wait until the page has fetched nothing for half a second (our pages
    that draw figures fetch their data after load). The Django admin's pages fetch nothing before their first poll,
    seconds later, so for them the load that `page.goto` waits for is enough."""
    if idle:
        page.wait_for_load_state("networkidle")
    # No CSSOM preload: it fetches each @import (admin/forms.css imports widgets.css) relative to the page, a 404.
    # Only the violations' nodes are gathered (axe's `resultTypes`): passes and incomplete checks are not reported.
    options = {"runOnly": {"type": "tag", "values": TAGS}, "preload": False, "resultTypes": ["violations"]}
    results = axe.run(page, options=options)
    violations = [
        (v["id"], v.get("impact") or "minor", v["help"], len(v["nodes"])) for v in results.response["violations"]
    ]
    examples = {
        v["id"]: [" ".join(map(str, node["target"])) for node in v["nodes"][:3]] for v in results.response["violations"]
    }
    return Checked(role, name, violations, examples)


def _open(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None, url
    assert response.status == 200, f"{url}: {response.status}"


def _admin_pages_check(page, axe: Axe, role: str) -> list[Checked]:
    """Check the project's Django admin pages the signed-in user's admin index offers, each opened once: the index,
    each changelist of the project's apps, and each list's first change form."""
    checked = []

    def visit(name: str, url: str) -> None:
        _open(page, url)
        checked.append(_check(page, axe, role, name, idle=False))

    visit("admin index", reverse("admin:index"))
    offered = page.locator("#content-main th a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    for href in offered:
        if href.split("/")[2] not in PROJECT_APPS:
            continue
        visit(_admin_name(href), href)
        first = page.locator("#result_list tbody th a, #result_list tbody td.field-__str__ a").first
        if first.count():
            target = first.get_attribute("href")
            visit(_admin_name(target), target)
    return checked


def _admin_name(href: str) -> str:
    """/admin/clinic/user/7/change/ -> admin clinic/user/<id>/change (ids differ between runs)."""
    return "admin " + re.sub(r"/\d+/", "/<id>/", href.split("?")[0].removeprefix("/admin/")).strip("/")


def _sign_in(page, role: str, clinic) -> None:
    if role == VISITOR:
        return
    if role == SUPERUSER:
        UserFactory(clinic=None, role=Role.ADMIN, username="a11y-root", is_superuser=True, password=PASSWORD)
        browser_login(page, "a11y-root", PASSWORD)
    elif role == Role.PATIENT:
        browser_login(page, "a11y-patient", PASSWORD)
    elif role == Role.STAFF:
        browser_login(page, "a11y-staff", PASSWORD)
    else:
        UserFactory(clinic=clinic, role=role, username=f"a11y-{role}", password=PASSWORD)
        browser_login(page, f"a11y-{role}", PASSWORD)


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_the_role_has_no_critical_or_serious_accessibility_violation(
    browser_page, clinic_a, trained_artifact, settings, role, request
):
    seed = seed_clinic(clinic_a, trained_artifact, settings)
    page, axe = browser_page, Axe()
    refused = []  # any address a page loads (or polls) that answers an error, named for the failure message
    page.on("response", lambda response: refused.append(f"{page.url} -> {response.url}: {response.status}")
            if response.status >= 400 else None)  # fmt: skip
    _sign_in(page, role, clinic_a)

    targets = [
        (name if not args else f"{name} ({', '.join(args)})", reverse(name, args=[getattr(seed, a) for a in args]))
        for who, name, args in PAGES
        if who == role
    ]
    checked = []
    for name, url in targets:
        _open(page, url)
        checked.append(_check(page, axe, role, name))
    if role in ADMIN_CRAWLED:
        checked += _admin_pages_check(page, axe, role)
    RESULTS[role] = checked
    _keep(role, checked, _run_id(request.config))

    failing = [
        f"{c.page}: {rule} ({impact}, {nodes} nodes): {text}, e.g. {c.examples[rule]}"
        for c in checked
        for rule, impact, text, nodes in c.violations
        if impact in FAILING_IMPACTS
    ]
    assert not failing, "\n".join(failing)
    assert not refused, refused


def _run_id(config) -> str:
    """The same for every process of one pytest run (pytest-xdist's run id; one of its own without xdist)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return workerinput["testrunuid"]
    if not hasattr(config, "_accessibility_run"):
        config._accessibility_run = uuid.uuid4().hex
    return config._accessibility_run


def _keep(role: str, checked: list[Checked], run: str) -> None:
    FINDINGS.mkdir(parents=True, exist_ok=True)
    (FINDINGS / f"{role}.json").write_text(json.dumps({"run": run, "checked": [asdict(c) for c in checked]}))


def _kept(run: str) -> dict[str, list[Checked]]:
    """Every role's findings of this run, or fewer when a role has not been checked in it."""
    found = {}
    for role in ROLES:
        path = FINDINGS / f"{role}.json"
        data = json.loads(path.read_text()) if path.exists() else {}
        if data.get("run") == run:
            found[role] = [
                Checked(c["role"], c["page"], [tuple(v) for v in c["violations"]], c["examples"])
                for c in data["checked"]
            ]
    return found


@pytest.fixture(autouse=True, scope="module")
def _write_report(request):
    """docs/ACCESSIBILITY.md, rewritten only after a run in which every role's pages were checked."""
    RESULTS.clear()
    yield
    results = _kept(_run_id(request.config))
    if set(results) == set(ROLES):
        REPORT.write_text(accessibility_report(results))


def accessibility_report(results: dict[str, list[Checked]]) -> str:
    from importlib.metadata import version

    checked = [c for role in ROLES for c in results.get(role, [])]
    lines = [
        "# Accessibility",
        "",
        "Written by `clinic/tests/test_accessibility.py` after a run that checked every role's pages with axe-core",
        f"(axe-playwright-python {version('axe-playwright-python')}, rules tagged {', '.join(TAGS)}) in Chromium.",
        "A critical or serious violation fails the test; the rest is listed here. Do not edit by hand.",
        "",
        "| Role | Pages | Critical | Serious | Moderate | Minor |",
        "|------|-------|----------|---------|----------|-------|",
    ]
    for role in ROLES:
        counts = defaultdict(int)
        for c in results.get(role, []):
            for _, impact, _, _ in c.violations:
                counts[impact] += 1
        cells = " | ".join(str(counts[i]) for i in ("critical", "serious", "moderate", "minor"))
        lines.append(f"| {role} | {len(results.get(role, []))} | {cells} |")
    found: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for c in checked:
        for rule, impact, text, nodes in c.violations:
            found[(rule, impact, text)].append(f"{c.role}: {c.page} ({nodes})")
    lines += ["", "## Violations", ""]
    if not found:
        lines.append("None.")
    else:
        lines += ["| Rule | Impact | What it asks | Where (nodes) |", "|---|---|---|---|"]
        for (rule, impact, text), where in sorted(found.items()):
            lines.append(f"| {rule} | {impact} | {text} | {'; '.join(where)} |")
    lines += ["", "## Pages checked", "", "| Role | Page | Violations |", "|---|---|---|"]
    lines += [f"| {c.role} | {c.page} | {len(c.violations)} |" for c in checked]
    return "\n".join(lines) + "\n"
