import datetime
import importlib
import re
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.urls import reverse

from clinic.models import AuditEvent, Role
from clinic.testing import audit_write_queries, session_read_queries
from patients import dashboard
from patients.catalog_data import ANALYTES
from patients.charts import Point, trend_svg
from patients.clinical import Range, reference_range
from patients.dashboard import dashboard_caches_forget
from patients.models import Allergy, Condition, Medication, Observation, Patient, Sex, VerificationStatus
from patients.selectors import patient_search
from patients.services import (
    ObservationInput,
    condition_record,
    critical_results_acknowledge,
    medication_add,
    observation_amend,
    observations_record,
)
from patients.tests.factories import PatientFactory

WHEN = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.UTC)
XSS = "<script>alert(1)</script>"
SPECS = {spec.code: spec for spec in ANALYTES}
CLINICAL_ROLES = [Role.ADMIN, Role.DOCTOR, Role.STAFF]
OBJECT_PAGES = ["detail", "edit", "panel", "condition_add", "medication_add", "allergy_add"]
WRITE_PAGES = ["edit", "panel", "condition_add", "medication_add", "allergy_add"]


@pytest.fixture
def patient_a(clinic_a):
    return PatientFactory(clinic=clinic_a, given_name="Adam", family_name="Stone", mrn="A-100", sex=Sex.MALE)


@pytest.fixture
def own_record(clinic_a, patient_user_a):
    return PatientFactory(clinic=clinic_a, given_name="Pat", family_name="Own", mrn="P-1", user=patient_user_a)


def record(patient, by, when=WHEN, **values):
    """Enter results through the service; a value is a number in the canonical unit or a (number, unit) pair."""
    entries = [
        ObservationInput(code, *(value if isinstance(value, tuple) else (value, _canonical(code))))
        for code, value in values.items()
    ]
    return observations_record(patient=patient, by=by, entries=entries, effective_at=when)


def _canonical(code):
    return {
        "hemoglobin": "g/dL",
        "glucose": "mmol/L",
        "ldl": "mmol/L",
        "wbc": "10*9/L",
        "bmi": "kg/m2",
        "potassium": "mmol/L",
        "sodium": "mmol/L",
    }[code]


def page_url(name, patient=None):
    return reverse(f"patients:{name}", args=[patient.pk] if patient else [])


def names_on(response):
    return [patient.family_name for patient, _age in response.context["rows"]]


def field_block(html, field):
    """The markup crispy renders for one field, up to the next field."""
    start = html.index(f'id="div_id_{field}"')
    end = html.find('id="div_id_', start + 1)
    return html[start : end if end != -1 else len(html)]


# --- access --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["list", "create"])
def test_anonymous_visitors_are_sent_to_login_from_the_registry_pages(client, db, name):
    response = client.get(page_url(name))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", OBJECT_PAGES)
def test_anonymous_visitors_are_sent_to_login_from_patient_pages(client, patient_a, name):
    response = client.get(page_url(name, patient_a))

    assert response.status_code == 302


@pytest.mark.parametrize("role", CLINICAL_ROLES)
@pytest.mark.parametrize("name", ["list", "create"])
def test_clinical_roles_open_the_list_and_the_registration_form(client, users_by_role, role, name):
    client.force_login(users_by_role[role])

    assert client.get(page_url(name)).status_code == 200


@pytest.mark.parametrize("name", ["list", "create"])
def test_a_patient_account_is_forbidden_the_list_and_the_registration_form(client, patient_user_a, name):
    client.force_login(patient_user_a)

    assert client.get(page_url(name)).status_code == 403


@pytest.mark.parametrize("role", CLINICAL_ROLES)
@pytest.mark.parametrize("name", OBJECT_PAGES)
def test_clinical_roles_open_every_page_of_a_patient_of_their_clinic(client, users_by_role, patient_a, role, name):
    client.force_login(users_by_role[role])

    assert client.get(page_url(name, patient_a)).status_code == 200


@pytest.mark.parametrize("name", OBJECT_PAGES)
def test_a_patient_account_gets_404_for_another_patients_pages(client, patient_user_a, own_record, patient_a, name):
    client.force_login(patient_user_a)

    assert client.get(page_url(name, patient_a)).status_code == 404


@pytest.mark.parametrize("name", WRITE_PAGES)
def test_a_patient_account_cannot_open_the_forms_of_its_own_record(client, patient_user_a, own_record, name):
    client.force_login(patient_user_a)

    assert client.get(page_url(name, own_record)).status_code == 404
    assert client.post(page_url(name, own_record), {"name": "x"}).status_code == 404


def test_a_patient_account_reads_its_own_record_without_edit_buttons(client, patient_user_a, own_record):
    client.force_login(patient_user_a)

    response = client.get(page_url("detail", own_record))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Pat Own" in html
    assert page_url("edit", own_record) not in html
    assert page_url("panel", own_record) not in html
    assert page_url("condition_add", own_record) not in html


@pytest.mark.parametrize("name", OBJECT_PAGES)
def test_a_doctor_of_another_clinic_gets_404(client, doctor_b, patient_a, name):
    client.force_login(doctor_b)

    assert client.get(page_url(name, patient_a)).status_code == 404


@pytest.mark.parametrize("name", WRITE_PAGES)
def test_a_doctor_of_another_clinic_cannot_post_to_a_patients_forms(client, doctor_b, patient_a, name):
    client.force_login(doctor_b)

    assert client.post(page_url(name, patient_a), {"name": "x", "substance": "x"}).status_code == 404


def test_the_list_shows_only_the_users_clinic(client, doctor_b, patient_a):
    PatientFactory(clinic=doctor_b.clinic, family_name="Hillside")
    client.force_login(doctor_b)

    assert names_on(client.get(page_url("list"))) == ["Hillside"]


def test_clinical_roles_see_the_patients_entry_in_the_navigation(client, staff_a):
    client.force_login(staff_a)

    labels = [item["label"] for item in client.get(reverse("home")).context["navigation"]]

    assert "Patients" in labels


# --- list ----------------------------------------------------------------------------------------------------


