"""The synthetic demo cohort: reproducible, clinically coherent, and loaded with the same flags as manual entry."""

import datetime

import numpy as np
import pytest

from clinic.models import AuditEvent
from patients.catalog import catalog
from patients.catalog_data import ANALYTES
from patients.clinical import age_on, interpret, reference_range
from patients.demo import demo_cohort_load
from patients.demo_cohort import CONDITIONS, generate_cohort
from patients.models import Condition, Observation, ObservationSource, Patient, VerificationStatus

TODAY = datetime.date(2026, 6, 1)
SPECS = {spec.code: spec for spec in ANALYTES}


@pytest.fixture(scope="module")
def cohort():
    return generate_cohort(20_000, seed=7, today=TODAY)


def latest(cohort, code):
    """Each patient's value of `code` (the last one generated), NaN where it was not measured."""
    out = np.full(cohort.n_patients, np.nan)
    mask = cohort.obs_analyte == code
    out[cohort.obs_patient[mask]] = cohort.obs_value[mask]
    return out


def test_the_same_seed_gives_the_same_cohort_and_another_seed_a_different_one():
    a, b, c = (generate_cohort(500, seed=s, today=TODAY) for s in (1, 1, 2))

    assert np.array_equal(a.obs_value, b.obs_value)
    assert list(a.cond_key) == list(b.cond_key)
    assert not np.array_equal(a.birth_date, c.birth_date)


def test_every_value_lies_within_the_catalogs_plausible_limits(cohort):
    for code in np.unique(cohort.obs_analyte):
        values = cohort.obs_value[cohort.obs_analyte == code]
        spec = SPECS[code]
        assert values.min() >= spec.plausible_low, code
        assert values.max() <= spec.plausible_high, code


def test_adults_only_and_about_half_women(cohort):
    ages = (np.datetime64(TODAY) - cohort.birth_date).astype(int) / 365.25

    assert ages.min() >= 18
    assert ages.max() <= 92
    assert 0.47 < np.mean(cohort.sex == "female") < 0.55


def test_diabetes_raises_hba1c_and_glucose_into_the_diagnostic_range(cohort):
    hba1c, glucose, dm = latest(cohort, "hba1c"), latest(cohort, "glucose"), cohort.truth["diabetes"]
    healthy = ~dm & ~cohort.truth["prediabetes"]

    assert np.nanmedian(hba1c[dm]) >= 6.5  # ADA diagnostic threshold, %
    assert np.nanmedian(glucose[dm]) >= 7.0  # mmol/L
    assert np.nanmedian(hba1c[healthy]) < 5.7


def test_thalassemia_trait_is_microcytic_with_a_mentzer_index_below_13_and_iron_deficiency_above(cohort):
    mcv, rbc = latest(cohort, "mcv"), latest(cohort, "rbc")
    mentzer = mcv / rbc
    thal = cohort.truth["thalassemia_trait"] & ~cohort.truth["iron_deficiency"]
    ida = cohort.truth["iron_deficiency"] & ~cohort.truth["thalassemia_trait"]

    assert np.nanmedian(mcv[thal]) < 80
    assert np.nanmedian(mentzer[thal]) < 13
    assert np.nanmedian(mentzer[ida]) > 13
    hemoglobin = latest(cohort, "hemoglobin")
    assert np.nanmedian(hemoglobin[ida]) < 11.0  # g/dL: anemic
    assert np.nanmedian(hemoglobin[thal]) > np.nanmedian(hemoglobin[ida])  # trait: only mildly low


def test_red_cell_indices_of_one_blood_count_are_coherent(cohort):
    by_visit = {}
    for code in ("hemoglobin", "hematocrit", "mchc"):
        mask = cohort.obs_analyte == code
        keys = zip(cohort.obs_patient[mask], cohort.obs_time[mask], strict=True)
        by_visit[code] = dict(zip(keys, cohort.obs_value[mask], strict=True))
    visits = by_visit["hemoglobin"].keys() & by_visit["hematocrit"].keys() & by_visit["mchc"].keys()
    hb, hct, mchc = (np.array([by_visit[code][v] for v in visits]) for code in ("hemoglobin", "hematocrit", "mchc"))

    assert len(visits) > 10_000
    np.testing.assert_allclose(mchc, hb * 100 / hct, rtol=1e-9)


