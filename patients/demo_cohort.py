"""A synthetic, clinically coherent demo cohort, generated with vectorised numpy from one seed.

Pure numpy: no Django, so benchmarks and notebooks use it as is; `patients.demo` loads it into a clinic.
It is demo and benchmark data, never anything a patient's care depends on.

Assumptions (adult outpatients; values in the catalog's canonical units):

- Age 18-90, skewed to middle age; 51 % female.
- Prevalence (before age adjustment): type 2 diabetes 10 % and prediabetes 15 % (CDC National Diabetes
  Statistics Report 2023: 11.6 % diabetes, 38 % prediabetes by HbA1c/FPG in US adults; prediabetes here
  is the diagnosed share), iron-deficiency anemia 6 % of women and 1.5 % of men (WHO 2024 anaemia
  fact sheet; menstruating women carry most of it), thalassemia trait 3 % (carrier rates 1-15 % by
  ancestry, Weatherall & Clegg, Bull WHO 2001), thrombocytopenia 2 %, dyslipidemia 20 % (NHANES: about
  a quarter of adults have LDL >= 160 mg/dL or treatment), chronic kidney disease stage 3 rising from
  2 % below 50 to 20 % over 70 (USRDS 2023). Conditions may co-occur; diabetes raises the odds of CKD.
- Healthy values: normal distributions around reference-interval midpoints with the spread that puts
  about 95 % inside the adult reference range by sex (Tietz; ranges in patients/catalog_data.py);
  right-skewed analytes (triglycerides, CRP, insulin, ALT, troponin, WBC) are lognormal.
- Red cell indices are computed from each other so they stay coherent: RBC, MCV and MCHC (tightly
  regulated, about 33.5 g/dL) are drawn; hematocrit = MCV x RBC / 10, hemoglobin = MCHC x hematocrit / 100
  and MCH = hemoglobin x 10 / RBC.
- Shifts per condition: diabetes raises fasting glucose (mean 8.5 mmol/L), HbA1c (7.6 %), BMI,
  triglycerides and insulin and lowers HDL; prediabetes puts glucose at 5.6-6.9 mmol/L and HbA1c at
  5.7-6.4 % (ADA 2025 criteria); iron deficiency lowers hemoglobin (about 2.5 g/dL), MCV (about 74 fL)
  and RBC; thalassemia trait lowers MCV (about 66 fL) and MCH with a normal or high RBC, so the Mentzer
  index (MCV/RBC) is below 13, and hemoglobin only mildly; thrombocytopenia puts platelets near
  85 x 10^9/L; dyslipidemia raises LDL (about 4.6 mmol/L) and total cholesterol; CKD doubles creatinine
  and nudges potassium up and hemoglobin down.
- Visits: 1-4 per patient (mean 1.3). 85 % of patients are on the clinic's active list and were last seen
  within the year (adults with a chronic condition or risk factor are reviewed at least yearly: ADA 2025
  Standards 2-3 for prediabetes, KDIGO 2024 for CKD, 2018 AHA/ACC for lipids); the other 15 % were last seen 1-3
  years ago, so their results are too old for a risk estimate. Earlier visits lie 1-24 months before the last.
  Which panels were ordered does not depend on any diagnosis (it is drawn apart from the conditions), so
  missing panels carry no signal of disease. Between visits values vary with
  biological and analytical variation (coefficients of about 3-15 % by analyte, Westgard desirable
  specifications). Panels are sometimes not ordered: CBC 92 %, metabolic 85 %, lipid 70 %, liver 60 %,
  CRP 35 %, insulin 20 %, troponin 4 %, vitals 95 %; single results are missing at 3 %.
- 8 % of patients wear a fitness tracker: 14 daily steps / resting heart rate / sleep values.
- Labels: diagnoses are recorded as confirmed conditions; 10 % are only provisional, and 3 % of
  patients carry label noise (a diagnosis dropped, or a wrong one added).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import numpy as np

CONDITIONS: dict[str, tuple[str, str]] = {
    # key: (ICD-10 code, display)
    "diabetes": ("E11.9", "Type 2 diabetes mellitus without complications"),
    "prediabetes": ("R73.03", "Prediabetes"),
    "iron_deficiency": ("D50.9", "Iron deficiency anemia, unspecified"),
    "thalassemia_trait": ("D56.3", "Thalassemia minor"),
    "thrombocytopenia": ("D69.6", "Thrombocytopenia, unspecified"),
    "dyslipidemia": ("E78.5", "Hyperlipidemia, unspecified"),
    "ckd": ("N18.3", "Chronic kidney disease, stage 3"),
}

ACTIVE_SHARE = 0.85  # patients last seen within the year; the others lapsed 1-3 years ago

# Panels and how often each is ordered at a visit, whatever the patient's conditions.
PANELS: dict[str, tuple[float, tuple[str, ...]]] = {
    "cbc": (0.92, ("hemoglobin", "hematocrit", "rbc", "wbc", "platelets", "mcv", "mch", "mchc")),
    "metabolic": (0.85, ("glucose", "hba1c", "creatinine", "sodium", "potassium")),
    "lipid": (0.70, ("total_cholesterol", "ldl", "hdl", "triglycerides")),
    "liver": (0.60, ("alt", "ast")),
    "inflammation": (0.35, ("crp",)),
    "insulin": (0.20, ("insulin",)),
    "cardiac": (0.04, ("troponin",)),
    "vitals": (0.95, ("bmi", "systolic_bp", "diastolic_bp", "heart_rate", "body_weight", "body_height")),
}
WEARABLE = ("steps", "resting_heart_rate", "sleep_duration")

# Within-person variation between visits, as a coefficient of variation.
VISIT_CV = {
    "rbc": 0.03, "mcv": 0.015, "mchc": 0.012, "wbc": 0.12, "platelets": 0.08, "glucose": 0.06,
    "hba1c": 0.02, "creatinine": 0.05, "sodium": 0.008, "potassium": 0.05, "total_cholesterol": 0.06,
    "ldl": 0.08, "hdl": 0.07, "triglycerides": 0.15, "alt": 0.12, "ast": 0.10, "crp": 0.30, "insulin": 0.20,
    "troponin": 0.15, "bmi": 0.015, "systolic_bp": 0.06, "diastolic_bp": 0.06, "heart_rate": 0.08,
}  # fmt: skip

GIVEN_F = ["Mary", "Aisha", "Mei", "Sofia", "Olivia", "Fatima", "Priya", "Elena", "Grace", "Hana", "Amara", "Lucia"]
GIVEN_M = ["James", "Omar", "Wei", "Mateo", "Noah", "Ahmed", "Ravi", "Ivan", "Samuel", "Kenji", "Kwame", "Luca"]
FAMILY = ["Smith", "Khan", "Chen", "Garcia", "Okafor", "Patel", "Novak", "Silva", "Kim", "Haddad", "Jones", "Nguyen",
          "Müller", "Rossi", "Cohen", "Mensah", "Tanaka", "Ivanova", "Brown", "Lopez"]  # fmt: skip


@dataclass
class Cohort:
    """Column arrays. Observations and conditions point at patients by row index."""

    # patients
    mrn: np.ndarray
    given_name: np.ndarray
    family_name: np.ndarray
    birth_date: np.ndarray  # datetime64[D]
    sex: np.ndarray  # "female" / "male"
    smoking: np.ndarray
    alcohol: np.ndarray
    physical_activity: np.ndarray
    diet: np.ndarray
    family_history_diabetes: np.ndarray
    family_history_cardiovascular: np.ndarray
    family_history_anemia: np.ndarray
    truth: dict[str, np.ndarray]  # condition key -> bool per patient (before label noise)
    # observations
    obs_patient: np.ndarray
    obs_analyte: np.ndarray  # analyte code
    obs_value: np.ndarray
    obs_time: np.ndarray  # datetime64[s], UTC
    # conditions (recorded diagnoses, with label noise)
    cond_patient: np.ndarray
    cond_key: np.ndarray
    cond_confirmed: np.ndarray

    @property
    def n_patients(self) -> int:
        return len(self.mrn)


def _lognormal(rng: np.random.Generator, median: float, sigma: float, size: int) -> np.ndarray:
    return median * np.exp(rng.normal(0.0, sigma, size))


def _conditions(rng: np.random.Generator, age: np.ndarray, female: np.ndarray) -> dict[str, np.ndarray]:
    n = len(age)
    old = np.clip((age - 30) / 50, 0, 1)  # 0 at 30, 1 at 80
    diabetes = rng.random(n) < 0.03 + 0.17 * old
    prediabetes = ~diabetes & (rng.random(n) < 0.08 + 0.14 * old)
    ckd_p = np.where(age < 50, 0.02, np.where(age < 70, 0.08, 0.20)) * np.where(diabetes, 2.0, 1.0)
    return {
        "diabetes": diabetes,
        "prediabetes": prediabetes,
        "iron_deficiency": rng.random(n) < np.where(female, 0.06, 0.015),
        "thalassemia_trait": rng.random(n) < 0.03,
        "thrombocytopenia": rng.random(n) < 0.02,
        "dyslipidemia": rng.random(n) < 0.12 + 0.16 * old,
        "ckd": rng.random(n) < ckd_p,
    }


def _baselines(rng: np.random.Generator, age: np.ndarray, female: np.ndarray, has: dict) -> dict[str, np.ndarray]:
    """Each patient's own 'true' value of every analyte, before visit-to-visit variation."""
    n = len(age)
    normal = rng.normal
    b: dict[str, np.ndarray] = {}
    # Red cells: draw RBC, MCV and MCHC; hemoglobin and the other indices follow (see _derive_red_cells).
    ida, thal, ckd = has["iron_deficiency"], has["thalassemia_trait"], has["ckd"]
    rbc = np.where(female, normal(4.55, 0.25, n), normal(5.05, 0.28, n))
    rbc = rbc - np.where(ida, np.abs(normal(0.25, 0.15, n)), 0) - np.where(ckd, np.abs(normal(0.3, 0.15, n)), 0)
    rbc = np.where(thal, normal(5.7, 0.35, n), rbc)
    mcv = np.select([thal, ida], [normal(66.0, 3.5, n), normal(74.0, 4.0, n)], normal(90.0, 3.5, n))
    mchc = np.select([thal, ida], [normal(32.5, 0.8, n), normal(31.8, 1.0, n)], normal(33.5, 0.8, n))
    b["rbc"] = np.clip(rbc, 2.5, 7.2)
    b["mcv"] = np.clip(mcv, 55.0, 110.0)
    b["mchc"] = np.clip(mchc, 28.0, 37.0)
    b["platelets"] = np.where(has["thrombocytopenia"], np.clip(normal(85, 30, n), 12, 145), normal(255, 55, n))
    b["platelets"] = np.clip(b["platelets"] + np.where(ida, 40, 0), 10, 700)
    b["wbc"] = _lognormal(rng, 6.4, 0.22, n)
    # Glucose metabolism
    dm, pre = has["diabetes"], has["prediabetes"]
    b["glucose"] = np.select([dm, pre], [normal(8.6, 1.8, n), rng.uniform(5.6, 6.9, n)], normal(4.9, 0.3, n))
    b["hba1c"] = np.select([dm, pre], [normal(7.6, 1.0, n), rng.uniform(5.7, 6.4, n)], normal(5.25, 0.22, n))
    b["glucose"], b["hba1c"] = np.clip(b["glucose"], 3.3, 22.0), np.clip(b["hba1c"], 4.2, 13.5)
    b["insulin"] = _lognormal(rng, 7.5, 0.4, n) * np.where(dm | pre, 1.8, 1.0)
    # Kidney and electrolytes
    creat = np.where(female, normal(70, 11, n), normal(87, 13, n)) * (1 + 0.003 * np.clip(age - 40, 0, None))
    b["creatinine"] = np.clip(np.where(ckd, creat * rng.uniform(1.6, 2.4, n), creat), 35, 600)
    b["sodium"] = normal(140.0, 1.8, n)
    b["potassium"] = normal(4.2, 0.3, n) + np.where(ckd, 0.3, 0)
    # Lipids
    dys = has["dyslipidemia"]
    b["ldl"] = np.clip(np.where(dys, normal(4.6, 0.6, n), normal(2.9, 0.6, n)), 0.8, 8.5)
    b["hdl"] = np.where(female, normal(1.6, 0.3, n), normal(1.3, 0.25, n)) - np.where(dm, 0.2, 0)
    b["hdl"] = np.clip(b["hdl"], 0.5, 3.2)
    b["triglycerides"] = np.clip(_lognormal(rng, 1.2, 0.35, n) * np.where(dm | dys, 1.6, 1.0), 0.3, 12.0)
    b["total_cholesterol"] = b["ldl"] + b["hdl"] + b["triglycerides"] / 2.2  # Friedewald, in mmol/L
    # Liver, inflammation, heart
    b["alt"] = np.clip(_lognormal(rng, np.where(female, 17.0, 24.0), 0.3, n) * np.where(dm, 1.3, 1.0), 5, 300)
    b["ast"] = np.clip(_lognormal(rng, 21.0, 0.22, n), 8, 250)
    b["crp"] = np.clip(_lognormal(rng, 1.2, 0.8, n) * np.where(dm | ckd, 1.8, 1.0), 0.2, 150)
    b["troponin"] = np.clip(_lognormal(rng, 4.0, 0.5, n), 1.0, 80)
    # Vitals
    height = np.where(female, normal(163, 6.5, n), normal(177, 7.0, n))
    bmi = np.clip(normal(26.0, 4.2, n) + np.where(dm, 3.5, 0) + np.where(pre, 1.5, 0), 16.5, 55)
    b["body_height"] = np.clip(height, 140, 205)
    b["bmi"] = bmi
    b["body_weight"] = bmi * (b["body_height"] / 100) ** 2
    b["systolic_bp"] = np.clip(normal(116, 11, n) + 0.45 * (age - 40) + np.where(dys | dm | ckd, 8, 0), 88, 210)
    b["diastolic_bp"] = np.clip(normal(75, 8, n) + 0.1 * (age - 40) + np.where(dys | dm, 4, 0), 50, 125)
    b["heart_rate"] = np.clip(normal(71, 9, n), 45, 120)
    return b


