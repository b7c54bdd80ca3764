"""The model's feature schema and the one function that turns observations and patients into feature rows.

Pure pandas and numpy (no Django), so training, batch scoring, a notebook and a benchmark build features
the same way. Inputs are long frames (`OBSERVATION_COLUMNS`, `PATIENT_COLUMNS`); the output is one row per
patient with the columns of `FEATURES`, in that order, and NaN where a value is unknown.

- Values are taken as given, in the catalog's canonical units. Nothing here converts or "repairs" a unit:
  a lab sending creatinine in mg/dL must show up as drift (see `drift.py`), not be silently hidden.
- Labs and vitals: the latest value per analyte in `[as_of - window_days, as_of]`. Nothing after `as_of` is
  read, so a training row never sees a result from its own future.
- Wearables: the mean of the daily values in `(as_of - wearable_days, as_of]`.
- Derived: eGFR (CKD-EPI 2021, race-free), total/HDL ratio, non-HDL cholesterol, HOMA-IR, Mentzer index,
  mean arterial pressure and WHO BMI class, each from the latest values above. Derived values combine the
  latest result of each input, which may come from different visits.
- Missing categorical values are NaN, not None: scikit-learn's `SimpleImputer` treats NaN as missing but
  keeps None as a category of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

SCHEMA_VERSION = "1"

OBSERVATION_COLUMNS = ("patient_id", "analyte", "value", "effective_at")
PATIENT_COLUMNS = (
    "patient_id",
    "sex",
    "birth_date",
    "smoking",
    "alcohol",
    "physical_activity",
    "diet",
    "family_history_diabetes",
    "family_history_cardiovascular",
    "family_history_anemia",
)


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "numeric" | "categorical"
    label: str  # what a clinician reads
    unit: str  # UCUM, or "" when dimensionless or categorical
    source: str  # "lab", "vital", "wearable", "derived", "demographic", "lifestyle", "family_history"
    analyte: str | None = None  # catalog code, for lab / vital / wearable features


# (code, label, kind, canonical UCUM unit) of the model's inputs, in the order of patients/catalog_data.ANALYTES.
# A copy, so ml/ does not depend on the patients app; a test keeps the two identical, less `RULES_ONLY`. Adding
# an analyte to the catalog therefore fails that test until it is added here (raising SCHEMA_VERSION) or to
# `RULES_ONLY`.
ANALYTES: tuple[tuple[str, str, str, str], ...] = (
    ("hemoglobin", "Hemoglobin", "lab", "g/dL"),
    ("hematocrit", "Hematocrit", "lab", "%"),
    ("rbc", "Red blood cells", "lab", "10*12/L"),
    ("wbc", "White blood cells", "lab", "10*9/L"),
    ("platelets", "Platelets", "lab", "10*9/L"),
    ("mcv", "Mean corpuscular volume", "lab", "fL"),
    ("mch", "Mean corpuscular hemoglobin", "lab", "pg"),
    ("mchc", "Mean corpuscular hemoglobin concentration", "lab", "g/dL"),
    ("glucose", "Glucose (fasting)", "lab", "mmol/L"),
    ("hba1c", "Hemoglobin A1c", "lab", "%"),
    ("creatinine", "Creatinine", "lab", "umol/L"),
    ("sodium", "Sodium", "lab", "mmol/L"),
    ("potassium", "Potassium", "lab", "mmol/L"),
    ("insulin", "Insulin (fasting)", "lab", "u[IU]/mL"),
    ("total_cholesterol", "Total cholesterol", "lab", "mmol/L"),
    ("ldl", "LDL cholesterol", "lab", "mmol/L"),
    ("hdl", "HDL cholesterol", "lab", "mmol/L"),
    ("triglycerides", "Triglycerides", "lab", "mmol/L"),
    ("alt", "Alanine aminotransferase (ALT)", "lab", "U/L"),
    ("ast", "Aspartate aminotransferase (AST)", "lab", "U/L"),
    ("crp", "C-reactive protein", "lab", "mg/L"),
    ("hs_crp", "High-sensitivity CRP", "lab", "mg/L"),
    ("troponin", "Troponin I (high-sensitivity)", "lab", "ng/L"),
    ("bmi", "Body mass index", "vital", "kg/m2"),
    ("systolic_bp", "Systolic blood pressure", "vital", "mm[Hg]"),
    ("diastolic_bp", "Diastolic blood pressure", "vital", "mm[Hg]"),
    ("heart_rate", "Heart rate", "vital", "/min"),
    ("body_weight", "Body weight", "vital", "kg"),
    ("body_height", "Body height", "vital", "cm"),
    ("steps", "Step count (daily mean)", "wearable", "/d"),
    ("resting_heart_rate", "Resting heart rate (daily mean)", "wearable", "/min"),
    ("sleep_duration", "Sleep duration (daily mean)", "wearable", "h"),
)

# Catalog analytes the guideline rules judge but the model does not read (yet): a new input changes the columns
# of every trained model, so it waits for a schema change of its own. The lab-reported eGFR stands in for the
# derived "egfr" in the rules only.
RULES_ONLY = ("glucose_random", "egfr_reported", "troponin_t_hs", "troponin_i", "troponin_t")

LIFESTYLE = ("smoking", "alcohol", "physical_activity", "diet")
FAMILY_HISTORY = ("family_history_diabetes", "family_history_cardiovascular", "family_history_anemia")

FEATURES: tuple[Feature, ...] = (
    *(Feature(code, "numeric", label, unit, kind, code) for code, label, kind, unit in ANALYTES),
    Feature("egfr", "numeric", "eGFR (CKD-EPI 2021)", "mL/min/{1.73_m2}", "derived"),
    Feature("total_hdl_ratio", "numeric", "Total/HDL cholesterol ratio", "", "derived"),
    Feature("non_hdl_cholesterol", "numeric", "Non-HDL cholesterol", "mmol/L", "derived"),
    Feature("homa_ir", "numeric", "HOMA-IR (insulin resistance)", "", "derived"),
    Feature("mentzer_index", "numeric", "Mentzer index (MCV/RBC)", "", "derived"),
    Feature("mean_arterial_pressure", "numeric", "Mean arterial pressure", "mm[Hg]", "derived"),
    Feature("bmi_class", "categorical", "BMI class (WHO)", "", "derived"),
    Feature("age", "numeric", "Age", "a", "demographic"),
    Feature("sex", "categorical", "Sex", "", "demographic"),
    Feature("smoking", "categorical", "Smoking", "", "lifestyle"),
    Feature("alcohol", "categorical", "Alcohol", "", "lifestyle"),
    Feature("physical_activity", "categorical", "Physical activity", "", "lifestyle"),
    Feature("diet", "categorical", "Diet", "", "lifestyle"),
    Feature("family_history_diabetes", "categorical", "Family history of diabetes", "", "family_history"),
    Feature(
        "family_history_cardiovascular", "categorical", "Family history of cardiovascular disease", "", "family_history"
    ),
    Feature("family_history_anemia", "categorical", "Family history of anemia", "", "family_history"),
)

NUMERIC: list[str] = [f.name for f in FEATURES if f.kind == "numeric"]
CATEGORICAL: list[str] = [f.name for f in FEATURES if f.kind == "categorical"]

_CODES = [code for code, *_ in ANALYTES]
_IS_WEARABLE = np.array([kind == "wearable" for _, _, kind, _ in ANALYTES])
CREATININE_UMOL_PER_MG_DL = 88.42


def feature_schema() -> dict:
    """The schema as stored with a model version: a model is only ever fed the columns it was trained on."""
    return {"version": SCHEMA_VERSION, "features": [asdict(f) for f in FEATURES]}


def build_features(
    observations: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    window_days: int = 730,
    wearable_days: int = 30,
) -> pd.DataFrame:
    """One feature row per patient of `patients` (same order, index `patient_id`), columns as in `FEATURES`."""
    as_of = pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware: a naive time is ambiguous by hours around midnight")
    ids = pd.Index(patients["patient_id"], name="patient_id")
    if ids.has_duplicates:
        raise ValueError("patients has duplicate patient_id values")

    obs = _aware_observations(observations)
    when = obs["effective_at"]
    values = obs["value"].to_numpy(dtype=float, na_value=np.nan)
    rows, cols = _positions(obs, ids)
    usable = (rows >= 0) & (cols >= 0) & ~np.isnan(values) & (when <= as_of).to_numpy()
    wearable = usable & _IS_WEARABLE[cols]  # rows with cols == -1 are already not usable
    measured = usable & ~wearable & (when >= as_of - pd.Timedelta(days=window_days)).to_numpy()
    wearable &= (when > as_of - pd.Timedelta(days=wearable_days)).to_numpy()
    shape = (len(ids), len(_CODES))
    latest = _latest(rows[measured], cols[measured], values[measured], _utc_ns(when[measured]), shape)
    means = _daily_mean(rows[wearable], cols[wearable], values[wearable], _utc_ns(when[wearable]), shape)
    out = pd.DataFrame(np.where(_IS_WEARABLE, means, latest), index=ids, columns=_CODES)

    people = patients.set_index("patient_id")
    age = _age_years(people["birth_date"], as_of)
    sex = _category(people["sex"])
    for name, column in _derived(out, age=age, sex=sex).items():
        out[name] = column
    out["age"] = age
    out["sex"] = sex
    for name in LIFESTYLE:
        out[name] = _category(people[name])
    for name in FAMILY_HISTORY:
        out[name] = _category(people[name].map({True: "yes", False: "no"}))
    return out[[f.name for f in FEATURES]]


def _aware_observations(observations: pd.DataFrame) -> pd.DataFrame:
    obs = observations.loc[:, list(OBSERVATION_COLUMNS)]
    when = obs["effective_at"]
    if obs.empty:
        when = when.astype("datetime64[ns, UTC]")
    elif not isinstance(when.dtype, pd.DatetimeTZDtype):
        when = pd.to_datetime(when)  # e.g. an object column of aware datetimes
    if not isinstance(when.dtype, pd.DatetimeTZDtype):
        raise ValueError("effective_at must be timezone-aware (UTC)")
    return obs.assign(effective_at=when)


def _positions(obs: pd.DataFrame, ids: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Row (patient) and column (analyte) of every observation; -1 where it is not one of ours."""
    rows = ids.get_indexer(obs["patient_id"])
    # Factorize first: a few distinct codes are looked up instead of millions of strings.
    found, names = pd.factorize(obs["analyte"])
    cols = np.append(pd.Index(_CODES).get_indexer(names), -1)[found]  # found == -1 (missing) -> -1
    return rows, cols


