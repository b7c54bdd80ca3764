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
    "kg/m2": "kg/m²", "/d": "per day", "mL/min/{1.73_m2}": "mL/min/1.73 m²", "a": "years", "ug/L": "µg/L",
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
    panel: str  # a key of patients.selectors.PANELS: "cbc", "metabolic", "lipid", "liver", "cardiac", ... "wearable"
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
    "chemistry": "Conventional adult serum intervals as tabulated in laboratory medicine references: "
    + _TIETZ
    + " US National Library of Medicine, MedlinePlus Medical Encyclopedia: Comprehensive metabolic panel, "
    "https://medlineplus.gov/ency/article/003468.htm (albumin 3.4-5.4 g/dL, alkaline phosphatase 44-147 IU/L, BUN "
    "6-20 mg/dL, calcium 8.5-10.2 mg/dL, chloride 96-106 mmol/L, CO2 23-29 mmol/L, total bilirubin up to 1.2 mg/dL, "
    "total protein 6.0-8.3 g/dL); Total protein, https://medlineplus.gov/ency/article/003483.htm (globulin "
    "2.0-3.5 g/dL); Magnesium blood test, https://medlineplus.gov/ency/article/003487.htm (1.7-2.2 mg/dL); "
    "Phosphorus blood test, https://medlineplus.gov/ency/article/003478.htm (2.8-4.5 mg/dL). Intervals differ by "
    "method and laboratory." + _KOST + " (Kost 1990 mean limits: calcium 6.6 / 12.9 mg/dL, magnesium 1.0 / 4.9 "
    "mg/dL, phosphorus 1.2 / 8.9 mg/dL, chloride 75 / 126 mmol/L, CO2 content 11 / 40 mmol/L, urea nitrogen high "
    "104 mg/dL, bilirubin high 15 mg/dL.)",
    "differential": "Percentages: US National Library of Medicine, MedlinePlus Medical Encyclopedia, Blood "
    "differential test, https://medlineplus.gov/ency/article/003657.htm (neutrophils 40-60 %, lymphocytes 20-40 %, "
    "monocytes 2-8 %, eosinophils 1-4 %, basophils 0.5-1 %). Absolute counts: conventional adult intervals, "
    + _TIETZ
    + " Critical low neutrophil count 0.5 x10^9/L: severe neutropenia, the threshold of Freifeld AG et al., "
    "Clinical Practice Guideline for the Use of Antimicrobial Agents in Neutropenic Patients with Cancer: 2010 "
    "Update by the IDSA, Clin Infect Dis 2011;52(4):e56-e93, https://doi.org/10.1093/cid/cir073.",
    "lactate": "US National Library of Medicine, MedlinePlus Medical Encyclopedia, Lactic acid test, "
    "https://medlineplus.gov/ency/article/003507.htm (4.5-19.8 mg/dL, 0.5-2.2 mmol/L). Critical high 4 mmol/L: the "
    "lactate at which the Surviving Sepsis Campaign Hour-1 bundle starts fluid resuscitation, Levy MM, Evans LE, "
    "Rhodes A, The Surviving Sepsis Campaign Bundle: 2018 Update, Crit Care Med 2018;46(6):997-1000, "
    "https://doi.org/10.1097/CCM.0000000000003119.",
    "coagulation": "US National Library of Medicine, MedlinePlus Medical Encyclopedia: Prothrombin time (PT), "
    "https://medlineplus.gov/ency/article/003652.htm (11-13.5 s; INR 0.8-1.1 without anticoagulation); Partial "
    "thromboplastin time (PTT), https://medlineplus.gov/ency/article/003653.htm (25-35 s). Reagent- and "
    "analyser-specific. Critical limits (INR above 5, aPTT above 100 s): the medians of Pai M, Moffat KA, "
    "Plumhoff E, Hayward CPM, Critical values in the coagulation laboratory: results of a survey of the North "
    "American Specialized Coagulation Laboratory Association, Am J Clin Pathol 2011;136(6):836-841, "
    "https://doi.org/10.1309/AJCP8O8GIPPPNUSH.",
    "who_ferritin": "World Health Organization, WHO guideline on use of ferritin concentrations to assess iron "
    "status in individuals and populations, Geneva, 2020, https://www.who.int/publications/i/item/9789240000124 "
    "(apparently healthy adults: ferritin below 15 ug/L is iron deficiency; above 150 ug/L in women and 200 ug/L "
    "in men a risk of iron overload).",
    "iron": "US National Library of Medicine, MedlinePlus Medical Encyclopedia: Serum iron test, "
    "https://medlineplus.gov/ency/article/003488.htm (iron 60-170 ug/dL, transferrin saturation 20-50 %); Total "
    "iron binding capacity, https://medlineplus.gov/ency/article/003489.htm (240-450 ug/dL). Iron deficiency is "
    "judged with ferritin (WHO 2020).",
    "kdigo_acr": "KDIGO 2024 Clinical Practice Guideline for the Evaluation and Management of Chronic Kidney "
    "Disease, Kidney Int 2024;105(4S):S117-S314, https://doi.org/10.1016/j.kint.2023.10.018 (albuminuria "
    "categories: A1 below 30 mg/g (3 mg/mmol), A2 30-300 mg/g, A3 above 300 mg/g).",
    "esc_hf": "McDonagh TA et al., 2021 ESC Guidelines for the diagnosis and treatment of acute and chronic heart "
    "failure, Eur Heart J 2021;42(36):3599-3726, https://doi.org/10.1093/eurheartj/ehab368 (non-acute setting: "
    "NT-proBNP below 125 pg/mL makes heart failure unlikely).",
    "wao_ige": "Ansotegui IJ et al., IgE allergy diagnostics and other relevant tests in allergy, a World Allergy "
    "Organization position paper, World Allergy Organ J 2020;13(2):100080, "
    "https://doi.org/10.1016/j.waojou.2019.100080 (allergen-specific IgE below 0.35 kUA/L is class 0; a value at "
    "or above it shows sensitisation, which is allergy only with matching clinical history).",
    "blood_gas": "US National Library of Medicine, MedlinePlus Medical Encyclopedia, Blood gases, "
    "https://medlineplus.gov/ency/article/003855.htm (at sea level: pH 7.35-7.45, pO2 75-100 mm Hg, pCO2 35-45 "
    "mm Hg, bicarbonate 22-26 mEq/L)." + _KOST + " (Kost 1990 mean limits: pH 7.21 / 7.59, pCO2 19 / 67 mm Hg, "
    "pO2 below 43 mm Hg.)",
    "urinalysis": "US National Library of Medicine, MedlinePlus Medical Encyclopedia: Urinalysis, "
    "https://medlineplus.gov/ency/article/003579.htm (specific gravity 1.005-1.030, pH 4.5-8; glucose, ketones "
    "and bilirubin normally absent); Glucose urine test (0-15 mg/dL) and Protein urine test (0-14 mg/dL in a "
    "random sample), same encyclopedia. Test strips are semi-quantitative and read by brand-specific bands: "
    "ketones and bilirubin have no numeric limit here.",
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