def _derive_red_cells(values: dict[str, np.ndarray]) -> None:
    rbc, mcv = values["rbc"], values["mcv"]
    values["hematocrit"] = mcv * rbc / 10
    values["hemoglobin"] = values["mchc"] * values["hematocrit"] / 100
    values["mch"] = values["hemoglobin"] * 10 / rbc


def _people(rng: np.random.Generator, n: int, today: np.datetime64) -> dict[str, np.ndarray]:
    female = rng.random(n) < 0.51
    age = np.clip(rng.normal(50, 16, n), 18, 90)
    birth = today - (age * 365.25).astype("timedelta64[D]") - rng.integers(0, 365, n).astype("timedelta64[D]")
    given = np.where(female, rng.choice(GIVEN_F, n), rng.choice(GIVEN_M, n))
    return {
        "female": female,
        "age": age,
        "birth_date": birth.astype("datetime64[D]"),
        "given_name": given,
        "family_name": rng.choice(FAMILY, n),
    }


def _lifestyle(rng: np.random.Generator, n: int, has: dict) -> dict[str, np.ndarray]:
    def pick(options, weights):
        return rng.choice(options, n, p=np.asarray(weights) / sum(weights))

    metabolic = has["diabetes"] | has["prediabetes"] | has["dyslipidemia"]
    activity = np.where(
        metabolic,
        pick(["sedentary", "light", "active", "unknown"], [45, 30, 15, 10]),
        pick(["sedentary", "light", "active", "unknown"], [20, 35, 35, 10]),
    )
    diet = np.where(
        metabolic,
        pick(["poor", "average", "healthy", "unknown"], [45, 35, 10, 10]),
        pick(["poor", "average", "healthy", "unknown"], [20, 45, 25, 10]),
    )
    return {
        "smoking": pick(["never", "former", "current", "unknown"], [55, 20, 13, 12]),
        "alcohol": pick(["none", "moderate", "heavy", "unknown"], [30, 50, 8, 12]),
        "physical_activity": activity,
        "diet": diet,
        "family_history_diabetes": rng.random(n) < np.where(has["diabetes"] | has["prediabetes"], 0.45, 0.2),
        "family_history_cardiovascular": rng.random(n) < np.where(has["dyslipidemia"], 0.4, 0.18),
        "family_history_anemia": rng.random(n) < np.where(has["thalassemia_trait"], 0.6, 0.08),
    }


