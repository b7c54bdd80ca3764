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

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

SCHEMA_VERSION = "2"  # 2: per-analyte recency windows (`RECENT_DAYS`), required inputs (`REQUIRED_INPUTS`)

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
# A copy, so ml/ does not depend on the patients app; a test keeps the two identical, less `RULES_ONLY` and
# `RECORD_ONLY`. Adding an analyte to the catalog therefore fails that test until it is added here (raising
# SCHEMA_VERSION) or to one of those two.
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

# Catalog analytes that are recorded, flagged against their ranges and shown, and whose critical limits give the
# generic urgent item, but that no model reads: the rest of the real panels (full blood count indices and
# differential, the metabolic panel, coagulation, iron studies, urine albumin and test strips, NT-proBNP,
# allergen-specific IgE, arterial blood gases).
# A model trained on them would need a schema of its own and the data to learn from.
RECORD_ONLY = (
    "rdw_cv", "rdw_sd", "mpv", "pdw", "neutrophils", "lymphocytes", "monocytes", "eosinophils", "basophils",
    "neutrophils_pct", "lymphocytes_pct", "monocytes_pct", "eosinophils_pct", "basophils_pct",
    "urea", "calcium", "chloride", "co2_total", "magnesium", "phosphate", "lactate",
    "albumin", "total_protein", "globulin", "bilirubin", "alp", "nt_probnp",
    "inr", "pt", "aptt", "ferritin", "iron", "tibc", "transferrin_saturation", "urine_acr", "urine_sg", "urine_ph",
    "urine_glucose", "urine_protein", "urine_ketones", "urine_bilirubin",
    "ige_peanut", "ige_walnut", "ige_codfish", "ige_shrimp", "ige_wheat", "ige_egg_white", "ige_soybean",
    "ige_cow_milk", "ige_white_oak", "ige_ragweed", "ige_cat_dander", "ige_dust_mite", "ige_cladosporium",
    "ige_honey_bee", "ige_latex", "ph_arterial", "pco2_arterial", "po2_arterial", "hco3_arterial",
)  # fmt: skip

# How recent a lab or vital must be to be read at all, in days: a copy of the catalog's recency windows
# (patients/catalog_data.RECENCY, where each is cited), kept identical by a test; other analytes use `window_days`.
# An older value is not shown to the model as current: the input is missing.
RECENT_DAYS: dict[str, int] = {
    "glucose": 365, "hba1c": 365, "insulin": 365, "total_cholesterol": 365, "ldl": 365, "hdl": 365,
    "triglycerides": 365, "creatinine": 365, "systolic_bp": 365, "diastolic_bp": 365, "troponin": 7,
}  # fmt: skip

# Adult reference ranges, (female, male) as (low, high) with None for no limit: a copy of the catalog's
# (patients/catalog_data.py), kept identical by a test. The model reads a lab or vital inside its range as
# "normal", the same as not measured (`candidates.NormalMasker`), so a normal result and a missing one weigh alike.
NORMAL_RANGES: dict[str, tuple[tuple[float | None, float | None], tuple[float | None, float | None]]] = {
    "hemoglobin": ((12.0, 15.5), (13.0, 17.5)), "hematocrit": ((36.0, 46.0), (41.0, 53.0)),
    "rbc": ((3.9, 5.1), (4.3, 5.7)), "wbc": ((4.0, 11.0), (4.0, 11.0)), "platelets": ((150.0, 400.0), (150.0, 400.0)),
    "mcv": ((80.0, 100.0), (80.0, 100.0)), "mch": ((27.0, 33.0), (27.0, 33.0)), "mchc": ((32.0, 36.0), (32.0, 36.0)),
    "glucose": ((3.9, 5.5), (3.9, 5.5)), "hba1c": ((4.0, 5.6), (4.0, 5.6)),
    "creatinine": ((45.0, 84.0), (59.0, 104.0)), "sodium": ((135.0, 145.0), (135.0, 145.0)),
    "potassium": ((3.5, 5.1), (3.5, 5.1)), "insulin": ((2.6, 24.9), (2.6, 24.9)),
    "total_cholesterol": ((None, 5.17), (None, 5.17)), "ldl": ((None, 3.36), (None, 3.36)),
    "hdl": ((1.29, None), (1.03, None)), "triglycerides": ((None, 1.69), (None, 1.69)),
    "alt": ((None, 25.0), (None, 33.0)), "ast": ((10.0, 40.0), (10.0, 40.0)), "crp": ((None, 5.0), (None, 5.0)),
    "hs_crp": ((None, 3.0), (None, 3.0)), "troponin": ((None, 16.0), (None, 34.0)),
    "bmi": ((18.5, 24.9), (18.5, 24.9)), "systolic_bp": ((90.0, 129.0), (90.0, 129.0)),
    "diastolic_bp": ((60.0, 79.0), (60.0, 79.0)), "heart_rate": ((60.0, 100.0), (60.0, 100.0)),
}  # fmt: skip


def normal_range(code: str, sex: str) -> tuple[float, float]:
    """The adult reference limits of `code` for this sex (the narrower range when the sex is not recorded); an open
    side is infinite."""
    (female_low, female_high), (male_low, male_high) = NORMAL_RANGES[code]
    lows = [-np.inf if limit is None else limit for limit in (female_low, male_low)]
    highs = [np.inf if limit is None else limit for limit in (female_high, male_high)]
    if sex in ("female", "male"):
        index = 0 if sex == "female" else 1
        return lows[index], highs[index]
    return max(lows), min(highs)


