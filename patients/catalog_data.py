"""The analyte catalog as data: LOINC codes, canonical UCUM units, conversions, limits and ranges.

Loaded into the database by data migrations (`patients.catalog.catalog_sync`). Ranges are for adults
(18 and over) and come from the sources cited per analyte; a laboratory should replace them with its
own validated intervals through a new migration. Plausible limits are physical bounds: a value
outside them is a typing or unit error, never a result, and is refused. Critical limits are the
values that warrant urgent notification of a clinician.

Conversions: canonical = entered x factor + offset.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitConversion:
    unit: str  # UCUM code as entered, e.g. "mg/dL"
    factor: float  # canonical_value = value * factor + offset
    offset: float = 0.0
    display: str = ""


@dataclass(frozen=True)
class RefRange:
    low: float | None
    high: float | None
    sex: str = ""  # "" = any, "female", "male"
    age_min: int = 18
    age_max: int | None = None


@dataclass(frozen=True)
class AnalyteSpec:
    code: str
    name: str
    kind: str  # "lab" | "vital" | "wearable"
    panel: str
    loinc: tuple[str, ...]  # the first is preferred (used for export)
    unit: str
    conversions: tuple[UnitConversion, ...]
    plausible_low: float
    plausible_high: float
    ranges: tuple[RefRange, ...]
    critical_low: float | None
    critical_high: float | None
    decimals: int
    source: str  # key into SOURCES
    aliases: tuple[str, ...] = ()


SOURCES: dict[str, str] = {
    "tietz": "Rifai N (ed.). Tietz Textbook of Laboratory Medicine, 7th edition. Elsevier, 2022: adult reference "
    "intervals.",
    "who_hb": "World Health Organization. Guideline on haemoglobin cutoffs to define anaemia in individuals and "
    "populations. Geneva, 2024.",
    "ada": "American Diabetes Association Professional Practice Committee. 2. Diagnosis and Classification of "
    "Diabetes: Standards of Care in Diabetes-2025. Diabetes Care 2025;48(Suppl 1):S27-S49.",
    "aha_acc_lipids": "Grundy SM et al. 2018 AHA/ACC Guideline on the Management of Blood Cholesterol. "
    "Circulation 2019;139:e1082-e1143; NCEP ATP III cut-points for HDL and triglycerides.",
    "kdigo": "KDIGO 2024 Clinical Practice Guideline for the Evaluation and Management of Chronic Kidney "
    "Disease. Kidney International 2024;105(4S):S117-S314; creatinine intervals from Tietz.",
    "acg_liver": "Kwo PY, Cohen SM, Lim JK. ACG Clinical Guideline: Evaluation of Abnormal Liver Chemistries. "
    "American Journal of Gastroenterology 2017;112:18-35 (ALT upper limits 33 U/L men, 25 U/L women).",
    "cdc_aha_crp": "Pearson TA et al. Markers of Inflammation and Cardiovascular Disease: a statement for "
    "healthcare professionals from the CDC and the AHA. Circulation 2003;107:499-511.",
    "udmi4": "Thygesen K et al. Fourth Universal Definition of Myocardial Infarction (2018). Circulation "
    "2018;138:e618-e651: 99th-percentile upper reference limits, sex-specific for hs-cTnI.",
    "critical": "Kost GJ. Critical limits for urgent clinician notification at US medical centers. JAMA "
    "1990;263:704-707, as updated in laboratory critical-value policies (CAP Q-Probes).",
    "acc_aha_bp": "Whelton PK et al. 2017 ACC/AHA Guideline for the Prevention, Detection, Evaluation, and "
    "Management of High Blood Pressure in Adults. Hypertension 2018;71:e13-e115.",
    "who_bmi": "World Health Organization. Obesity: preventing and managing the global epidemic. Technical "
    "Report Series 894, 2000 (BMI classes).",
    "aha_hr": "American Heart Association. All About Heart Rate (Pulse): resting adult heart rate 60-100 beats "
    "per minute.",
    "insulin": "Mayo Clinic Laboratories. Test catalog, Insulin, serum: fasting adult reference 2.6-24.9 uIU/mL.",
    "steps": "Tudor-Locke C et al. Normative steps/day values for older adults and special populations; "
    "fewer than 5,000 steps/day classifies as sedentary. Int J Behav Nutr Phys Act 2011;8:80.",
    "sleep": "Watson NF et al. Recommended Amount of Sleep for a Healthy Adult: a joint consensus statement of "
    "the AASM and SRS. Sleep 2015;38:843-844 (7 hours or more).",
    "anthropometry": "No reference range: body weight and height are interpreted through BMI.",
}


def _c(unit: str, factor: float, offset: float = 0.0, display: str = "") -> UnitConversion:
    return UnitConversion(unit, factor, offset, display)


def _r(low: float | None, high: float | None, sex: str = "") -> RefRange:
    return RefRange(low, high, sex)


ANALYTES: tuple[AnalyteSpec, ...] = (
    # --- Complete blood count -----------------------------------------------------------------------
    AnalyteSpec("hemoglobin", "Hemoglobin", "lab", "cbc", ("718-7", "20509-6"), "g/dL",
                (_c("g/L", 0.1), _c("mmol/L", 1.611)), 1.0, 25.0,
                (_r(12.0, 15.5, "female"), _r(13.5, 17.5, "male")), 7.0, 20.0, 1, "who_hb",
                ("hb", "hgb", "haemoglobin")),
    AnalyteSpec("hematocrit", "Hematocrit", "lab", "cbc", ("4544-3", "20570-8"), "%",
                (_c("L/L", 100.0),), 5.0, 75.0,
                (_r(36.0, 46.0, "female"), _r(41.0, 53.0, "male")), 20.0, 60.0, 1, "tietz",
                ("hct", "haematocrit", "packed cell volume", "pcv")),
    AnalyteSpec("rbc", "Red blood cells", "lab", "cbc", ("789-8", "26453-1"), "10*12/L",
                (_c("10*6/uL", 1.0),), 0.5, 10.0,
                (_r(3.9, 5.1, "female"), _r(4.3, 5.7, "male")), None, None, 2, "tietz",
                ("red blood cell count", "erythrocytes", "red cell count")),
    AnalyteSpec("wbc", "White blood cells", "lab", "cbc", ("6690-2", "26464-8"), "10*9/L",
                (_c("10*3/uL", 1.0), _c("/nL", 1.0)), 0.1, 500.0,
                (_r(4.0, 11.0),), 2.0, 30.0, 1, "tietz",
                ("white blood cell count", "leukocytes", "leucocytes")),
    AnalyteSpec("platelets", "Platelets", "lab", "cbc", ("777-3", "26515-7"), "10*9/L",
                (_c("10*3/uL", 1.0),), 1.0, 3000.0,
                (_r(150.0, 400.0),), 20.0, 1000.0, 0, "tietz",
                ("plt", "platelet count", "thrombocytes")),
    AnalyteSpec("mcv", "Mean corpuscular volume", "lab", "cbc", ("787-2", "30428-7"), "fL",
                (), 40.0, 150.0, (_r(80.0, 100.0),), None, None, 1, "tietz", ("mean cell volume",)),
    AnalyteSpec("mch", "Mean corpuscular hemoglobin", "lab", "cbc", ("785-6", "28539-5"), "pg",
                (), 10.0, 50.0, (_r(27.0, 33.0),), None, None, 1, "tietz", ("mean cell hemoglobin",)),
    AnalyteSpec("mchc", "Mean corpuscular hemoglobin concentration", "lab", "cbc", ("786-4", "28540-3"), "g/dL",
                (_c("g/L", 0.1),), 20.0, 45.0, (_r(32.0, 36.0),), None, None, 1, "tietz",
                ("mean cell hemoglobin concentration",)),
    # --- Metabolic ------------------------------------------------------------------------------------
    AnalyteSpec("glucose", "Glucose (fasting)", "lab", "metabolic",
                ("2345-7", "1558-6", "2339-0", "14749-6", "15074-8"), "mmol/L",
                (_c("mg/dL", 1 / 18.016),), 0.5, 60.0,
                (_r(3.9, 5.5),), 2.8, 25.0, 1, "ada",
                ("glu", "fasting glucose", "blood glucose", "fpg", "fasting plasma glucose")),
    AnalyteSpec("hba1c", "Hemoglobin A1c", "lab", "metabolic", ("4548-4", "17856-6", "59261-8"), "%",
                (_c("mmol/mol", 0.09148, 2.152),), 2.0, 20.0,
                (_r(4.0, 5.6),), None, None, 1, "ada",
                ("a1c", "hemoglobin a1c", "glycated hemoglobin", "hb a1c", "glycohemoglobin")),
    AnalyteSpec("creatinine", "Creatinine", "lab", "metabolic", ("2160-0", "38483-4", "14682-9"), "umol/L",
                (_c("mg/dL", 88.42),), 10.0, 2500.0,
                (_r(45.0, 90.0, "female"), _r(59.0, 104.0, "male")), None, None, 0, "kdigo",
                ("creat", "cr", "scr", "serum creatinine")),
    AnalyteSpec("sodium", "Sodium", "lab", "metabolic", ("2951-2", "2947-0"), "mmol/L",
                (_c("meq/L", 1.0),), 90.0, 200.0, (_r(135.0, 145.0),), 120.0, 160.0, 0, "critical", ("na",)),
    AnalyteSpec("potassium", "Potassium", "lab", "metabolic", ("2823-3", "6298-4"), "mmol/L",
                (_c("meq/L", 1.0),), 1.0, 12.0, (_r(3.5, 5.1),), 2.8, 6.2, 1, "critical", ("k",)),
    AnalyteSpec("insulin", "Insulin (fasting)", "lab", "metabolic", ("20448-7",), "u[IU]/mL",
                (_c("pmol/L", 1 / 6.0),), 0.1, 1000.0, (_r(2.6, 24.9),), None, None, 1, "insulin",
                ("fasting insulin",)),
    # --- Lipids ---------------------------------------------------------------------------------------
    AnalyteSpec("total_cholesterol", "Total cholesterol", "lab", "lipid", ("2093-3", "14647-2"), "mmol/L",
                (_c("mg/dL", 1 / 38.67),), 1.0, 30.0, (_r(None, 5.2),), None, None, 2, "aha_acc_lipids",
                ("cholesterol", "chol", "tc")),
    AnalyteSpec("ldl", "LDL cholesterol", "lab", "lipid", ("13457-7", "18262-6", "2089-1", "22748-8"), "mmol/L",
                (_c("mg/dL", 1 / 38.67),), 0.1, 20.0, (_r(None, 3.4),), None, None, 2, "aha_acc_lipids",
                ("ldl cholesterol", "ldl-c", "ldl-cholesterol")),
    AnalyteSpec("hdl", "HDL cholesterol", "lab", "lipid", ("2085-9", "14646-4"), "mmol/L",
                (_c("mg/dL", 1 / 38.67),), 0.1, 5.0,
                (_r(1.3, None, "female"), _r(1.0, None, "male")), None, None, 2, "aha_acc_lipids",
                ("hdl cholesterol", "hdl-c", "hdl-cholesterol")),
    AnalyteSpec("triglycerides", "Triglycerides", "lab", "lipid", ("2571-8", "14927-8"), "mmol/L",
                (_c("mg/dL", 1 / 88.57),), 0.1, 100.0, (_r(None, 1.7),), None, None, 2, "aha_acc_lipids",
                ("tg", "trig", "triglyceride")),
    # --- Liver ----------------------------------------------------------------------------------------
    AnalyteSpec("alt", "Alanine aminotransferase (ALT)", "lab", "liver", ("1742-6", "1743-4"), "U/L",
                (_c("ukat/L", 60.0),), 1.0, 10000.0,
                (_r(None, 25.0, "female"), _r(None, 33.0, "male")), None, None, 0, "acg_liver",
                ("alanine aminotransferase", "sgpt", "alat")),
    AnalyteSpec("ast", "Aspartate aminotransferase (AST)", "lab", "liver", ("1920-8", "30239-8"), "U/L",
                (_c("ukat/L", 60.0),), 1.0, 10000.0, (_r(10.0, 40.0),), None, None, 0, "tietz",
                ("aspartate aminotransferase", "sgot", "asat")),
    # --- Inflammation ---------------------------------------------------------------------------------
    AnalyteSpec("crp", "C-reactive protein", "lab", "inflammation", ("1988-5",), "mg/L",
                (_c("mg/dL", 10.0),), 0.0, 600.0, (_r(None, 10.0),), None, None, 1, "tietz",
                ("c-reactive protein", "c reactive protein")),
    AnalyteSpec("hs_crp", "High-sensitivity CRP", "lab", "inflammation", ("30522-7",), "mg/L",
                (_c("mg/dL", 10.0),), 0.0, 200.0, (_r(None, 3.0),), None, None, 2, "cdc_aha_crp",
                ("hscrp", "hs-crp", "high-sensitivity crp", "high sensitivity c-reactive protein")),
    # --- Cardiac --------------------------------------------------------------------------------------
    AnalyteSpec("troponin", "Troponin (high-sensitivity)", "lab", "cardiac",
                ("89579-7", "67151-1", "10839-9", "6598-7"), "ng/L",
                (_c("ng/mL", 1000.0), _c("ug/L", 1000.0)), 0.0, 500000.0,
                (_r(None, 16.0, "female"), _r(None, 34.0, "male")), None, None, 0, "udmi4",
                ("trop", "ctni", "ctnt", "hs-ctni", "hs-ctnt", "troponin i", "troponin t")),
    # --- Vital signs ----------------------------------------------------------------------------------
    AnalyteSpec("bmi", "Body mass index", "vital", "vitals", ("39156-5",), "kg/m2",
                (), 8.0, 100.0, (_r(18.5, 24.9),), None, None, 1, "who_bmi", ("body mass index",)),
    AnalyteSpec("systolic_bp", "Systolic blood pressure", "vital", "vitals", ("8480-6",), "mm[Hg]",
                (), 40.0, 300.0, (_r(90.0, 129.0),), 70.0, 180.0, 0, "acc_aha_bp",
                ("systolic blood pressure", "sbp", "systolic")),
    AnalyteSpec("diastolic_bp", "Diastolic blood pressure", "vital", "vitals", ("8462-4",), "mm[Hg]",
                (), 20.0, 200.0, (_r(60.0, 79.0),), None, 120.0, 0, "acc_aha_bp",
                ("diastolic blood pressure", "dbp", "diastolic")),
    AnalyteSpec("heart_rate", "Heart rate", "vital", "vitals", ("8867-4",), "/min",
                (), 20.0, 300.0, (_r(60.0, 100.0),), None, None, 0, "aha_hr", ("hr", "pulse", "heart rate")),
    AnalyteSpec("body_weight", "Body weight", "vital", "vitals", ("29463-7",), "kg",
                (_c("[lb_av]", 0.45359237, display="lb"), _c("g", 0.001)), 2.0, 400.0, (), None, None, 1,
                "anthropometry", ("weight", "wt")),
    AnalyteSpec("body_height", "Body height", "vital", "vitals", ("8302-2",), "cm",
                (_c("[in_i]", 2.54, display="in"), _c("m", 100.0)), 40.0, 250.0, (), None, None, 1,
                "anthropometry", ("height", "ht")),
    # --- Wearable (daily values) ----------------------------------------------------------------------
    AnalyteSpec("steps", "Step count (daily)", "wearable", "wearable", ("41950-7",), "/d",
                (), 0.0, 100000.0, (_r(5000.0, None),), None, None, 0, "steps",
                ("step count", "daily steps", "steps per day")),
    AnalyteSpec("resting_heart_rate", "Resting heart rate", "wearable", "wearable", ("40443-4",), "/min",
                (), 20.0, 250.0, (_r(60.0, 100.0),), None, None, 0, "aha_hr",
                ("resting hr", "rhr", "resting heart rate")),
    AnalyteSpec("sleep_duration", "Sleep duration", "wearable", "wearable", ("93832-4",), "h",
                (_c("min", 1 / 60),), 0.0, 24.0, (_r(7.0, 9.0),), None, None, 1, "sleep",
                ("sleep", "sleep hours", "hours of sleep", "sleep_hours")),
)  # fmt: skip