def _visits(rng, n, baselines, today):
    """Observation rows for every visit: panels ordered or not, values varying around each baseline."""
    visits = 1 + rng.binomial(3, 0.1, n)  # 1-4, mean 1.3
    patient = np.repeat(np.arange(n), visits)
    last_seen = np.where(rng.random(n) < ACTIVE_SHARE, rng.integers(1, 365, n), rng.integers(365, 3 * 365, n))
    newest = np.r_[True, patient[1:] != patient[:-1]]  # each patient's first row is their last visit
    days_ago = last_seen[patient] + np.where(newest, 0, rng.integers(30, 2 * 365, len(patient)))
    seconds = rng.integers(7 * 3600, 17 * 3600, len(patient))
    when = (today - days_ago.astype("timedelta64[D]")).astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    m = len(patient)
    values = {}
    for code, base in baselines.items():
        cv = VISIT_CV.get(code, 0.0)
        # Multiplicative and log-normal, so a value never crosses zero however large its variation.
        values[code] = base[patient] * np.exp(rng.normal(0, cv, m)) if cv else base[patient]
    _derive_red_cells(values)
    parts_p, parts_a, parts_v, parts_t = [], [], [], []
    for probability, codes in PANELS.values():
        ordered = rng.random(m) < probability
        for code in codes:
            keep = ordered & (rng.random(m) >= 0.03)
            parts_p.append(patient[keep])
            parts_a.append(np.full(int(keep.sum()), code, dtype=object))
            parts_v.append(values[code][keep])
            parts_t.append(when[keep])
    return parts_p, parts_a, parts_v, parts_t


