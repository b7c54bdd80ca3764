"""Hostile input: junk query parameters (case 8), stored XSS (case 9), impossible lab values (case 10) and
malformed files (case 11). Each test tries the input on every surface that takes it: the API, the portal,
the admin, the CSV import and the management commands."""

from __future__ import annotations

import datetime
import functools
import json
from typing import Any

import pytest
from django.contrib import admin
from django.urls import reverse

from clinic.models import AuditEvent
from clinic.tests.factories import UserFactory
from patients.models import Observation, Patient, Sex
from patients.services import ObservationInput, condition_record, observations_record
from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.tests.factories import prediction_for

WHEN = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)
SECRET = "HILLCREST-SECRET"  # in every record of clinic B: no page of clinic A may show it


UNITS = {"glucose": "mmol/L", "hemoglobin": "g/dL"}


def _record(patient, by, **values) -> None:
    entries = [ObservationInput(code, value, UNITS[code]) for code, value in values.items()]
    observations_record(patient=patient, by=by, entries=entries, effective_at=WHEN)


@pytest.fixture
def two_clinics(clinic_a, clinic_b, staff_a, doctor_a, doctor_b):
    """Three patients of clinic A and one of clinic B, each with results, a condition and pending advice."""
    a = [
        PatientFactory(clinic=clinic_a, mrn=mrn, family_name=name, given_name="Ann", birth_date=born, sex=Sex.MALE)
        for mrn, name, born in [
            ("A-3", "Carter", datetime.date(1950, 1, 1)),
            ("A-1", "Baker", datetime.date(1990, 1, 1)),
            ("A-2", "Adams", datetime.date(1970, 1, 1)),
        ]
    ]
    b = PatientFactory(clinic=clinic_b, mrn=SECRET, family_name=SECRET, given_name=SECRET, sex=Sex.MALE)
    staff_b = UserFactory(clinic=clinic_b, role="staff", username="staff_b")
    for patient, by in [*((p, staff_a) for p in a), (b, staff_b)]:
        _record(patient, by, glucose=5.0 + patient.pk % 3, hemoglobin=14.0)
        condition_record(patient=patient, by=by, code="E11.9", display="Type 2 diabetes")
    for clinic, patients in [(clinic_a, a), (clinic_b, [b])]:
        predictions = [prediction_for(p, sex="male", risk_level="high", hba1c=7.2) for p in patients]
        recommendations_generate(predictions=predictions, clinic_id=clinic.pk)
    return a, b


# --- case 8: junk query parameters ------------------------------------------------------------------------------

JUNK = {
    "unknown-field": "password",
    "foreign-field": "-clinic__name",
    "sql": "1;DROP TABLE patients_patient; --' OR 1=1 --",
    "unicode-junk": "\u202e\U0001f4a9\ufffd\u00e4\u200b",
    "unicode-digits": "\u00b2\u00b3",  # digits to str.isdigit(), not to int()
    "nul": "a\u0000b",
    "very-long": "x" * 20_000,
    "negative": "-1",
    "not-a-number": "abc",
    "huge-number": "100000",
    "beyond-bigint": "9" * 30,
    "impossible-date": "2025-13-45",
}
# One of each kind, for the pages that are slow to render (dashboards) or many (admin changelists). NUL is
# refused before any view runs (test_a_nul_character_in_the_address_is_a_400) and would hide the rest.
JUNK_SAMPLE = ["unknown-field", "sql", "unicode-junk", "unicode-digits", "beyond-bigint", "impossible-date"]


@functools.cache
def api_list_operations() -> list[tuple[str, str, tuple[str, ...]]]:
    """(operation id, path, query parameters) of every GET endpoint of the OpenAPI schema that lists rows."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get and get["operationId"].endswith("_list"):
            names = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
            names |= {"ordering", "q", "page", "page_size"}
            found.append((get["operationId"], path, tuple(sorted(names))))
    return found


def _rows(response) -> Any:
    body = response.json()
    return body["results"] if isinstance(body, dict) and "results" in body else body


def _contains(rows: Any, subset: Any) -> bool:
    if isinstance(rows, list) and isinstance(subset, list):
        return all(row in rows for row in subset)
    return rows == subset


def test_the_schema_lists_every_list_endpoint_of_the_api():
    """The junk tests below take their endpoints from the schema: it must hold today's (and will hold new ones)."""
    assert {operation for operation, _, _ in api_list_operations()} >= {
        "v1_patients_list",
        "v1_patients_observations_list",
        "v1_patients_conditions_list",
        "v1_patients_predictions_list",
        "v1_recommendations_queue_list",
        "v1_me_advice_list",
        "v1_analytes_list",
    }


@pytest.mark.reliability(
    8,
    "Every list endpoint of the OpenAPI schema, each query parameter set to an unknown or foreign field, SQL, "
    "unicode junk, 20,000 characters, -1, abc, 10^30 and 2025-13-45: 400 or 404 (a page that does not exist) "
    "or the same rows as without it, never a 500 nor another clinic's rows",
)
@pytest.mark.parametrize(("operation", "path", "params"), [pytest.param(*op, id=op[0]) for op in api_list_operations()])
def test_junk_query_parameters_on_an_api_list_endpoint(
    client, two_clinics, doctor_a, patient_user_a, operation, path, params
):
    patients_a, _ = two_clinics
    Patient.objects.filter(pk=patients_a[0].pk).update(user=patient_user_a)  # the patient account's own record
    url = path.replace("{patient_pk}", str(patients_a[0].pk))
    client.force_login(patient_user_a if operation == "v1_me_advice_list" else doctor_a)
    client.raise_request_exception = False  # a 500 is a finding to list, not an exception that stops the loop
    baseline = client.get(url)
    assert baseline.status_code == 200, baseline.content
    # A junk page size is ignored (the first page) or clamped to the largest (the analyte catalog is longer than a
    # page): either way its rows are some of every row.
    every_row = _rows(client.get(url, {"page_size": 200}))
    problems = []
    for name in params:
        for label, value in JUNK.items():
            response = client.get(url, {name: value})
            where = f"{name}={label}: {response.status_code}"
            if response.status_code not in (200, 400, 404):
                problems.append(where)
            elif response.status_code == 404 and name != "page":
                problems.append(where + " (only a page that does not exist may answer 404)")
            elif SECRET.encode() in response.content:
                problems.append(where + " leaks clinic B")
            elif response.status_code == 200:
                expected = every_row if name == "page_size" else _rows(baseline)
                problems += _row_problems(where, name, expected, _rows(response))
    assert not problems, problems


