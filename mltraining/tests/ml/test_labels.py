"""Training labels from recorded diagnoses (no database)."""

import pandas as pd
import pytest

from mltraining.ml.labels import CLASS_DISPLAY, HEALTHY, LABELS, class_of_code, label_patients


def _conditions(*rows) -> pd.DataFrame:
    """Rows of (patient_id, code, verification_status, clinical_status)."""
    return pd.DataFrame(rows, columns=["patient_id", "code", "verification_status", "clinical_status"])


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("E11.9", "diabetes"),
        ("E10.65", "diabetes"),
        ("e119", "diabetes"),  # lower case, no dot, as in claims data
        ("E78.5", "dyslipidemia"),
        ("N18.3", "ckd"),
        ("D56.3", "thalassemia_trait"),
        ("D50.9", "iron_deficiency"),
        ("D69.6", "thrombocytopenia"),
        ("D69.3", None),  # immune thrombocytopenic purpura: not one of the target prefixes
        ("R73.03", "prediabetes"),
        ("R73.9", "prediabetes"),
        ("R73.1", None),
        ("Z00", None),
        ("E1", None),
        ("", None),
    ],
)
def test_a_code_maps_to_its_class_by_prefix(code, expected):
    assert class_of_code(code) == expected


def test_the_highest_priority_confirmed_diagnosis_wins():
    conditions = _conditions(
        (1, "E78.5", "confirmed", "active"),
        (1, "E11.9", "confirmed", "active"),
        (1, "N18.3", "confirmed", "active"),
        (2, "D50.9", "confirmed", "active"),
        (2, "D56.3", "confirmed", "active"),
        (3, "R73.03", "confirmed", "active"),
        (3, "E11.9", "confirmed", "active"),
    )

    labels = label_patients(conditions, [1, 2, 3])

    assert labels.tolist() == ["ckd", "thalassemia_trait", "diabetes"]


def test_a_provisional_diagnosis_alone_excludes_the_patient():
    conditions = _conditions((1, "E11.9", "provisional", "active"), (2, "D69.6", "unconfirmed", "active"))

    labels = label_patients(conditions, [1, 2])

    assert labels.isna().all()


def test_a_provisional_diagnosis_does_not_override_a_confirmed_one():
    conditions = _conditions((1, "N18.3", "provisional", "active"), (1, "E78.5", "confirmed", "active"))

    assert label_patients(conditions, [1])[1] == "dyslipidemia"


def test_refuted_and_erroneous_diagnoses_are_ignored():
    conditions = _conditions(
        (1, "E11.9", "refuted", "active"),
        (2, "E78.5", "entered-in-error", "active"),
        (3, "E11.9", "refuted", "active"),
        (3, "E78.5", "confirmed", "active"),
    )

    assert label_patients(conditions, [1, 2, 3]).tolist() == [HEALTHY, HEALTHY, "dyslipidemia"]


def test_a_confirmed_but_resolved_diagnosis_excludes_and_a_dormant_one_counts():
    conditions = _conditions(
        (1, "D50.9", "confirmed", "resolved"),
        (2, "E11.9", "confirmed", "remission"),
        (3, "D69.6", "confirmed", "inactive"),
        (4, "E78.5", "confirmed", None),
    )

    labels = label_patients(conditions, [1, 2, 3, 4])

    assert pd.isna(labels[1])
    assert labels[[2, 3, 4]].tolist() == ["diabetes", "thrombocytopenia", "dyslipidemia"]


def test_patients_without_a_target_diagnosis_are_healthy():
    conditions = _conditions((1, "Z00.00", "confirmed", "active"), (1, "I10", "confirmed", "active"))

    assert label_patients(conditions, [1, 2]).tolist() == [HEALTHY, HEALTHY]
    assert label_patients(_conditions(), [5]).tolist() == [HEALTHY]


def test_a_missing_clinical_status_counts_as_active():
    conditions = _conditions((1, "E11.9", "confirmed", None))
    conditions["clinical_status"] = float("nan")  # an all-missing column arrives as float

    assert label_patients(conditions, [1]).tolist() == ["diabetes"]


def test_every_given_id_is_returned_in_order_and_others_are_ignored():
    conditions = _conditions((7, "E11.9", "confirmed", "active"), (99, "N18.3", "confirmed", "active"))

    labels = label_patients(conditions, [8, 7, 6])

    assert list(labels.index) == [8, 7, 6]
    assert labels.index.name == "patient_id"
    assert labels.tolist() == [HEALTHY, "diabetes", HEALTHY]


def test_every_class_has_a_display_name():
    assert set(CLASS_DISPLAY) == {key for key, _, _ in LABELS} | {HEALTHY}
    assert CLASS_DISPLAY[HEALTHY] == "No target condition"


def test_the_demo_cohort_codes_map_to_their_own_class():
    from patients.demo_cohort import CONDITIONS

    assert {key: class_of_code(code) for key, (code, _) in CONDITIONS.items()} == {key: key for key in CONDITIONS}
