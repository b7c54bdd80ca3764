import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from clinic.models import AuditEvent
from clinic.tests.factories import ClinicFactory
from patients.imports import services
from patients.models import Observation
from patients.tests.factories import PatientFactory

DATA = Path(__file__).parent / "data"
ACCEPTANCE = DATA / "acceptance_long.csv"


@pytest.fixture
def patients(clinic_a):
    return [PatientFactory(clinic=clinic_a, mrn="A-100"), PatientFactory(clinic=clinic_a, mrn="A-101")]


def import_labs(*args: str) -> str:
    out = io.StringIO()
    call_command("import_labs", *map(str, args), stdout=out)
    return out.getvalue()


def test_a_file_with_bad_rows_exits_non_zero_and_writes_nothing(patients, tmp_path):
    report = tmp_path / "problems.csv"

    with pytest.raises(CommandError, match="refused") as refused:
        import_labs(ACCEPTANCE, "--report", report)

    assert refused.value.returncode == 1
    assert Observation.objects.count() == 0
    rows = list(csv.reader(report.open()))
    assert rows[0] == ["row", "column", "value", "problem"]
    assert [row[0] for row in rows[1:]] == ["5", "6", "7"]


def test_skip_bad_rows_imports_the_rest_once_and_is_audited_without_an_actor(patients):
    output = import_labs(ACCEPTANCE, "--clinic", "riverside", "--skip-bad-rows")
    again = import_labs(ACCEPTANCE, "--skip-bad-rows")

    assert "4 created, 0 already stored" in output
    assert "row 6, analyte: Unknown analyte" in output
    assert "0 created, 4 already stored" in again
    assert Observation.objects.count() == 4
    events = AuditEvent.objects.filter(action="observation.import")
    assert events.count() == 2
    assert {event.actor_id for event in events} == {None}


def test_a_dry_run_reports_and_writes_nothing(patients):
    output = import_labs(ACCEPTANCE, "--skip-bad-rows", "--dry-run")

    assert "4 would create" in output
    assert Observation.objects.count() == 0
    assert not AuditEvent.objects.exists()


def test_values_in_a_critical_range_are_listed_after_the_import(patients, tmp_path):
    path = tmp_path / "critical.csv"
    path.write_text("MRN,Code,Value,Unit,Time\nA-101,potassium,7.1,mmol/L,2025-03-01T08:30:00Z\n")

    output = import_labs(path)

    assert "  in a critical range: 1 new values, to act on promptly\n" in output
    assert "  row 2, MRN A-101: Potassium 7.1 mmol/L (critically high)\n" in output


def test_a_wearable_file_takes_its_patient_from_mrn(patients):
    output = import_labs(DATA / "wearable_one_patient.csv", "--mrn", "A-100")

    assert "wearable" in output
    assert Observation.objects.filter(patient=patients[0]).count() == 8


def test_the_clinic_must_be_named_when_there_are_several(patients):
    ClinicFactory(slug="hillcrest")

    with pytest.raises(CommandError, match=r"--clinic SLUG \(.*hillcrest"):
        import_labs(ACCEPTANCE)
    with pytest.raises(CommandError, match="No clinic with slug 'nowhere'"):
        import_labs(ACCEPTANCE, "--clinic", "nowhere")


def test_an_unreadable_or_missing_file_is_refused_with_its_reason(patients, tmp_path):
    binary = tmp_path / "scan.csv"
    binary.write_bytes(b"\x00\x01\x02")

    with pytest.raises(CommandError):
        import_labs(binary)
    with pytest.raises(CommandError, match="Cannot read"):
        import_labs(tmp_path / "missing.csv")
    assert AuditEvent.objects.get(action="observation.import").detail["error"].startswith("The file contains binary")


def test_a_big_import_prints_progress_lines(clinic_a, tmp_path, monkeypatch):
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    monkeypatch.setattr("patients.management.commands.import_labs.PROGRESS_FROM", 3)
    PatientFactory(clinic=clinic_a, mrn="A-100")
    path = tmp_path / "labs.csv"
    path.write_text("mrn,date,glucose,ldl,hdl\nA-100,2025-03-01,5,3,1.2\n")

    output = import_labs(path)

    assert "written 2 of 3 observations" in output
    assert "written 3 of 3 observations" in output
