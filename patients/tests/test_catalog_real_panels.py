"""The catalog's real panels: results as a Synthea export (or a laboratory) files them are recognised, converted to
the canonical unit and flagged as their cited ranges say; impossible ones are refused; every panel is shown."""

import json
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from patients.catalog import catalog
from patients.catalog_data import ANALYTES
from patients.clinical import InvalidValue, check_plausible, interpret
from patients.fhir.services import fhir_import
from patients.models import Analyte, AnalyteLoinc, AnalyteUnit, Observation, Sex
from patients.selectors import PANELS
from patients.services import ObservationInput, observations_record
from patients.tests.factories import PatientFactory

SPECS = {spec.code: spec for spec in ANALYTES}
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


@pytest.mark.parametrize(
    ("code", "value", "unit", "sex", "canonical", "flag"),
    [
        # full blood count: indices and the differential (absolute counts in 10^3/uL, as Synthea files them)
        ("rdw_sd", 42.4, "fL", "female", 42.4, "N"),
        ("rdw_cv", 15.3, "%", "male", 15.3, "H"),
        ("mpv", 10.9, "fL", "male", 10.9, "N"),
        ("neutrophils", 2.77, "10*3/uL", "female", 2.77, "N"),
        ("neutrophils", 0.4, "10*3/uL", "female", 0.4, "LL"),
        ("lymphocytes", 0.83, "10*3/uL", "male", 0.83, "L"),
        ("monocytes_pct", 16.1, "%", "male", 16.1, "H"),
        # metabolic panel, in the US units Synthea uses and in SI units
        ("urea", 20, "mg/dL", "male", 7.139, "N"),
        ("urea", 21, "mg/dL", "male", 7.496, "H"),
        ("urea", 110, "mg/dL", "male", 39.27, "HH"),
        ("calcium", 2.2, "mmol/L", "female", 2.2, "N"),
        ("calcium", 9.3, "mg/dL", "female", 2.320, "N"),
        ("calcium", 8.4, "mg/dL", "female", 2.096, "L"),
        ("calcium", 6.5, "mg/dL", "female", 1.622, "LL"),
        ("calcium", 13.0, "mg/dL", "male", 3.244, "HH"),
        ("chloride", 111, "mmol/L", "male", 111.0, "H"),
        ("co2_total", 24.7, "mmol/L", "female", 24.7, "N"),
        ("magnesium", 2.0, "mg/dL", "male", 0.823, "N"),
        ("magnesium", 0.9, "mg/dL", "male", 0.370, "LL"),
        ("phosphate", 3.3, "mg/dL", "female", 1.065, "N"),
        ("lactate", 4.5, "mmol/L", "male", 4.5, "HH"),
        # liver: proteins in g/dL and g/L, bilirubin in mg/dL, enzymes in U/L and IU/L
        ("albumin", 4.5, "g/dL", "female", 45.0, "N"),
        ("total_protein", 7.0, "g/dL", "male", 70.0, "N"),
        ("globulin", 28, "g/L", "female", 28.0, "N"),
        ("globulin", 2.8, "g/dL", "female", 28.0, "N"),
        ("bilirubin", 1.0, "mg/dL", "male", 17.10, "N"),
        ("bilirubin", 2.0, "mg/dL", "male", 34.21, "H"),
        ("alp", 75, "U/L", "female", 75.0, "N"),
        ("alp", 160, "[iU]/L", "female", 160.0, "H"),
        ("alt", 54, "[iU]/L", "male", 54.0, "H"),
        # coagulation, iron studies, urine albumin, NT-proBNP, allergen-specific IgE
        ("inr", 1.07, "{INR}", "female", 1.07, "N"),
        ("inr", 5.5, "{INR}", "female", 5.5, "HH"),
        ("aptt", 32.7, "s", "male", 32.7, "N"),
        ("ferritin", 10, "ug/L", "female", 10.0, "L"),
        ("ferritin", 180, "ng/mL", "female", 180.0, "H"),
        ("ferritin", 180, "ng/mL", "male", 180.0, "N"),
        ("iron", 93, "ug/dL", "female", 16.65, "N"),
        ("tibc", 332, "ug/dL", "male", 59.45, "N"),
        ("transferrin_saturation", 15.4, "%", "female", 15.4, "L"),
        ("urine_acr", 29.9, "mg/g", "female", 29.9, "N"),
        ("urine_acr", 30, "mg/g", "female", 30.0, "H"),
        ("urine_acr", 3.4, "mg/mmol", "male", 30.06, "H"),
        ("urine_sg", 1.02, "{nominal}", "female", 1.02, "N"),
        ("urine_ph", 6.0, "pH", "female", 6.0, "N"),
        ("urine_protein", 300, "mg/dL", "male", 300.0, "H"),
        ("urine_protein", 0.1, "g/L", "male", 10.0, "N"),
        ("urine_ketones", 10.3, "mg/dL", "male", 10.3, ""),
        ("nt_probnp", 1037, "pg/mL", "male", 1037.0, "H"),
        ("nt_probnp", 124, "pg/mL", "male", 124.0, "N"),
        ("nt_probnp", 125, "pg/mL", "male", 125.0, "H"),
        ("ige_peanut", 0.19, "kU/L", "female", 0.19, "N"),
        ("ige_peanut", 0.34, "kU/L", "female", 0.34, "N"),
        ("ige_peanut", 0.35, "kU/L", "female", 0.35, "H"),
        # arterial blood gases, pressures in mm Hg or kPa
        ("ph_arterial", 7.05, "[pH]", "male", 7.05, "LL"),
        ("pco2_arterial", 40.5, "mm[Hg]", "female", 40.5, "N"),
        ("po2_arterial", 12.0, "kPa", "female", 90.01, "N"),
        ("po2_arterial", 5.5, "kPa", "female", 41.25, "LL"),
        ("hco3_arterial", 24.6, "mmol/L", "male", 24.6, "N"),
        # existing analytes in units Synthea writes: eGFR as "mL/min", hs-troponin I in pg/mL
        ("egfr_reported", 66.8, "mL/min", "male", 66.8, "N"),
        ("troponin", 30, "pg/mL", "male", 30.0, "N"),
        ("troponin", 40, "pg/mL", "male", 40.0, "H"),
    ],
)
def test_a_result_of_each_new_family_converts_and_flags_as_its_range_says(code, value, unit, sex, canonical, flag):
    spec = SPECS[code]
    stored = check_plausible(spec, value, unit)
    assert stored == pytest.approx(canonical, abs=0.005)
    assert interpret(spec, stored, sex, 50) == flag