def _row_problems(where: str, name: str, expected: Any, rows: Any) -> list[str]:
    """A junk parameter that was ignored gives the unfiltered rows (a junk search: fewer), in the same order."""
    if name in ("ordering", "o") and rows != expected:
        return [where + " ordered by a field that is not allowed"]
    if not _contains(expected, rows):
        return [where + " answered rows the unfiltered list does not have"]
    return []


# Portal pages that list or chart rows, the users who see them and the parameters they read.
PORTAL_PAGES = {
    "patients:list": ("doctor", ["q", "sex", "age_band", "condition", "abnormal", "ordering", "page"], JUNK),
    "recommendations:queue": ("doctor", ["q", "severity", "headline", "category", "ordering", "page"], JUNK),
    "recommendations:mine": ("patient", ["ordering", "page"], JUNK),
    "patients:requests": ("staff", ["kind", "status", "page"], JUNK),
    "predictions:batch_list": ("admin", ["page", "ordering"], JUNK),
    "patients:dashboard": ("doctor", ["download"], ["sql", "unicode-junk", "very-long"]),
    "recommendations:dashboard": ("doctor", ["download"], ["sql", "unicode-junk", "very-long"]),
    "mltraining:dashboard": ("admin", ["version", "clinic", "download"], JUNK_SAMPLE),
}


def _portal_rows(response) -> list[int] | None:
    context = response.context
    if context is None:
        return None
    if "cl" in context:
        return [obj.pk for obj in context["cl"].result_list]
    if "page" in context and hasattr(context["page"], "object_list"):
        return [obj.pk for obj in context["page"].object_list]
    return None


def _junk_problems(client, url: str, params: list[str], labels=JUNK, *, allowed=(200, 400, 404)) -> list[str]:
    client.raise_request_exception = False
    baseline = client.get(url)
    assert baseline.status_code == 200, url
    problems = []
    for name in params:
        for label in labels:
            response = client.get(url, {name: JUNK[label]})
            where = f"{url} {name}={label}: {response.status_code}"
            if response.status_code not in allowed:
                problems.append(where)
            elif SECRET.encode() in response.content:
                problems.append(where + " leaks clinic B")
            elif response.status_code == 200 and "cl" in response.context:
                problems += _changelist_problems(where, response.context["cl"], _portal_rows(baseline))
            elif response.status_code == 200 and (rows := _portal_rows(response)) is not None:
                problems += _row_problems(where, name, _portal_rows(baseline), rows)
    return problems


def _changelist_problems(where: str, changelist, expected: list[int]) -> list[str]:
    """The admin's `o` picks sortable columns by their index, so any order it gives is allowed; what must hold
    is that rows are ordered only by those columns, the model's own ordering or the primary key, and come from
    the unfiltered list."""
    model = changelist.model
    allowed = {"pk", model._meta.pk.name, *model._meta.ordering, *(changelist.model_admin.ordering or ())}
    allowed |= {str(changelist.get_ordering_field(name)) for name in changelist.list_display}
    unlisted = {str(f).lstrip("-") for f in changelist.result_list.query.order_by} - {a.lstrip("-") for a in allowed}
    problems = [f"{where} ordered by {sorted(unlisted)}"] if unlisted else []
    # The audit trail lists the rows its own reads wrote (one per page read, the unfiltered one's included).
    own_reads = {obj.pk for obj in changelist.result_list if isinstance(obj, AuditEvent) and obj.action == "audit.list"}
    rows = {obj.pk for obj in changelist.result_list} - own_reads
    if not rows <= set(expected):
        problems.append(where + " answered rows the unfiltered list does not have")
    return problems


@pytest.mark.reliability(
    8,
    "Every portal page that lists or charts rows (patients, review queue, my advice, dashboards, batches), each "
    "of its parameters set to junk: the page renders without the filter or says 400/404, never a 500",
)
@pytest.mark.parametrize("page", list(PORTAL_PAGES))
def test_junk_query_parameters_on_a_portal_list_page(client, two_clinics, users_by_role, page):
    patients_a, _ = two_clinics
    Patient.objects.filter(pk=patients_a[0].pk).update(user=users_by_role["patient"])
    role, params, labels = PORTAL_PAGES[page]
    client.force_login(users_by_role[role])

    assert not _junk_problems(client, reverse(page), params, labels)


def _changelists() -> list:
    return [
        pytest.param(model, id=f"{model._meta.app_label}.{model._meta.model_name}")
        for model in admin.site._registry
        if model._meta.app_label not in ("auth", "knox", "django_celery_beat", "axes")
    ]


@pytest.mark.reliability(
    8,
    "Every admin changelist of the project as a clinic admin: search, ordering (o), page (p), every list "
    "filter's parameters and unknown lookups (password, clinic__name) set to junk: never a 500, never another "
    "clinic's rows",
)
@pytest.mark.parametrize("model", _changelists())
def test_junk_query_parameters_on_an_admin_changelist(client, two_clinics, admin_a, superuser, model):
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    client.force_login(admin_a)
    baseline = client.get(url)
    if baseline.status_code == 403:  # a changelist only superusers see (clinics)
        client.force_login(superuser)
        baseline = client.get(url)
    # The first parameter of each list filter (the others, such as __isnull, go through the same Django code).
    filters = [spec.expected_parameters()[0] for spec in baseline.context["cl"].filter_specs]

    # An invalid lookup redirects to ?e=1 (Django's "bad filter" page); a forbidden one is a 400.
    allowed = (200, 302, 400, 404)
    problems = _junk_problems(client, url, ["q", "o", "p", *filters], JUNK_SAMPLE, allowed=allowed)
    problems += _junk_problems(client, url, ["password", "clinic__name"], ["sql"], allowed=allowed)
    assert not problems


@pytest.mark.reliability(
    8, "The review queue's bulk approval sent recommendation ids ², -1, abc and 10^30: nothing approved, no 500"
)
def test_junk_ids_in_the_queue_bulk_approval_approve_nothing(client, two_clinics, doctor_a):
    from recommendations.models import ItemStatus, RecommendationItem

    client.force_login(doctor_a)
    ids = [JUNK[label] for label in ("unicode-digits", "negative", "not-a-number", "beyond-bigint")]

    response = client.post(reverse("recommendations:bulk_approve"), {"recommendation": ids})

    assert response.status_code == 302
    assert not RecommendationItem.objects.filter(status=ItemStatus.APPROVED).exists()


@pytest.mark.reliability(8, "page_size=100000 on the patient list: at most the endpoint's maximum page size")
def test_a_huge_page_size_is_capped(client, clinic_a, doctor_a):
    Patient.objects.bulk_create(
        PatientFactory.build(clinic=clinic_a, mrn=f"P-{n}", birth_date=datetime.date(1980, 1, 1)) for n in range(205)
    )
    client.force_login(doctor_a)

    response = client.get(reverse("patients-api:patient-list"), {"page_size": "100000"})

    assert response.status_code == 200
    assert len(response.json()["results"]) == 200
    assert response.json()["next"]