def _wearables(rng, n, baselines, today):
    wearer = np.flatnonzero(rng.random(n) < 0.08)
    days = 14
    patient = np.repeat(wearer, days)
    day = np.tile(np.arange(1, days + 1), len(wearer))
    when = (today - day.astype("timedelta64[D]")).astype("datetime64[s]") + np.timedelta64(23 * 3600, "s")
    m = len(patient)
    steps_base = _lognormal(rng, 7000, 0.45, n)
    series = {
        "steps": np.round(np.clip(steps_base[patient] * np.exp(rng.normal(0, 0.3, m)), 200, 40000)),
        "resting_heart_rate": np.round(np.clip(baselines["heart_rate"][patient] - 8 + rng.normal(0, 3, m), 40, 110)),
        "sleep_duration": np.round(np.clip(rng.normal(7.0, 0.9, m), 3.0, 11.5), 2),
    }
    return (
        [patient] * 3,
        [np.full(m, code, dtype=object) for code in WEARABLE],
        [series[code] for code in WEARABLE],
        [when] * 3,
    )


def _recorded_conditions(rng, has: dict[str, np.ndarray]):
    keys = list(CONDITIONS)
    patients, labels = [], []
    for key in keys:
        idx = np.flatnonzero(has[key])
        patients.append(idx)
        labels.append(np.full(len(idx), key, dtype=object))
    cond_patient, cond_key = np.concatenate(patients), np.concatenate(labels)
    # Label noise: drop 3 % of true diagnoses, and give 1 % of patients a diagnosis they do not have.
    kept = rng.random(len(cond_patient)) >= 0.03
    n = len(next(iter(has.values())))
    wrong = np.flatnonzero(rng.random(n) < 0.01)
    wrong_key = rng.choice(keys, len(wrong)).astype(object)
    cond_patient = np.concatenate([cond_patient[kept], wrong])
    cond_key = np.concatenate([cond_key[kept], wrong_key])
    confirmed = rng.random(len(cond_patient)) >= 0.10
    return cond_patient, cond_key, confirmed