@pytest.fixture
def registry(clinic_a, doctor_a):
    today = datetime.date.today()  # noqa: DTZ011 - ages are whole years, the time zone does not matter here
    young = PatientFactory(
        clinic=clinic_a,
        family_name="Young",
        given_name="Yara",
        mrn="Y-1",
        birth_date=today.replace(year=today.year - 25),
    )
    old = PatientFactory(
        clinic=clinic_a,
        family_name="Old",
        given_name="Otto",
        mrn="O-1",
        sex=Sex.MALE,
        birth_date=today.replace(year=today.year - 70),
    )
    middle = PatientFactory(
        clinic=clinic_a,
        family_name="Middle",
        given_name="Mia",
        mrn="M-1",
        birth_date=today.replace(year=today.year - 50),
    )
    record(old, doctor_a, glucose=8.0)
    record(middle, doctor_a, glucose=8.0)
    record(middle, doctor_a, when=WHEN + datetime.timedelta(days=1), glucose=5.0)  # latest is normal again
    condition_record(patient=young, by=doctor_a, code="E11.9", display="Type 2 diabetes")
    return {"young": young, "old": old, "middle": middle}


def test_the_list_is_sorted_by_name_by_default(client, doctor_a, registry):
    client.force_login(doctor_a)

    assert names_on(client.get(page_url("list"))) == ["Middle", "Old", "Young"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "yara"}, ["Young"]),
        ({"q": "Otto Old"}, ["Old"]),
        ({"q": "m-1"}, ["Middle"]),
        ({"sex": "male"}, ["Old"]),
        ({"age_band": "65+"}, ["Old"]),
        ({"age_band": "18-39"}, ["Young"]),
        ({"abnormal": "on"}, ["Old"]),
        ({"condition": "E11"}, ["Young"]),
        ({"ordering": "-name"}, ["Young", "Old", "Middle"]),
        ({"ordering": "birth_date"}, ["Old", "Middle", "Young"]),
        ({"sex": "nonsense", "ordering": "password"}, ["Middle", "Old", "Young"]),
        ({"q": "yara", "age_band": "ancient"}, ["Young"]),
    ],
)
def test_the_list_searches_filters_and_sorts(client, doctor_a, registry, params, expected):
    client.force_login(doctor_a)

    assert names_on(client.get(page_url("list"), params)) == expected


@pytest.mark.postgres
@pytest.mark.parametrize("query", ["ston", "A-100"])
def test_a_search_finds_its_patients_from_indexes_not_by_reading_every_patient(superuser, patient_a, query):
    """A name fragment anywhere in a name, or an MRN in any case: without indexes on exactly the expressions the
    search filters on, every search reads all of the clinic's patients (80 ms at 100,000)."""
    found = patient_search(user=superuser, query=query).order_by()
    with transaction.atomic(), connection.cursor() as cursor:
        # Table scans and whole-index walks ruled out: what is left is an index that answers the search's filter.
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
        plan = found.explain()

    assert list(found) == [patient_a]
    assert "Seq Scan" not in plan, plan
    # The MRN: the index of the case-insensitive unique constraint (patients 0010), on (UPPER(mrn), clinic).
    for index in ("patient_given_name_trgm", "patient_family_name_trgm", "patient_mrn_unique_in_clinic_any_case"):
        assert index in plan


@pytest.mark.postgres
def test_where_pg_trgm_cannot_be_created_the_search_is_left_unindexed_with_a_warning(db, caplog):
    """A database user without the right to create the extension: the migration warns and goes on (migrate does
    not stop), and the search works as before, unindexed. DDL is transactional: the test's rollback restores all."""
    migration = importlib.import_module("patients.migrations.0008_patient_search_indexes")
    role = f"clinic_no_extensions_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION pg_trgm CASCADE")  # and with it the two trigram indexes
        cursor.execute(f'DROP INDEX IF EXISTS "patient_mrn_upper"; CREATE ROLE "{role}"; SET LOCAL ROLE "{role}"')
        with connection.schema_editor() as editor:
            migration.install(None, editor)
        cursor.execute("RESET ROLE")
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", [list(migration.INDEXES)])
        created = cursor.fetchall()

    assert "Patient search left unindexed" in caplog.text
    assert created == []


def test_the_critical_filter_keeps_patients_whose_latest_value_is_in_a_critical_range(client, doctor_a, registry):
    record(registry["young"], doctor_a, potassium=7.0)  # critically high, still the latest
    record(registry["middle"], doctor_a, potassium=2.0)  # critically low, then back in range
    record(registry["middle"], doctor_a, when=WHEN + datetime.timedelta(days=1), potassium=4.0)
    client.force_login(doctor_a)

    response = client.get(page_url("list"), {"critical": "on"})

    assert names_on(response) == ["Young"]
    assert 'id="id_critical" checked' in response.content.decode()
    assert names_on(client.get(page_url("list"), {"abnormal": "on"})) == ["Old", "Young"]  # high counts there too


def test_the_list_shows_mrn_age_and_sex(client, doctor_a, registry):
    client.force_login(doctor_a)

    html = client.get(page_url("list"), {"q": "Otto"}).content.decode()

    assert "O-1" in html
    assert "<td>70</td>" in html
    assert "Male" in html


def table_rows(html):
    """Each row of the patient table as its cells' inner HTML."""
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_the_list_rows_link_each_patient_escape_what_was_typed_and_date_in_the_clinics_time_zone(
    client, doctor_a, clinic_a, settings
):
    clinic_a.time_zone = "Pacific/Auckland"  # UTC+13 on 1 March: registered at 23:30 UTC is the 2nd there
    clinic_a.save(update_fields=["time_zone"])
    patient = PatientFactory(
        clinic=clinic_a, family_name=XSS, given_name="Ann & Bo", mrn="M<1>", birth_date=datetime.date(1950, 1, 2),
        sex=Sex.MALE,
    )  # fmt: skip
    Patient.objects.filter(pk=patient.pk).update(created_at=datetime.datetime(2026, 3, 1, 23, 30, tzinfo=datetime.UTC))
    today = datetime.datetime.now(tz=datetime.UTC).astimezone(ZoneInfo("Pacific/Auckland")).date()
    age = today.year - 1950 - ((today.month, today.day) < (1, 2))
    client.force_login(doctor_a)

    html = client.get(page_url("list")).content.decode()
    empty = client.get(page_url("list"), {"q": "nobody by this name"}).content.decode()

    assert XSS not in html
    assert table_rows(html) == [[
        f'<a href="/patients/{patient.pk}/">&lt;script&gt;alert(1)&lt;/script&gt;, Ann &amp; Bo</a>',
        "<code>M&lt;1&gt;</code>", "1950-01-02", "2026-03-02", str(age), "Male", "",
    ]]  # fmt: skip
    assert table_rows(empty) == [["No patients match."]]