def normal_limits(X: pd.DataFrame, codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `normal_range` of each of `codes`, by the row's sex: (low, high), each rows x codes."""
    low, high = _limits_by_sex(tuple(codes))
    sex = (X["sex"].astype(str).to_numpy() if "sex" in X.columns else np.full(len(X), ""))[:, None]

    def by_sex(table: np.ndarray) -> np.ndarray:
        return np.where(sex == "female", table[0], np.where(sex == "male", table[1], table[2]))

    return by_sex(low), by_sex(high)


@functools.cache
def _limits_by_sex(codes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of each code for a woman, a man and a sex not recorded: each 3 x codes."""
    table = np.array([[normal_range(code, sex) for code in codes] for sex in ("female", "male", "")], dtype=float)
    table = table.reshape(3, len(codes), 2)  # also for no codes: a frame without any lab
    return table[..., 0], table[..., 1]


def any_outside_range(X: pd.DataFrame) -> np.ndarray:
    """Whether each row has at least one lab or vital outside its reference range."""
    codes = [code for code in NORMAL_RANGES if code in X.columns]
    low, high = normal_limits(X, codes)
    values = X[codes].to_numpy(dtype=float)
    return ((values < low) | (values > high)).any(axis=1)  # NaN compares false: not measured is not outside


def outside_range(inputs: dict) -> bool:
    """`any_outside_range` of one stored input row (a prediction's `inputs`), without building a frame."""
    sex = str(inputs.get("sex") or "")
    for code in NORMAL_RANGES:
        value = inputs.get(code)
        if isinstance(value, int | float) and not isinstance(value, bool):
            low, high = normal_range(code, sex)
            if value < low or value > high:
                return True
    return False


# The derived values (`derived_features`), computed again from the masked analytes (`candidates.NormalMasker`).
DERIVED = ("egfr", "total_hdl_ratio", "non_hdl_cholesterol", "homa_ir", "mentzer_index", "mean_arterial_pressure",
           "bmi_class")  # fmt: skip

# What a model needs before it may give a risk estimate: one recent value of each group (any of its analytes).
# The target conditions are read from these (diabetes and prediabetes from glycaemia, CKD from creatinine,
# the anaemias, thalassaemia trait and thrombocytopenia from the blood count);
# a patient without one of them would be scored from the others and demographics alone, which is how a patient
# with four blood-count values got "moderate risk". Stored with each model version (`feature_schema`).
#
# Cholesterol is not required: without it the model reads dyslipidaemia from imputed values typical of patients
# without a target condition, so the missing panel lowers nothing and raises nothing (absence is not evidence),
# and the guideline rules still judge whatever lipids there are.
REQUIRED_INPUTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("haemoglobin (a blood count)", ("hemoglobin",)),
    ("HbA1c or fasting glucose", ("hba1c", "glucose")),
    ("creatinine", ("creatinine",)),
)

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
    """The schema as stored with a model version: a model is only ever fed the columns it was trained on, and
    scores only a patient who has the inputs it needs (`required`), each within its window (`recent_days`)."""
    return {
        "version": SCHEMA_VERSION,
        "features": [asdict(f) for f in FEATURES],
        "required": [{"name": name, "any_of": list(codes)} for name, codes in REQUIRED_INPUTS],
        "recent_days": dict(RECENT_DAYS),
    }


def missing_inputs(X: pd.DataFrame, required: list[dict] | None = None) -> list[list[str]]:
    """For each row of X (same order), the names of the required input groups it has no value of: [] when the
    row may be scored. `required` is a model version's stored list (`feature_schema()["required"]`)."""
    groups = required if required is not None else feature_schema()["required"]
    has = {}
    for group in groups:
        present = [code for code in group["any_of"] if code in X.columns]
        has[group["name"]] = X[present].notna().any(axis=1).to_numpy() if present else np.zeros(len(X), dtype=bool)
    return [[name for name, rows in has.items() if not rows[row]] for row in range(len(X))]


def build_features(
    observations: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    window_days: int = 730,
    wearable_days: int = 30,
) -> pd.DataFrame:
    """One feature row per patient of `patients` (same order, index `patient_id`), columns as in `FEATURES`.

    A lab or vital is read within `window_days`, or its own shorter window (`RECENT_DAYS`)."""
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
    windows = np.array([min(window_days, RECENT_DAYS.get(code, window_days)) for code in _CODES] + [0])
    age_days = ((as_of - when).dt.total_seconds() / 86_400).to_numpy()
    measured = usable & ~wearable & (age_days <= windows[cols])
    wearable &= (when > as_of - pd.Timedelta(days=wearable_days)).to_numpy()
    shape = (len(ids), len(_CODES))
    latest = _latest(rows[measured], cols[measured], values[measured], _utc_ns(when[measured]), shape)
    means = _daily_mean(rows[wearable], cols[wearable], values[wearable], _utc_ns(when[wearable]), shape)
    out = pd.DataFrame(np.where(_IS_WEARABLE, means, latest), index=ids, columns=_CODES)

    people = patients.set_index("patient_id")
    age = _age_years(people["birth_date"], as_of)
    sex = _category(people["sex"])
    for name, column in derived_features(out, age=age, sex=sex).items():
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


def derived_features(x: pd.DataFrame, *, age: pd.Series, sex: pd.Series) -> dict[str, pd.Series]:
    """eGFR, the lipid ratios, HOMA-IR, the Mentzer index, mean arterial pressure and the BMI class, from `x`."""
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
