import csv
import datetime
import io
from dataclasses import asdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from clinic.models import AuditEvent, AuditOutcome
from patients.catalog import Catalog, catalog
from patients.catalog_data import ANALYTES
from patients.clinical import unit_resolve
from patients.imports import csv_labs, forms
from patients.imports.services import labs_import
from patients.models import Observation, ObservationSource, Sex
from patients.selectors import observation_series, wearable_averages
from patients.tests.factories import PatientFactory

DATA = Path(__file__).parent / "data"
ACCEPTANCE = (DATA / "acceptance_long.csv").read_bytes()
WEARABLE = (DATA / "wearable_one_patient.csv").read_bytes()
UPLOAD_URL = "/patients/import/"
API_URL = "/api/v1/imports/labs/"


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.VAR_DIR = tmp_path


@pytest.fixture
def ann(clinic_a):
    return PatientFactory(clinic=clinic_a, mrn="A-100", sex=Sex.FEMALE)


@pytest.fixture
def bob(clinic_a):
    return PatientFactory(clinic=clinic_a, mrn="A-101", sex=Sex.MALE)


def run(clinic, data: bytes | str, by=None, **options):
    data = data.encode() if isinstance(data, str) else data
    return labs_import(by=by, clinic=clinic, data=data, filename="results.csv", **options)


def rows_of(report) -> list[int | None]:
    return sorted({problem.row for problem in report.problems}, key=lambda row: row or 0)


# --- Reading, without a database ---------------------------------------------------------------------------


def static_catalog() -> Catalog:
    by_name: dict = {}
    for spec in ANALYTES:
        for name in (spec.code, spec.name, *spec.aliases):
            by_name.setdefault(name.lower(), spec)
    by_loinc = {code: spec for spec in ANALYTES for code in spec.loinc}
    return Catalog(by_code={spec.code: spec for spec in ANALYTES}, ids={}, by_loinc=by_loinc, by_name=by_name)


def read(text: str, **options) -> csv_labs.Plan:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return csv_labs.plan_read(text.encode(), lookup=static_catalog(), tz=datetime.UTC, now=now, **options)


@pytest.mark.parametrize(
    ("code", "written", "unit"),
    [
        ("glucose", "mg/dl", "mg/dL"),
        ("glucose", "", "mmol/L"),
        ("systolic_bp", "mmHg", "mm[Hg]"),
        ("wbc", "x10^9/L", "10*9/L"),
        ("creatinine", "µmol/L", "umol/L"),
        ("body_weight", "lbs", "[lb_av]"),
        ("resting_heart_rate", "bpm", "/min"),
        ("sleep_duration", "hours", "h"),
        ("glucose", "mg", None),
    ],
)
def test_units_are_recognised_as_people_write_them(code, written, unit):
    spec = static_catalog().by_code[code]

    assert unit_resolve(spec, written) == unit


def test_names_with_brackets_keep_them_and_a_unit_after_them_is_split_off():
    plan = read(
        "mrn,date,Troponin I (high-sensitivity) (ng/mL),Glucose (fasting),SBP [mm[Hg]]\nA,2025-03-01,0.01,5,120\n"
    )

    assert plan.columns == {
        "Troponin I (high-sensitivity) (ng/mL)": "troponin",
        "Glucose (fasting)": "glucose",
        "SBP [mm[Hg]]": "systolic_bp",
    }
    assert [(value.code, value.value, value.entered_unit) for value in plan.values] == [
        ("troponin", 10.0, "ng/mL"),
        ("glucose", 5.0, "mmol/L"),
        ("systolic_bp", 120.0, "mm[Hg]"),
    ]


def test_a_long_row_without_a_value_or_with_a_censored_one_is_a_problem():
    plan = read('mrn,analyte,value,time\nA,glucose,,2025-03-01\nA,crp,<0.5,2025-03-01\nA,crp,"5,5",2025-03-01\n')

    reasons = [problem.reason for problem in plan.problems]
    assert reasons[0] == "No value."
    assert "detection limit" in reasons[1]
    assert "decimal separator" in reasons[2]


