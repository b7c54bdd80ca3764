"""Rules the selectors state twice, for speed, held to one answer on a varied cohort."""

import pytest

from patients.demo import demo_cohort_load, demo_critical_results_enter
from patients.models import Observation, Patient
from patients.selectors import (
    ABNORMAL,
    CRITICAL,
    critical_patient_counts,
    latest_flagged_values,
    patient_search,
)
from patients.services import observation_amend

pytestmark = pytest.mark.django_db


def test_the_lists_flagged_cell_and_its_filters_pick_the_same_patients(clinic_a, doctor_a, staff_a):
    """The list's flagged cell (`latest_flagged_values`, written-out SQL) and its abnormal and critical filters and
    the home page's count (`_latest_flagged`, the ORM) state one rule: a final result that is its analyte's latest
    final result. With some of the newest flagged results withdrawn (the value before them counts again), every
    patient the cell flags is one the filter finds, and no other."""
    demo_cohort_load(clinic=clinic_a, n_patients=120, seed=5)
    demo_critical_results_enter(clinic=clinic_a, seed=5)
    newest_flagged = Observation.objects.filter(patient__clinic=clinic_a, interpretation__in=ABNORMAL)
    for observation in newest_flagged.order_by("-effective_at", "-pk")[:12]:
        observation_amend(observation=observation, by=doctor_a, reason="entered for another patient")
    ids = list(Patient.objects.filter(clinic=clinic_a).values_list("pk", flat=True))

    for flags, filters in ((ABNORMAL, {"abnormal": True}), (CRITICAL, {"critical": True})):
        cell = latest_flagged_values(patient_ids=ids, critical=flags == CRITICAL)
        flagged = {patient_id for patient_id, values in cell.items() if values}
        assert flagged == set(patient_search(user=doctor_a, **filters).values_list("pk", flat=True))
        assert flagged  # the cohort has some: the comparison says something
        assert {interpretation for values in cell.values() for _analyte, _value, interpretation in values} <= set(flags)
    assert critical_patient_counts(user=doctor_a)["patients"] == len(
        {pid for pid, values in latest_flagged_values(patient_ids=ids, critical=True).items() if values}
    )