@pytest.mark.reliability(8, "A NUL character in the path or a query parameter: 400, on PostgreSQL too")
@pytest.mark.parametrize(
    "url",
    ["/api/v1/analytes/%00/", "/patients/import/%00/", "/admin/clinic/auditevent/?action=%00", "/patients/?q=a%00b"],
    ids=["api-path", "portal-path", "admin-filter", "portal-search"],
)
def test_a_nul_character_in_the_address_is_a_400(client, admin_a, url):
    client.force_login(admin_a)

    response = client.get(url)

    assert response.status_code == 400
    assert b"NUL" in response.content
    if url.startswith("/api/"):  # the API answers its errors in JSON, this one too
        assert response.json() == {"detail": "The address contains a NUL character."}


# --- case 9: stored XSS -----------------------------------------------------------------------------------------


def script(n: int) -> str:
    return f"<script>alert({n})</script>"


def img(n: int) -> str:
    return f'"><img src=x onerror=alert({n})>'


def breakout(n: int) -> str:
    """Closes the <script> element a page embeds JSON in, then opens one of its own."""
    return f"</script><script>alert({n})</script>"


JS_URL = "javascript:alert(3)"
FORMULA = "=cmd|' /C calc'!A0"
# What must never reach a page unescaped: an element or attribute the browser would run.
RAW = ["<script>alert(", "<img src=x onerror", "</script><script>", 'href="javascript:', 'src="javascript:']


def _escaped(payload: str) -> str:
    from django.utils.html import escape

    return str(escape(payload))


def _post(client, url: str, data: dict[str, Any]) -> None:
    response = client.post(url, data)
    assert response.status_code == 302, response.context["form"].errors if response.context else response


@pytest.fixture
def hostile(client, clinic_a, staff_a, doctor_a, patient_user_a):
    """A patient of clinic A whose every free-text field was typed in as an attack, through the portal forms,
    and advice a doctor edited, annotated, approved and rejected with attacks as text. Numbers say which field."""
    client.force_login(staff_a)
    _post(client, reverse("patients:create"), {
        "mrn": "X-1", "given_name": script(1), "family_name": img(2), "birth_date": "1970-01-01", "sex": "male",
        "address": f"{JS_URL}\n{script(3)}", "phone": img(4), "smoking": "unknown", "alcohol": "unknown",
        "physical_activity": "unknown", "diet": "unknown",
    })  # fmt: skip
    patient = Patient.objects.get(mrn="X-1")
    Patient.objects.filter(pk=patient.pk).update(user=patient_user_a)
    _post(client, reverse("patients:condition_add", args=[patient.pk]), {
        "code": "E11.9", "display": script(5), "note": img(6), "clinical_status": "active",
        "verification_status": "provisional",
    })  # fmt: skip
    _post(client, reverse("patients:medication_add", args=[patient.pk]), {"name": script(7), "dose": img(8)})
    _post(client, reverse("patients:allergy_add", args=[patient.pk]), {
        "substance": script(9), "reaction": img(10), "severity": "unknown",
    })  # fmt: skip
    for day in (1, 2):  # two values: the page draws a trend chart, whose description names the patient
        at = WHEN - datetime.timedelta(days=day)
        observations_record(patient=patient, by=staff_a, entries=[ObservationInput("glucose", 5.0 + day, "mmol/L")],
                            effective_at=at)  # fmt: skip
    doctor_a.first_name, doctor_a.last_name = breakout(14), img(15)
    doctor_a.save()
    prediction = prediction_for(patient, sex="male", risk_level="high", hba1c=7.2, ldl=5.2, systolic_bp=150)
    rec = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)[0]
    first, second, *_ = rec.items.filter(is_headline=False).order_by("position")
    client.force_login(doctor_a)
    _post(client, reverse("recommendations:item_edit", args=[first.pk]), {"patient_text": script(11) + img(11)})
    _post(client, reverse("recommendations:item_annotate", args=[first.pk]), {"note": img(12)})
    _post(client, reverse("recommendations:item_approve", args=[first.pk]), {})
    _post(client, reverse("recommendations:item_reject", args=[second.pk]), {"reason": "other", "comment": script(13)})
    client.logout()
    return patient, rec


def _json_escaped(payload: str) -> str:
    """The payload as plotly writes it into a page's <script>: <, > and / as \\u escapes, quotes backslashed."""
    text = json.dumps(payload)[1:-1]
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("/", "\\u002f")


# page: (who looks, the URL name, the object in the URL, the attacks (by number) the page shows as text). A
# doctor's own name (14, 15) also shows in the navigation bar of the pages they look at.
XSS_PAGES = {
    "patient-list": ("doctor", "patients:list", None, [1, 2]),
    "patient-page": ("doctor", "patients:detail", "patient", [1, 2, 3, 4, 5, 7, 8, 9, 10]),
    "patient-page-own-account": ("patient", "patients:detail", "patient", [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]),
    "patient-edit-form": ("staff", "patients:edit", "patient", [1, 2, 3, 4]),
    "review-queue": ("doctor", "recommendations:queue", None, [1, 2]),
    "review-page": ("doctor", "recommendations:review", "rec", [1, 2, 11, 12, 13, 14, 15]),
    "my-advice": ("patient", "recommendations:mine", None, [11, 14, 15]),
    "my-results": ("patient", "patients:mine", None, [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 14, 15]),
    "my-report": ("patient", "patients:my_report", None, [1, 2, 11, 14, 15]),
    "patient-report": ("staff", "patients:report", "patient", [1, 2, 11, 14, 15]),
    "admin-recommendations": ("admin", "admin:recommendations_recommendation_changelist", None, [1, 2]),
    "admin-recommendation": ("admin", "admin:recommendations_recommendation_change", "rec", [1, 2, 14, 15]),
    "admin-feedback": ("admin", "admin:recommendations_feedbackevent_changelist", None, [1, 2, 14, 15]),
    "admin-rejection": ("admin", "admin:recommendations_feedbackevent_change", "rejection", [13, 14, 15]),
    "admin-users": ("admin", "admin:clinic_user_changelist", None, [14, 15]),
    "admin-user": ("admin", "admin:clinic_user_change", "doctor", [14, 15]),
}