@pytest.mark.hazard("H2", "A decimal comma with three decimals (0,015 ng/mL) is refused, never read as thousands")
@pytest.mark.parametrize(
    "text",
    [
        "mrn;date;troponin_i (ng/mL)\nA;2025-03-01;0,015\n",  # a semicolon file's comma is a decimal comma
        "mrn;date;steps\nA;2025-03-01;1,250\n",
        'mrn,date,troponin_i (ng/mL)\nA,2025-03-01,"0,015"\n',  # no thousands group starts with 0
    ],
    ids=["semicolon file", "semicolon file, a plausible count", "leading zero"],
)
def test_a_decimal_comma_is_refused_rather_than_read_as_a_thousands_separator(text):
    plan = read(text)

    assert not plan.values
    [problem] = plan.problems
    assert "use a point as the decimal separator" in problem.reason


def test_a_comma_separated_file_may_group_thousands(clinic_a, ann):
    plan = read('mrn,date,steps\nA,2025-03-01,"12,500"\n')

    assert [(value.code, value.value) for value in plan.values] == [("steps", 12500.0)]


@pytest.mark.hazard("H2", "A CSV glucose of 2000 mg/dL is refused quoting the limits in mg/dL as a lab writes them")
def test_an_implausible_value_is_refused_with_the_limits_in_the_unit_the_file_gave_as_a_lab_writes_them():
    plan = read("mrn,analyte,value,unit,time\nA,glucose,2000,mg/dL,2025-03-01\nA,creatinine,50,mg/dL,2025-03-01\n")

    reasons = [problem.reason for problem in plan.problems]
    assert reasons[0] == "Glucose (fasting) 2000 mg/dL is outside the plausible range 9-1081 mg/dL."
    assert reasons[1].startswith("Creatinine 50 mg/dL is outside the plausible range 0.11-28.27 mg/dL.")


# --- The acceptance scenario -------------------------------------------------------------------------


@pytest.mark.hazard("H11", "A CSV file with three bad rows among good ones is refused whole, each bad row named")
def test_a_file_with_an_impossible_value_an_unknown_analyte_and_a_bad_number_is_refused_whole(clinic_a, ann, bob):
    report = run(clinic_a, ACCEPTANCE)

    assert report.refused
    assert report.created == 0
    assert Observation.objects.count() == 0
    reasons = {problem.row: problem.reason for problem in report.problems}
    assert set(reasons) == {5, 6, 7}
    assert "outside the plausible range" in reasons[5]
    assert "Unknown analyte 'unobtainium'" in reasons[6]
    assert "'4.x' is not a number" in reasons[7]
    assert report.unknown_codes == ["unobtainium"]


def test_with_skip_bad_rows_the_rest_imports_and_importing_again_adds_nothing(clinic_a, ann, bob):
    first = run(clinic_a, ACCEPTANCE, skip_bad_rows=True)
    again = run(clinic_a, ACCEPTANCE, skip_bad_rows=True)

    assert (first.created, first.bad_rows, first.refused) == (4, 3, False)
    assert (again.created, again.duplicates) == (0, 4)
    assert Observation.objects.count() == 4
    assert set(Observation.objects.values_list("analyte__code", flat=True)) == {"glucose", "hba1c", "ldl", "sodium"}


def test_each_import_writes_one_audit_row_with_its_counts_and_a_refusal_is_audited_as_failure(clinic_a, ann, bob):
    run(clinic_a, ACCEPTANCE)
    run(clinic_a, ACCEPTANCE, skip_bad_rows=True)
    run(clinic_a, ACCEPTANCE, dry_run=True)

    refused, imported = AuditEvent.objects.filter(action="observation.import").order_by("id")
    assert refused.outcome == AuditOutcome.FAILURE
    assert refused.detail["created"] == 0
    assert imported.outcome == AuditOutcome.SUCCESS
    assert imported.detail["created"] == 4
    assert imported.detail["bad_rows"] == 3
    assert imported.detail["patient_ids"] == sorted([ann.pk, bob.pk])
    assert imported.clinic_id == clinic_a.pk
    assert imported.actor_username == "manage.py import_labs"


# --- Long format ---------------------------------------------------------------------------------------


def test_a_long_file_converts_mg_dl_and_keeps_what_was_entered(clinic_a, ann, staff_a):
    report = run(clinic_a, "MRN,Code,Value,Unit,Time\nA-100,1558-6,126,mg/dl,2025-03-01T08:30:00+01:00\n", by=staff_a)

    [observation] = Observation.objects.all()
    assert report.created == 1
    assert report.format == "long"
    assert observation.value == pytest.approx(6.99, abs=0.01)
    assert (observation.entered_value, observation.entered_unit) == (126, "mg/dL")
    assert observation.interpretation == "H"
    assert observation.source == ObservationSource.CSV
    assert observation.entered_by == staff_a
    assert observation.effective_at == datetime.datetime(2025, 3, 1, 7, 30, tzinfo=datetime.UTC)


