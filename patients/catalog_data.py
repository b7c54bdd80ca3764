"""The analyte catalog as data: LOINC codes, canonical UCUM units, unit conversions, limits and ranges.

Loaded into the database by data migrations (`patients.catalog.catalog_sync`); a change here reaches an
existing database only through a new migration that calls the same sync.

- Reference ranges are for adults (18 and over) and come from the source cited per analyte (`SOURCES`):
  guideline decision limits where a guideline defines them (WHO 2024 haemoglobin, ADA 2025 glucose and
  HbA1c, NCEP ATP III / 2018 AHA/ACC lipids, ACG 2017 ALT, 2017 ACC/AHA blood pressure), otherwise
  conventional laboratory intervals (Tietz, Mayo Clinic Laboratories, IFCC). They are defaults: every
  laboratory should replace them with its own validated, method-specific intervals.
- Lipid limits are the NCEP mg/dL cut-points converted exactly (200 mg/dL -> 5.17 mmol/L), so a value
  entered in mg/dL is flagged exactly as the guideline says.
- Plausible limits are physical bounds: a value outside them is a typing or unit error, never a result,
  and is refused.
- Critical limits are values that warrant urgent notification of a clinician; they are given only where
  they are customary (critical-value surveys by Kost) and lie outside the reference range.

Conversions: canonical = entered x factor + offset.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitConversion:
    unit: str  # UCUM code as entered, e.g. "mg/dL"
    factor: float  # canonical_value = value * factor + offset
    offset: float = 0.0
    display: str = ""  # human label if different from the UCUM code, e.g. "lb" for "[lb_av]"


# Canonical UCUM codes as clinicians write them, wherever a unit is shown; the others read well as they are
# (mmol/L, g/dL, %, U/L). The code itself stays what is stored, exported and accepted.
UNIT_DISPLAY: dict[str, str] = {
    "10*12/L": "×10¹²/L", "10*9/L": "×10⁹/L", "umol/L": "µmol/L", "u[IU]/mL": "µIU/mL", "mm[Hg]": "mmHg",
    "kg/m2": "kg/m²", "/d": "per day", "mL/min/{1.73_m2}": "mL/min/1.73 m²", "a": "years",
}  # fmt: skip


def unit_display(unit: str) -> str:
    return UNIT_DISPLAY.get(unit, unit)


@dataclass(frozen=True)
class RefRange:
    low: float | None
    high: float | None
    sex: str = ""  # "" = any, "female", "male"
    age_min: int = 18  # years, inclusive
    age_max: int | None = None  # years, inclusive


@dataclass(frozen=True)
class AnalyteSpec:
    code: str  # short stable slug
    name: str
    kind: str  # "lab" | "vital" | "wearable"
    panel: str  # "cbc" | "metabolic" | "lipid" | "liver" | "cardiac" | "inflammation" | "vitals" | "wearable"
    loinc: tuple[str, ...]  # the first is preferred (used for export)
    unit: str  # canonical UCUM unit
    conversions: tuple[UnitConversion, ...]  # accepted alternative units, not including the canonical one
    plausible_low: float
    plausible_high: float
    ranges: tuple[RefRange, ...]
    critical_low: float | None
    critical_high: float | None
    decimals: int  # display precision
    source: str  # key into SOURCES
    aliases: tuple[str, ...] = ()  # lower-case names and abbreviations seen in CSV headers


# Critical limits are cited together with each analyte's reference range: the database keeps one citation.
_KOST = (
    " Critical limits: Kost GJ, Critical limits for urgent clinician notification at US medical centers, "
    "JAMA 1990;263(5):704-707; updated in Kost GJ et al., Web-accessible critical limits and critical values "
    "for urgent clinician notification, Clin Chem Lab Med 2024;62(11):2294-2306, "
    "https://doi.org/10.1515/cclm-2024-0117."
)
_TIETZ = (
    "Rifai N, Chiu RWK, Young I, Burnham C-AD, Wittwer CT (eds). Tietz Textbook of Laboratory Medicine, "
    "7th edition. Elsevier, 2022 (print reference)."
)

SOURCES: dict[str, str] = {
    "cbc": "Conventional adult complete blood count intervals as tabulated in laboratory medicine references: "
    + _TIETZ
    + " US National Library of Medicine, MedlinePlus Medical Encyclopedia, Complete blood count (CBC), "
    "https://medlineplus.gov/ency/article/003642.htm. Intervals differ by analyser and population." + _KOST,
    "who_hb": "Lower limits: World Health Organization, Guideline on haemoglobin cutoffs to define anaemia in "
    "individuals and populations, Geneva, 2024 (non-pregnant women 120 g/L, men 130 g/L), "
    "https://www.who.int/publications/i/item/9789240088542. Upper limits: conventional adult intervals, "
    + _TIETZ
    + _KOST,
    "ada_glucose": "American Diabetes Association Professional Practice Committee, 2. Diagnosis and "
    "Classification of Diabetes: Standards of Care in Diabetes-2025, Diabetes Care 2025;48(Suppl 1):S27-S49, "
    "https://doi.org/10.2337/dc25-S002 (fasting plasma glucose 100-125 mg/dL = impaired fasting glucose; "
    "lower limit 70 mg/dL = level 1 hypoglycaemia, ADA Standards section 6)." + _KOST,
    "ada_glucose_random": "American Diabetes Association Professional Practice Committee, 2. Diagnosis and "
    "Classification of Diabetes: Standards of Care in Diabetes-2025, Diabetes Care 2025;48(Suppl 1):S27-S49, "
    "https://doi.org/10.2337/dc25-S002 (a random plasma glucose of 200 mg/dL or more, with classic symptoms, is "
    "diabetes; a random value is never judged by the fasting cut-offs). Upper limit 140 mg/dL (7.8 mmol/L): the "
    "conventional non-fasting limit, the same as the 2-hour OGTT limit of normal glucose tolerance in the ADA "
    "Standards." + _KOST,
    "ada_a1c": "American Diabetes Association Professional Practice Committee, 2. Diagnosis and Classification "
    "of Diabetes: Standards of Care in Diabetes-2025, Diabetes Care 2025;48(Suppl 1):S27-S49, "
    "https://doi.org/10.2337/dc25-S002 (HbA1c 5.7-6.4 % = prediabetes; the lower limit of 4.0 % is the "
    "conventional NGSP-aligned laboratory interval).",
    "electrolytes": "Conventional adult serum intervals: " + _TIETZ + _KOST,
    "creatinine": "Ceriotti F et al. (IFCC Committee on Reference Intervals and Decision Limits), Reference "
    "intervals for serum creatinine concentrations: assessment of available data for global application, "
    "Clin Chem 2008;54(3):559-566, https://doi.org/10.1373/clinchem.2007.099648 (IDMS-traceable methods, "
    "adults). Kidney function itself is judged by eGFR: KDIGO 2024 Clinical Practice Guideline for the "
    "Evaluation and Management of Chronic Kidney Disease, Kidney Int 2024;105(4S):S117-S314, "
    "https://doi.org/10.1016/j.kint.2023.10.018.",
    "kdigo_egfr": "KDIGO 2024 Clinical Practice Guideline for the Evaluation and Management of Chronic Kidney "
    "Disease, Kidney Int 2024;105(4S):S117-S314, https://doi.org/10.1016/j.kint.2023.10.018 (GFR categories: "
    "below 60 mL/min/1.73 m2 is G3a-G5; CKD needs it for more than 3 months). The value the laboratory reports "
    "is used as reported.",
    "insulin": "Mayo Clinic Laboratories, Test catalog: Insulin, Serum (INS), fasting adult reference value, "
    "https://www.mayocliniclabs.com/test-catalog/overview/8664 (assay-specific).",
    "lipids": "Cut-points from the National Cholesterol Education Program Adult Treatment Panel III, Executive "
    "Summary, JAMA 2001;285(19):2486-2497, https://doi.org/10.1001/jama.285.19.2486 (total cholesterol "
    "desirable <200 mg/dL, LDL-C <130 mg/dL below borderline-high, HDL-C low <40 mg/dL men and <50 mg/dL "
    "women, triglycerides normal <150 mg/dL); treatment decisions follow Grundy SM et al., 2018 AHA/ACC "
    "Guideline on the Management of Blood Cholesterol, Circulation 2019;139:e1082-e1143, "
    "https://doi.org/10.1161/CIR.0000000000000625.",
    "acg_liver": "Kwo PY, Cohen SM, Lim JK, ACG Clinical Guideline: Evaluation of Abnormal Liver Chemistries, "
    "Am J Gastroenterol 2017;112(1):18-35, https://doi.org/10.1038/ajg.2016.517 (healthy upper limit of ALT "
    "29-33 U/L for men and 19-25 U/L for women; the top of each is used here). Many laboratories report "
    "higher method-specific upper limits.",
    "tietz": "Conventional adult serum interval: " + _TIETZ,
    "crp": "Mayo Clinic Laboratories, Test catalog: C-Reactive Protein (CRP), Serum, adult reference value, "
    "https://www.mayocliniclabs.com/test-catalog/overview/9731 (standard assay; for cardiovascular risk use "
    "hs-CRP).",
    "cdc_aha_crp": "Pearson TA et al., Markers of Inflammation and Cardiovascular Disease: Application to "
    "Clinical and Public Health Practice, a statement for healthcare professionals from the CDC and the AHA, "
    "Circulation 2003;107(3):499-511, https://doi.org/10.1161/01.CIR.0000052939.59093.45 (<1 mg/L lower, "
    "1-3 mg/L average, >3 mg/L higher cardiovascular risk; >10 mg/L suggests another inflammatory cause).",
    "udmi4": "Thygesen K et al., Fourth Universal Definition of Myocardial Infarction (2018), Circulation "
    "2018;138:e618-e651, https://doi.org/10.1161/CIR.0000000000000617: myocardial injury is a troponin above "
    "the assay's 99th-percentile upper reference limit, sex-specific where available. Each assay is its own "
    "analyte here, with its manufacturer's 99th percentile (package inserts, as tabulated by the IFCC Committee "
    "on Clinical Applications of Cardiac Bio-Markers, https://ifcc.org/ifcc-education-division/emd-committees/"
    "committee-on-clinical-applications-of-cardiac-bio-markers-c-cb/biomarkers-reference-tables/): Abbott "
    "ARCHITECT hs-cTnI women 16 ng/L, men 34 ng/L; Roche Elecsys hs-cTnT 14 ng/L; conventional cTnI 0.04 ng/mL "
    "(Siemens ADVIA Centaur TnI-Ultra); conventional cTnT 0.01 ng/mL (Roche Elecsys Troponin T 4th "
    "generation). Assay-specific: the laboratory must set its own.",
    "acc_aha_bp": "Whelton PK et al., 2017 ACC/AHA Guideline for the Prevention, Detection, Evaluation, and "
    "Management of High Blood Pressure in Adults, Hypertension 2018;71:e13-e115, "
    "https://doi.org/10.1161/HYP.0000000000000065 (hypertension from 130/80 mm Hg; severe hypertension above "
    "180/120 mm Hg). Lower limits (90/60 mm Hg) and the systolic critical low of 70 mm Hg are conventional "
    "clinical thresholds for hypotension, not from the guideline.",
    "who_bmi": "World Health Organization, Obesity: preventing and managing the global epidemic, Report of a "
    "WHO Consultation, Technical Report Series 894, Geneva, 2000, https://pubmed.ncbi.nlm.nih.gov/11234459/ "
    "(normal weight 18.5-24.9 kg/m2).",
    "aha_hr": "American Heart Association, All About Heart Rate (Pulse), 2024, https://www.heart.org/en/"
    "health-topics/high-blood-pressure/the-facts-about-high-blood-pressure/all-about-heart-rate-pulse "
    "(normal adult resting heart rate 60-100 beats per minute; lower in trained athletes).",
    "anthropometry": "No reference range: body weight and height are interpreted through BMI.",
    "steps": "Tudor-Locke C, Craig CL, Thyfault JP, Spence JC, A step-defined sedentary lifestyle index: "
    "<5000 steps/day, Appl Physiol Nutr Metab 2013;38(2):100-114, https://doi.org/10.1139/apnm-2012-0235.",
    "sleep": "Watson NF et al., Recommended Amount of Sleep for a Healthy Adult: a joint consensus statement of "
    "the AASM and the Sleep Research Society, Sleep 2015;38(6):843-844, https://doi.org/10.5665/sleep.4716 "
    "(7 hours or more); upper limits from Hirshkowitz M et al., National Sleep Foundation's sleep time "
    "duration recommendations, Sleep Health 2015;1(1):40-43, https://doi.org/10.1016/j.sleh.2014.12.010 "
    "(7-9 h at 18-64 years, 7-8 h from 65).",
}


def _c(unit: str, factor: float, offset: float = 0.0, display: str = "") -> UnitConversion:
    return UnitConversion(unit, factor, offset, display)


def _r(low: float | None, high: float | None, sex: str = "", age_min: int = 18, age_max: int | None = None) -> RefRange:
    return RefRange(low, high, sex, age_min, age_max)


MG_DL_GLUCOSE = 1 / 18.016  # glucose, 180.16 g/mol
MG_DL_CHOLESTEROL = 1 / 38.67  # cholesterol, 386.7 g/mol
MG_DL_TRIGLYCERIDES = 1 / 88.57  # triglycerides, as triolein 885.7 g/mol
MG_DL_CREATININE = 88.42  # creatinine, 113.12 g/mol

ANALYTES: tuple[AnalyteSpec, ...] = (
    # --- Complete blood count (whole blood, EDTA) -----------------------------------------------------
    AnalyteSpec(
        code="hemoglobin", name="Hemoglobin", kind="lab", panel="cbc",
        loinc=("718-7", "20509-6"), unit="g/dL",
        conversions=(_c("g/L", 0.1), _c("mmol/L", 1.611)),  # mmol/L of the Hb monomer (Fe), used in NL/DE
        plausible_low=1.0, plausible_high=25.0,
        ranges=(_r(12.0, 15.5, "female"), _r(13.0, 17.5, "male")),
        critical_low=7.0, critical_high=20.0, decimals=1, source="who_hb",
        aliases=("hb", "hgb", "haemoglobin"),
    ),
    AnalyteSpec(
        code="hematocrit", name="Hematocrit", kind="lab", panel="cbc",
        loinc=("4544-3", "20570-8"), unit="%",
        conversions=(_c("L/L", 100.0),),
        plausible_low=5.0, plausible_high=75.0,
        ranges=(_r(36.0, 46.0, "female"), _r(41.0, 53.0, "male")),
        critical_low=20.0, critical_high=60.0, decimals=1, source="cbc",
        aliases=("hct", "haematocrit", "packed cell volume", "pcv"),
    ),
    AnalyteSpec(
        code="rbc", name="Red blood cells", kind="lab", panel="cbc",
        loinc=("789-8", "26453-1"), unit="10*12/L",
        conversions=(_c("10*6/uL", 1.0, display="10^6/µL"),),
        plausible_low=0.5, plausible_high=10.0,
        ranges=(_r(3.9, 5.1, "female"), _r(4.3, 5.7, "male")),
        critical_low=None, critical_high=None, decimals=2, source="cbc",
        aliases=("red blood cell count", "erythrocytes", "red cell count"),
    ),
    AnalyteSpec(
        code="wbc", name="White blood cells", kind="lab", panel="cbc",
        loinc=("6690-2", "26464-8"), unit="10*9/L",
        conversions=(_c("10*3/uL", 1.0, display="10^3/µL"), _c("/nL", 1.0)),
        plausible_low=0.0, plausible_high=1000.0,
        ranges=(_r(4.0, 11.0),),
        critical_low=2.0, critical_high=30.0, decimals=1, source="cbc",
        aliases=("white blood cell count", "leukocytes", "leucocytes"),
    ),
    AnalyteSpec(
        code="platelets", name="Platelets", kind="lab", panel="cbc",
        loinc=("777-3", "26515-7"), unit="10*9/L",
        conversions=(_c("10*3/uL", 1.0, display="10^3/µL"), _c("/nL", 1.0)),
        plausible_low=0.0, plausible_high=3000.0,
        ranges=(_r(150.0, 400.0),),
        critical_low=20.0, critical_high=1000.0, decimals=0, source="cbc",
        aliases=("plt", "platelet count", "thrombocytes"),
    ),
    AnalyteSpec(
        code="mcv", name="Mean corpuscular volume", kind="lab", panel="cbc",
        loinc=("787-2", "30428-7"), unit="fL",
        conversions=(),
        plausible_low=40.0, plausible_high=150.0,
        ranges=(_r(80.0, 100.0),),
        critical_low=None, critical_high=None, decimals=1, source="cbc",
        aliases=("mean cell volume",),
    ),
    AnalyteSpec(
        code="mch", name="Mean corpuscular hemoglobin", kind="lab", panel="cbc",
        loinc=("785-6", "28539-5"), unit="pg",
        conversions=(),
        plausible_low=10.0, plausible_high=50.0,
        ranges=(_r(27.0, 33.0),),
        critical_low=None, critical_high=None, decimals=1, source="cbc",
        aliases=("mean cell hemoglobin",),
    ),
    AnalyteSpec(
        code="mchc", name="Mean corpuscular hemoglobin concentration", kind="lab", panel="cbc",
        loinc=("786-4", "28540-3"), unit="g/dL",
        conversions=(_c("g/L", 0.1),),
        plausible_low=20.0, plausible_high=45.0,
        ranges=(_r(32.0, 36.0),),
        critical_low=None, critical_high=None, decimals=1, source="cbc",
        aliases=("mean cell hemoglobin concentration",),
    ),
    # --- Metabolic: glucose, HbA1c, kidney, electrolytes, insulin (serum/plasma) --------------------------
    AnalyteSpec(
        code="glucose", name="Glucose (fasting)", kind="lab", panel="metabolic",
        # Only a sample the laboratory calls fasting: serum/plasma mass, then moles. A glucose whose code does not
        # say fasting is "glucose_random", never judged by fasting cut-offs.
        loinc=("1558-6", "14771-0", "77145-1"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_GLUCOSE),),
        plausible_low=0.5, plausible_high=60.0,
        ranges=(_r(3.9, 5.5),),  # 70-99 mg/dL
        critical_low=2.8, critical_high=25.0, decimals=1, source="ada_glucose",
        aliases=("fasting glucose", "fpg", "fasting plasma glucose", "fbs", "fasting blood glucose"),
    ),
    AnalyteSpec(
        code="glucose_random", name="Glucose (random)", kind="lab", panel="metabolic",
        # serum/plasma mass, whole blood mass (every Synthea glucose), then the same in moles
        loinc=("2345-7", "2339-0", "14749-6", "15074-8"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_GLUCOSE),),
        plausible_low=0.5, plausible_high=60.0,
        ranges=(_r(3.9, 7.8),),  # 70-140 mg/dL
        critical_low=2.8, critical_high=25.0, decimals=1, source="ada_glucose_random",
        # Not "glucose": that is the fasting analyte's code, which the API and files have always named it by.
        aliases=("glu", "blood glucose", "random glucose", "random blood glucose", "rbg", "non-fasting glucose"),
    ),
    AnalyteSpec(
        code="hba1c", name="Hemoglobin A1c", kind="lab", panel="metabolic",
        loinc=("4548-4", "17856-6", "59261-8"), unit="%",
        conversions=(_c("mmol/mol", 0.09148, 2.152),),  # IFCC -> NGSP master equation
        plausible_low=2.0, plausible_high=20.0,
        ranges=(_r(4.0, 5.6),),
        critical_low=None, critical_high=None, decimals=1, source="ada_a1c",
        aliases=("a1c", "hemoglobin a1c", "glycated hemoglobin", "hb a1c", "glycohemoglobin", "hgba1c"),
    ),
    AnalyteSpec(
        code="creatinine", name="Creatinine", kind="lab", panel="metabolic",
        loinc=("2160-0", "38483-4", "14682-9"), unit="umol/L",
        conversions=(_c("mg/dL", MG_DL_CREATININE),),
        plausible_low=10.0, plausible_high=2500.0,
        ranges=(_r(45.0, 84.0, "female"), _r(59.0, 104.0, "male")),  # 0.51-0.95 / 0.67-1.17 mg/dL
        critical_low=None, critical_high=None, decimals=0, source="creatinine",
        aliases=("creat", "cr", "scr", "serum creatinine"),
    ),
    AnalyteSpec(
        code="egfr_reported", name="eGFR (reported by the laboratory)", kind="lab", panel="metabolic",
        # CKD-EPI 2021, CKD-EPI, MDRD, and the non-race-specific MDRD and CKD-EPI codes; the race-specific
        # ("among blacks") codes are left out: KDIGO 2024 recommends race-free equations.
        loinc=("98979-8", "62238-1", "33914-3", "48642-3", "88294-4"), unit="mL/min/{1.73_m2}",
        conversions=(),
        plausible_low=1.0, plausible_high=200.0,
        ranges=(_r(60.0, None),),  # below 60: KDIGO categories G3a-G5
        critical_low=None, critical_high=None, decimals=0, source="kdigo_egfr",
        aliases=("egfr", "estimated gfr", "estimated glomerular filtration rate"),
    ),
    AnalyteSpec(
        code="sodium", name="Sodium", kind="lab", panel="metabolic",
        loinc=("2951-2", "2947-0"), unit="mmol/L",
        conversions=(_c("meq/L", 1.0),),
        plausible_low=90.0, plausible_high=200.0,
        ranges=(_r(135.0, 145.0),),
        critical_low=120.0, critical_high=160.0, decimals=0, source="electrolytes",
        aliases=("na",),
    ),
    AnalyteSpec(
        code="potassium", name="Potassium", kind="lab", panel="metabolic",
        loinc=("2823-3", "6298-4"), unit="mmol/L",
        conversions=(_c("meq/L", 1.0),),
        plausible_low=1.0, plausible_high=12.0,
        ranges=(_r(3.5, 5.1),),
        critical_low=2.8, critical_high=6.2, decimals=1, source="electrolytes",
        aliases=("k",),
    ),
    AnalyteSpec(
        code="insulin", name="Insulin (fasting)", kind="lab", panel="metabolic",
        loinc=("20448-7",), unit="u[IU]/mL",
        conversions=(_c("pmol/L", 1 / 6.0),),
        plausible_low=0.1, plausible_high=1000.0,
        ranges=(_r(2.6, 24.9),),
        critical_low=None, critical_high=None, decimals=1, source="insulin",
        aliases=("fasting insulin",),
    ),
    # --- Lipids (serum/plasma); NCEP mg/dL cut-points converted exactly ---------------------------------
    AnalyteSpec(
        code="total_cholesterol", name="Total cholesterol", kind="lab", panel="lipid",
        loinc=("2093-3", "14647-2"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_CHOLESTEROL),),
        plausible_low=1.0, plausible_high=30.0,
        ranges=(_r(None, 5.17),),  # < 200 mg/dL
        critical_low=None, critical_high=None, decimals=2, source="lipids",
        aliases=("cholesterol", "chol", "tc"),
    ),
    AnalyteSpec(
        code="ldl", name="LDL cholesterol", kind="lab", panel="lipid",
        # calculated, direct, unspecified method; then moles
        loinc=("13457-7", "18262-6", "2089-1", "22748-8"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_CHOLESTEROL),),
        plausible_low=0.1, plausible_high=20.0,
        ranges=(_r(None, 3.36),),  # < 130 mg/dL
        critical_low=None, critical_high=None, decimals=2, source="lipids",
        aliases=("ldl cholesterol", "ldl-c", "ldl-cholesterol"),
    ),
    AnalyteSpec(
        code="hdl", name="HDL cholesterol", kind="lab", panel="lipid",
        loinc=("2085-9", "14646-4"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_CHOLESTEROL),),
        plausible_low=0.1, plausible_high=5.0,
        ranges=(_r(1.29, None, "female"), _r(1.03, None, "male")),  # >= 50 / >= 40 mg/dL
        critical_low=None, critical_high=None, decimals=2, source="lipids",
        aliases=("hdl cholesterol", "hdl-c", "hdl-cholesterol"),
    ),
    AnalyteSpec(
        code="triglycerides", name="Triglycerides", kind="lab", panel="lipid",
        loinc=("2571-8", "14927-8"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_TRIGLYCERIDES),),
        plausible_low=0.1, plausible_high=100.0,
        ranges=(_r(None, 1.69),),  # < 150 mg/dL
        critical_low=None, critical_high=None, decimals=2, source="lipids",
        aliases=("tg", "trig", "triglyceride"),
    ),
    # --- Liver ------------------------------------------------------------------------------------------
    AnalyteSpec(
        code="alt", name="Alanine aminotransferase (ALT)", kind="lab", panel="liver",
        loinc=("1742-6", "1743-4"), unit="U/L",
        conversions=(_c("ukat/L", 60.0, display="µkat/L"),),
        plausible_low=1.0, plausible_high=10000.0,
        ranges=(_r(None, 25.0, "female"), _r(None, 33.0, "male")),
        critical_low=None, critical_high=None, decimals=0, source="acg_liver",
        aliases=("alanine aminotransferase", "sgpt", "alat"),
    ),
    AnalyteSpec(
        code="ast", name="Aspartate aminotransferase (AST)", kind="lab", panel="liver",
        loinc=("1920-8", "30239-8"), unit="U/L",
        conversions=(_c("ukat/L", 60.0, display="µkat/L"),),
        plausible_low=1.0, plausible_high=10000.0,
        ranges=(_r(10.0, 40.0),),
        critical_low=None, critical_high=None, decimals=0, source="tietz",
        aliases=("aspartate aminotransferase", "sgot", "asat"),
    ),
    # --- Inflammation: standard CRP and high-sensitivity CRP are different tests -------------------------
    AnalyteSpec(
        code="crp", name="C-reactive protein", kind="lab", panel="inflammation",
        loinc=("1988-5",), unit="mg/L",
        conversions=(_c("mg/dL", 10.0),),
        plausible_low=0.0, plausible_high=600.0,
        ranges=(_r(None, 5.0),),
        critical_low=None, critical_high=None, decimals=1, source="crp",
        aliases=("c-reactive protein", "c reactive protein"),
    ),
    AnalyteSpec(
        code="hs_crp", name="High-sensitivity CRP", kind="lab", panel="inflammation",
        loinc=("30522-7",), unit="mg/L",
        conversions=(_c("mg/dL", 10.0),),
        plausible_low=0.0, plausible_high=200.0,
        ranges=(_r(None, 3.0),),
        critical_low=None, critical_high=None, decimals=2, source="cdc_aha_crp",
        aliases=("hscrp", "hs-crp", "high-sensitivity crp", "high sensitivity c-reactive protein"),
    ),
    # --- Cardiac: one analyte per troponin assay; each 99th percentile is the assay's own ------------------
    AnalyteSpec(
        code="troponin", name="Troponin I (high-sensitivity)", kind="lab", panel="cardiac",
        loinc=("89579-7",), unit="ng/L",
        conversions=(_c("ng/mL", 1000.0), _c("ug/L", 1000.0, display="µg/L")),
        plausible_low=0.0, plausible_high=500000.0,
        ranges=(_r(None, 16.0, "female"), _r(None, 34.0, "male")),  # Abbott ARCHITECT hs-cTnI
        critical_low=None, critical_high=None, decimals=0, source="udmi4",
        aliases=("hs-ctni", "hs-tni", "hs troponin i", "high-sensitivity troponin i"),
    ),
    AnalyteSpec(
        code="troponin_t_hs", name="Troponin T (high-sensitivity)", kind="lab", panel="cardiac",
        loinc=("67151-1",), unit="ng/L",
        conversions=(_c("ng/mL", 1000.0), _c("ug/L", 1000.0, display="µg/L")),
        plausible_low=0.0, plausible_high=500000.0,
        ranges=(_r(None, 14.0),),  # Roche Elecsys hs-cTnT
        critical_low=None, critical_high=None, decimals=0, source="udmi4",
        aliases=("hs-ctnt", "hs-tnt", "hs troponin t", "high-sensitivity troponin t"),
    ),
    AnalyteSpec(
        code="troponin_i", name="Troponin I (conventional)", kind="lab", panel="cardiac",
        loinc=("10839-9",), unit="ng/L",
        conversions=(_c("ng/mL", 1000.0), _c("ug/L", 1000.0, display="µg/L")),
        plausible_low=0.0, plausible_high=500000.0,
        ranges=(_r(None, 40.0),),  # 0.04 ng/mL, Siemens ADVIA Centaur TnI-Ultra
        critical_low=None, critical_high=None, decimals=0, source="udmi4",
        aliases=("ctni", "troponin i", "tni"),
    ),
    AnalyteSpec(
        code="troponin_t", name="Troponin T (conventional)", kind="lab", panel="cardiac",
        loinc=("6598-7",), unit="ng/L",
        conversions=(_c("ng/mL", 1000.0), _c("ug/L", 1000.0, display="µg/L")),
        plausible_low=0.0, plausible_high=500000.0,
        ranges=(_r(None, 10.0),),  # 0.01 ng/mL, Roche Elecsys Troponin T 4th generation
        critical_low=None, critical_high=None, decimals=0, source="udmi4",
        aliases=("ctnt", "troponin t", "tnt"),
    ),
    # --- Vital signs --------------------------------------------------------------------------------------
    AnalyteSpec(
        code="bmi", name="Body mass index", kind="vital", panel="vitals",
        loinc=("39156-5",), unit="kg/m2",
        conversions=(),
        plausible_low=8.0, plausible_high=200.0,
        ranges=(_r(18.5, 24.9),),
        critical_low=None, critical_high=None, decimals=1, source="who_bmi",
        aliases=("body mass index",),
    ),
    AnalyteSpec(
        code="systolic_bp", name="Systolic blood pressure", kind="vital", panel="vitals",
        loinc=("8480-6",), unit="mm[Hg]",
        conversions=(),
        plausible_low=40.0, plausible_high=300.0,
        ranges=(_r(90.0, 129.0),),  # hypertension from 130
        critical_low=70.0, critical_high=180.0, decimals=0, source="acc_aha_bp",
        aliases=("systolic blood pressure", "sbp", "systolic"),
    ),
    AnalyteSpec(
        code="diastolic_bp", name="Diastolic blood pressure", kind="vital", panel="vitals",
        loinc=("8462-4",), unit="mm[Hg]",
        conversions=(),
        plausible_low=20.0, plausible_high=200.0,
        ranges=(_r(60.0, 79.0),),  # hypertension from 80
        critical_low=None, critical_high=120.0, decimals=0, source="acc_aha_bp",
        aliases=("diastolic blood pressure", "dbp", "diastolic"),
    ),
    AnalyteSpec(
        code="heart_rate", name="Heart rate", kind="vital", panel="vitals",
        loinc=("8867-4",), unit="/min",
        conversions=(),
        plausible_low=20.0, plausible_high=300.0,
        ranges=(_r(60.0, 100.0),),
        critical_low=None, critical_high=None, decimals=0, source="aha_hr",
        aliases=("hr", "pulse", "heart rate"),
    ),
    AnalyteSpec(
        code="body_weight", name="Body weight", kind="vital", panel="vitals",
        loinc=("29463-7",), unit="kg",
        conversions=(_c("[lb_av]", 0.45359237, display="lb"), _c("g", 0.001)),
        plausible_low=0.5, plausible_high=650.0,
        ranges=(),
        critical_low=None, critical_high=None, decimals=1, source="anthropometry",
        aliases=("weight", "wt"),
    ),
    AnalyteSpec(
        code="body_height", name="Body height", kind="vital", panel="vitals",
        loinc=("8302-2",), unit="cm",
        conversions=(_c("[in_i]", 2.54, display="in"), _c("m", 100.0)),
        plausible_low=20.0, plausible_high=275.0,
        ranges=(),
        critical_low=None, critical_high=None, decimals=1, source="anthropometry",
        aliases=("height", "ht"),
    ),
    # --- Wearable (one value per day) -----------------------------------------------------------------------
    AnalyteSpec(
        code="steps", name="Step count (daily)", kind="wearable", panel="wearable",
        loinc=("41950-7",), unit="/d",
        conversions=(),
        plausible_low=0.0, plausible_high=100000.0,
        ranges=(_r(5000.0, None),),  # fewer is a sedentary day
        critical_low=None, critical_high=None, decimals=0, source="steps",
        aliases=("step count", "daily steps", "steps per day"),
    ),
    AnalyteSpec(
        code="resting_heart_rate", name="Resting heart rate", kind="wearable", panel="wearable",
        loinc=("40443-4",), unit="/min",
        conversions=(),
        plausible_low=20.0, plausible_high=250.0,
        ranges=(_r(60.0, 100.0),),
        critical_low=None, critical_high=None, decimals=0, source="aha_hr",
        aliases=("resting hr", "rhr", "resting heart rate"),
    ),
    AnalyteSpec(
        code="sleep_duration", name="Sleep duration", kind="wearable", panel="wearable",
        loinc=("93832-4",), unit="h",
        conversions=(_c("min", 1 / 60),),
        plausible_low=0.0, plausible_high=24.0,
        ranges=(_r(7.0, 9.0, age_max=64), _r(7.0, 8.0, age_min=65)),
        critical_low=None, critical_high=None, decimals=1, source="sleep",
        aliases=("sleep", "sleep hours", "hours of sleep", "sleep_hours"),
    ),
)  # fmt: skip

# How recent a result must be to be judged as current, in days, with the guideline statement behind it. An older
# result is shown as out of date and never judged as current: where a rule would have fired on it, the advice asks
# for the test to be repeated. Analytes not listed: DEFAULT_RECENCY_DAYS, the model's own window.
DEFAULT_RECENCY_DAYS = 730
_ADA_YEARLY = "ADA 2025, Standards of Care 2 and 3: people with prediabetes are tested at least yearly"
_AHA_ACC_REASSESS = "2018 AHA/ACC cholesterol guideline: lipids are reassessed every 3-12 months"
_KDIGO_YEARLY = "KDIGO 2024: GFR is assessed at least once a year in people with CKD"
_ACC_AHA_YEARLY = "2017 ACC/AHA: adults with normal blood pressure are re-evaluated every year"
_UDMI4_ACUTE = "UDMI4: myocardial injury is judged on serial values taken hours apart"
RECENCY: dict[str, tuple[int, str]] = {
    **dict.fromkeys(("hba1c", "glucose", "glucose_random", "insulin"), (365, _ADA_YEARLY)),
    **dict.fromkeys(("total_cholesterol", "ldl", "hdl", "triglycerides"), (365, _AHA_ACC_REASSESS)),
    **dict.fromkeys(("creatinine", "egfr_reported"), (365, _KDIGO_YEARLY)),
    **dict.fromkeys(("systolic_bp", "diastolic_bp"), (365, _ACC_AHA_YEARLY)),
    **dict.fromkeys(("troponin", "troponin_t_hs", "troponin_i", "troponin_t"), (7, _UDMI4_ACUTE)),
}


def recency_days(analyte_code: str) -> int:
    return RECENCY.get(analyte_code, (DEFAULT_RECENCY_DAYS, ""))[0]


# An accepted unit's own label ("lb" for "[lb_av]"), else the display of the code: how every page names a unit.
_UNIT_LABELS = {(spec.code, c.unit): c.display for spec in ANALYTES for c in spec.conversions if c.display}


def unit_label(analyte_code: str, unit: str) -> str:
    return _UNIT_LABELS.get((analyte_code, unit)) or unit_display(unit)