@pytest.mark.reliability(
    9,
    '<script>, "><img onerror> and javascript: typed into patient names, address, phone, condition, '
    "medication, allergy, a doctor's name and the advice text, note and rejection comment: escaped on every "
    "portal page and admin page that shows them",
)
@pytest.mark.parametrize("page", list(XSS_PAGES))
def test_stored_attacks_are_shown_as_text(client, hostile, users_by_role, page):
    from recommendations.models import FeedbackEvent

    patient, rec = hostile
    role, name, target, shown = XSS_PAGES[page]
    ids = {
        "patient": patient.pk,
        "rec": rec.pk,
        "doctor": users_by_role["doctor"].pk,
        "rejection": FeedbackEvent.objects.get(item__recommendation=rec, action="reject").pk,
    }
    client.force_login(users_by_role[role])

    response = client.get(reverse(name, args=[ids[target]] if target else []), HTTP_ACCEPT="text/html")

    html = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert [raw for raw in RAW if raw in html] == []
    payloads = {n: [script(n), img(n), breakout(n)] for n in shown}
    assert [n for n, forms in payloads.items() if not any(_escaped(p) in html for p in forms)] == []
    if 3 in shown:
        assert 'href="javascript:' not in html
        assert _escaped(JS_URL) in html


@pytest.mark.reliability(
    9,
    "The same records asked of the API by a browser (Accept: text/html): JSON, never an HTML page that could run them",
)
@pytest.mark.parametrize("name", ["patients-api:patient-detail", "patients-api:condition-list"])
def test_the_api_never_renders_stored_attacks_as_a_page(client, hostile, users_by_role, name):
    patient, _ = hostile
    client.force_login(users_by_role["doctor"])

    response = client.get(reverse(name, args=[patient.pk]), HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.reliability(
    9,
    "A doctor named </script><script>alert(14)</script> on the review dashboard, whose plotly chart embeds "
    "clinician names in an inline <script>: no breakout, the name is in the JSON with < > / escaped",
)
def test_a_chart_that_embeds_names_in_a_script_cannot_be_broken_out_of(client, hostile, admin_a):
    client.force_login(admin_a)  # not the doctor: their name is not in the navigation bar

    html = client.get(reverse("recommendations:dashboard")).content.decode()

    assert [raw for raw in RAW if raw in html] == []
    assert _json_escaped(breakout(14)) in html
    assert html.count("<script") == html.count("</script>")


@pytest.mark.reliability(
    9,
    "A NUL character in a review note, a rejection comment and an edited patient text, posted to the review "
    "page: refused with a message naming the field, nothing stored (PostgreSQL cannot store one)",
)
@pytest.mark.parametrize(
    ("action", "data"),
    [("annotate", {"note": "a\x00b"}), ("reject", {"reason": "other", "comment": "a\x00b"}),
     ("edit", {"patient_text": "a\x00b"}), ("approve", {"patient_text": "a\x00b"})],
    ids=["note", "rejection-comment", "edited-text", "text-edited-on-approval"],
)  # fmt: skip
def test_a_nul_character_in_review_text_is_refused(client, two_clinics, doctor_a, action, data):
    from recommendations.models import FeedbackEvent, ItemStatus, RecommendationItem

    item = RecommendationItem.objects.filter(
        recommendation__patient=two_clinics[0][0], status=ItemStatus.PENDING, is_headline=False
    ).first()
    client.force_login(doctor_a)

    response = client.post(reverse(f"recommendations:item_{action}", args=[item.pk]), data, follow=True)

    assert "NUL character" in response.content.decode()
    item.refresh_from_db()
    assert item.status == ItemStatus.PENDING
    assert "\x00" not in item.note + item.patient_text
    assert not FeedbackEvent.objects.exists()


@pytest.fixture
def uploads_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path


def _upload(client, name: str, data: bytes, **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    file = SimpleUploadedFile(name, data, content_type="text/csv")
    return client.post(reverse("imports:upload"), {"file": file, "format": "auto", **fields})


def _csv_cells(response) -> list[list[str]]:
    import csv
    import io

    content = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(content.decode())))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.reliability(
    9,
    "An import file named <img src=x onerror=alert(16)>.csv: escaped on the preview and result pages and on "
    "the admin's audit list and audit row",
)
def test_an_attack_in_an_import_file_name_is_shown_as_text(client, hostile, staff_a, admin_a, uploads_in_tmp):
    name = "<img src=x onerror=alert(16)>.csv"
    client.force_login(staff_a)

    preview_url = _upload(client, name, b"mrn,date,glucose\nX-1,2026-02-01,5.5\n").url
    preview = client.get(preview_url)
    result = client.get(client.post(preview_url + "confirm/").url)
    event = AuditEvent.objects.get(action="observation.import")
    client.force_login(admin_a)
    audit_list = client.get(reverse("admin:clinic_auditevent_changelist"), {"action": "observation.import"})
    audit_row = client.get(reverse("admin:clinic_auditevent_change", args=[event.pk]))

    assert event.detail["filename"] == name
    for page in (preview, result, audit_row):
        assert "<img src=x" not in page.content.decode()
        assert _escaped(name) in page.content.decode()
    assert "<img src=x" not in audit_list.content.decode()


@pytest.mark.reliability(
    9,
    "Cells starting with =, +, -, @ or a tab in an import file's problem report, a doctor named "
    "=cmd|' /C calc'!A0 in the review dashboard's CSV, a user -1+1 in the audit export: each quoted with '",
)
def test_csv_exports_neutralise_formulas(client, clinic_a, staff_a, doctor_a, admin_a, uploads_in_tmp):
    patient = PatientFactory(clinic=clinic_a, mrn="X-1")
    formulas = [FORMULA, "+1+1", "-1+1", "@SUM(A1)", "\t=1+1"]
    lines = "".join(f'"{value}",glucose,5.5,mmol/L,2026-02-01\n' for value in formulas)
    client.force_login(staff_a)
    preview_url = _upload(client, "results.csv", ("mrn,analyte,value,unit,date\n" + lines).encode()).url
    report = _csv_cells(client.get(preview_url + "problems.csv"))
    doctor_a.first_name, doctor_a.last_name = FORMULA, ""
    doctor_a.save()
    formula_user = UserFactory(clinic=clinic_a, role="doctor", username="-1+1")
    prediction = prediction_for(patient, sex="male", risk_level="high", hba1c=7.2, ldl=5.2, systolic_bp=150)
    rec = recommendations_generate(predictions=[prediction], clinic_id=clinic_a.pk)[0]
    first, second, *_ = rec.items.filter(is_headline=False)
    for by, item in [(doctor_a, first), (formula_user, second)]:
        client.force_login(by)
        _post(client, reverse("recommendations:item_approve", args=[item.pk]), {})
    client.force_login(admin_a)
    chart = _csv_cells(client.get(reverse("recommendations:dashboard"), {"download": "acceptance-by-clinician"}))
    events = list(AuditEvent.objects.values_list("pk", flat=True))
    export = _csv_cells(
        client.post(reverse("admin:clinic_auditevent_changelist"), {"action": "export_csv", "_selected_action": events})
    )

    assert [row[2][:2] for row in report[1:]] == ["'=", "'+", "'-", "'@", "'="]  # the MRN cell of each row
    assert "'" + FORMULA in [row[0] for row in chart]
    assert "'-1+1" in [row[2] for row in export]
    for cells in (report, chart, export):
        assert [cell for row in cells for cell in row if cell.startswith(FORMULA_STARTS)] == []