CRITICAL_FILE = (
    "MRN,Code,Value,Unit,Time\n"
    "A-100,potassium,6.24,mmol/L,2025-03-01T08:30:00Z\n"  # past the critical high of 6.2
    "A-100,sodium,140,mmol/L,2025-03-01T08:30:00Z\n"
    "A-101,potassium,5.5,mmol/L,2025-03-01T08:30:00Z\n"  # high, not critical
    "A-101,hemoglobin,5.5,g/dL,2025-03-01T08:30:00Z\n"  # below the critical low of 7
)


def test_new_values_in_a_critical_range_are_reported_with_their_row_and_patient(clinic_a, ann, bob, staff_a):
    preview = run(clinic_a, CRITICAL_FILE, by=staff_a, dry_run=True)
    written = run(clinic_a, CRITICAL_FILE, by=staff_a)
    again = run(clinic_a, CRITICAL_FILE, by=staff_a)  # nothing new: nothing to report

    expected = [
        (2, "A-100", ann.pk, "potassium", "HH", "Potassium 6.24 mmol/L (critically high)"),
        (5, "A-101", bob.pk, "hemoglobin", "LL", "Hemoglobin 5.5 g/dL (critically low)"),
    ]
    for report in (preview, written):
        assert [(c.row, c.mrn, c.patient_id, c.analyte, c.interpretation, c.text) for c in report.critical] == expected
    assert again.critical == []
    assert written.summary()["critical_count"] == 2
    assert written.summary(max_critical=1)["critical"] == [asdict(written.critical[0])]
    imported, repeated = AuditEvent.objects.filter(action="observation.import").order_by("id")
    assert (imported.detail["critical"], repeated.detail["critical"]) == (2, 0)


def test_a_naive_time_is_in_the_clinic_zone_and_a_lab_date_alone_is_midnight(settings, clinic_a, ann):
    settings.TIME_ZONE = "America/New_York"  # the server's zone: not the clinic's, so never read
    clinic_a.time_zone = "Europe/Berlin"
    clinic_a.save(update_fields=["time_zone"])
    run(clinic_a, "mrn,analyte,value,time\nA-100,glucose,5,2025-03-01T08:30\nA-100,ldl,3,2025-03-02\n")

    times = dict(Observation.objects.values_list("analyte__code", "effective_at"))
    berlin = ZoneInfo("Europe/Berlin")
    assert times["glucose"] == datetime.datetime(2025, 3, 1, 8, 30, tzinfo=berlin)
    assert times["ldl"] == datetime.datetime(2025, 3, 2, 0, 0, tzinfo=berlin)


@pytest.mark.hazard("H2", "A CSV row with a glucose in kg is a problem naming the accepted units")
def test_a_wrong_unit_names_the_accepted_ones(clinic_a, ann):
    report = run(clinic_a, "mrn,analyte,value,unit,time\nA-100,glucose,5,kg,2025-03-01\n")

    [problem] = report.problems
    assert (problem.row, problem.column, problem.value) == (2, "value", "kg")
    assert "accepted units: mmol/L, mg/dL" in problem.reason


def test_a_future_time_a_time_before_birth_and_a_missing_time_are_row_problems(clinic_a, ann):
    future = (timezone.localdate() + datetime.timedelta(days=3)).isoformat()
    text = f"mrn,analyte,value,time\nA-100,glucose,5,{future}\nA-100,glucose,5,1970-01-01\nA-100,glucose,5,\n"

    report = run(clinic_a, text)

    reasons = [problem.reason for problem in report.problems]
    assert rows_of(report) == [2, 3, 4]
    assert "in the future" in reasons[0]
    assert "before the patient's birth" in reasons[1]
    assert reasons[2] == "No date or time."


def test_a_date_written_day_first_is_refused_rather_than_guessed(clinic_a, ann):
    report = run(clinic_a, "mrn,analyte,value,time\nA-100,glucose,5,03/04/2025\n")

    assert "not an ISO 8601 date" in report.problems[0].reason