def test_thrombocytopenia_lowers_platelets_below_the_reference_range(cohort):
    platelets = latest(cohort, "platelets")

    assert np.nanmedian(platelets[cohort.truth["thrombocytopenia"]]) < 150
    assert 150 < np.nanmedian(platelets[~cohort.truth["thrombocytopenia"]]) < 400


def test_most_healthy_values_fall_inside_the_reference_range(cohort):
    """About 95 % of healthy people lie inside a reference interval; the cohort should not be far off."""
    healthy = ~np.any(np.vstack(list(cohort.truth.values())), axis=0)
    for code, sex in [("hemoglobin", "female"), ("hemoglobin", "male"), ("sodium", "male"), ("glucose", "female")]:
        spec = SPECS[code]
        rng = reference_range(spec, sex, 50)
        values = latest(cohort, code)[healthy & (cohort.sex == sex)]
        values = values[~np.isnan(values)]
        inside = np.mean((values >= rng.low) & (values <= rng.high))
        assert inside > 0.85, (code, sex, inside)


def test_prevalence_is_close_to_the_documented_assumptions(cohort):
    female = cohort.sex == "female"

    assert 0.07 < cohort.truth["diabetes"].mean() < 0.16
    assert 0.04 < cohort.truth["iron_deficiency"][female].mean() < 0.08
    assert cohort.truth["iron_deficiency"][~female].mean() < 0.03
    assert 0.02 < cohort.truth["thalassemia_trait"].mean() < 0.04


def test_recorded_diagnoses_carry_some_label_noise_and_some_are_provisional(cohort):
    recorded = {(p, k) for p, k in zip(cohort.cond_patient, cohort.cond_key, strict=True)}
    truth = {(p, k) for k in CONDITIONS for p in np.flatnonzero(cohort.truth[k])}

    assert 0.9 < len(recorded & truth) / len(truth) < 1.0  # a few true diagnoses dropped
    assert recorded - truth  # and a few wrong ones added
    assert 0.05 < 1 - cohort.cond_confirmed.mean() < 0.15


@pytest.mark.django_db
def test_loading_stores_every_row_with_the_same_flags_as_manual_entry(clinic_a, patient_user_a):
    counts = demo_cohort_load(clinic=clinic_a, n_patients=60, seed=3, link_user=patient_user_a)

    assert Patient.objects.filter(clinic=clinic_a).count() == 60
    assert Observation.objects.filter(source=ObservationSource.DEMO).count() == counts["observations"]
    assert Condition.objects.count() == counts["conditions"]
    assert Condition.objects.filter(verification_status=VerificationStatus.CONFIRMED).exists()
    assert Patient.objects.get(user=patient_user_a).clinic == clinic_a
    for observation in Observation.objects.select_related("patient", "analyte")[:400]:
        spec = catalog().by_code[observation.analyte.code]
        age = age_on(observation.patient.birth_date, observation.effective_at.date())
        expected = interpret(spec, observation.value, observation.patient.sex, age)
        assert observation.interpretation == expected, observation.analyte.code
    event = AuditEvent.objects.get(action="demo.seed")
    assert event.detail["patients"] == 60


def test_which_panels_were_ordered_carries_no_signal_of_a_diagnosis(cohort):
    """Absence is not evidence: among patients with and without diabetes (or CKD), the share with a lipid panel,
    a metabolic panel and a blood count is the same within sampling noise."""
    for condition in ("diabetes", "ckd"):
        sick = np.zeros(cohort.n_patients, dtype=bool)
        sick[cohort.cond_patient[cohort.cond_key == condition]] = True
        for code in ("ldl", "creatinine", "hemoglobin", "troponin"):
            measured = ~np.isnan(latest(cohort, code))
            difference = abs(measured[sick].mean() - measured[~sick].mean())
            # 4 standard errors: eight comparisons, and a real dependence (a panel ordered twice as often for the
            # sick) would be many times that
            noise = 4 * np.sqrt(measured.mean() * (1 - measured.mean()) * (1 / sick.sum() + 1 / (~sick).sum()))
            assert difference < noise, (condition, code, measured[sick].mean(), measured[~sick].mean())


def test_most_patients_were_seen_within_the_year_and_the_rest_are_lapsed(cohort):
    last_seen = np.full(cohort.n_patients, np.datetime64("1900-01-01", "s"))
    np.maximum.at(last_seen, cohort.obs_patient, cohort.obs_time)
    within_year = last_seen >= np.datetime64(TODAY - datetime.timedelta(days=365), "s")

    assert 0.82 < within_year.mean() < 0.88