def test_the_list_pages_by_25_and_keeps_the_filters_in_the_page_links(client, doctor_a, clinic_a):
    PatientFactory.create_batch(30, clinic=clinic_a, family_name="Smith", sex=Sex.FEMALE)
    PatientFactory(clinic=clinic_a, family_name="Jones", sex=Sex.MALE)
    client.force_login(doctor_a)

    first = client.get(page_url("list"), {"sex": "female", "ordering": "-mrn"})
    second = client.get(page_url("list"), {"sex": "female", "ordering": "-mrn", "page": 2})

    assert len(first.context["rows"]) == 25
    assert len(second.context["rows"]) == 5
    assert 'href="?sex=female&amp;ordering=-mrn&amp;page=2"' in first.content.decode()
    assert first.context["rows"][0][0].mrn > second.context["rows"][0][0].mrn


def test_a_page_number_out_of_range_shows_the_last_page(client, doctor_a, registry):
    client.force_login(doctor_a)

    response = client.get(page_url("list"), {"page": 99})

    assert response.status_code == 200
    assert response.context["page"].number == 1


def test_each_list_page_view_writes_one_audit_row_with_its_filters(client, doctor_a, registry):
    client.force_login(doctor_a)

    client.get(page_url("list"), {"sex": "male"})

    [event] = AuditEvent.objects.filter(action="patient.list")
    assert event.actor == doctor_a
    assert event.detail["count"] == 1
    assert event.detail["filters"]["sex"] == "male"


def _patients_with_flagged_values(n, clinic, by):
    for patient in PatientFactory.create_batch(n, clinic=clinic, sex=Sex.FEMALE):
        record(patient, by, potassium=7.0, glucose=8.0)


def test_the_list_runs_the_same_queries_for_3_or_30_patients(client, doctor_a, clinic_a, django_assert_num_queries):
    client.force_login(doctor_a)
    _patients_with_flagged_values(3, clinic_a, doctor_a)
    filters = {"sex": "female", "ordering": "-name"}
    client.get(page_url("list"))  # warm up: the session records the first activity

    # the session (unless read from Redis), the user with their clinic, count, audit row, page, its flagged values
    queries = 4 + session_read_queries() + audit_write_queries()
    with django_assert_num_queries(queries):
        few = client.get(page_url("list"), filters)
    _patients_with_flagged_values(27, clinic_a, doctor_a)
    with django_assert_num_queries(queries):
        many = client.get(page_url("list"), filters)

    assert (len(few.context["rows"]), len(many.context["rows"])) == (3, 25)
    assert many.content.decode().count("Potassium 7.0 mmol/L critically high") == 25


def flagged_cells(html):
    return {re.sub(r"<[^>]+>", "", row[0]): row[-1] for row in table_rows(html)}


def test_the_list_names_each_patients_latest_abnormal_values_with_flags_as_words_critical_first(
    client, doctor_a, registry
):
    record(registry["young"], doctor_a, glucose=8.0, potassium=7.0)
    record(registry["young"], doctor_a, when=WHEN - datetime.timedelta(days=9), ldl=6.0)  # still its latest LDL
    client.force_login(doctor_a)

    html = client.get(page_url("list")).content.decode()

    cells = flagged_cells(html)
    assert cells["Young, Yara"] == (
        '<span class="text-danger fw-semibold">Potassium 7.0 mmol/L critically high</span>; '
        '<span class="text-warning-emphasis">Glucose (fasting) 8.0 mmol/L high</span>; '
        '<span class="text-warning-emphasis">LDL cholesterol 6.00 mmol/L high</span>'
    )
    assert cells["Middle, Mia"] == ""  # its high glucose is no longer the latest
    assert "Glucose (fasting) 8.0 mmol/L high" in cells["Old, Otto"]
    assert "Abnormal values</th>" in html


def test_the_list_names_three_values_and_counts_the_rest(client, doctor_a, registry):
    record(registry["old"], doctor_a, potassium=7.0, hemoglobin=5.0, wbc=30.0, ldl=6.0)
    client.force_login(doctor_a)

    cell = flagged_cells(client.get(page_url("list")).content.decode())["Old, Otto"]

    assert cell.count("<span") == 3
    assert cell.endswith(" and 2 more")


def test_the_critical_filter_says_which_values_are_critical(client, doctor_a, registry):
    record(registry["young"], doctor_a, glucose=8.0, potassium=(2.0, "mmol/L"))
    client.force_login(doctor_a)

    html = client.get(page_url("list"), {"critical": "on"}).content.decode()

    assert flagged_cells(html) == {
        "Young, Yara": '<span class="text-danger fw-semibold">Potassium 2.0 mmol/L critically low</span>'
    }
    assert "Critical values</th>" in html


def test_the_list_reads_final_values_only_a_withdrawn_one_neither_shown_nor_hiding_the_one_before(
    client, doctor_a, registry
):
    """The flagged cell's query is written out (`latest_flagged_values`): it must keep the rule of the default
    manager, final results only, both for the values shown and for the newer value that hides an older one."""
    later = WHEN + datetime.timedelta(days=1)
    withdrawn = record(registry["old"], doctor_a, when=later, potassium=7.0, glucose=5.0)  # over its glucose 8.0
    for observation in withdrawn:
        observation_amend(observation=observation, by=doctor_a, reason="another patient's results")
    client.force_login(doctor_a)

    cells = flagged_cells(client.get(page_url("list")).content.decode())

    assert cells["Old, Otto"] == '<span class="text-warning-emphasis">Glucose (fasting) 8.0 mmol/L high</span>'


# --- detail --------------------------------------------------------------------------------------------------