def test_the_same_result_twice_in_one_file_is_stored_once(clinic_a, ann):
    report = run(clinic_a, "mrn,analyte,value,time\nA-100,glucose,5,2025-03-01\nA-100,fpg,90,mg/dL,2025-03-01\n")

    assert report.problems[0].row == 3  # 5 cells under a 4-column header
    report = run(clinic_a, "mrn,analyte,value,time\nA-100,glucose,5,2025-03-01\nA-100,fpg,5,2025-03-01\n")
    assert (report.created, report.duplicates) == (1, 1)


# --- Wide format ---------------------------------------------------------------------------------------


def test_a_wide_file_reads_units_from_headers_unit_columns_loinc_codes_and_names(clinic_a, ann, bob):
    text = (
        "MRN,Date,Glucose (mg/dL),HbA1c [%],2093-3,LDL,ldl_unit,Triglycerides,Comment\n"
        "A-100,2025-03-01,126,6.1,5.2,130,mg/dL,1.5,fasting\n"
        "A-101,2025-03-01,99,,4.1,2.9,,1.2,\n"
    )

    report = run(clinic_a, text)

    assert report.format == "wide"
    assert not report.problems
    assert report.unknown_columns == ["Comment"]
    values = {(o.patient.mrn, o.analyte.code): o for o in Observation.objects.select_related("patient", "analyte")}
    assert len(values) == 9  # the empty HbA1c cell is no value
    assert values["A-100", "glucose"].value == pytest.approx(6.99, abs=0.01)
    assert values["A-100", "total_cholesterol"].value == 5.2
    assert values["A-100", "ldl"].entered_unit == "mg/dL"
    assert values["A-101", "ldl"].entered_unit == "mmol/L"  # no unit given: the catalog's


def test_a_unit_column_for_the_whole_row_and_unit_spellings_are_understood(clinic_a, ann):
    text = "mrn,time,creatinine,unit,systolic blood pressure (mmHg),WBC (x10^9/L)\nA-100,2025-03-01,1.1,mg/dL,128,6.2\n"

    report = run(clinic_a, text)

    assert not report.problems
    entered = dict(Observation.objects.values_list("analyte__code", "entered_unit"))
    assert entered == {"creatinine": "mg/dL", "systolic_bp": "mm[Hg]", "wbc": "10*9/L"}


def test_a_wide_file_without_any_analyte_column_is_refused_naming_its_columns(clinic_a, ann):
    report = run(clinic_a, "mrn,date,colour,mood\nA-100,2025-03-01,red,fine\n")

    assert report.refused
    assert "No column names a known analyte (columns: mrn, date, colour, mood)" in report.error


def test_two_columns_for_the_same_analyte_are_refused(clinic_a, ann):
    report = run(clinic_a, "mrn,date,glucose,1558-6\nA-100,2025-03-01,5,5\n")

    assert "both give Glucose (fasting)" in report.error


def test_a_short_row_in_the_middle_of_a_file_is_a_problem_of_that_row(clinic_a, ann):
    report = run(clinic_a, "mrn,date,glucose,ldl\nA-100,2025-03-01,5,3\nA-100,2025-03-02\n")

    assert rows_of(report) == [3]
    assert "was it cut off?" in report.problems[0].reason.lower()


def test_semicolon_separated_files_are_read(clinic_a, ann):
    report = run(clinic_a, "mrn;date;glucose\nA-100;2025-03-01;5.4\n")

    assert report.created == 1


# --- Malformed files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\n\n  \n", "The file is empty."),
        ("mrn,analyte,value,time\nA-100,glucose,5,2025-03-01,Müller\n".encode("latin-1"), "not UTF-8 text"),
        ("mrn,analyte,value,time\n".encode("utf-16"), "UTF-16"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
        (b"mrn,analyte,value,time\n", "no data rows"),
        (b'mrn,analyte,value,time\nA-100,glucose,5,"2025-03', "not valid CSV at row 2"),
        (b"analyte,value,time\nglucose,5,2025-03-01\n", "no MRN column"),
        (b"mrn,analyte,value\nA-100,glucose,5\n", "no date or time column"),
    ],
)
def test_a_malformed_file_gets_a_clear_error_and_nothing_is_written(clinic_a, ann, data, message):
    report = run(clinic_a, data)

    assert report.refused
    assert message in report.error
    assert report.problems[0].row is None
    assert Observation.objects.count() == 0


