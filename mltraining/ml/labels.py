"""Training labels from recorded diagnoses: one class per patient, or none when the label is uncertain.

Why one multi-class label with a priority order: the model answers "which target condition does this
patient's pattern most resemble", with calibrated probabilities that sum to one over the classes, so a
clinician reads one ranked list per patient and the metrics compare like with like. The priority puts the
condition with the most consequence for care first: CKD changes drug dosing and how several labs read;
diabetes outranks its own precursor, prediabetes, when a record carries both; thalassemia trait outranks
iron deficiency because treating a carrier's microcytosis as iron deficiency gives iron that is not needed.

The limitation: co-occurring conditions are reduced to one label. A patient with diabetes and dyslipidemia
is trained on as "diabetes" only, so the model learns dyslipidemia from fewer patients than have it, and a
low dyslipidemia probability does not rule it out. A multi-label model (one binary output per condition)
would keep both; it was not chosen because its probabilities do not form one ranking and its calibration
and metrics per patient are harder to explain.

Rules per patient, over diagnoses whose ICD-10 code maps to a target class:

- refuted or entered-in-error diagnoses are ignored, as if never recorded;
- a confirmed diagnosis that is not resolved (active, recurrence, inactive, remission) is a positive;
  the patient gets the highest-priority positive class;
- with no positive but some other target diagnosis (provisional, unconfirmed, differential, or confirmed
  and resolved), the patient is excluded (`pd.NA`): the label is uncertain, and calling the patient
  healthy would teach the model that the pattern is normal;
- with no target diagnosis at all, the patient is `HEALTHY`.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

HEALTHY = "healthy"

LABELS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("ckd", "Chronic kidney disease", ("N18",)),
    ("diabetes", "Type 2 diabetes", ("E11", "E10", "E13", "E14")),
    ("thalassemia_trait", "Thalassemia trait", ("D56",)),
    ("iron_deficiency", "Iron-deficiency anemia", ("D50",)),
    ("thrombocytopenia", "Thrombocytopenia", ("D69.6", "D69.5", "D69.4")),
    ("dyslipidemia", "Dyslipidemia", ("E78",)),
    ("prediabetes", "Prediabetes", ("R73.0", "R73.9")),
)

CLASS_DISPLAY: dict[str, str] = {key: display for key, display, _ in LABELS} | {HEALTHY: "No target condition"}

_IGNORED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
_PRIORITY = {key: rank for rank, (key, _, _) in enumerate(LABELS)}


def _normal(code: str) -> str:
    # Every ICD-10 category has exactly three characters before the dot, so dropping the dot is unambiguous
    # and "E11.9", "e11.9" and the dotless "E119" of claims data all match the prefix "E11".
    return code.strip().upper().replace(".", "")


_PREFIXES: tuple[tuple[str, str], ...] = tuple((_normal(p), key) for key, _, prefixes in LABELS for p in prefixes)


def class_of_code(code: str) -> str | None:
    """The target class of an ICD-10 code ("E11.9" -> "diabetes"), or None when it is not a target."""
    normal = _normal(code or "")
    return next((key for prefix, key in _PREFIXES if normal.startswith(prefix)), None)


def _lower(column: pd.Series) -> pd.Series:
    return column.astype("string").fillna("").str.lower()


def label_patients(conditions: pd.DataFrame, patient_ids: Sequence[int]) -> pd.Series:
    """The class key per patient id (all of `patient_ids`, in order), `pd.NA` for patients to exclude."""
    ids = pd.Index(patient_ids, name="patient_id")
    codes = conditions["code"].astype(object)
    classes = codes.map({code: class_of_code(str(code)) for code in codes.dropna().unique()})
    verification = _lower(conditions["verification_status"])
    clinical = _lower(conditions["clinical_status"])
    target = classes.notna() & ~verification.isin(_IGNORED_VERIFICATION)
    rows = pd.DataFrame(
        {
            "patient_id": conditions["patient_id"],
            "priority": classes.map(_PRIORITY),
            "positive": (verification == "confirmed") & (clinical != "resolved"),
        }
    )[target.to_numpy()]
    positives = rows[rows["positive"]]
    best = positives.groupby("patient_id")["priority"].min().map({rank: key for key, rank in _PRIORITY.items()})
    labels = pd.Series(HEALTHY, index=ids, dtype=object, name="label")
    labels[ids.isin(rows["patient_id"])] = pd.NA
    found = best.reindex(ids)
    return labels.where(found.isna(), found)