@pytest.mark.parametrize(
    ("code", "value", "unit", "message"),
    [
        # Synthea writes globulin in g/dL under "g/L", and platelet distribution widths of hundreds of fL.
        ("globulin", 3.53, "g/L", "Globulin 3.53 g/L is outside the plausible range 5-120 g/L. Did you mean g/dL?"),
        ("pdw", 331.4, "fL", "Platelet distribution width 331.4 fL is outside the plausible range 3-40 fL."),
        ("inr", 1.1, "s", "INR cannot be entered in s; accepted units: {INR}."),
    ],
)
def test_an_impossible_result_is_refused_with_the_unit_that_was_probably_meant(code, value, unit, message):
    with pytest.raises(InvalidValue) as refused:
        check_plausible(SPECS[code], value, unit)
    assert str(refused.value) == message


def test_every_panel_of_the_catalog_is_shown_on_the_patient_page():
    assert {spec.panel for spec in ANALYTES} <= {key for key, _label in PANELS}


def test_the_catalog_fits_the_database_columns():
    """SQLite does not enforce a column's length, PostgreSQL does: a code, name or unit too long fails a migration."""

    def longest(model, field):
        return model._meta.get_field(field).max_length

    for spec in ANALYTES:
        assert len(spec.code) <= longest(Analyte, "code"), spec.code
        assert len(spec.name) <= longest(Analyte, "name"), spec.code
        assert len(spec.panel) <= longest(Analyte, "panel"), spec.code
        assert len(spec.unit) <= longest(Analyte, "unit"), spec.code
        assert all(len(code) <= longest(AnalyteLoinc, "code") for code in spec.loinc), spec.code
        assert all(len(c.unit) <= longest(AnalyteUnit, "unit") for c in spec.conversions), spec.code


@pytest.mark.django_db
def test_the_migrated_catalog_holds_every_analyte_as_catalog_data_describes_it():
    loaded = catalog()
    for spec in ANALYTES:
        row = loaded.by_code[spec.code]
        assert set(row.loinc) == set(spec.loinc), spec.code
        assert row.loinc[0] == spec.loinc[0], spec.code
        assert {(c.unit, c.factor) for c in row.conversions} == {(c.unit, c.factor) for c in spec.conversions}
        assert (row.critical_low, row.critical_high, row.panel) == (spec.critical_low, spec.critical_high, spec.panel)
        assert set(row.ranges) == set(spec.ranges), spec.code