@pytest.mark.reliability(
    9,
    "The FHIR export of a patient named <script>alert(1)</script>: served as FHIR JSON with nosniff, as a "
    "download, with no HTML rendering of it (format=api is refused)",
)
def test_the_fhir_export_is_data_not_a_page(client, hostile, doctor_a):
    patient, _ = hostile
    client.force_login(doctor_a)
    url = reverse("fhir:patient-export", args=[patient.pk])

    response = client.get(url, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*")
    browsable = client.get(url, {"format": "api"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith(("application/fhir+json", "application/json"))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment")
    assert json.loads(response.content)["entry"][0]["resource"]["name"][0]["given"] == [script(1)]
    assert browsable.status_code == 404


# --- case 10: impossible lab values -----------------------------------------------------------------------------


@pytest.fixture
def lab_patient(clinic_a, staff_a):
    """A patient of clinic A with one glucose result, so "nothing written" is a count that stays at one."""
    patient = PatientFactory(clinic=clinic_a, mrn="L-1", birth_date=datetime.date(1970, 1, 1))
    _record(patient, staff_a, glucose=5.0)
    return patient


def _written() -> tuple[int, int]:
    """Results, and audit rows other than reads (the form page audits the read of the patient it names)."""
    return Observation.objects.count(), AuditEvent.objects.exclude(action="patient.view").count()


# The value as JSON text (literals NaN and Infinity are not JSON, but parsers meet them), and a word the
# error must contain so the sender knows what was wrong.
API_VALUES = {
    "nan-literal": ("NaN", "JSON"),
    "infinity-literal": ("Infinity", "JSON"),
    "minus-infinity-literal": ("-Infinity", "JSON"),
    "nan-text": ('"NaN"', "number"),
    "infinity-text": ('"Infinity"', "number"),
    "minus-infinity-text": ('"-Infinity"', "number"),
    "overflow": ("1e309", "number"),
    "400-digit-integer": ("1" + "0" * 400, "too large"),
    "huge": ("1e308", "plausible range"),
    "negative": ("-1", "plausible range"),
    "text": ('"high"', "number"),
    "empty": ('""', "number"),
    "null": ("null", "null"),
    "boolean": ("true", "number"),
    "list": ("[5.5]", "number"),
}


@pytest.mark.reliability(
    10,
    "POST a result or a panel with value NaN, Infinity, -Infinity (as JSON literals and as text), 1e309, a "
    "400-digit integer, 1e308, -1, text, empty, null, true or a list: 400 naming the problem, no result and no "
    "audit row written",
)
@pytest.mark.parametrize("shape", ["single", "panel"])
@pytest.mark.parametrize("value", list(API_VALUES))
def test_an_impossible_value_through_the_api_is_a_400_and_writes_nothing(client, staff_a, lab_patient, value, shape):
    text, word = API_VALUES[value]
    result = f'"analyte": "glucose", "value": {text}, "unit": "mmol/L"'
    good = '{"analyte": "hemoglobin", "value": 14.0, "unit": "g/dL"}'
    body = (
        f'{{{result}, "effective_at": "2026-02-01T08:00:00Z"}}'
        if shape == "single"
        else f'{{"results": [{good}, {{{result}}}], "effective_at": "2026-02-01T08:00:00Z"}}'
    )
    client.force_login(staff_a)
    before = _written()

    response = client.post(
        reverse("patients-api:observation-list", args=[lab_patient.pk]), body, content_type="application/json"
    )

    assert response.status_code == 400
    assert word in json.dumps(response.json())
    assert _written() == before


@pytest.mark.hazard(
    "H2", "The API refuses a glucose in kg, in no unit or of 99 'mmol/L' (Did you mean mg/dL?), and writes nothing"
)
@pytest.mark.reliability(
    10, "POST a glucose in kg, in no unit, or for an analyte that does not exist: 400 naming the unit or analyte"
)
@pytest.mark.parametrize(
    ("result", "word"),
    [
        ({"analyte": "glucose", "value": 5.5, "unit": "kg"}, "accepted units"),
        ({"analyte": "glucose", "value": 5.5, "unit": ""}, "unit"),
        ({"analyte": "glucose", "value": 99, "unit": "mmol/L"}, "Did you mean mg/dL?"),
        ({"analyte": "unobtainium", "value": 5.5, "unit": "mmol/L"}, "unobtainium"),
    ],
    ids=["unit-of-another-quantity", "no-unit", "value-in-the-other-unit", "unknown-analyte"],
)
def test_a_wrong_unit_through_the_api_is_a_400_and_writes_nothing(client, staff_a, lab_patient, result, word):
    client.force_login(staff_a)
    before = _written()

    response = client.post(
        reverse("patients-api:observation-list", args=[lab_patient.pk]),
        {**result, "effective_at": "2026-02-01T08:00:00Z"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert word in json.dumps(response.json())
    assert _written() == before


@pytest.mark.reliability(
    10,
    "The portal's panel form with glucose NaN, inf, -inf, 1e309, a 400-digit integer, -1, 1e308, text, empty or "
    "in a unit the form does not offer: the form comes back with the error next to glucose, nothing written",
)
@pytest.mark.parametrize(
    ("value", "unit", "message"),
    [
        ("NaN", "mmol/L", "Enter a number."),
        ("inf", "mmol/L", "Enter a number."),
        ("-inf", "mmol/L", "Enter a number."),
        ("1e309", "mmol/L", "Enter a number."),
        ("1" + "0" * 400, "mmol/L", "Enter a number."),
        ("-1", "mmol/L", "plausible range"),
        ("1e308", "mmol/L", "plausible range"),
        ("high", "mmol/L", "Enter a number."),
        ("", "mmol/L", "Enter at least one value."),
        ("5.5", "kg", "Select a valid choice."),
    ],
    ids=[
        "nan",
        "infinity",
        "minus-infinity",
        "overflow",
        "400-digit-integer",
        "negative",
        "huge",
        "text",
        "empty",
        "wrong-unit",
    ],  # fmt: skip
)
def test_an_impossible_value_in_the_panel_form_is_refused_and_writes_nothing(
    client, staff_a, lab_patient, value, unit, message
):
    client.force_login(staff_a)
    before = _written()

    response = client.post(
        reverse("patients:panel", args=[lab_patient.pk]) + "?panel=metabolic",
        {"effective_at": "2026-02-01T08:00", "glucose": value, "glucose__unit": unit},
    )

    assert response.status_code == 200
    form = response.context["form"]
    errors = form.errors.get("glucose", []) + form.errors.get("glucose__unit", []) + form.non_field_errors()
    assert any(message in error for error in errors), form.errors
    assert message in response.content.decode().replace("&#x27;", "'")
    assert _written() == before


CSV_VALUES = {
    "NaN": "is not a number",
    "Infinity": "is not a number",
    "-Infinity": "is not a number",
    "inf": "is not a number",
    "1e309": "is not a number",
    "1" + "0" * 400: "is not a number",
    "-1": "plausible range",
    "1e308": "plausible range",
    "high": "is not a number",
    "": "No value.",
}
_CSV_FILE = (
    "mrn,analyte,value,unit,date\nL-1,hemoglobin,14.0,g/dL,2026-02-01\n"
    + "".join(f"L-1,glucose,{value},mmol/L,2026-02-{day:02d}\n" for day, value in enumerate(CSV_VALUES, start=2))
    + "L-1,glucose,5.5,kg,2026-02-20\n"
)
_CSV_PROBLEMS = [*CSV_VALUES.values(), "cannot be given in kg"]


def _problems_named(problems: list[dict[str, Any]]) -> list[str]:
    """The expected problem of each bad row (rows 3 on), in order; row 2 is good."""
    assert [p["row"] for p in problems] == list(range(3, 3 + len(_CSV_PROBLEMS)))
    return [expected for p, expected in zip(problems, _CSV_PROBLEMS, strict=True) if expected not in p["reason"]]


@pytest.mark.hazard(
    "H11", "A CSV file with one good row and eleven bad ones: 400, each bad row named, no result written"
)
@pytest.mark.reliability(
    10,
    "A CSV file with one good row and rows whose value is NaN, Infinity, -Infinity, inf, 1e309, a 400-digit "
    "integer, -1, 1e308, text, empty or in kg, through the API: 400, each bad row named with its problem, no "
    "result written, one failure audit row",
)
def test_impossible_values_in_a_csv_file_through_the_api(client, staff_a, lab_patient):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(staff_a)
    before = Observation.objects.count()

    response = client.post(
        reverse("imports-api:labs"),
        {"file": SimpleUploadedFile("labs.csv", _CSV_FILE.encode(), content_type="text/csv")},
    )

    assert response.status_code == 400
    assert response.json()["refused"]
    assert response.json()["created"] == 0
    assert _problems_named(response.json()["problems"]) == []
    assert Observation.objects.count() == before
    assert list(AuditEvent.objects.filter(action="observation.import").values_list("outcome", flat=True)) == ["failure"]


@pytest.mark.reliability(
    10,
    "The same file through the portal: the preview lists every bad row and its problem, confirming it "
    "imports nothing and says why",
)
def test_impossible_values_in_a_csv_file_through_the_portal(client, staff_a, lab_patient, uploads_in_tmp):
    client.force_login(staff_a)
    before = Observation.objects.count()

    preview_url = _upload(client, "labs.csv", _CSV_FILE.encode()).url
    preview = client.get(preview_url)
    confirmed = client.post(preview_url + "confirm/", follow=True)

    problems = [{"row": p.row, "reason": p.reason} for p in preview.context["report"].problems]
    assert _problems_named(problems) == []
    assert "Nothing was imported" in confirmed.content.decode()
    assert Observation.objects.count() == before


@pytest.mark.reliability(
    10, "The same file through manage.py import_labs: refused with a non-zero exit, the report names each row"
)
def test_impossible_values_in_a_csv_file_through_the_command(clinic_a, lab_patient, tmp_path):
    import csv

    from django.core.management import CommandError, call_command

    path, report = tmp_path / "labs.csv", tmp_path / "problems.csv"
    path.write_text(_CSV_FILE)
    before = Observation.objects.count()

    with pytest.raises(CommandError, match="refused: nothing imported"):
        call_command("import_labs", str(path), "--clinic", clinic_a.slug, "--report", str(report))

    rows = list(csv.DictReader(report.open()))
    assert _problems_named([{"row": int(r["row"]), "reason": r["problem"]} for r in rows]) == []
    assert Observation.objects.count() == before


# --- case 11: malformed files -----------------------------------------------------------------------------------


def _counts() -> tuple[int, int, int]:
    from patients.models import Condition

    return Patient.objects.count(), Observation.objects.count(), Condition.objects.count()


def _bundle(*, patient: dict[str, Any] | None = None, quantity: Any = None, **observation: Any) -> bytes:
    """A collection Bundle of one Patient and one glucose Observation, with fields of either replaced."""
    resource = {"resourceType": "Patient", "id": "p1", "identifier": [{"value": "F-1"}],
                "name": [{"family": "Doe", "given": ["Jo"]}], "gender": "female", "birthDate": "1970-01-01",
                **(patient or {})}  # fmt: skip
    glucose = {
        "resourceType": "Observation", "id": "o1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]}, "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-01-01T08:00:00Z",
        "valueQuantity": {"value": 99, "unit": "mg/dL", "code": "mg/dL"} if quantity is None else quantity,
        **observation,
    }  # fmt: skip
    entries = [{"fullUrl": "urn:uuid:p1", "resource": resource}, {"resource": glucose}]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def _envelope(**changes: Any) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [], **changes}).encode()


# (file, a phrase the refusal must contain)
FHIR_FILES = {
    "truncated": (_bundle()[:-40], "not valid JSON"),
    "utf-16": (_bundle().decode().encode("utf-16"), "not UTF-8"),
    "latin-1": ('{"resourceType": "Bundle", "type": "collection", "id": "é"}'.encode("latin-1"), "not UTF-8"),
    "100k-nested-arrays": (b"[" * 100_000, "nested deeper than 64 levels"),
    "100k-nested-objects": (b'{"a":' * 100_000, "nested deeper than 64 levels"),
    "nested-then-closed": (b"[" * 5000 + b"]" * 5000, "nested deeper than 64 levels"),
    "an-array": (b"[1, 2]", "expected a FHIR resource"),
    "a-string": (b'"Bundle"', "expected a FHIR resource"),
    "a-number": (b"42", "expected a FHIR resource"),
    "null": (b"null", "expected a FHIR resource"),
    "empty": (b"  \n", "The file is empty"),
    "nan": (b'{"resourceType": "Bundle", "type": "collection", "total": NaN}', "NaN is not allowed"),
    "a-single-patient": (b'{"resourceType": "Patient"}', "not a single Patient resource"),
    "bundle-type-a-list": (_envelope(type=["collection"]), "cannot be imported"),
    "entry-an-object": (_envelope(entry={}), "must be a list"),
    "entry-of-strings": (_envelope(entry=["Patient/1"]), "expected an object"),
    "resource-a-list": (_envelope(entry=[{"resource": [1]}]), "expected a FHIR resource"),
    "resource-type-a-number": (_envelope(entry=[{"resource": {"resourceType": 5}}]), "has no resourceType"),
    "patient-name-a-string": (_bundle(patient={"name": "Doe"}), "name: Input should be a valid list"),
    "patient-mrn-a-number": (_bundle(patient={"identifier": [{"value": 5}]}), "should be a valid string"),
    "patient-birth-date-impossible": (_bundle(patient={"birthDate": "1970-13-45"}), "birthDate"),
    "patient-name-with-nul": (_bundle(patient={"name": [{"family": "Do\u0000e", "given": ["Jo"]}]}), "NUL"),
    "value-a-list": (_bundle(quantity=[99]), "valueQuantity"),
    "value-a-400-digit-integer": (_bundle(quantity={"value": 10**400, "unit": "mg/dL"}), "finite number"),
    "value-a-word": (_bundle(quantity={"value": "high", "unit": "mg/dL"}), "valueQuantity.value"),
    "unit-a-list": (_bundle(quantity={"value": 99, "unit": ["mg/dL"]}), "valueQuantity.unit"),
    "time-before-year-1-in-utc": (_bundle(effectiveDateTime="0001-01-01T00:00:00+14:00"), "outside the calendar"),
    "time-after-year-9999-in-utc": (_bundle(effectiveDateTime="9999-12-31T23:59:59-14:00"), "outside the calendar"),
    "subject-a-string": (_bundle(subject="Patient/p1"), "subject"),
}


@pytest.fixture
def importer(client, staff_a):
    client.force_login(staff_a)
    client.raise_request_exception = False  # a 500 fails the status assertion instead of raising
    return client


@pytest.mark.hazard(
    "H11", "A truncated, wrongly encoded, too deep or wrongly typed FHIR file: 400 with the reason, nothing written"
)
@pytest.mark.reliability(
    11,
    "POST /api/v1/fhir/import/ with a truncated, UTF-16 or Latin-1 file, 100,000 levels of [ or {, JSON that is "
    "not an object, NaN, a lone Patient, and Bundles with wrong types (entry an object, resource a list, name a "
    "string, value a list or a 400-digit integer, a time outside the calendar, a NUL in a name): 400 with the "
    "reason, no patient, result or condition written",
)
@pytest.mark.parametrize("file", list(FHIR_FILES))
def test_a_malformed_fhir_body_is_a_400_and_writes_nothing_when_strict(importer, file):
    data, phrase = FHIR_FILES[file]
    before = _counts()

    response = importer.post(reverse("fhir:import") + "?strict=true", data, content_type="application/fhir+json")

    assert response.status_code == 400, response.content[:300]
    assert phrase in " ".join(response.json()["non_field_errors"])
    assert _counts() == before
    assert not AuditEvent.objects.filter(action="fhir.import", outcome="success").exists()


@pytest.mark.hazard("H11", "A FHIR resource that cannot be read, without strict: skipped, named with its reason")
@pytest.mark.parametrize("file", list(FHIR_FILES))
def test_without_strict_a_malformed_resource_is_skipped_and_named_and_its_result_never_stored(importer, file):
    """A broken file is still refused whole; a broken resource in a readable file is skipped and listed, and the
    result it carries (or the results of the patient it is) is never stored, in part or in a guessed form."""
    data, phrase = FHIR_FILES[file]
    _, observations_before, _ = _counts()

    response = importer.post(reverse("fhir:import"), data, content_type="application/fhir+json")

    if response.status_code == 400:
        assert phrase in " ".join(response.json()["non_field_errors"])
    else:
        assert response.status_code == 200, response.content[:300]
        assert phrase in " ".join(response.json()["unreadable"])
    assert _counts()[1] == observations_before


def test_the_fhir_cases_above_are_accepted_when_the_file_is_well_formed(importer):
    """The malformed files are variations of this one, which imports: each refusal above is about its flaw."""
    response = importer.post(reverse("fhir:import"), _bundle(), content_type="application/fhir+json")

    assert response.status_code == 200
    assert _counts() == (1, 1, 0)


@pytest.mark.reliability(
    11,
    "A FHIR body and a multipart FHIR upload one byte over the 50 MB limit, and a CSV upload one byte over its "
    "10 MB limit (API and portal): refused with the limit named, nothing written",
)
def test_files_over_the_size_limits_are_refused(importer, staff_a, lab_patient, uploads_in_tmp):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from patients.fhir.reader import MAX_BYTES as FHIR_MAX
    from patients.imports.csv_labs import MAX_BYTES as CSV_MAX

    assert (FHIR_MAX, CSV_MAX) == (50 * 1024 * 1024, 10 * 1024 * 1024)  # as the README and the API docs say
    before = _counts()
    fhir = b" " * FHIR_MAX + b"{}"
    csv_data = b"mrn,analyte,value,unit,date\n" + b" " * CSV_MAX

    body = importer.post(reverse("fhir:import"), fhir, content_type="application/fhir+json")
    multipart = importer.post(reverse("fhir:import"), {"file": SimpleUploadedFile("big.json", fhir)})
    csv_api = importer.post(reverse("imports-api:labs"), {"file": SimpleUploadedFile("big.csv", csv_data)})
    csv_portal = _upload(importer, "big.csv", csv_data)

    assert (body.status_code, multipart.status_code, csv_api.status_code) == (400, 400, 400)
    assert "larger than 50 MB" in body.json()["non_field_errors"][0]
    assert "larger than 50 MB" in multipart.json()["non_field_errors"][0]
    assert "the limit is 10 MB" in csv_api.json()["file"][0]
    assert csv_portal.status_code == 200
    assert "the limit is 10 MB" in csv_portal.context["form"].errors["file"][0]
    assert _counts() == before


@pytest.mark.reliability(
    11, "A multipart FHIR upload that is truncated, UTF-16, 100,000 levels deep or not an object: 400, nothing written"
)
@pytest.mark.parametrize("file", ["truncated", "utf-16", "100k-nested-arrays", "an-array", "entry-of-strings"])
def test_a_malformed_fhir_upload_is_a_400_and_writes_nothing(importer, file):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data, phrase = FHIR_FILES[file]
    before = _counts()

    response = importer.post(reverse("fhir:import"), {"file": SimpleUploadedFile("bundle.json", data)})

    assert response.status_code == 400
    assert phrase in " ".join(response.json()["non_field_errors"])
    assert _counts() == before


@pytest.mark.hazard("H11", "manage.py import_fhir with malformed files: each refused with its reason, nothing written")
@pytest.mark.reliability(
    11,
    "manage.py import_fhir with a truncated, UTF-16, 100,000-level, non-object and wrongly typed file: each "
    "refused with its reason, the command exits non-zero, nothing written",
)
def test_malformed_files_through_the_import_fhir_command(clinic_a, tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command

    chosen = ["truncated", "utf-16", "100k-nested-arrays", "an-array", "value-a-400-digit-integer"]
    paths = []
    for name in chosen:
        path = tmp_path / f"{name}.json"
        path.write_bytes(FHIR_FILES[name][0])
        paths.append(str(path))
    errors = StringIO()
    before = _counts()

    with pytest.raises(CommandError, match="5 of 5 file"):
        call_command("import_fhir", *paths, "--clinic", clinic_a.slug, stderr=errors)

    for name in chosen:
        assert f"{name}.json: refused, nothing imported." in errors.getvalue()
        assert FHIR_FILES[name][1] in errors.getvalue()
    assert _counts() == before


def _json_writes() -> list[tuple[str, str, str]]:
    """(method, path, operation id) of every operation of the OpenAPI schema that takes a JSON body."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method, path, operation["operationId"])
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


@pytest.mark.reliability(
    11,
    "Every operation of the OpenAPI schema that takes a JSON body (patients, results, conditions, review "
    "decisions, the token, FHIR) sent 100,000 levels of [ or {: 400, never a RecursionError turned into a 500",
)
def test_deeply_nested_json_is_a_400_on_every_json_endpoint(client, two_clinics, doctor_a):
    from patients.models import Condition
    from recommendations.models import RecommendationItem

    patient = two_clinics[0][0]
    item = RecommendationItem.objects.filter(recommendation__patient=patient, status="pending").first()
    ids = {
        "/patients/{id}/": f"/patients/{patient.pk}/",
        "{patient_pk}": str(patient.pk),
        "/conditions/{id}/": f"/conditions/{Condition.objects.get(patient=patient).pk}/",
        "/recommendation-items/{id}/": f"/recommendation-items/{item.pk}/",
    }
    client.force_login(doctor_a)  # a doctor may make every one of these calls
    client.raise_request_exception = False
    writes, problems = _json_writes(), []
    for method, path, operation in writes:
        url = path
        for placeholder, value in ids.items():
            url = url.replace(placeholder, value)
        for body in (b"[" * 100_000, b'{"a":' * 100_000):
            response = getattr(client, method)(url, body, content_type="application/json")
            if response.status_code != 400:
                problems.append(f"{method.upper()} {url} ({operation}): {response.status_code}")
    assert {operation for _, _, operation in writes} >= {
        "v1_patients_create", "v1_patients_observations_create", "v1_recommendation_items_review_create",
        "v1_auth_token_create", "fhir_import",
    }  # fmt: skip
    assert problems == []


_BAD_CSV = {
    # file, a phrase of the refusal
    "truncated": (b'mrn,analyte,value,unit,date\nL-1,glucose,5,mmol/L,"2026-03', "not valid CSV"),
    "latin-1": ("mrn,analyte,value,unit,date\nL-1,glucose,5,mmol/L,2026-03-01,Müller\n".encode("latin-1"), "not UTF-8"),
    "utf-16": ("mrn,analyte,value,unit,date\nL-1,glucose,5,mmol/L,2026-03-01\n".encode("utf-16"), "UTF-16"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
    "empty": (b"\n \n", "The file is empty."),
    "header-only": (b"mrn,analyte,value,unit,date\n", "no data rows"),
    "no-mrn-column": (b"analyte,value,date\nglucose,5,2026-03-01\n", "no MRN column"),
    "no-time-column": (b"mrn,analyte,value\nL-1,glucose,5\n", "no date or time column"),
    "no-known-column": (b"mrn,date,mood\nL-1,2026-03-01,good\n", "No column names a known analyte"),
}


@pytest.mark.hazard(
    "H11", "A truncated, wrongly encoded, binary, empty or column-less CSV file: 400 with the reason, nothing written"
)
@pytest.mark.reliability(
    11,
    "CSV files truncated, Latin-1, UTF-16, binary, empty, header only, without MRN, time or analyte columns, "
    "through POST /api/v1/imports/labs/: 400 with the reason, no result written, one failure audit row",
)
@pytest.mark.parametrize("file", list(_BAD_CSV))
def test_a_malformed_csv_file_through_the_api(importer, lab_patient, file):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data, phrase = _BAD_CSV[file]
    before = _counts()

    response = importer.post(reverse("imports-api:labs"), {"file": SimpleUploadedFile("labs.csv", data)})

    assert response.status_code == 400
    assert response.json()["refused"]
    assert phrase in response.json()["error"]
    assert _counts() == before
    assert [e.outcome for e in AuditEvent.objects.filter(action="observation.import")] == ["failure"]


@pytest.mark.reliability(
    11,
    "The same CSV files through the portal upload: the preview names the reason, confirming imports nothing",
)
@pytest.mark.parametrize("file", list(_BAD_CSV))
def test_a_malformed_csv_file_through_the_portal(importer, lab_patient, uploads_in_tmp, file):
    data, phrase = _BAD_CSV[file]
    before = _counts()

    preview_url = _upload(importer, "labs.csv", data).url
    preview = importer.get(preview_url)
    confirmed = importer.post(preview_url + "confirm/", follow=True)

    assert phrase in preview.content.decode()
    assert phrase in confirmed.content.decode()
    assert _counts() == before


@pytest.mark.reliability(
    11, "The same CSV files through manage.py import_labs: refused with a non-zero exit and the reason"
)
@pytest.mark.parametrize("file", list(_BAD_CSV))
def test_a_malformed_csv_file_through_the_command(clinic_a, lab_patient, tmp_path, file):
    from io import StringIO

    from django.core.management import CommandError, call_command

    data, phrase = _BAD_CSV[file]
    path = tmp_path / "labs.csv"
    path.write_bytes(data)
    out = StringIO()
    before = _counts()

    with pytest.raises(CommandError, match="refused: nothing imported"):
        call_command("import_labs", str(path), "--clinic", clinic_a.slug, stdout=out)

    assert phrase in out.getvalue()
    assert _counts() == before