MG_DL_UREA_NITROGEN = 1 / 2.8014  # urea nitrogen (BUN) mg/dL -> urea mmol/L: two nitrogens of 14.007 g/mol per urea
MG_DL_CALCIUM = 1 / 4.008  # calcium, 40.08 g/mol
MG_DL_MAGNESIUM = 1 / 2.4305  # magnesium, 24.305 g/mol
MG_DL_PHOSPHORUS = 1 / 3.0974  # phosphate reported as phosphorus, 30.974 g/mol
MG_DL_LACTATE = 1 / 9.008  # lactate, 90.08 g/mol
MG_DL_BILIRUBIN = 17.104  # bilirubin, 584.66 g/mol
UG_DL_IRON = 1 / 5.5845  # iron, 55.845 g/mol
MM_HG_PER_KPA = 7.50062  # pressure: 1 kPa = 7.50062 mm Hg
MG_MMOL_ACR = 1000 / 113.12  # albumin/creatinine mg/mmol -> mg/g: a millimole of creatinine weighs 113.12 mg
# International units of enzyme activity are the same U/L; UCUM writes them [iU] or [IU].
IU_L = (UnitConversion("[iU]/L", 1.0, display="IU/L"), UnitConversion("[IU]/L", 1.0, display="IU/L"))

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
    # Red cell and platelet indices: conventional intervals; each analyser has its own.
    AnalyteSpec(
        code="rdw_cv", name="Red cell distribution width (CV)", kind="lab", panel="cbc",
        loinc=("788-0", "30385-9"), unit="%",
        conversions=(),
        plausible_low=5.0, plausible_high=50.0,
        ranges=(_r(11.5, 14.5),),
        critical_low=None, critical_high=None, decimals=1, source="cbc",
        aliases=("rdw", "rdw-cv", "red cell distribution width"),
    ),
    AnalyteSpec(
        code="rdw_sd", name="Red cell distribution width (SD)", kind="lab", panel="cbc",
        loinc=("21000-5",), unit="fL",
        conversions=(),
        plausible_low=15.0, plausible_high=150.0,
        ranges=(_r(39.0, 46.0),),
        critical_low=None, critical_high=None, decimals=1, source="cbc",
        aliases=("rdw-sd",),
    ),
    AnalyteSpec(
        code="mpv", name="Mean platelet volume", kind="lab", panel="cbc",
        loinc=("32623-1", "28542-9"), unit="fL",
        conversions=(),
        plausible_low=3.0, plausible_high=25.0,
        ranges=(_r(7.5, 11.5),),
        critical_low=None, critical_high=None, decimals=1, source="cbc",
        aliases=("mean platelet volume", "platelet mean volume"),
    ),
    AnalyteSpec(
        # Platelets are 7-12 fL: a distribution width of hundreds of fL is not a result (Synthea files 150-520 fL).
        code="pdw", name="Platelet distribution width", kind="lab", panel="cbc",
        loinc=("32207-3",), unit="fL",
        conversions=(),
        plausible_low=3.0, plausible_high=40.0,
        ranges=(_r(9.0, 17.0),),
        critical_low=None, critical_high=None, decimals=1, source="cbc",
        aliases=("platelet distribution width",),
    ),
    # White cell differential, automated count: absolute counts (what is judged), then percentages of leukocytes.
    AnalyteSpec(
        code="neutrophils", name="Neutrophils", kind="lab", panel="cbc",
        loinc=("751-8", "26499-4"), unit="10*9/L",
        conversions=(_c("10*3/uL", 1.0, display="10^3/µL"), _c("/nL", 1.0)),
        plausible_low=0.0, plausible_high=500.0,
        ranges=(_r(2.0, 7.5),),
        critical_low=0.5, critical_high=None, decimals=2, source="differential",
        aliases=("neutrophil count", "absolute neutrophil count", "anc", "neut"),
    ),
    AnalyteSpec(
        code="lymphocytes", name="Lymphocytes", kind="lab", panel="cbc",
        loinc=("731-0", "26474-7"), unit="10*9/L",
        conversions=(_c("10*3/uL", 1.0, display="10^3/µL"), _c("/nL", 1.0)),
        plausible_low=0.0, plausible_high=500.0,
        ranges=(_r(1.0, 4.0),),
        critical_low=None, critical_high=None, decimals=2, source="differential",
        aliases=("lymphocyte count", "absolute lymphocyte count", "lymph"),
    ),
    AnalyteSpec(
        code="monocytes", name="Monocytes", kind="lab", panel="cbc",
        loinc=("742-7", "26484-6"), unit="10*9/L",
        conversions=(_c("10*3/uL", 1.0, display="10^3/µL"), _c("/nL", 1.0)),
        plausible_low=0.0, plausible_high=200.0,
        ranges=(_r(0.2, 1.0),),
        critical_low=None, critical_high=None, decimals=2, source="differential",
        aliases=("monocyte count", "mono"),
    ),
    AnalyteSpec(
        code="eosinophils", name="Eosinophils", kind="lab", panel="cbc",
        loinc=("711-2", "26449-9"), unit="10*9/L",
        conversions=(_c("10*3/uL", 1.0, display="10^3/µL"), _c("/nL", 1.0)),
        plausible_low=0.0, plausible_high=100.0,
        ranges=(_r(None, 0.5),),
        critical_low=None, critical_high=None, decimals=2, source="differential",
        aliases=("eosinophil count", "eos"),
    ),
    AnalyteSpec(
        code="basophils", name="Basophils", kind="lab", panel="cbc",
        loinc=("704-7", "26444-0"), unit="10*9/L",
        conversions=(_c("10*3/uL", 1.0, display="10^3/µL"), _c("/nL", 1.0)),
        plausible_low=0.0, plausible_high=50.0,
        ranges=(_r(None, 0.1),),
        critical_low=None, critical_high=None, decimals=2, source="differential",
        aliases=("basophil count", "baso"),
    ),
    AnalyteSpec(
        code="neutrophils_pct", name="Neutrophils (% of leukocytes)", kind="lab", panel="cbc",
        loinc=("770-8", "26511-6"), unit="%",
        conversions=(),
        plausible_low=0.0, plausible_high=100.0,
        ranges=(_r(40.0, 60.0),),
        critical_low=None, critical_high=None, decimals=1, source="differential",
        aliases=("neutrophils %", "neut %"),
    ),
    AnalyteSpec(
        code="lymphocytes_pct", name="Lymphocytes (% of leukocytes)", kind="lab", panel="cbc",
        loinc=("736-9", "26478-8"), unit="%",
        conversions=(),
        plausible_low=0.0, plausible_high=100.0,
        ranges=(_r(20.0, 40.0),),
        critical_low=None, critical_high=None, decimals=1, source="differential",
        aliases=("lymphocytes %", "lymph %"),
    ),
    AnalyteSpec(
        code="monocytes_pct", name="Monocytes (% of leukocytes)", kind="lab", panel="cbc",
        loinc=("5905-5", "26485-3"), unit="%",
        conversions=(),
        plausible_low=0.0, plausible_high=100.0,
        ranges=(_r(2.0, 8.0),),
        critical_low=None, critical_high=None, decimals=1, source="differential",
        aliases=("monocytes %", "mono %"),
    ),
    AnalyteSpec(
        code="eosinophils_pct", name="Eosinophils (% of leukocytes)", kind="lab", panel="cbc",
        loinc=("713-8", "26450-7"), unit="%",
        conversions=(),
        plausible_low=0.0, plausible_high=100.0,
        ranges=(_r(1.0, 4.0),),
        critical_low=None, critical_high=None, decimals=1, source="differential",
        aliases=("eosinophils %", "eos %"),
    ),
    AnalyteSpec(
        code="basophils_pct", name="Basophils (% of leukocytes)", kind="lab", panel="cbc",
        loinc=("706-2", "30180-4"), unit="%",
        conversions=(),
        plausible_low=0.0, plausible_high=100.0,
        ranges=(_r(0.5, 1.0),),
        critical_low=None, critical_high=None, decimals=1, source="differential",
        aliases=("basophils %", "baso %"),
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
        # Every one of these codes is normalised to 1.73 m2 by definition, so a laboratory (or Synthea) writing the
        # unit short as "mL/min" reports the same number; a clearance that is not normalised has other codes.
        conversions=(_c("mL/min", 1.0),),
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
    # Rest of the basic and comprehensive metabolic panels: serum/plasma, then whole blood, then moles. Critical
    # limits surveyed in mg/dL are those mg/dL values converted exactly, so a value entered in mg/dL is judged as
    # the survey states it.
    AnalyteSpec(
        # Reported as urea nitrogen (BUN, mg/dL) in the US, as urea (mmol/L) elsewhere: one mole of urea carries
        # two of nitrogen, so BUN mg/dL / 2.8014 = urea mmol/L. Urea by mass (mg/dL of urea) has another factor
        # and the same unit, so its codes are left out.
        code="urea", name="Urea (BUN)", kind="lab", panel="metabolic",
        loinc=("3094-0", "6299-2", "22664-7"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_UREA_NITROGEN),),
        plausible_low=0.1, plausible_high=100.0,
        ranges=(_r(2.14, 7.14),),  # 6-20 mg/dL
        critical_low=None, critical_high=104 * MG_DL_UREA_NITROGEN, decimals=1, source="chemistry",
        aliases=("bun", "blood urea nitrogen", "urea nitrogen", "serum urea"),
    ),
    AnalyteSpec(
        code="calcium", name="Calcium (total)", kind="lab", panel="metabolic",
        loinc=("17861-6", "49765-1", "2000-8"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_CALCIUM),),
        plausible_low=0.5, plausible_high=5.0,
        ranges=(_r(2.12, 2.55),),  # 8.5-10.2 mg/dL
        critical_low=6.6 * MG_DL_CALCIUM, critical_high=12.9 * MG_DL_CALCIUM, decimals=2, source="chemistry",
        aliases=("ca", "total calcium", "serum calcium"),
    ),
    AnalyteSpec(
        code="chloride", name="Chloride", kind="lab", panel="metabolic",
        loinc=("2075-0", "2069-3"), unit="mmol/L",
        conversions=(_c("meq/L", 1.0),),
        plausible_low=50.0, plausible_high=160.0,
        ranges=(_r(96.0, 106.0),),
        critical_low=75.0, critical_high=126.0, decimals=0, source="chemistry",
        aliases=("cl",),
    ),
    AnalyteSpec(
        code="co2_total", name="Carbon dioxide, total (bicarbonate)", kind="lab", panel="metabolic",
        loinc=("2028-9", "20565-8", "2027-1", "1963-8"), unit="mmol/L",  # serum/plasma, blood, venous blood
        conversions=(_c("meq/L", 1.0),),
        plausible_low=2.0, plausible_high=60.0,
        ranges=(_r(23.0, 29.0),),
        critical_low=11.0, critical_high=40.0, decimals=0, source="chemistry",
        aliases=("co2", "total co2", "tco2", "bicarbonate", "hco3"),
    ),
    AnalyteSpec(
        code="magnesium", name="Magnesium", kind="lab", panel="metabolic",
        loinc=("19123-9", "21377-7", "2601-3"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_MAGNESIUM), _c("meq/L", 0.5)),
        plausible_low=0.1, plausible_high=5.0,
        ranges=(_r(0.69, 0.91),),  # 1.7-2.2 mg/dL
        critical_low=1.0 * MG_DL_MAGNESIUM, critical_high=4.9 * MG_DL_MAGNESIUM, decimals=2, source="chemistry",
        aliases=("mg", "serum magnesium"),
    ),
    AnalyteSpec(
        code="phosphate", name="Phosphate", kind="lab", panel="metabolic",
        loinc=("2777-1", "14879-1"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_PHOSPHORUS),),  # reported as phosphorus
        plausible_low=0.05, plausible_high=6.0,
        ranges=(_r(0.90, 1.46),),  # 2.8-4.5 mg/dL
        critical_low=1.2 * MG_DL_PHOSPHORUS, critical_high=8.9 * MG_DL_PHOSPHORUS, decimals=2, source="chemistry",
        aliases=("phosphorus", "phos", "inorganic phosphate", "po4"),
    ),
    AnalyteSpec(
        code="lactate", name="Lactate", kind="lab", panel="metabolic",
        loinc=("32693-4", "2524-7"), unit="mmol/L",
        conversions=(_c("mg/dL", MG_DL_LACTATE),),
        plausible_low=0.1, plausible_high=30.0,
        ranges=(_r(0.5, 2.2),),
        critical_low=None, critical_high=4.0, decimals=1, source="lactate",
        aliases=("lactic acid", "lac"),
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
        conversions=(_c("ukat/L", 60.0, display="µkat/L"), *IU_L),
        plausible_low=1.0, plausible_high=10000.0,
        ranges=(_r(None, 25.0, "female"), _r(None, 33.0, "male")),
        critical_low=None, critical_high=None, decimals=0, source="acg_liver",
        aliases=("alanine aminotransferase", "sgpt", "alat"),
    ),
    AnalyteSpec(
        code="ast", name="Aspartate aminotransferase (AST)", kind="lab", panel="liver",
        loinc=("1920-8", "30239-8"), unit="U/L",
        conversions=(_c("ukat/L", 60.0, display="µkat/L"), *IU_L),
        plausible_low=1.0, plausible_high=10000.0,
        ranges=(_r(10.0, 40.0),),
        critical_low=None, critical_high=None, decimals=0, source="tietz",
        aliases=("aspartate aminotransferase", "sgot", "asat"),
    ),
    # Proteins, bilirubin and alkaline phosphatase of the comprehensive metabolic panel (serum/plasma).
    AnalyteSpec(
        code="albumin", name="Albumin", kind="lab", panel="liver",
        loinc=("1751-7", "61151-7", "61152-5"), unit="g/L",  # unspecified method, bromocresol green, purple
        conversions=(_c("g/dL", 10.0),),
        plausible_low=5.0, plausible_high=70.0,
        ranges=(_r(34.0, 54.0),),
        critical_low=None, critical_high=None, decimals=0, source="chemistry",
        aliases=("alb", "serum albumin"),
    ),
    AnalyteSpec(
        code="total_protein", name="Total protein", kind="lab", panel="liver",
        loinc=("2885-2",), unit="g/L",
        conversions=(_c("g/dL", 10.0),),
        plausible_low=20.0, plausible_high=150.0,
        ranges=(_r(60.0, 83.0),),
        critical_low=None, critical_high=None, decimals=0, source="chemistry",
        aliases=("protein", "tp", "serum protein"),
    ),
    AnalyteSpec(
        # Calculated as total protein less albumin. Synthea files it in "g/L" with values of a few units, which
        # are g/dL: refused as implausible, with the unit that was probably meant; never silently re-read.
        code="globulin", name="Globulin", kind="lab", panel="liver",
        loinc=("10834-0",), unit="g/L",
        conversions=(_c("g/dL", 10.0),),
        plausible_low=5.0, plausible_high=120.0,
        ranges=(_r(20.0, 35.0),),
        critical_low=None, critical_high=None, decimals=0, source="chemistry",
        aliases=("glob", "serum globulin"),
    ),
    AnalyteSpec(
        code="bilirubin", name="Bilirubin (total)", kind="lab", panel="liver",
        loinc=("1975-2", "42719-5", "14631-6"), unit="umol/L",
        conversions=(_c("mg/dL", MG_DL_BILIRUBIN),),
        plausible_low=0.0, plausible_high=1000.0,
        ranges=(_r(None, 21.0),),  # up to 1.2 mg/dL
        critical_low=None, critical_high=15 * MG_DL_BILIRUBIN, decimals=0, source="chemistry",
        aliases=("total bilirubin", "tbil", "bili"),
    ),
    AnalyteSpec(
        code="alp", name="Alkaline phosphatase (ALP)", kind="lab", panel="liver",
        loinc=("6768-6",), unit="U/L",
        conversions=(_c("ukat/L", 60.0, display="µkat/L"), *IU_L),
        plausible_low=1.0, plausible_high=10000.0,
        ranges=(_r(44.0, 147.0),),
        critical_low=None, critical_high=None, decimals=0, source="chemistry",
        aliases=("alkaline phosphatase", "alk phos", "alkp"),
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
        conversions=(_c("ng/mL", 1000.0), _c("ug/L", 1000.0, display="µg/L"), _c("pg/mL", 1.0)),
        plausible_low=0.0, plausible_high=500000.0,
        ranges=(_r(None, 16.0, "female"), _r(None, 34.0, "male")),  # Abbott ARCHITECT hs-cTnI
        critical_low=None, critical_high=None, decimals=0, source="udmi4",
        aliases=("hs-ctni", "hs-tni", "hs troponin i", "high-sensitivity troponin i"),
    ),
    AnalyteSpec(
        code="troponin_t_hs", name="Troponin T (high-sensitivity)", kind="lab", panel="cardiac",
        loinc=("67151-1",), unit="ng/L",
        conversions=(_c("ng/mL", 1000.0), _c("ug/L", 1000.0, display="µg/L"), _c("pg/mL", 1.0)),
        plausible_low=0.0, plausible_high=500000.0,
        ranges=(_r(None, 14.0),),  # Roche Elecsys hs-cTnT
        critical_low=None, critical_high=None, decimals=0, source="udmi4",
        aliases=("hs-ctnt", "hs-tnt", "hs troponin t", "high-sensitivity troponin t"),
    ),
    AnalyteSpec(
        code="troponin_i", name="Troponin I (conventional)", kind="lab", panel="cardiac",
        loinc=("10839-9",), unit="ng/L",
        conversions=(_c("ng/mL", 1000.0), _c("ug/L", 1000.0, display="µg/L"), _c("pg/mL", 1.0)),
        plausible_low=0.0, plausible_high=500000.0,
        ranges=(_r(None, 40.0),),  # 0.04 ng/mL, Siemens ADVIA Centaur TnI-Ultra
        critical_low=None, critical_high=None, decimals=0, source="udmi4",
        aliases=("ctni", "troponin i", "tni"),
    ),
    AnalyteSpec(
        code="troponin_t", name="Troponin T (conventional)", kind="lab", panel="cardiac",
        loinc=("6598-7",), unit="ng/L",
        conversions=(_c("ng/mL", 1000.0), _c("ug/L", 1000.0, display="µg/L"), _c("pg/mL", 1.0)),
        plausible_low=0.0, plausible_high=500000.0,
        ranges=(_r(None, 10.0),),  # 0.01 ng/mL, Roche Elecsys Troponin T 4th generation
        critical_low=None, critical_high=None, decimals=0, source="udmi4",
        aliases=("ctnt", "troponin t", "tnt"),
    ),
    AnalyteSpec(
        # Not a troponin: the troponin rules read the troponin codes only.
        code="nt_probnp", name="NT-proBNP", kind="lab", panel="cardiac",
        loinc=("33762-6", "71425-3"), unit="ng/L",  # serum/plasma, blood
        conversions=(_c("pg/mL", 1.0),),
        plausible_low=0.0, plausible_high=100000.0,
        ranges=(_r(None, 124.0),),  # heart failure unlikely below 125 pg/mL (reported in whole pg/mL)
        critical_low=None, critical_high=None, decimals=0, source="esc_hf",
        aliases=("nt-probnp", "ntprobnp", "n-terminal pro-bnp"),
    ),
    # --- Coagulation (citrated plasma); reagent-specific --------------------------------------------------
    AnalyteSpec(
        code="inr", name="INR", kind="lab", panel="coagulation",
        loinc=("6301-6", "34714-6", "46418-0"), unit="{INR}",  # plasma, blood, capillary blood (point of care)
        conversions=(),
        plausible_low=0.5, plausible_high=25.0,
        ranges=(_r(0.8, 1.1),),  # without anticoagulation; a patient on warfarin has a target range instead
        critical_low=None, critical_high=5.0, decimals=1, source="coagulation",
        aliases=("international normalized ratio", "pt inr", "pt/inr"),
    ),
    AnalyteSpec(
        code="pt", name="Prothrombin time (PT)", kind="lab", panel="coagulation",
        loinc=("5902-2", "5964-2"), unit="s",
        conversions=(),
        plausible_low=5.0, plausible_high=200.0,
        ranges=(_r(11.0, 13.5),),
        critical_low=None, critical_high=None, decimals=1, source="coagulation",
        aliases=("prothrombin time",),
    ),
    AnalyteSpec(
        code="aptt", name="Activated partial thromboplastin time (aPTT)", kind="lab", panel="coagulation",
        loinc=("3173-2", "14979-9"), unit="s",  # blood, platelet-poor plasma
        conversions=(),
        plausible_low=10.0, plausible_high=300.0,
        ranges=(_r(25.0, 35.0),),
        critical_low=None, critical_high=100.0, decimals=1, source="coagulation",
        aliases=("ptt", "partial thromboplastin time", "activated partial thromboplastin time"),
    ),
    # --- Iron studies (serum/plasma): iron deficiency is judged with ferritin -----------------------------
    AnalyteSpec(
        code="ferritin", name="Ferritin", kind="lab", panel="iron",
        loinc=("2276-4",), unit="ug/L",
        conversions=(_c("ng/mL", 1.0),),
        plausible_low=0.5, plausible_high=100000.0,
        ranges=(_r(15.0, 150.0, "female"), _r(15.0, 200.0, "male")),
        critical_low=None, critical_high=None, decimals=0, source="who_ferritin",
        aliases=("serum ferritin", "ferr"),
    ),
    AnalyteSpec(
        code="iron", name="Iron", kind="lab", panel="iron",
        loinc=("2498-4", "14798-3"), unit="umol/L",
        conversions=(_c("ug/dL", UG_DL_IRON, display="µg/dL"),),
        plausible_low=0.5, plausible_high=150.0,
        ranges=(_r(10.7, 30.5),),  # 60-170 ug/dL
        critical_low=None, critical_high=None, decimals=1, source="iron",
        aliases=("serum iron", "fe"),
    ),
    AnalyteSpec(
        code="tibc", name="Total iron-binding capacity (TIBC)", kind="lab", panel="iron",
        loinc=("2500-7", "14800-7"), unit="umol/L",
        conversions=(_c("ug/dL", UG_DL_IRON, display="µg/dL"),),
        plausible_low=5.0, plausible_high=200.0,
        ranges=(_r(42.9, 80.6),),  # 240-450 ug/dL
        critical_low=None, critical_high=None, decimals=1, source="iron",
        aliases=("total iron binding capacity", "iron binding capacity"),
    ),
    AnalyteSpec(
        code="transferrin_saturation", name="Transferrin saturation", kind="lab", panel="iron",
        loinc=("2502-3",), unit="%",
        conversions=(),
        plausible_low=0.0, plausible_high=100.0,
        ranges=(_r(20.0, 50.0),),
        critical_low=None, critical_high=None, decimals=0, source="iron",
        aliases=("tsat", "iron saturation", "transferrin sat"),
    ),
    # --- Arterial blood gases (analyser-reported at 37 °C) ---------------------------------------------------
    AnalyteSpec(
        code="ph_arterial", name="pH (arterial blood)", kind="lab", panel="blood_gas",
        loinc=("2744-1",), unit="[pH]",
        conversions=(),
        plausible_low=6.5, plausible_high=8.0,
        ranges=(_r(7.35, 7.45),),
        critical_low=7.21, critical_high=7.59, decimals=2, source="blood_gas",
        aliases=("arterial ph", "abg ph"),
    ),
    AnalyteSpec(
        code="pco2_arterial", name="pCO2 (arterial blood)", kind="lab", panel="blood_gas",
        loinc=("2019-8",), unit="mm[Hg]",
        conversions=(_c("kPa", MM_HG_PER_KPA),),
        plausible_low=5.0, plausible_high=200.0,
        ranges=(_r(35.0, 45.0),),
        critical_low=19.0, critical_high=67.0, decimals=0, source="blood_gas",
        aliases=("paco2", "arterial pco2"),
    ),
    AnalyteSpec(
        code="po2_arterial", name="pO2 (arterial blood)", kind="lab", panel="blood_gas",
        loinc=("2703-7",), unit="mm[Hg]",
        conversions=(_c("kPa", MM_HG_PER_KPA),),
        plausible_low=5.0, plausible_high=700.0,
        ranges=(_r(75.0, 100.0),),  # breathing room air at sea level
        critical_low=43.0, critical_high=None, decimals=0, source="blood_gas",
        aliases=("pao2", "arterial po2"),
    ),
    AnalyteSpec(
        code="hco3_arterial", name="Bicarbonate (arterial blood)", kind="lab", panel="blood_gas",
        loinc=("1960-4",), unit="mmol/L",
        conversions=(_c("meq/L", 1.0),),
        plausible_low=2.0, plausible_high=60.0,
        ranges=(_r(22.0, 26.0),),
        critical_low=None, critical_high=None, decimals=0, source="blood_gas",
        aliases=("arterial bicarbonate", "abg hco3"),
    ),
    # --- Urine --------------------------------------------------------------------------------------------
    AnalyteSpec(
        code="urine_acr", name="Albumin/creatinine ratio (urine)", kind="lab", panel="urine",
        loinc=("9318-7", "14959-1"), unit="mg/g",  # albumin, "microalbumin": the same test
        conversions=(_c("mg/mmol", MG_MMOL_ACR),),
        plausible_low=0.0, plausible_high=10000.0,
        ranges=(_r(None, 29.9),),  # A2 from 30 mg/g (3 mg/mmol); reported to 0.1 mg/g
        critical_low=None, critical_high=None, decimals=1, source="kdigo_acr",
        aliases=("acr", "uacr", "urine albumin creatinine ratio", "microalbumin creatinine ratio"),
    ),
    # Urine test strip (semi-quantitative: the value is the band of the pad) and the quantitative urine protein.
    AnalyteSpec(
        code="urine_sg", name="Specific gravity (urine)", kind="lab", panel="urine",
        loinc=("5811-5", "2965-2"), unit="{SG}",
        # A UCUM annotation stands for unity: "1" and Synthea's "{nominal}" are the same dimensionless number.
        conversions=(_c("1", 1.0), _c("{nominal}", 1.0)),
        plausible_low=1.0, plausible_high=1.08,
        ranges=(_r(1.005, 1.030),),
        critical_low=None, critical_high=None, decimals=3, source="urinalysis",
        aliases=("urine specific gravity", "sg"),
    ),
    AnalyteSpec(
        code="urine_ph", name="pH (urine)", kind="lab", panel="urine",
        loinc=("5803-2", "2756-5"), unit="[pH]",
        conversions=(_c("pH", 1.0),),
        plausible_low=4.0, plausible_high=9.5,
        ranges=(_r(4.5, 8.0),),
        critical_low=None, critical_high=None, decimals=1, source="urinalysis",
        aliases=("urine ph",),
    ),
    AnalyteSpec(
        code="urine_glucose", name="Glucose (urine)", kind="lab", panel="urine",
        loinc=("5792-7",), unit="mg/dL",
        conversions=(_c("mmol/L", 18.016),),
        plausible_low=0.0, plausible_high=5000.0,
        ranges=(_r(None, 15.0),),
        critical_low=None, critical_high=None, decimals=0, source="urinalysis",
        aliases=("urine glucose",),
    ),
    AnalyteSpec(
        code="urine_protein", name="Protein (urine)", kind="lab", panel="urine",
        loinc=("5804-0", "2888-6"), unit="mg/dL",  # test strip, quantitative
        conversions=(_c("g/L", 100.0), _c("mg/L", 0.1)),
        plausible_low=0.0, plausible_high=5000.0,
        ranges=(_r(None, 14.0),),
        critical_low=None, critical_high=None, decimals=0, source="urinalysis",
        aliases=("urine protein",),
    ),
    AnalyteSpec(
        # Normal is none detected; a strip's lowest band differs by brand, so no numeric limit is given.
        code="urine_ketones", name="Ketones (urine)", kind="lab", panel="urine",
        loinc=("5797-6",), unit="mg/dL",
        conversions=(),
        plausible_low=0.0, plausible_high=500.0,
        ranges=(),
        critical_low=None, critical_high=None, decimals=0, source="urinalysis",
        aliases=("urine ketones",),
    ),
    AnalyteSpec(
        code="urine_bilirubin", name="Bilirubin (urine)", kind="lab", panel="urine",
        loinc=("20505-4",), unit="mg/dL",
        conversions=(),
        plausible_low=0.0, plausible_high=100.0,
        ranges=(),
        critical_low=None, critical_high=None, decimals=1, source="urinalysis",
        aliases=("urine bilirubin",),
    ),
    # --- Allergy: allergen-specific IgE (serum), one analyte per allergen -----------------------------------
    *(
        AnalyteSpec(
            code=f"ige_{slug}", name=f"{allergen} IgE", kind="lab", panel="allergy",
            loinc=(loinc,), unit="kU/L",  # kUA/L, calibrated to the WHO IgE standard: 1 kU/L = 1 kIU/L
            conversions=(_c("k[IU]/L", 1.0, display="kIU/L"),),
            plausible_low=0.0, plausible_high=1000.0,
            ranges=(_r(None, 0.34),),  # class 0 below 0.35 kU/L; reported to 0.01 kU/L
            critical_low=None, critical_high=None, decimals=2, source="wao_ige",
            aliases=(f"{allergen.lower()} ige", immunocap),
        )
        for slug, allergen, loinc, immunocap in (
            ("peanut", "Peanut", "6206-7", "f13"),
            ("walnut", "Walnut", "6273-7", "f256"),
            ("codfish", "Codfish", "6082-2", "f3"),
            ("shrimp", "Shrimp", "6246-3", "f24"),
            ("wheat", "Wheat", "6276-0", "f4"),
            ("egg_white", "Egg white", "6106-9", "f1"),
            ("soybean", "Soybean", "6248-9", "f14"),
            ("cow_milk", "Cow's milk", "7258-7", "f2"),
            ("white_oak", "White oak", "6189-5", "t7"),
            ("ragweed", "Common ragweed", "6085-5", "w1"),
            ("cat_dander", "Cat dander", "6833-8", "e1"),
            ("dust_mite", "House dust mite (D. farinae)", "6095-4", "d2"),
            ("cladosporium", "Cladosporium herbarum", "6075-6", "m2"),
            ("honey_bee", "Honey bee venom", "6844-5", "i1"),
            ("latex", "Latex", "6158-0", "k82"),
        )
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