# --- Through the FHIR import, as a Synthea bundle files them --------------------------------------------------------


def _bundle(*results: tuple[str, float, str]) -> bytes:
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    patient = {
        "resourceType": "Patient",
        "identifier": [{"type": {"coding": [{"code": "MR"}]}, "system": "urn:mrn", "value": "SYN-1"}],
        "name": [{"family": "Kuhn96", "given": ["Abel832"]}],
        "gender": "female",
        "birthDate": "1961-03-03",
    }
    entries = [{"fullUrl": patient_url, "resource": patient}]
    for loinc, value, unit in results:
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"code": "laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": {"reference": patient_url},
            "effectiveDateTime": "2024-03-01T09:30:00+00:00",
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        }
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": observation})
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def test_a_synthea_panel_of_each_new_family_is_stored_in_canonical_units_and_flagged(staff_a):
    data = _bundle(
        ("6299-2", 20.0, "mg/dL"),  # urea nitrogen in blood
        ("49765-1", 2.2, "mmol/L"),  # calcium in blood, given in mmol/L
        ("10834-0", 28.0, "g/L"),  # globulin
        ("32623-1", 10.9, "fL"),  # mean platelet volume
        ("751-8", 0.4, "10*3/uL"),  # neutrophils
        ("6301-6", 5.5, "{INR}"),
        ("2276-4", 10.0, "ug/L"),  # ferritin
        ("14959-1", 503.4, "mg/g"),  # urine albumin/creatinine
        ("6206-7", 0.19, "kU/L"),  # peanut IgE
        ("33914-3", 66.8, "mL/min"),  # eGFR (MDRD) written short
    )

    summary = fhir_import(by=staff_a, data=data)

    assert summary["unknown_codes"] == []
    stored = {o.analyte.code: (o.value, o.interpretation) for o in Observation.objects.select_related("analyte")}
    assert stored == {
        "urea": (pytest.approx(7.139, abs=0.001), "N"),
        "calcium": (2.2, "N"),
        "globulin": (28.0, "N"),
        "mpv": (10.9, "N"),
        "neutrophils": (0.4, "LL"),
        "inr": (5.5, "HH"),
        "ferritin": (10.0, "L"),
        "urine_acr": (503.4, "H"),
        "ige_peanut": (0.19, "N"),
        "egfr_reported": (66.8, "N"),
    }
    assert {c["analyte"] for c in summary["observations"]["critical"]} == {"neutrophils", "inr"}


def test_synthea_globulin_in_g_dl_labelled_g_l_is_a_problem_and_nothing_is_stored(staff_a):
    with pytest.raises(ValidationError) as refused:
        fhir_import(by=staff_a, data=_bundle(("10834-0", 3.53, "g/L"), ("6299-2", 13.5, "mg/dL")))

    assert "Did you mean g/dL?" in refused.value.messages[1]
    assert not Observation.objects.exists()


# --- On the patient page -----------------------------------------------------------------------------------------


def test_results_of_the_new_panels_are_shown_under_their_panels_flagged_and_a_critical_one_in_the_banner(
    client, doctor_a, clinic_a
):
    patient = PatientFactory(clinic=clinic_a, sex=Sex.FEMALE)
    entries = [
        ObservationInput("urea", 20, "mg/dL"),
        ObservationInput("inr", 5.5, "{INR}"),
        ObservationInput("ferritin", 10, "ug/L"),
        ObservationInput("urine_acr", 45, "mg/g"),
        ObservationInput("ige_peanut", 0.19, "kU/L"),
        ObservationInput("ph_arterial", 7.38, "[pH]"),
    ]
    observations_record(patient=patient, by=doctor_a, entries=entries, effective_at=timezone.now())
    client.force_login(doctor_a)

    response = client.get(reverse("patients:detail", args=[patient.pk]))

    panels = {panel["key"]: [(row.value, row.flag) for row in panel["rows"]] for panel in response.context["panels"]}
    assert panels == {
        "metabolic": [("7.139 mmol/L", "N")],  # 20 mg/dL: three digits would read 7.14, the range's limit
        "coagulation": [("5.5 {INR}", "HH")],
        "iron": [("10 µg/L", "L")],
        "urine": [("45.0 mg/g", "H")],
        "allergy": [("0.19 kU/L", "N")],
        "blood_gas": [("7.38 [pH]", "N")],
    }
    assert [(row.name, row.flag) for row in response.context["critical"]] == [("INR", "HH")]
    assert "<strong>INR</strong> 5.5 {INR} (critically high)" in response.content.decode()