def generate_cohort(n_patients: int, *, seed: int = 0, today: datetime.date | None = None) -> Cohort:
    """A reproducible cohort: the same `n_patients`, `seed` and `today` give the same arrays."""
    rng = np.random.default_rng(seed)
    today64 = np.datetime64(today or datetime.date.today(), "D")  # noqa: DTZ011  (a calendar day is meant)
    people = _people(rng, n_patients, today64)
    has = _conditions(rng, people["age"], people["female"])
    baselines = _baselines(rng, people["age"], people["female"], has)
    lifestyle = _lifestyle(rng, n_patients, has)
    p1, a1, v1, t1 = _visits(rng, n_patients, baselines, today64)
    p2, a2, v2, t2 = _wearables(rng, n_patients, baselines, today64)
    cond_patient, cond_key, confirmed = _recorded_conditions(rng, has)
    return Cohort(
        mrn=np.char.add("D", np.char.zfill(np.arange(1, n_patients + 1).astype(str), 7)).astype(object),
        given_name=people["given_name"].astype(object),
        family_name=people["family_name"].astype(object),
        birth_date=people["birth_date"],
        sex=np.where(people["female"], "female", "male").astype(object),
        truth=has,
        obs_patient=np.concatenate(p1 + p2),
        obs_analyte=np.concatenate(a1 + a2),
        obs_value=np.concatenate(v1 + v2).astype(float),
        obs_time=np.concatenate(t1 + t2),
        cond_patient=cond_patient,
        cond_key=cond_key,
        cond_confirmed=confirmed,
        **lifestyle,
    )