def _latest(rows, cols, values, times, shape) -> np.ndarray:
    """The value with the latest time per (row, col) cell, NaN for empty cells."""
    cell = rows * shape[1] + cols
    # Stable sort by cell then time: the last entry of a cell is its latest value, and of two results with
    # the same timestamp the one given last wins.
    order = np.lexsort((times, cell))
    cell, values = cell[order], values[order]
    last = np.r_[cell[1:] != cell[:-1], True][: len(cell)]
    grid = np.full(shape[0] * shape[1], np.nan)
    grid[cell[last]] = values[last]
    return grid.reshape(shape)


def _daily_mean(rows, cols, values, times, shape) -> np.ndarray:
    """Mean over days of one value per cell and UTC day: a day sent twice counts once, its latest value."""
    cell = rows * shape[1] + cols
    days = times // (86_400 * 10**9)
    order = np.lexsort((times, days, cell))
    cell, days, values = cell[order], days[order], values[order]
    last_of_day = np.r_[(cell[1:] != cell[:-1]) | (days[1:] != days[:-1]), True][: len(cell)]
    size = shape[0] * shape[1]
    total = np.bincount(cell[last_of_day], weights=values[last_of_day], minlength=size)
    count = np.bincount(cell[last_of_day], minlength=size)
    return (total / np.where(count > 0, count, np.nan)).reshape(shape)