def test_a_file_over_the_size_limit_is_refused(clinic_a, ann, monkeypatch):
    monkeypatch.setattr(csv_labs, "MAX_BYTES", 40)

    report = run(clinic_a, "mrn,analyte,value,time\n" + "A-100,glucose,5,2025-03-01\n" * 3)

    assert report.refused
    assert "the limit is" in report.error


def test_a_file_over_the_row_limit_is_refused(clinic_a, ann, monkeypatch):
    monkeypatch.setattr(csv_labs, "MAX_ROWS", 2)

    report = run(clinic_a, "mrn,analyte,value,time\n" + "A-100,glucose,5,2025-03-01\n" * 3)

    assert report.refused
    assert "more than 2 rows" in report.error
    assert Observation.objects.count() == 0


def test_a_utf8_file_with_a_byte_order_mark_is_read(clinic_a, ann):
    report = run(clinic_a, "\ufeffmrn,analyte,value,time\nA-100,glucose,5,2025-03-01\n".encode())

    assert report.created == 1


# --- Clinics ---------------------------------------------------------------------------------------------


def test_mrns_of_another_clinic_are_unknown_and_nothing_is_written_there(clinic_a, clinic_b, ann, doctor_b):
    PatientFactory(clinic=clinic_b, mrn="B-7")

    report = run(clinic_a, "mrn,analyte,value,time\nB-7,glucose,5,2025-03-01\nA-100,glucose,5,2025-03-01\n")

    [problem] = report.problems
    assert (problem.row, problem.column, problem.value) == (2, "mrn", "B-7")
    assert "does not register patients" in problem.reason
    assert report.refused
    assert Observation.objects.count() == 0
    run(clinic_a, "mrn,analyte,value,time\nB-7,glucose,5,2025-03-01\nA-100,glucose,5,2025-03-01\n", skip_bad_rows=True)
    assert list(Observation.objects.values_list("patient__clinic", flat=True)) == [clinic_a.pk]


def test_a_user_cannot_import_into_another_clinic(clinic_b, doctor_a):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        run(clinic_b, ACCEPTANCE, by=doctor_a)


def test_the_number_of_queries_does_not_grow_with_the_file(clinic_a, django_assert_max_num_queries):
    patients = PatientFactory.create_batch(40, clinic=clinic_a)
    text = "mrn,date,glucose,ldl,hdl\n" + "".join(f"{p.mrn},2025-03-01,5,3,1.2\n" for p in patients)
    catalog()  # loaded once per process, not per import (a transactional test before this one may have dropped it)

    # 120 results: one INSERT on PostgreSQL, three on SQLite (999 parameters, 17 columns: 58 rows each); the audit
    # row takes four (a savepoint, the chain's head, the insert, the release: its hash is keyed outside the database);
    # the prediction request one, its outbox row
    with django_assert_max_num_queries(12):
        report = run(clinic_a, text)

    assert report.created == 120


# --- Wearables ---------------------------------------------------------------------------------------------


def test_a_wearable_file_of_one_patient_imports_daily_values_at_noon(clinic_a, ann):
    clinic_a.time_zone = "America/New_York"
    clinic_a.save(update_fields=["time_zone"])

    report = run(clinic_a, WEARABLE, mrn="A-100")

    assert report.format == "wearable"
    assert report.created == 8
    steps = Observation.objects.filter(analyte__code="steps").order_by("effective_at")
    assert [o.value for o in steps] == [8042, 10310, 6100]
    assert steps[0].effective_at == datetime.datetime(2025, 6, 1, 12, tzinfo=ZoneInfo("America/New_York"))


def test_a_wearable_file_without_mrn_column_or_mrn_is_refused_and_an_unknown_mrn_too(clinic_a, ann):
    assert "no MRN column" in run(clinic_a, WEARABLE).error
    assert "No patient with MRN Z-9" in run(clinic_a, WEARABLE, mrn="Z-9").error


def test_a_wearable_file_with_an_mrn_column_and_sleep_in_minutes(clinic_a, ann, bob):
    text = "MRN,Date,Steps,Resting HR,Minutes Asleep\nA-100,2025-06-01,9000,60,450\nA-101,2025-06-01,4000,72,300\n"

    report = run(clinic_a, text)

    assert report.format == "wearable"
    assert report.created == 6
    sleep = Observation.objects.get(analyte__code="sleep_duration", patient=ann)
    assert (sleep.value, sleep.entered_value, sleep.entered_unit) == (7.5, 450, "min")