def test_the_detail_groups_latest_results_by_panel_with_units_ranges_and_flags(client, doctor_a, patient_a):
    record(patient_a, doctor_a, hemoglobin=15.0, wbc=12.5, glucose=(126, "mg/dL"), ldl=2.0)
    record(patient_a, doctor_a, when=WHEN - datetime.timedelta(days=30), hemoglobin=5.0)
    client.force_login(doctor_a)

    response = client.get(page_url("detail", patient_a))

    html = response.content.decode()
    panels = {panel["key"]: panel for panel in response.context["panels"]}
    assert list(panels) == ["cbc", "metabolic", "lipid"]
    hemoglobin = panels["cbc"]["rows"][0]
    men = reference_range(SPECS["hemoglobin"], Sex.MALE, 45)
    assert (hemoglobin.value, hemoglobin.flag) == ("15.0 g/dL", "N")
    assert hemoglobin.reference == f"{men.low:g}–{men.high:g} g/dL"
    assert "6.99 mmol/L" in html
    assert "(126 mg/dL)" in html
    assert f"≤ {reference_range(SPECS['ldl'], Sex.MALE, 45).high:g} mmol/L" in html
    assert '<span class="badge text-bg-warning" title="High">H</span>' in html
    assert '<span class="badge text-bg-success" title="Normal">N</span>' in html
    assert "decision support" in html


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        ({"hemoglobin": (125, "g/L")}, '12.5 g/dL <span class="text-body-secondary">(125 g/L)</span>'),
        ({"ldl": (160, "mg/dL")}, '4.14 mmol/L <span class="text-body-secondary">(160 mg/dL)</span>'),
        ({"hemoglobin": 12.5}, "12.5 g/dL</td>"),
    ],
)
def test_a_converted_value_keeps_three_significant_digits_next_to_what_was_entered(
    client, doctor_a, patient_a, values, shown
):
    record(patient_a, doctor_a, **values)
    client.force_login(doctor_a)

    assert shown in client.get(page_url("detail", patient_a)).content.decode()


@pytest.mark.parametrize(
    ("above_high", "shown", "flag"),
    [
        (0.18, "{high:.1f}", "H"),  # 79.18 against a high of 79: "79" would sit on the limit beside an H
        (0.0, "{high:.0f}", "N"),  # on the limit, inside the range
        (-0.4, "{high:.1f}", "N"),  # would round up onto the limit
        (-5.4, "{value:.0f}", "N"),  # nowhere near a limit: the analyte's own precision
    ],
)
def test_a_value_is_never_rounded_onto_a_limit_it_is_not_on(client, doctor_a, patient_a, above_high, shown, flag):
    high = reference_range(SPECS["diastolic_bp"], patient_a.sex, 45).high
    value = high + above_high
    record(patient_a, doctor_a, diastolic_bp=(value, SPECS["diastolic_bp"].unit))
    client.force_login(doctor_a)

    [row] = [row for panel in client.get(page_url("detail", patient_a)).context["panels"] for row in panel["rows"]]

    assert SPECS["diastolic_bp"].decimals == 0
    assert (row.value, row.flag) == (f"{shown.format(high=value, value=value)} mmHg", flag)


def test_units_are_shown_as_clinicians_write_them_not_as_ucum_codes(client, doctor_a, patient_a):
    record(patient_a, doctor_a, wbc=6.0, bmi=22.5, diastolic_bp=(72, "mm[Hg]"))
    client.force_login(doctor_a)

    html = client.get(page_url("detail", patient_a)).content.decode()

    for shown in ["6.0 ×10⁹/L", "22.5 kg/m²", "72 mmHg", f"{reference_range(SPECS['wbc'], Sex.MALE, 45).low:g}–"]:
        assert shown in html
    for code in ["10*9/L", "kg/m2", "mm[Hg]"]:
        assert code not in html


@pytest.mark.hazard("H1", "A haemoglobin below the critical low limit shows a red LL badge on the patient page")
def test_a_value_below_the_critical_limit_gets_a_red_badge(client, doctor_a, patient_a):
    record(patient_a, doctor_a, hemoglobin=5.0)
    client.force_login(doctor_a)

    html = client.get(page_url("detail", patient_a)).content.decode()

    assert '<span class="badge text-bg-danger" title="Critically low">LL</span>' in html


def test_a_value_without_an_adult_range_gets_a_grey_badge(client, doctor_a, clinic_a):
    child = PatientFactory(clinic=clinic_a, birth_date=datetime.date(2020, 1, 1))
    record(child, doctor_a, wbc=6.0)
    client.force_login(doctor_a)

    html = client.get(page_url("detail", child)).content.decode()

    assert '<span class="badge text-bg-secondary" title="no adult range">—</span>' in html


@pytest.mark.parametrize(("sex", "flag"), [(Sex.MALE, "L"), (Sex.FEMALE, "N")])
def test_hemoglobin_12_5_is_low_for_a_man_and_normal_for_a_woman(client, doctor_a, clinic_a, sex, flag):
    patient = PatientFactory(clinic=clinic_a, sex=sex)
    record(patient, doctor_a, hemoglobin=12.5)
    client.force_login(doctor_a)

    response = client.get(page_url("detail", patient))

    [row] = response.context["panels"][0]["rows"]
    assert row.flag == flag
    assert f'title="{row.flag_label}">{flag}</span>' in response.content.decode()


def test_the_detail_draws_a_trend_only_for_analytes_with_two_values(client, doctor_a, patient_a):
    record(patient_a, doctor_a, hemoglobin=12.0, wbc=6.0)
    record(patient_a, doctor_a, when=WHEN + datetime.timedelta(days=7), hemoglobin=14.0)
    client.force_login(doctor_a)

    html = client.get(page_url("detail", patient_a)).content.decode()

    assert html.count("<svg") == 1
    assert 'aria-label="Trend of Hemoglobin (g/dL)"' in html
    assert "2026-03-01" in html
    assert "2026-03-08" in html


def test_the_detail_lists_conditions_medications_allergies_and_lifestyle(client, doctor_a, patient_a):
    condition_record(patient=patient_a, by=doctor_a, code="D50.9", display="Iron deficiency anemia")
    medication_add(patient=patient_a, by=doctor_a, name="Ferrous sulfate", dose="200 mg daily")
    client.force_login(doctor_a)

    html = client.get(page_url("detail", patient_a)).content.decode()

    assert "Iron deficiency anemia" in html
    assert "Ferrous sulfate 200 mg daily" in html
    assert "Smoking" in html
    assert "Not asked" in html


