"""The patient's own results page and the printable report: who reaches them, what they show, what is audited."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from clinic.models import AuditEvent, Role
from patients.models import Sex
from patients.services import ObservationInput, critical_results_acknowledge, observations_record
from patients.tests.factories import PatientFactory
from recommendations.generation import recommendations_generate
from recommendations.services import item_approve
from recommendations.tests.factories import prediction_for

TAKEN = timezone.now() - datetime.timedelta(days=3)


@pytest.fixture
def own_record(clinic_a, patient_user_a):
    return PatientFactory(
        clinic=clinic_a, given_name="Pat", family_name="Own", mrn="P-1", sex=Sex.FEMALE, user=patient_user_a,
        birth_date=datetime.date(1980, 5, 17),
    )  # fmt: skip


@pytest.fixture
def patient_a(clinic_a):
    return PatientFactory(clinic=clinic_a, given_name="Adam", family_name="Stone", mrn="A-100", sex=Sex.MALE)


def record(patient, by, **values):
    entries = [ObservationInput(code, value, unit) for code, (value, unit) in values.items()]
    return observations_record(patient=patient, by=by, entries=entries, effective_at=TAKEN)


def approved_advice(patient, doctor):
    prediction = prediction_for(patient, hba1c=7.3, ldl=4.4, bmi=31.0, risk_level="high",
                                probabilities={"healthy": 0.2, "diabetes": 0.7, "dyslipidemia": 0.1})  # fmt: skip
    [rec] = recommendations_generate(predictions=[prediction], clinic_id=patient.clinic_id)
    items = list(rec.items.order_by("position"))
    approved = item_approve(item=items[1], by=doctor, patient_text="Please book a visit about your sugar results.")
    return approved, items[2]  # the second left pending


# --- access ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mine", "my_report"])
def test_anonymous_visitors_are_sent_to_login_from_the_patients_own_pages(client, db, name):
    response = client.get(reverse(f"patients:{name}"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DOCTOR, Role.STAFF])
@pytest.mark.parametrize("name", ["mine", "my_report"])
def test_the_patients_own_pages_are_not_for_the_clinics_staff(client, users_by_role, role, name):
    client.force_login(users_by_role[role])

    assert client.get(reverse(f"patients:{name}")).status_code == 404


@pytest.mark.parametrize("name", ["mine", "my_report"])
def test_a_patient_account_with_no_record_linked_gets_404(client, patient_user_a, name):
    client.force_login(patient_user_a)

    assert client.get(reverse(f"patients:{name}")).status_code == 404


def test_a_patient_reads_their_own_report_and_gets_404_for_another_patients(
    client, patient_user_a, own_record, patient_a
):
    client.force_login(patient_user_a)

    assert client.get(reverse("patients:report", args=[own_record.pk])).status_code == 200
    assert client.get(reverse("patients:report", args=[patient_a.pk])).status_code == 404


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DOCTOR, Role.STAFF])
def test_the_clinics_staff_print_the_report_of_a_patient_of_their_clinic(client, users_by_role, patient_a, role):
    client.force_login(users_by_role[role])

    response = client.get(reverse("patients:report", args=[patient_a.pk]))

    assert response.status_code == 200
    assert "Adam Stone" in response.content.decode()


def test_a_doctor_of_another_clinic_gets_404_for_the_report(client, doctor_b, patient_a):
    client.force_login(doctor_b)

    assert client.get(reverse("patients:report", args=[patient_a.pk])).status_code == 404
    assert not AuditEvent.objects.filter(action="patient.report").exists()


def test_the_staff_patient_page_links_to_the_printable_report(client, staff_a, patient_a):
    client.force_login(staff_a)

    html = client.get(reverse("patients:detail", args=[patient_a.pk])).content.decode()

    assert reverse("patients:report", args=[patient_a.pk]) in html


# --- what the patient reads --------------------------------------------------------------------------------------


def test_the_patient_reads_each_result_in_plain_words_with_its_flag_as_words(
    client, staff_a, patient_user_a, own_record
):
    record(own_record, staff_a, mchc=(30.1, "g/dL"), hemoglobin=(13.0, "g/dL"), ldl=(4.4, "mmol/L"))
    client.force_login(patient_user_a)

    response = client.get(reverse("patients:mine"))

    html = response.content.decode()
    rows = {row.code: row for panel in response.context["panels"] for row in panel["rows"]}
    assert response.status_code == 200
    assert rows["mchc"].name == "How concentrated hemoglobin is in red cells (MCHC)"
    assert rows["mchc"].flag_words == "Below the usual range"
    assert rows["hemoglobin"].flag_words == "Within the usual range"
    assert rows["ldl"].flag_words == "Above the usual range"
    assert rows["ldl"].usual_range == "3.36 mmol/L or less"
    assert "What this test measures:" in html
    assert "What your value means:" in html
    assert "Below the usual range" in html
    assert "Above the usual range" in html
    assert ">L<" not in html
    assert ">H<" not in html


def test_units_are_written_as_clinicians_write_them(client, staff_a, patient_user_a, own_record):
    record(own_record, staff_a, creatinine=(70, "umol/L"), wbc=(6.1, "10*9/L"))
    client.force_login(patient_user_a)

    html = client.get(reverse("patients:mine")).content.decode()

    assert "70 µmol/L" in html
    assert "6.1 ×10⁹/L" in html
    assert "umol/L" not in html
    assert "10*9/L" not in html


def test_a_critical_value_says_the_clinic_sees_it_as_urgent_and_when_a_doctor_saw_it(
    client, staff_a, doctor_a, patient_user_a, own_record
):
    record(own_record, staff_a, potassium=(7.0, "mmol/L"))
    client.force_login(patient_user_a)
    before = client.get(reverse("patients:mine")).content.decode()

    critical_results_acknowledge(patient=own_record, by=doctor_a, note="Called the patient in.")
    after = client.get(reverse("patients:mine")).content.decode()

    assert "Far outside the usual range: flagged to your clinic as urgent" in before
    assert 'data-testid="urgent-results"' in before
    assert 'data-testid="seen-by-doctor"' not in before
    assert "A doctor at your clinic saw this result on" in after
    assert "Called the patient in." not in after  # the doctor's note is for the team


def test_the_patients_own_record_page_is_the_plain_results_page(client, patient_user_a, own_record):
    client.force_login(patient_user_a)

    response = client.get(reverse("patients:detail", args=[own_record.pk]))

    assert response.status_code == 200
    assert [t.name for t in response.templates][0] == "patients/my_results.html"


def test_reading_the_results_page_writes_one_patient_view_row(client, patient_user_a, own_record):
    client.force_login(patient_user_a)

    client.get(reverse("patients:mine"))

    rows = AuditEvent.objects.filter(patient_id=own_record.pk)
    assert [(row.action, row.actor_id) for row in rows] == [("patient.view", patient_user_a.pk)]


def test_the_results_page_leaves_a_place_to_contact_the_clinic(client, patient_user_a, own_record):
    client.force_login(patient_user_a)

    for name in ("patients:mine", "recommendations:mine"):
        assert 'data-testid="contact-clinic"' in client.get(reverse(name)).content.decode(), name


# --- the report --------------------------------------------------------------------------------------------------


def test_the_report_holds_the_record_the_latest_results_and_only_the_approved_advice(
    client, staff_a, doctor_a, patient_user_a, own_record
):
    record(own_record, staff_a, hba1c=(7.3, "%"))
    approved, pending = approved_advice(own_record, doctor_a)
    client.force_login(patient_user_a)

    response = client.get(reverse("patients:my_report"))

    html = response.content.decode()
    assert "Pat Own" in html
    assert "17 May 1980" in html
    assert "Riverside Clinic" in html
    assert "Average blood sugar over 2 to 3 months (HbA1c)" in html
    assert "4 to 5.6 %" in html
    assert "Above the usual range" in html
    assert f"{timezone.localtime(TAKEN):%-d %B %Y}</td>" in html
    assert "Please book a visit about your sugar results." in html
    assert pending.patient_text not in html
    assert "Decision support reviewed by your doctor." in html
    assert f'Printed</dt><dd data-testid="printed">{timezone.localtime():%-d %B %Y}' in html


def test_printing_the_report_writes_one_audit_row_naming_the_patient_and_the_advice_printed(
    client, staff_a, doctor_a, own_record
):
    approved, _pending = approved_advice(own_record, doctor_a)
    client.force_login(staff_a)

    client.get(reverse("patients:report", args=[own_record.pk]))

    [row] = AuditEvent.objects.filter(action="patient.report")
    assert (row.actor_id, row.patient_id) == (staff_a.pk, own_record.pk)
    assert row.detail == {"advice_items": [approved.pk]}


def test_the_report_loads_its_print_button_script_from_a_file(client, patient_user_a, own_record):
    client.force_login(patient_user_a)

    html = client.get(reverse("patients:my_report")).content.decode()

    assert 'src="/static/js/print.js"' in html
    assert "onclick" not in html
    assert "css/print.css" in html


@pytest.mark.parametrize("name", ["mine", "my_report"])
def test_the_patients_pages_read_as_many_queries_for_thirty_results_as_for_two(
    client, staff_a, patient_user_a, own_record, django_assert_max_num_queries, name
):
    client.force_login(patient_user_a)
    record(own_record, staff_a, hemoglobin=(13.0, "g/dL"), ldl=(3.0, "mmol/L"))
    with CaptureQueriesContext(connection) as few:
        client.get(reverse(f"patients:{name}"))
    many = {"wbc": (6, "10*9/L"), "platelets": (250, "10*9/L"), "mcv": (90, "fL"), "mch": (30, "pg"),
            "sodium": (140, "mmol/L"), "potassium": (4.2, "mmol/L"), "creatinine": (80, "umol/L"),
            "alt": (20, "U/L"), "ast": (22, "U/L"), "albumin": (40, "g/L"), "crp": (2, "mg/L"),
            "ferritin": (80, "ug/L"), "iron": (15, "umol/L"), "hdl": (1.5, "mmol/L"), "triglycerides": (1, "mmol/L"),
            "total_cholesterol": (4.5, "mmol/L"), "hba1c": (5.2, "%"), "glucose": (5, "mmol/L"), "bmi": (23, "kg/m2"),
            "heart_rate": (70, "/min"), "systolic_bp": (118, "mm[Hg]"), "diastolic_bp": (75, "mm[Hg]"),
            "calcium": (2.3, "mmol/L"), "chloride": (100, "mmol/L"), "magnesium": (0.8, "mmol/L"),
            "phosphate": (1.1, "mmol/L"), "urea": (5, "mmol/L"), "inr": (1, "{INR}")}  # fmt: skip
    record(own_record, staff_a, **many)

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(reverse(f"patients:{name}"))

    assert sum(len(panel["rows"]) for panel in response.context["panels"]) == 30