def test_wearable_averages_cover_the_last_30_days_per_analyte(clinic_a, ann):
    rows = [f"{datetime.date(2025, 6, 30) - datetime.timedelta(days=n)},{1000 * n},{60 + n % 2}" for n in range(35)]
    run(clinic_a, "date,steps,rhr\n" + "\n".join(rows) + "\n", mrn="A-100")

    averages = wearable_averages(series=observation_series(patient=ann), today=datetime.date(2025, 6, 30))

    assert averages["steps"] == pytest.approx(14500)  # days 0-29
    assert averages["resting_heart_rate"] == pytest.approx(60.5)
    assert averages["sleep_duration"] is None


# --- Portal ---------------------------------------------------------------------------------------------


def upload(client, data: bytes, **fields):
    file = SimpleUploadedFile("results.csv", data, content_type="text/csv")
    return client.post(UPLOAD_URL, {"file": file, "format": "auto", **fields})


def test_staff_upload_preview_and_confirm_an_import(client, staff_a, ann, bob):
    client.force_login(staff_a)

    response = upload(client, ACCEPTANCE)
    preview_url = response.url
    preview = client.get(preview_url)
    refused = client.post(preview_url + "confirm/")

    assert preview.status_code == 200
    assert preview.context["report"].to_create == 4
    assert len(preview.context["problems"]) == 3
    assert b"Unknown analyte" in preview.content
    assert b"unobtainium" in preview.content
    assert refused.url == preview_url
    assert Observation.objects.count() == 0
    done = client.post(preview_url + "confirm/", {"skip_bad_rows": "on"}, follow=True)
    assert done.context["result"]["created"] == 4
    assert Observation.objects.count() == 4
    assert AuditEvent.objects.filter(action="observation.import", actor=staff_a).count() == 2  # refusal + import


def test_the_preview_and_the_result_call_out_values_in_a_critical_range(client, staff_a, ann, bob, monkeypatch):
    monkeypatch.setattr("patients.imports.views.SHOWN_CRITICAL", 1)
    client.force_login(staff_a)

    preview_url = upload(client, CRITICAL_FILE.encode()).url
    preview = client.get(preview_url).content.decode()
    result = client.post(preview_url + "confirm/", follow=True).content.decode()

    for page, heading in (
        (preview, "2 values in a critical range in this file"),
        (result, "2 values in a critical range imported"),
    ):
        callout = page.split('data-testid="critical-values"')[1].split("</section>")[0]
        assert heading in callout
        assert f'href="/patients/{ann.pk}/">MRN A-100</a>: Potassium 6.24 mmol/L (critically high)' in callout
        assert "Hemoglobin" not in callout  # beyond the one listed
        assert "And 1 more" in callout
    assert "?critical=on" in result


def test_the_preview_lists_unknown_columns_and_writes_nothing(client, doctor_a, ann):
    client.force_login(doctor_a)

    response = client.get(upload(client, b"mrn,date,glucose,mood\nA-100,2025-03-01,5,fine\n").url)

    assert response.context["report"].unknown_columns == ["mood"]
    assert b"mood" in response.content
    assert Observation.objects.count() == 0
    assert not AuditEvent.objects.filter(action="observation.import").exists()


def test_an_unreadable_file_is_explained_on_the_preview(client, staff_a):
    client.force_login(staff_a)

    response = client.get(upload(client, b"\x00\x01\x02binary").url)

    assert b"binary data" in response.content
    assert b'action="/patients/import/' not in response.content


def test_an_empty_or_too_large_upload_is_refused_on_the_form(client, staff_a, monkeypatch):
    client.force_login(staff_a)
    monkeypatch.setattr(forms, "MAX_BYTES", 10)

    empty = upload(client, b"")
    large = upload(client, b"mrn,analyte,value,time\n")

    assert empty.status_code == large.status_code == 200
    assert "The submitted file is empty." in empty.context["form"].errors["file"]
    assert "the limit is" in large.context["form"].errors["file"][0]