def test_the_detail_shows_30_day_wearable_averages_only_from_the_last_30_days(client, doctor_a, patient_a):
    today = datetime.datetime.now(tz=datetime.UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for day, steps in [(1, 6000), (2, 8000), (45, 30000)]:  # the 45-day-old value is outside the window
        entries = [ObservationInput("steps", steps, "/d")]
        observations_record(
            patient=patient_a, by=doctor_a, entries=entries, effective_at=today - datetime.timedelta(days=day)
        )
    client.force_login(doctor_a)

    response = client.get(page_url("detail", patient_a))

    rows = {row["name"]: row["value"] for row in response.context["wearables"]}
    assert rows[SPECS["steps"].name].startswith("7,000")
    assert rows[SPECS["sleep_duration"].name] == "—"


def test_the_detail_hides_the_wearable_card_without_tracker_data(client, doctor_a, patient_a):
    client.force_login(doctor_a)

    response = client.get(page_url("detail", patient_a))

    assert response.context["wearables"] == []
    assert 'data-testid="wearables"' not in response.content.decode()


def test_the_detail_offers_the_fhir_bundle_download(client, doctor_a, patient_a):
    client.force_login(doctor_a)

    html = client.get(page_url("detail", patient_a)).content.decode()
    href = re.search(r'href="([^"]+)" data-testid="fhir-export"', html).group(1)
    download = client.get(href)

    assert download.status_code == 200
    assert download.json()["resourceType"] == "Bundle"
    assert "attachment" in download["Content-Disposition"]


def test_opening_a_record_writes_a_patient_view_audit_row(client, doctor_a, patient_a):
    client.force_login(doctor_a)

    client.get(page_url("detail", patient_a))

    assert AuditEvent.objects.filter(action="patient.view", patient_id=patient_a.pk, actor=doctor_a).count() == 1


def _fill_record(patient, by, n):
    for day in range(n):
        record(patient, by, when=WHEN - datetime.timedelta(days=day), hemoglobin=12 + day % 5 / 2, glucose=5 + day % 3)
    for i in range(n):
        condition_record(patient=patient, by=by, code="E11.9", display=f"Diabetes {i}")
        medication_add(patient=patient, by=by, name=f"Drug {i}")


def test_the_detail_runs_the_same_queries_for_3_or_30_results(client, doctor_a, clinic_a, django_assert_num_queries):
    few, many = PatientFactory(clinic=clinic_a), PatientFactory(clinic=clinic_a)
    _fill_record(few, doctor_a, 3)
    _fill_record(many, doctor_a, 30)
    client.force_login(doctor_a)
    client.get(page_url("detail", few))  # warm up: session activity and the analyte catalog

    # the session (unless read from Redis), the user with their clinic, patient, audit row, every result of the
    # patient in one query (the latest, the series with the wearable means, the preliminary, corrected and
    # withdrawn results, the critical values not yet acknowledged whatever their time: selectors.patient_results;
    # the clinicians who acknowledged or corrected one only when any did), conditions, medications, allergies, the
    # last 10 predictions with their model version (predictions.views.risk_card), the latest recommendation
    # (recommendations.views.advice_card; its items only when there is one; the flow view reuses both); and, every
    # few minutes per process, the clinic's medians for the radar (clinical roles)
    queries = 8 + session_read_queries() + audit_write_queries()
    with django_assert_num_queries(queries):
        client.get(page_url("detail", few))
    dashboard_caches_forget()
    with django_assert_num_queries(queries + 1):
        response = client.get(page_url("detail", many))
    assert len(response.context["conditions"]) == 30
    dashboard._local.clear()  # another process: it reads the medians the first one computed from the shared cache
    with django_assert_num_queries(queries):
        client.get(page_url("detail", few))


# --- panel entry ---------------------------------------------------------------------------------------------


def panel_post(client, patient, panel, when="2026-03-01T09:30", **values):
    data = {"effective_at": when}
    for code, (value, unit) in values.items():
        data[code], data[f"{code}__unit"] = value, unit
    return client.post(f"{page_url('panel', patient)}?panel={panel}", data)


def test_the_panel_form_offers_every_analyte_of_the_panel_with_the_canonical_unit_first(client, staff_a, patient_a):
    client.force_login(staff_a)

    form = client.get(page_url("panel", patient_a), {"panel": "metabolic"}).context["form"]

    assert "glucose" in form.fields
    assert "hemoglobin" not in form.fields
    assert [unit for unit, _label in form.fields["glucose__unit"].choices] == ["mmol/L", "mg/dL"]


def test_the_panel_form_shows_readable_unit_names(client, staff_a, patient_a):
    client.force_login(staff_a)

    html = client.get(page_url("panel", patient_a), {"panel": "vitals"}).content.decode()

    assert '<option value="[lb_av]">lb</option>' in html
    assert '<option value="mm[Hg]" selected>mmHg</option>' in html  # the canonical unit too


def test_a_panel_saved_is_not_laid_out_as_a_form_a_panel_refused_is(client, staff_a, patient_a, monkeypatch):
    """Building the form's layout (crispy rows for every analyte) was a quarter of result entry's CPU time: only a
    form that is drawn needs it."""
    from patients import forms

    layouts = []
    monkeypatch.setattr(forms, "Layout", _counting(forms.Layout, layouts))
    client.force_login(staff_a)

    saved = panel_post(client, patient_a, "metabolic", glucose=("5.4", "mmol/L"))
    assert saved.status_code == 302
    assert layouts == []

    refused = panel_post(client, patient_a, "metabolic", glucose=("5400", "mmol/L"))
    assert refused.status_code == 200
    assert len(layouts) == 1
    assert 'name="glucose__unit"' in refused.content.decode()


def _counting(layout, calls: list):
    def build(*rows):
        calls.append(rows)
        return layout(*rows)

    return build


def test_an_unknown_panel_is_404(client, staff_a, patient_a):
    client.force_login(staff_a)

    assert client.get(page_url("panel", patient_a), {"panel": "nope"}).status_code == 404


def test_a_glucose_in_mg_dl_is_stored_in_mmol_l_and_shown_in_both_units(client, staff_a, patient_a):
    client.force_login(staff_a)

    response = panel_post(client, patient_a, "metabolic", glucose=("126", "mg/dL"), sodium=("", "mmol/L"))

    assert response.status_code == 302
    [observation] = Observation.objects.filter(patient=patient_a)
    assert observation.value == pytest.approx(6.994, abs=0.001)
    assert (observation.entered_value, observation.entered_unit) == (126, "mg/dL")
    assert observation.entered_by == staff_a
    assert AuditEvent.objects.filter(action="observation.create", patient_id=patient_a.pk).count() == 1
    assert "6.99 mmol/L</span>" not in (html := client.get(response["Location"]).content.decode())
    assert "6.99 mmol/L <span" in html
    assert "(126 mg/dL)" in html


@pytest.mark.hazard(
    "H1", "A potassium of 6.24 mmol/L entered: called out after saving and in the red banner, the normal sodium not"
)
def test_a_critical_value_entered_is_called_out_after_saving_and_on_the_patient_page(client, staff_a, patient_a):
    client.force_login(staff_a)

    response = panel_post(client, patient_a, "metabolic", potassium=("6.24", "mmol/L"), sodium=("140", "mmol/L"))

    page = client.get(response["Location"])
    html = page.content.decode()
    assert [str(message) for message in page.context["messages"]] == [
        "2 new result(s) recorded.",
        "In a critical range: Potassium 6.24 mmol/L (critically high). Critical values need prompt clinical action.",
    ]
    banner = html.split('data-testid="critical-results"')[1].split("</div>")[0]
    assert "<strong>Potassium</strong> 6.24 mmol/L (critically high), 1 Mar 2026 09:30" in banner
    assert "Sodium" not in banner


def critical_banner(client, patient):
    html = client.get(page_url("detail", patient)).content.decode()
    return html.split('data-testid="critical-results"')[1].split("</div>")[0] if "critical-results" in html else ""


@pytest.mark.hazard(
    "H1", "The banner stays 'not yet acknowledged' until a doctor acknowledges; then it names the doctor and time"
)
def test_a_doctor_acknowledges_the_critical_results_and_the_banner_says_who_and_when(
    client, staff_a, doctor_a, patient_a
):
    record(patient_a, staff_a, potassium=7.0, sodium=(118, "mmol/L"))
    client.force_login(doctor_a)
    assert "not yet acknowledged" in critical_banner(client, patient_a)

    response = client.post(reverse("patients:critical_acknowledge", args=[patient_a.pk]), follow=True)

    assert [str(message) for message in response.context["messages"]] == [
        "Acknowledged: Potassium 7.0 mmol/L (critically high); Sodium 118 mmol/L (critically low)."
    ]
    banner = critical_banner(client, patient_a)
    assert banner.count(f"acknowledged by {doctor_a.get_full_name()}, ") == 2
    assert "not yet" not in banner
    assert "critical-acknowledge" not in banner
    assert set(Observation.objects.values_list("acknowledged_by", flat=True)) == {doctor_a.pk}
    event = AuditEvent.objects.get(action="observation.critical.acknowledge")
    assert (event.actor, event.patient_id) == (doctor_a, patient_a.pk)
    assert sorted(event.detail["observation_ids"]) == sorted(Observation.objects.values_list("pk", flat=True))
    again = client.post(reverse("patients:critical_acknowledge", args=[patient_a.pk]), follow=True)
    assert "No critical result was waiting" in str(list(again.context["messages"])[0])
    assert AuditEvent.objects.filter(action="observation.critical.acknowledge").count() == 1


def test_the_doctors_note_of_what_was_done_is_kept_with_the_acknowledgement_and_shown(
    client, staff_a, doctor_a, patient_a
):
    record(patient_a, staff_a, potassium=7.0)
    client.force_login(doctor_a)
    url = reverse("patients:critical_acknowledge", args=[patient_a.pk])

    too_long = client.post(url, {"note": "x" * 501}, follow=True)
    assert "Keep the note to 500 characters (it has 501): nothing was acknowledged." in too_long.content.decode()
    assert not Observation.objects.filter(acknowledged_at__isnull=False).exists()

    client.post(url, {"note": "  Patient called;\r\n repeat potassium at the ED <b>now</b>  "})

    observation = Observation.objects.get()
    assert observation.acknowledgement_note == "Patient called; repeat potassium at the ED <b>now</b>"
    banner = critical_banner(client, patient_a)
    assert f"acknowledged by {doctor_a.get_full_name()}, " in banner
    assert "“Patient called; repeat potassium at the ED &lt;b&gt;now&lt;/b&gt;”" in banner
    event = AuditEvent.objects.get(action="observation.critical.acknowledge")
    assert event.detail["note"] == observation.acknowledgement_note


@pytest.mark.hazard("H1", "Staff see the critical banner but cannot acknowledge it (403): only a doctor clears it")
def test_staff_see_the_critical_banner_but_only_a_doctor_acknowledges(client, staff_a, patient_a):
    record(patient_a, staff_a, potassium=7.0)
    client.force_login(staff_a)

    banner = critical_banner(client, patient_a)
    response = client.post(reverse("patients:critical_acknowledge", args=[patient_a.pk]))

    assert "not yet acknowledged" in banner
    assert "critical-acknowledge" not in banner  # no button
    assert response.status_code == 403
    assert not Observation.objects.filter(acknowledged_at__isnull=False).exists()


@pytest.mark.hazard(
    "H1", "A critical potassium imported with an earlier time than a normal one still heads the page until acknowledged"
)
def test_a_critical_value_older_than_a_normal_one_of_the_same_test_is_called_out_until_a_doctor_acknowledges_it(
    client, staff_a, doctor_a, patient_a
):
    record(patient_a, staff_a, when=WHEN + datetime.timedelta(days=1), potassium=4.5)
    record(patient_a, staff_a, when=WHEN, potassium=7.0)  # imported afterwards, taken a day before
    client.force_login(doctor_a)

    banner = critical_banner(client, patient_a)

    assert "<strong>Potassium</strong> 7.0 mmol/L (critically high), 1 Mar 2026 09:30" in banner
    assert "<strong>not yet acknowledged</strong> · a later result: 4.5 mmol/L (normal), 2 Mar 2026 09:30" in banner
    assert "critical-acknowledge" in banner  # the doctor's button
    page = client.get(reverse("patients:detail", args=[patient_a.pk]))
    assert (page.context["flow"]["abnormal"], page.context["flow"]["critical_waiting"]) == (0, 1)
    assert "1 critical value not yet acknowledged" in page.content.decode()  # step 1 is never only "all in range"
    client.post(reverse("patients:critical_acknowledge", args=[patient_a.pk]))
    assert critical_banner(client, patient_a) == ""  # taken on, and the latest potassium is normal
    assert client.get(reverse("patients:detail", args=[patient_a.pk])).context["flow"]["critical_waiting"] == 0


def test_the_banner_lists_the_most_severe_waiting_value_first_then_the_latest_acknowledged_ones(
    client, staff_a, doctor_a, patient_a
):
    record(patient_a, staff_a, when=WHEN, hemoglobin=6.0)  # critically low (limit 7 g/dL)
    critical_results_acknowledge(patient=patient_a, by=doctor_a)
    record(patient_a, staff_a, when=WHEN + datetime.timedelta(hours=1), sodium=(119, "mmol/L"))  # just past 120
    record(patient_a, staff_a, when=WHEN - datetime.timedelta(hours=1), potassium=7.5)  # far past 6.2, older
    client.force_login(staff_a)

    items = re.findall(r"<li><strong>(\w+)</strong>.*?</li>", critical_banner(client, patient_a))

    assert items == ["Potassium", "Sodium", "Hemoglobin"]


def test_no_critical_call_out_once_acknowledged_and_back_in_range_nor_for_a_patients_own_account(
    client, staff_a, doctor_a, patient_a, own_record, patient_user_a
):
    client.force_login(staff_a)
    client.get(panel_post(client, patient_a, "metabolic", potassium=("7.0", "mmol/L"))["Location"])
    critical_results_acknowledge(patient=patient_a, by=doctor_a)
    response = panel_post(client, patient_a, "metabolic", when="2026-03-02T09:30", potassium=("4.5", "mmol/L"))

    page = client.get(response["Location"])
    assert [str(message) for message in page.context["messages"]] == ["1 new result(s) recorded."]
    assert 'data-testid="critical-results"' not in page.content.decode()

    record(own_record, staff_a, potassium=7.0)
    client.force_login(patient_user_a)
    own_page = client.get(page_url("detail", own_record))
    assert own_page.status_code == 200
    assert 'data-testid="critical-results"' not in own_page.content.decode()


def test_an_impossible_value_is_explained_next_to_its_field_and_nothing_is_saved(client, staff_a, patient_a):
    client.force_login(staff_a)

    response = panel_post(client, patient_a, "cbc", hemoglobin=("180", "g/dL"), wbc=("6.1", "10*9/L"))

    html = response.content.decode()
    message = "Hemoglobin 180 g/dL is outside the plausible range 1-25 g/dL. Did you mean g/L?"
    assert response.status_code == 200
    assert message in field_block(html, "hemoglobin")
    assert message not in field_block(html, "wbc")
    assert not Observation.objects.exists()
    assert not AuditEvent.objects.filter(action="observation.create").exists()


def test_a_panel_with_no_values_asks_for_one(client, staff_a, patient_a):
    client.force_login(staff_a)

    response = panel_post(client, patient_a, "lipid")

    assert "Enter at least one value." in response.content.decode()


def test_results_dated_in_the_future_are_refused_next_to_the_date(client, staff_a, patient_a):
    client.force_login(staff_a)

    response = panel_post(client, patient_a, "cbc", when="2999-01-01T10:00", hemoglobin=("14", "g/dL"))

    assert "Results cannot be dated in the future." in field_block(response.content.decode(), "effective_at")
    assert not Observation.objects.exists()


# --- registration, edit, conditions, medications, allergies ---------------------------------------------------

PATIENT_POST = {
    "mrn": "N-1",
    "given_name": "Nora",
    "family_name": "Vance",
    "birth_date": "1975-04-02",
    "sex": "female",
    "smoking": "never",
    "alcohol": "unknown",
    "physical_activity": "active",
    "diet": "unknown",
    "family_history_diabetes": "true",
    "family_history_cardiovascular": "unknown",
    "family_history_anemia": "unknown",
}


def test_staff_register_a_patient_and_it_is_audited(client, staff_a):
    client.force_login(staff_a)

    response = client.post(page_url("create"), PATIENT_POST)

    patient = Patient.objects.get(mrn="N-1")
    assert response["Location"] == page_url("detail", patient)
    assert (patient.clinic, patient.family_history_diabetes, patient.smoking) == (staff_a.clinic, True, "never")
    assert AuditEvent.objects.filter(action="patient.create", patient_id=patient.pk, actor=staff_a).exists()


def test_a_duplicate_mrn_is_refused_on_the_form(client, staff_a, patient_a):
    client.force_login(staff_a)

    response = client.post(page_url("create"), {**PATIENT_POST, "mrn": patient_a.mrn})

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Patient.objects.count() == 1


def test_editing_lifestyle_and_family_history_is_audited_with_the_changed_fields(client, doctor_a, patient_a):
    client.force_login(doctor_a)
    form = client.get(page_url("edit", patient_a)).context["form"]
    data = {name: "" if value is None else value for name, value in form.initial.items()}

    response = client.post(
        page_url("edit", patient_a), {**data, "smoking": "current", "family_history_anemia": "false"}
    )

    patient_a.refresh_from_db()
    assert response.status_code == 302
    assert (patient_a.smoking, patient_a.family_history_anemia) == ("current", False)
    [event] = AuditEvent.objects.filter(action="patient.update")
    assert event.detail["changed"] == ["family_history_anemia", "smoking"]


def test_the_edit_form_shows_errors_next_to_the_field(client, doctor_a, patient_a):
    client.force_login(doctor_a)

    response = client.post(page_url("edit", patient_a), {**PATIENT_POST, "birth_date": "not a date"})

    assert "Enter a valid date." in field_block(response.content.decode(), "birth_date")


def test_a_doctor_confirms_a_diagnosis(client, doctor_a, patient_a):
    client.force_login(doctor_a)

    client.post(
        page_url("condition_add", patient_a),
        {
            "code": "e11.9",
            "display": "Type 2 diabetes",
            "clinical_status": "active",
            "verification_status": "confirmed",
        },
    )

    condition = Condition.objects.get(patient=patient_a)
    assert (condition.code, condition.verification_status) == ("E11.9", VerificationStatus.CONFIRMED)
    assert AuditEvent.objects.filter(action="condition.create", patient_id=patient_a.pk).exists()


def test_staff_cannot_confirm_a_diagnosis_and_see_why_next_to_the_field(client, staff_a, patient_a):
    client.force_login(staff_a)
    data = {"code": "E11.9", "display": "Type 2 diabetes", "clinical_status": "active"}

    refused = client.post(page_url("condition_add", patient_a), {**data, "verification_status": "confirmed"})
    assert not Condition.objects.exists()
    client.post(page_url("condition_add", patient_a), {**data, "verification_status": "provisional"})

    assert "Only a doctor can confirm a diagnosis." in field_block(refused.content.decode(), "verification_status")
    assert Condition.objects.get().verification_status == VerificationStatus.PROVISIONAL


def test_a_malformed_icd10_code_is_refused_on_the_form(client, doctor_a, patient_a):
    client.force_login(doctor_a)

    response = client.post(
        page_url("condition_add", patient_a),
        {"code": "diabetes", "display": "x", "clinical_status": "active", "verification_status": "provisional"},
    )

    assert "Enter an ICD-10 code" in field_block(response.content.decode(), "code")


def test_staff_add_a_medication_and_an_allergy(client, staff_a, patient_a):
    client.force_login(staff_a)

    client.post(page_url("medication_add", patient_a), {"name": "Metformin", "dose": "500 mg", "started_on": ""})
    client.post(page_url("allergy_add", patient_a), {"substance": "Penicillin", "reaction": "Rash", "severity": "mild"})

    assert Medication.objects.get(patient=patient_a).recorded_by == staff_a
    assert Allergy.objects.get(patient=patient_a).severity == "mild"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"medication.create", "allergy.create"} <= actions
    html = client.get(page_url("detail", patient_a)).content.decode()
    assert "Metformin 500 mg" in html
    assert "Penicillin: Rash" in html