def cohort_frames(cohort: Cohort, *, first_id: int = 1):
    """The cohort as the long frames `mltraining.ml` trains on: (observations, patients, conditions).

    Patient ids are first_id, first_id + 1, ... in cohort order; timestamps are UTC. For training without a
    database (tests, benchmarks); pandas is imported here so the generator itself needs numpy only.
    """
    import pandas as pd

    ids = np.arange(first_id, first_id + cohort.n_patients)
    observations = pd.DataFrame(
        {
            "patient_id": ids[cohort.obs_patient],
            "analyte": cohort.obs_analyte,
            "value": cohort.obs_value,
            "effective_at": pd.to_datetime(cohort.obs_time).tz_localize("UTC"),
        }
    )
    profile = ("smoking", "alcohol", "physical_activity", "diet", "family_history_diabetes",
               "family_history_cardiovascular", "family_history_anemia")  # fmt: skip
    patients = pd.DataFrame(
        {"patient_id": ids, "sex": cohort.sex, "birth_date": cohort.birth_date}
        | {name: getattr(cohort, name) for name in profile}
    )
    conditions = pd.DataFrame(
        {
            "patient_id": ids[cohort.cond_patient],
            "code": [CONDITIONS[key][0] for key in cohort.cond_key],
            "verification_status": np.where(cohort.cond_confirmed, "confirmed", "provisional"),
            "clinical_status": "active",
        }
    )
    return observations, patients, conditions