def test_the_problem_report_downloads_with_formula_cells_neutralised(client, staff_a, ann):
    client.force_login(staff_a)
    text = 'mrn,analyte,value,time\n"=HYPERLINK(""http://x"")",glucose,5,2025-03-01\nA-100,+cmd,5,2025-03-01\n'

    preview_url = upload(client, text.encode()).url
    response = client.get(preview_url + "problems.csv")

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["row", "column", "value", "problem"]
    assert rows[1][:3] == ["2", "mrn", '\'=HYPERLINK("http://x")']
    assert rows[2][:3] == ["3", "analyte", "'+cmd"]


def test_the_upload_form_takes_the_mrn_from_the_link_of_a_patient_page(client, staff_a):
    client.force_login(staff_a)

    response = client.get(UPLOAD_URL, {"mrn": "A-100"})

    assert response.context["form"].initial["mrn"] == "A-100"


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("doctor", 200), ("staff", 200), ("patient", 403)])
def test_the_upload_page_is_for_roles_that_enter_results(client, users_by_role, role, status):
    client.force_login(users_by_role[role])

    assert client.get(UPLOAD_URL).status_code == status


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    assert client.get(UPLOAD_URL).url.startswith(reverse("login"))


def test_another_users_upload_is_not_found(client, staff_a, doctor_a, doctor_b, ann):
    client.force_login(staff_a)
    preview_url = upload(client, ACCEPTANCE).url

    for other in (doctor_a, doctor_b):
        client.force_login(other)
        assert client.get(preview_url).status_code == 404
        assert client.post(preview_url + "confirm/", {"skip_bad_rows": "on"}).status_code == 404
        assert client.get(preview_url + "problems.csv").status_code == 404
    assert Observation.objects.count() == 0


def test_a_patient_account_cannot_confirm_an_import(client, patient_user_a):
    client.force_login(patient_user_a)

    assert client.post(UPLOAD_URL + "0" * 32 + "/confirm/").status_code == 403


# --- API ---------------------------------------------------------------------------------------------------


def api_post(client, data: bytes, **fields):
    return client.post(API_URL, {"file": SimpleUploadedFile("labs.csv", data), **fields})


def test_the_api_refuses_a_bad_file_with_400_and_a_report(client, staff_a, ann, bob):
    client.force_login(staff_a)

    response = api_post(client, ACCEPTANCE)

    body = response.json()
    assert response.status_code == 400
    assert body["refused"]
    assert body["created"] == 0
    assert [problem["row"] for problem in body["problems"]] == [5, 6, 7]
    assert body["unknown_codes"] == ["unobtainium"]
    assert body["problem_count"] == 3
    assert Observation.objects.count() == 0


def test_the_api_imports_the_valid_rows_and_a_dry_run_writes_nothing(client, staff_a, ann, bob):
    client.force_login(staff_a)

    dry = api_post(client, ACCEPTANCE, skip_bad_rows="true", dry_run="true")
    written = api_post(client, ACCEPTANCE, skip_bad_rows="true")

    assert dry.status_code == 200
    assert dry.json()["to_create"] == 4
    assert dry.json()["created"] == 0
    assert written.status_code == 200
    assert written.json()["created"] == 4
    assert Observation.objects.count() == 4
    assert AuditEvent.objects.filter(action="observation.import").count() == 1


def test_the_api_reports_values_in_a_critical_range(client, staff_a, ann, bob):
    client.force_login(staff_a)

    body = api_post(client, CRITICAL_FILE.encode()).json()

    assert body["critical_count"] == 2
    assert body["critical"][0] == {
        "row": 2, "mrn": "A-100", "patient_id": ann.pk, "analyte": "potassium", "value": 6.24, "unit": "mmol/L",
        "interpretation": "HH", "effective_at": "2025-03-01T08:30:00+00:00",
        "text": "Potassium 6.24 mmol/L (critically high)",
    }  # fmt: skip


def test_the_api_answers_a_missing_file_with_a_field_error(client, staff_a):
    client.force_login(staff_a)

    response = client.post(API_URL, {"skip_bad_rows": "true"})

    assert response.status_code == 400
    assert "file" in response.json()


@pytest.mark.parametrize(("role", "status"), [("admin", 400), ("doctor", 400), ("staff", 400), ("patient", 403)])
def test_the_api_is_for_roles_that_enter_results(client, users_by_role, role, status):
    client.force_login(users_by_role[role])

    assert api_post(client, b"").status_code == status


def test_the_api_needs_a_signed_in_user(client):
    assert api_post(client, ACCEPTANCE).status_code in (401, 403)