# --- escaping ------------------------------------------------------------------------------------------------


def test_a_script_in_a_patients_name_is_escaped_on_the_list_the_detail_and_the_chart(client, doctor_a, clinic_a):
    patient = PatientFactory(clinic=clinic_a, given_name=XSS, family_name=XSS, address=XSS)
    record(patient, doctor_a, hemoglobin=13.0)
    record(patient, doctor_a, when=WHEN + datetime.timedelta(days=1), hemoglobin=14.0)
    client.force_login(doctor_a)

    listing = client.get(page_url("list")).content.decode()
    detail = client.get(page_url("detail", patient)).content.decode()

    svg = re.search(r"<svg.*?</svg>", detail, re.DOTALL).group(0)
    for html in (listing, detail, svg):
        assert XSS not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_trend_chart_escapes_every_text_it_is_given():
    points = [Point(WHEN, 1.0, "N"), Point(WHEN + datetime.timedelta(days=1), 2.0, '"><b>')]

    svg = trend_svg(title=XSS, unit="<u>", points=points, band=Range(0.5, None), description=XSS)

    assert "<script>" not in svg
    assert "<u>" not in svg
    assert "<b>" not in svg
    assert svg.count("<circle") == 2


def test_a_trend_chart_shades_the_reference_band_and_colors_points_by_flag():
    points = [Point(WHEN, 10.0, "L"), Point(WHEN + datetime.timedelta(days=3), 14.0, "N")]

    svg = trend_svg(title="Hemoglobin", unit="g/dL", points=points, band=Range(12.0, 15.5))

    assert 'class="trend-band"' in svg
    assert 'fill="#d39e00" data-flag="L"' in svg
    assert 'fill="#198754" data-flag="N"' in svg