def _utc_ns(when: pd.Series) -> np.ndarray:
    """Nanoseconds since the epoch, whatever the unit and zone the column arrived in."""
    return when.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]").view(np.int64)


def _age_years(birth_date: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Completed years at the UTC date of `as_of`; NaN when unknown or born after `as_of`."""
    born = pd.to_datetime(birth_date)
    day = as_of.tz_convert("UTC")
    years = day.year - born.dt.year
    before_birthday = (born.dt.month * 100 + born.dt.day) > (day.month * 100 + day.day)
    age = (years - before_birthday.astype(int)).astype(float)
    return age.where(age >= 0)


def _category(values: pd.Series) -> pd.Series:
    """Strings as given; missing or blank is the explicit category "unknown"."""
    values = values.astype(object)
    return values.where(values.notna() & (values != ""), "unknown")


def _derived(x: pd.DataFrame, *, age: pd.Series, sex: pd.Series) -> dict[str, pd.Series]:
    hdl = x["hdl"].where(x["hdl"] > 0)
    rbc = x["rbc"].where(x["rbc"] > 0)
    sbp, dbp = x["systolic_bp"], x["diastolic_bp"]
    bmi_class = pd.cut(
        x["bmi"],
        bins=[-np.inf, 18.5, 25.0, 30.0, np.inf],
        right=False,  # WHO: normal is 18.5 to < 25, overweight 25 to < 30, obese from 30
        labels=["underweight", "normal", "overweight", "obese"],
    )
    return {
        "egfr": _egfr_ckd_epi_2021(x["creatinine"], age=age, sex=sex),
        "total_hdl_ratio": x["total_cholesterol"] / hdl,
        "non_hdl_cholesterol": x["total_cholesterol"] - x["hdl"],
        "homa_ir": x["glucose"] * x["insulin"] / 22.5,  # glucose mmol/L x insulin uIU/mL / 22.5
        "mentzer_index": x["mcv"] / rbc,
        "mean_arterial_pressure": dbp + (sbp - dbp) / 3,
        "bmi_class": bmi_class.astype(object),
    }


def _egfr_ckd_epi_2021(creatinine_umol: pd.Series, *, age: pd.Series, sex: pd.Series) -> pd.Series:
    """eGFR in mL/min/1.73 m2 by the race-free CKD-EPI 2021 creatinine equation (Inker et al., NEJM 2021).

    The equation has coefficients for female and male only, and at the same creatinine and age they differ by
    about 25 %. For sex "other" or "unknown" a guess could put a patient in the wrong CKD stage, so the feature
    is left missing and the model relies on creatinine itself. It is also missing under 18, where the equation
    is not validated (children need the CKiD bedside Schwartz equation).
    """
    female, male = (sex == "female").to_numpy(), (sex == "male").to_numpy()
    egfr = np.where(
        female | male, ckd_epi_2021(creatinine_umol.to_numpy(dtype=float), age.to_numpy(dtype=float), female), np.nan
    )
    return pd.Series(egfr, index=creatinine_umol.index).where(age >= 18)


def ckd_epi_2021(creatinine_umol, age, female):
    """The race-free CKD-EPI 2021 creatinine equation (Inker et al., NEJM 2021), mL/min/1.73 m2, for scalars or
    arrays: creatinine in umol/L, age in years, `female` true or false. NaN where creatinine is not positive."""
    scr = np.asarray(creatinine_umol, dtype=float) / CREATININE_UMOL_PER_MG_DL
    scr = np.where(scr > 0, scr, np.nan)
    female = np.asarray(female, dtype=bool)
    ratio = scr / np.where(female, 0.7, 0.9)
    alpha = np.where(female, -0.241, -0.302)
    return (
        142.0
        * np.minimum(ratio, 1.0) ** alpha
        * np.maximum(ratio, 1.0) ** -1.200
        * 0.9938 ** np.asarray(age, dtype=float)
        * np.where(female, 1.012, 1.0)
    )