def test_a_trend_without_a_reference_range_or_a_time_span_still_draws():
    points = [Point(WHEN, 70.0, ""), Point(WHEN, 70.0, "")]

    svg = trend_svg(title="Body weight", unit="kg", points=points, band=None)

    assert "trend-band" not in svg
    assert 'fill="#6c757d"' in svg


def test_a_trend_needs_two_values():
    with pytest.raises(ValueError, match="two values"):
        trend_svg(title="Hemoglobin", unit="g/dL", points=[Point(WHEN, 10.0, "L")], band=None)


def test_the_filter_form_shows_what_was_asked_and_says_what_it_ignored(client, doctor_a, registry):
    client.force_login(doctor_a)

    html = client.get(page_url("list"), {"q": "<b>yara", "sex": "male", "age_band": "ancient", "abnormal": "on"})

    page = html.content.decode()
    assert 'value="&lt;b&gt;yara"' in page
    assert '<option value="male" selected>Male</option>' in page
    assert '<option value="">Any age</option>' in page
    assert "selected>Any age" not in page
    assert 'class="form-select is-invalid" id="id_age_band"' in page
    assert "Select a valid choice. ancient is not one of the available choices." in page
    assert 'id="id_abnormal" checked' in page
    assert "is-invalid" not in client.get(page_url("list")).content.decode()


@pytest.mark.hazard("H4", "A three-year-old LDL on the patient page is marked out of date; a recent HbA1c is not")
def test_a_result_older_than_its_window_is_marked_out_of_date_on_the_patient_page(client, staff_a, patient_a):
    now = datetime.datetime.now(tz=datetime.UTC).replace(microsecond=0)
    record(patient_a, staff_a, when=now - datetime.timedelta(days=3 * 365), ldl=(187.8, "mg/dL"))
    record(patient_a, staff_a, when=now - datetime.timedelta(days=30), hba1c=(6.0, "%"))
    client.force_login(staff_a)

    html = client.get(page_url("detail", patient_a)).content.decode()

    lipid = html.split('data-testid="panel-lipid"')[1].split("</section>")[0]
    metabolic = html.split('data-testid="panel-metabolic"')[1].split("</section>")[0]
    assert 'data-testid="out-of-date"' in lipid
    assert "older than 365 days (2018 AHA/ACC cholesterol guideline" in lipid
    assert 'data-testid="out-of-date"' not in metabolic
