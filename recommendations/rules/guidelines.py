"""The guideline rules, one declarative entry each, grouped by analyte; within a group, bands hand over to the
next, more severe one at its threshold (`until`). Thresholds are in the guideline's own unit and convention.
"""

from __future__ import annotations

import datetime

from patients.catalog_data import ANALYTES
from recommendations.rules.engine import (
    MEASURES,
    Facts,
    Finding,
    Rule,
    Severity,
    above,
    analytes_of,
    at_least,
    below,
    critical,
    critical_rule,
    reference,
    rule,
)
from recommendations.rules.facts import EGFR_REPORTED

# --- Citations, short form (advice_data.py holds the full references) ---------------------------------------------

ADA_DIAGNOSIS = (
    "ADA Professional Practice Committee, Standards of Care in Diabetes-2025, 2. Diagnosis and Classification "
    "of Diabetes, Diabetes Care 2025;48(Suppl 1):S27-S49, doi:10.2337/dc25-S002"
)
ADA_HYPOGLYCAEMIA = (
    "ADA Professional Practice Committee, Standards of Care in Diabetes-2025, 6. Glycemic Goals and "
    "Hypoglycemia, Diabetes Care 2025;48(Suppl 1):S128-S145, doi:10.2337/dc25-S006"
)
AHA_ACC_CHOLESTEROL = (
    "Grundy SM et al., 2018 AHA/ACC Guideline on the Management of Blood Cholesterol, "
    "Circulation 2019;139(25):e1082-e1143, doi:10.1161/CIR.0000000000000625"
)
NCEP_ATP3 = (
    "NCEP Adult Treatment Panel III, Executive Summary, JAMA 2001;285(19):2486-2497, doi:10.1001/jama.285.19.2486"
)
WHO_HAEMOGLOBIN = (
    "WHO, Guideline on haemoglobin cutoffs to define anaemia in individuals and populations, Geneva 2024, "
    "https://www.who.int/publications/i/item/9789240088542"
)
MENTZER = (
    "Mentzer WC Jr, Differentiation of iron deficiency from thalassaemia trait, Lancet 1973;1(7808):882, "
    "doi:10.1016/S0140-6736(73)91446-3"
)
PLATELETS = (
    "Gauer RL, Braun MM, Thrombocytopenia, Am Fam Physician 2012;85(6):612-622, "
    "https://www.aafp.org/pubs/afp/issues/2012/0315/p612.html"
)
WHO_MYELOID = (
    "Arber DA et al., The 2016 revision to the WHO classification of myeloid neoplasms and acute leukemia, "
    "Blood 2016;127(20):2391-2405, doi:10.1182/blood-2016-03-643544"
)
KDIGO_CKD = (
    "KDIGO 2024 Clinical Practice Guideline for the Evaluation and Management of Chronic Kidney Disease, "
    "Kidney Int 2024;105(4S):S117-S314, doi:10.1016/j.kint.2023.10.018"
)
HYPONATRAEMIA = (
    "Spasovski G et al., Clinical practice guideline on diagnosis and treatment of hyponatraemia, "
    "Eur J Endocrinol 2014;170(3):G1-G47, doi:10.1530/EJE-13-1020"
)
HYPERNATRAEMIA = (
    "Adrogué HJ, Madias NE, Hypernatremia, N Engl J Med 2000;342(20):1493-1499, doi:10.1056/NEJM200005183422006"
)
POTASSIUM = (
    "Adult reference interval 3.5-5.1 mmol/L (Tietz Textbook of Laboratory Medicine, 7th ed., 2022); "
    "Clase CM et al., KDIGO Controversies Conference on dyskalemia, Kidney Int 2020;97(1):42-61, "
    "doi:10.1016/j.kint.2019.09.018"
)
KDIGO_AKI = (
    "KDIGO Clinical Practice Guideline for Acute Kidney Injury, Kidney Int Suppl 2012;2(1):1-138, section 2.1, "
    "doi:10.1038/kisup.2012.1"
)
KDIGO_DYSKALAEMIA = (
    "Clase CM et al., Potassium homeostasis and management of dyskalemia in kidney diseases: conclusions from a "
    "KDIGO Controversies Conference, Kidney Int 2020;97(1):42-61 (severe hyperkalaemia: 6.0 mmol/L or more), "
    "doi:10.1016/j.kint.2019.09.018"
)
CRITICAL_LIMITS = (
    "Kost GJ et al., Web-accessible critical limits and critical values for urgent clinician notification, "
    "Clin Chem Lab Med 2024;62(11):2294-2306, doi:10.1515/cclm-2024-0117"
)
ACG_LIVER = (
    "Kwo PY, Cohen SM, Lim JK, ACG Clinical Guideline: Evaluation of Abnormal Liver Chemistries, "
    "Am J Gastroenterol 2017;112(1):18-35, doi:10.1038/ajg.2016.517"
)
CDC_AHA_CRP = (
    "Pearson TA et al., Markers of inflammation and cardiovascular disease (CDC/AHA statement), "
    "Circulation 2003;107(3):499-511, doi:10.1161/01.CIR.0000052939.59093.45"
)
UDMI4 = (
    "Thygesen K et al., Fourth Universal Definition of Myocardial Infarction (2018), "
    "Circulation 2018;138(20):e618-e651, doi:10.1161/CIR.0000000000000617"
)
ACC_AHA_BP = (
    "Whelton PK et al., 2017 ACC/AHA Guideline for the Prevention, Detection, Evaluation, and Management of "
    "High Blood Pressure in Adults, Hypertension 2018;71(6):e13-e115, doi:10.1161/HYP.0000000000000065"
)
WHO_BMI = (
    "WHO, Obesity: preventing and managing the global epidemic, Technical Report Series 894, Geneva 2000, "
    "https://pubmed.ncbi.nlm.nih.gov/11234459/"
)
STEPS = (
    "Tudor-Locke C et al., A step-defined sedentary lifestyle index: <5000 steps/day, "
    "Appl Physiol Nutr Metab 2013;38(2):100-114, doi:10.1139/apnm-2012-0235"
)
SLEEP = (
    "Watson NF et al., Recommended Amount of Sleep for a Healthy Adult (AASM and SRS consensus), "
    "Sleep 2015;38(6):843-844, doi:10.5665/sleep.4716"
)

NOTIFY = "a critical limit for urgent clinician notification"
TROPONINS = tuple(spec.code for spec in ANALYTES if spec.code.startswith("troponin"))  # not NT-proBNP
MICROCYTIC = ("mcv", below(80.0))  # below the adult reference interval of 80-100 fL
ANAEMIC = below(female=12.0, male=13.0)  # WHO 2024, non-pregnant adults

# A graded classification over two analytes gives one category: the higher one's item replaces the lower ones'.
# 2017 ACC/AHA (table 6, footnote): "Individuals with SBP and DBP in 2 categories should be designated to the
# higher BP category", so a systolic stage 1 value beside a diastolic stage 2 value is stage 2 only.
SUPERSEDES: dict[str, tuple[str, ...]] = {
    "bp_severe_urgent": ("bp_stage2_review", "bp_stage1_lifestyle"),
    "bp_stage2_review": ("bp_stage1_lifestyle",),
}

# fmt: off
RULES: tuple[Rule, ...] = (
    # Glycaemia, ADA 2025 (inclusive): HbA1c >= 6.5 % or FPG >= 126 mg/dL is the diabetes range, to be confirmed;
    # HbA1c 5.7-6.4 % or FPG 100-125 mg/dL is prediabetes. Level 2 hypoglycaemia: glucose < 54 mg/dL (exclusive).
    rule("hba1c_diabetes_range", "HbA1c in the diabetes range", "hba1c", at_least(6.5),
         Severity.HIGH, "diabetes_range_confirm", ADA_DIAGNOSIS, condition="diabetes",
         meaning="the ADA 2025 diagnostic threshold for diabetes, which a second result must confirm"),
    rule("hba1c_prediabetes_range", "HbA1c in the prediabetes range", "hba1c", at_least(5.7),
         Severity.LOW, "prediabetes_lifestyle", ADA_DIAGNOSIS, condition="prediabetes", until=at_least(6.5),
         meaning="the ADA 2025 prediabetes range"),
    rule("glucose_diabetes_range", "Fasting glucose in the diabetes range", "glucose", at_least(126, unit="mg/dL"),
         Severity.HIGH, "diabetes_range_confirm", ADA_DIAGNOSIS, condition="diabetes",
         meaning="the ADA 2025 diagnostic threshold for diabetes on a fasting sample, which a second result "
         "must confirm"),
    rule("glucose_impaired_fasting", "Impaired fasting glucose", "glucose", at_least(100, unit="mg/dL"),
         Severity.LOW, "prediabetes_lifestyle", ADA_DIAGNOSIS, condition="prediabetes",
         until=at_least(126, unit="mg/dL"), meaning="the ADA 2025 range for impaired fasting glucose"),
    rule("glucose_level2_hypoglycaemia", "Level 2 hypoglycaemia", "glucose", below(54, unit="mg/dL"),
         Severity.HIGH, "hypoglycemia_review", ADA_HYPOGLYCAEMIA, until=critical("glucose", "low"),
         meaning="level 2 (clinically significant) hypoglycaemia in ADA 2025"),
    critical_rule("glucose", "low", "glucose_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    critical_rule("glucose", "high", "glucose_critical_urgent", CRITICAL_LIMITS, NOTIFY, "diabetes"),
    # A random (non-fasting) glucose: ADA 2025 counts 200 mg/dL or more (with classic symptoms) as the diabetes
    # range; it is never judged by the fasting cut-offs. Hypoglycaemia and critical limits are the same.
    # ADA states the random threshold as 200 mg/dL (11.1 mmol/L); 11.1 mmol/L is the lower of the two, so a value
    # reported in either unit at the threshold fires.
    rule("glucose_random_diabetes_range", "Random glucose 200 mg/dL (11.1 mmol/L) or higher", "glucose_random",
         at_least(11.1), Severity.HIGH, "diabetes_range_confirm", ADA_DIAGNOSIS, condition="diabetes",
         until=critical("glucose_random", "high"),
         meaning="the ADA 2025 random plasma glucose threshold for diabetes, 200 mg/dL (with classic symptoms of "
         "hyperglycaemia), which a fasting glucose or HbA1c must confirm"),
    rule("glucose_random_level2_hypoglycaemia", "Level 2 hypoglycaemia (random sample)", "glucose_random",
         below(54, unit="mg/dL"), Severity.HIGH, "hypoglycemia_review", ADA_HYPOGLYCAEMIA,
         until=critical("glucose_random", "low"), meaning="level 2 (clinically significant) hypoglycaemia in ADA 2025"),
    critical_rule("glucose_random", "low", "glucose_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    critical_rule("glucose_random", "high", "glucose_critical_urgent", CRITICAL_LIMITS, NOTIFY, "diabetes"),

    # Lipids, 2018 AHA/ACC (inclusive): LDL-C >= 190 mg/dL severe hypercholesterolaemia, 160-189 a risk
    # enhancer, non-HDL-C 190-219 a risk enhancer; triglycerides >= 500 severe, 175-499 moderate. HDL: ATP III.
    rule("ldl_severe", "LDL cholesterol 190 mg/dL or higher", "ldl", at_least(190, unit="mg/dL"),
         Severity.HIGH, "ldl_very_high_statin_review", AHA_ACC_CHOLESTEROL, condition="dyslipidemia",
         meaning="the 2018 AHA/ACC threshold for severe hypercholesterolaemia"),
    rule("ldl_high", "LDL cholesterol 160-189 mg/dL", "ldl", at_least(160, unit="mg/dL"),
         Severity.MODERATE, "ldl_high_risk_review", AHA_ACC_CHOLESTEROL, condition="dyslipidemia",
         until=at_least(190, unit="mg/dL"), meaning="a risk-enhancing factor in the 2018 AHA/ACC guideline"),
    rule("non_hdl_very_high", "Non-HDL cholesterol 220 mg/dL or higher", "non_hdl_cholesterol",
         at_least(220, unit="mg/dL"), Severity.MODERATE, "non_hdl_high_review", AHA_ACC_CHOLESTEROL,
         condition="dyslipidemia", meaning="above the 190-219 mg/dL band that the 2018 AHA/ACC guideline counts "
         "as a risk enhancer, level with severe hypercholesterolaemia"),
    rule("triglycerides_severe", "Triglycerides 500 mg/dL or higher", "triglycerides", at_least(500, unit="mg/dL"),
         Severity.HIGH, "triglycerides_severe_review", AHA_ACC_CHOLESTEROL, condition="dyslipidemia",
         meaning="severe hypertriglyceridaemia in the 2018 AHA/ACC guideline, with a risk of pancreatitis"),
    rule("triglycerides_moderate", "Triglycerides 175-499 mg/dL", "triglycerides", at_least(175, unit="mg/dL"),
         Severity.LOW, "triglycerides_lifestyle", AHA_ACC_CHOLESTEROL, condition="dyslipidemia",
         until=at_least(500, unit="mg/dL"), meaning="moderate hypertriglyceridaemia, a 2018 AHA/ACC risk enhancer"),
    rule("hdl_low", "Low HDL cholesterol", "hdl", below(female=50, male=40, unit="mg/dL"),
         Severity.LOW, "hdl_low_lifestyle", NCEP_ATP3, condition="dyslipidemia",
         meaning="low HDL cholesterol by NCEP ATP III"),

    # Haemoglobin, WHO 2024 (exclusive): anaemia < 12.0 g/dL in women, < 13.0 g/dL in men; severe < 8.0 g/dL.
    rule("hemoglobin_anaemia", "Haemoglobin below the WHO anaemia cut-off", "hemoglobin", ANAEMIC,
         Severity.MODERATE, "anemia_iron_studies", WHO_HAEMOGLOBIN, condition="iron_deficiency", until=below(8.0),
         meaning="the WHO 2024 haemoglobin cut-off for anaemia"),
    rule("hemoglobin_severe_anaemia", "Severe anaemia", "hemoglobin", below(8.0),
         Severity.HIGH, "anemia_severe_consult", WHO_HAEMOGLOBIN, condition="iron_deficiency",
         until=critical("hemoglobin", "low"), meaning="severe anaemia by WHO 2024"),
    critical_rule("hemoglobin", "low", "hemoglobin_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    critical_rule("hemoglobin", "high", "hemoglobin_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    critical_rule("hematocrit", "low", "hemoglobin_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    critical_rule("hematocrit", "high", "hemoglobin_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    # Microcytosis (MCV < 80 fL): a Mentzer index (MCV/RBC) below 13 favours thalassaemia trait, 13 or more
    # (with anaemia) iron deficiency.
    rule("microcytosis_thalassaemia_pattern", "Microcytosis with a Mentzer index below 13", "mentzer_index",
         below(13), Severity.MODERATE, "thalassemia_trait_electrophoresis", MENTZER,
         condition="thalassemia_trait", also=(MICROCYTIC,),
         meaning="a pattern that favours thalassaemia trait over iron deficiency"),
    rule("microcytic_anaemia_iron_pattern", "Microcytic anaemia with a Mentzer index of 13 or more", "mentzer_index",
         at_least(13), Severity.MODERATE, "anemia_iron_studies", MENTZER, condition="iron_deficiency",
         also=(MICROCYTIC, ("hemoglobin", ANAEMIC)),
         meaning="a pattern that favours iron deficiency over thalassaemia trait"),

    # Platelets (x10^9/L): thrombocytopenia < 150, rarely symptomatic above 50; thrombocytosis work-up >= 450 (WHO).
    rule("platelets_low", "Low platelet count", "platelets", below(150),
         Severity.MODERATE, "platelets_low_follow_up", PLATELETS, condition="thrombocytopenia", until=below(50),
         meaning="the usual definition of thrombocytopenia"),
    rule("platelets_very_low", "Platelet count below 50", "platelets", below(50),
         Severity.HIGH, "platelets_very_low_consult", PLATELETS, condition="thrombocytopenia",
         until=critical("platelets", "low"),
         meaning="the level below which bleeding with injury or procedures becomes a concern"),
    critical_rule("platelets", "low", "platelets_critical_urgent", CRITICAL_LIMITS, NOTIFY, "thrombocytopenia"),
    rule("platelets_high", "Platelet count 450 or higher", "platelets", at_least(450),
         Severity.MODERATE, "platelets_high_follow_up", WHO_MYELOID, until=critical("platelets", "high"),
         meaning="the WHO platelet threshold used in the work-up of thrombocytosis"),
    critical_rule("platelets", "high", "platelets_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    critical_rule("wbc", "low", "wbc_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    critical_rule("wbc", "high", "wbc_critical_urgent", CRITICAL_LIMITS, NOTIFY),

    # Kidney, KDIGO 2024 GFR categories: G3a 45-59, G3b 30-44, G4 15-29, G5 < 15; CKD needs the category for more
    # than 3 months, so a stage is given only when an earlier eGFR in the same range lies 90 days or more before;
    # a first low value asks for a repeat. eGFR 60-89 alone is not CKD. Below 15 is urgent either way.
    rule("egfr_g3a", "eGFR 45-59 (KDIGO G3a)", "egfr", below(60), Severity.MODERATE, "ckd_g3a_follow_up",
         KDIGO_CKD, condition="ckd", until=below(45), persists=90, persisting=below(60),
         meaning="KDIGO 2024 category G3a, present for more than 3 months"),
    rule("egfr_g3b", "eGFR 30-44 (KDIGO G3b)", "egfr", below(45), Severity.HIGH, "ckd_g3b_review",
         KDIGO_CKD, condition="ckd", until=below(30), persists=90, persisting=below(60),
         meaning="KDIGO 2024 category G3b, present for more than 3 months"),
    rule("egfr_g4", "eGFR 15-29 (KDIGO G4)", "egfr", below(30), Severity.HIGH, "ckd_nephrology_referral",
         KDIGO_CKD, condition="ckd", until=below(15), persists=90, persisting=below(60),
         meaning="KDIGO 2024 category G4 for more than 3 months, where referral to specialist kidney care is "
         "recommended"),
    rule("egfr_low_unconfirmed", "eGFR 30-59 once: repeat in 3 months", "egfr", below(60), Severity.MODERATE,
         "egfr_repeat_3_months", KDIGO_CKD, condition="ckd", until=below(30), persists=-90, persisting=below(60),
         meaning="with no earlier value below 60 at least 3 months before: KDIGO 2024 needs more than 3 months "
         "to call it CKD, so the test is repeated"),
    rule("egfr_very_low_unconfirmed", "eGFR 15-29 once: repeat soon", "egfr", below(30), Severity.HIGH,
         "egfr_low_repeat_soon", KDIGO_CKD, condition="ckd", until=below(15), persists=-90, persisting=below(60),
         meaning="with no earlier value below 60 at least 3 months before: a fall this large may be acute kidney "
         "disease rather than CKD, so the test is repeated soon and the cause sought"),
    rule("egfr_g5", "eGFR below 15 (KDIGO G5 range)", "egfr", below(15), Severity.CRITICAL, "ckd_g5_urgent",
         KDIGO_CKD, condition="ckd", meaning="the KDIGO 2024 G5 range, kidney failure, whether acute or chronic"),
    # Electrolytes (exclusive): hyponatraemia < 135 mmol/L, hypernatraemia > 145; potassium outside the
    # catalog's reference interval. Beyond the catalog's critical limits: CRITICAL.
    rule("sodium_low", "Low sodium", "sodium", below(135), Severity.MODERATE, "sodium_abnormal_follow_up",
         HYPONATRAEMIA, until=critical("sodium", "low"), meaning="the guideline definition of hyponatraemia"),
    critical_rule("sodium", "low", "sodium_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    rule("sodium_high", "High sodium", "sodium", above(145), Severity.MODERATE, "sodium_abnormal_follow_up",
         HYPERNATRAEMIA, until=critical("sodium", "high"), meaning="the usual definition of hypernatraemia"),
    critical_rule("sodium", "high", "sodium_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    rule("potassium_low", "Low potassium", "potassium", below(**reference("potassium", "low")),
         Severity.MODERATE, "potassium_abnormal_review", POTASSIUM, until=critical("potassium", "low"),
         meaning="the lower limit of the adult reference interval: hypokalaemia"),
    critical_rule("potassium", "low", "potassium_critical_urgent", CRITICAL_LIMITS, NOTIFY),
    rule("potassium_high", "High potassium", "potassium", above(**reference("potassium", "high")),
         Severity.MODERATE, "potassium_abnormal_review", POTASSIUM, until=at_least(6.0),
         meaning="the upper limit of the adult reference interval: hyperkalaemia, or a haemolysed sample"),
    rule("potassium_severe", "Potassium 6.0 mmol/L or higher", "potassium", at_least(6.0),
         Severity.HIGH, "potassium_severe_same_day", KDIGO_DYSKALAEMIA, until=critical("potassium", "high"),
         meaning="severe hyperkalaemia in the KDIGO 2020 dyskalaemia conference report"),
    critical_rule("potassium", "high", "potassium_critical_urgent", CRITICAL_LIMITS, NOTIFY),

    # Liver, ACG 2017 (exclusive): ALT above the healthy upper limit, 33 U/L in men and 25 U/L in women.
    rule("alt_above_uln", "ALT above the healthy upper limit", "alt", above(female=25, male=33),
         Severity.MODERATE, "alt_elevated_work_up", ACG_LIVER, meaning="the ACG 2017 healthy upper limit of ALT"),

    # hs-CRP: >= 2.0 mg/L is a 2018 AHA/ACC risk enhancer; > 10 mg/L points to another cause (CDC/AHA 2003).
    rule("hs_crp_elevated", "hs-CRP 2 mg/L or higher", "hs_crp", at_least(2.0),
         Severity.LOW, "hs_crp_risk_enhancer", AHA_ACC_CHOLESTEROL, until=above(10.0),
         meaning="a risk-enhancing factor in the 2018 AHA/ACC guideline"),
    rule("hs_crp_above_10", "hs-CRP above 10 mg/L", "hs_crp", above(10.0), Severity.MODERATE, "hs_crp_repeat",
         CDC_AHA_CRP, meaning="a level that points to infection or inflammation rather than cardiovascular risk"),

    # Troponin, UDMI4 (exclusive): above the assay's own 99th-percentile upper reference limit (sex-specific where
    # the catalog gives one), one rule per assay.
    *(rule(f"{code}_above_99th", f"{MEASURES[code].label} above the 99th percentile", code,
           above(**reference(code, "high")), Severity.CRITICAL, "troponin_urgent", UDMI4,
           meaning="the assay's 99th-percentile upper reference limit, above which myocardial injury must be "
           "excluded urgently")
      for code in TROPONINS),
    # Blood pressure, 2017 ACC/AHA: stage 1 130-139 / 80-89, stage 2 >= 140 / >= 90, severe > 180 / > 120 mm Hg.
    rule("systolic_bp_stage1", "Systolic blood pressure 130-139 mm Hg", "systolic_bp", at_least(130),
         Severity.LOW, "bp_stage1_lifestyle", ACC_AHA_BP, until=at_least(140),
         meaning="stage 1 hypertension in the 2017 ACC/AHA guideline if confirmed"),
    rule("diastolic_bp_stage1", "Diastolic blood pressure 80-89 mm Hg", "diastolic_bp", at_least(80),
         Severity.LOW, "bp_stage1_lifestyle", ACC_AHA_BP, until=at_least(90),
         meaning="stage 1 hypertension in the 2017 ACC/AHA guideline if confirmed"),
    rule("systolic_bp_stage2", "Systolic blood pressure 140 mm Hg or higher", "systolic_bp", at_least(140),
         Severity.MODERATE, "bp_stage2_review", ACC_AHA_BP, until=critical("systolic_bp", "high"),
         meaning="stage 2 hypertension in the 2017 ACC/AHA guideline if confirmed"),
    rule("diastolic_bp_stage2", "Diastolic blood pressure 90 mm Hg or higher", "diastolic_bp", at_least(90),
         Severity.MODERATE, "bp_stage2_review", ACC_AHA_BP, until=critical("diastolic_bp", "high"),
         meaning="stage 2 hypertension in the 2017 ACC/AHA guideline if confirmed"),
    critical_rule("systolic_bp", "high", "bp_severe_urgent", ACC_AHA_BP, "severe hypertension in the 2017 ACC/AHA "
                  "guideline"),
    critical_rule("diastolic_bp", "high", "bp_severe_urgent", ACC_AHA_BP, "severe hypertension in the 2017 ACC/AHA "
                  "guideline"),

    # Body mass index, WHO (kg/m2): underweight < 18.5, overweight >= 25, obesity >= 30.
    rule("bmi_obesity", "BMI 30 or higher", "bmi", at_least(30.0), Severity.LOW, "bmi_obesity_lifestyle",
         WHO_BMI, meaning="the WHO threshold for obesity"),
    rule("bmi_overweight", "BMI 25 to under 30", "bmi", at_least(25.0), Severity.LOW, "bmi_overweight_lifestyle",
         WHO_BMI, until=at_least(30.0), meaning="the WHO overweight range"),
    rule("bmi_underweight", "BMI below 18.5", "bmi", below(18.5), Severity.MODERATE, "bmi_underweight_review",
         WHO_BMI, meaning="the WHO threshold for underweight"),

    # Wearables (daily means): fewer than 5000 steps is sedentary; adults need 7 hours of sleep or more.
    rule("steps_sedentary", "Fewer than 5000 steps a day", "steps", below(5000), Severity.LOW, "activity_increase",
         STEPS, meaning="the step-defined sedentary lifestyle index"),
    rule("sleep_short", "Less than 7 hours of sleep", "sleep_duration", below(7.0), Severity.LOW, "sleep_more",
         SLEEP, meaning="short of the 7 hours or more that the AASM and SRS recommend for adults"),
)
# fmt: on


# --- Acute kidney injury, KDIGO 2012 ------------------------------------------------------------------------------

AKI_RISE_UMOL = 26.5  # 0.3 mg/dL x 88.42, within 48 hours
AKI_RATIO = 1.5  # x the lowest value of the 7 days before


def _aki(facts: Facts) -> Finding | None:
    """KDIGO 2012 AKI: creatinine up by 0.3 mg/dL (26.5 umol/L) or more within 48 hours, or 1.5 times or more the
    lowest value of the 7 days before. Judged on the current creatinine against its earlier values."""
    value, when = facts.value("creatinine"), facts.dates.get("creatinine")
    if value is None or when is None:
        return None
    earlier = [(at, v) for at, v in facts.history.get("creatinine", ()) if datetime.timedelta(0) < when - at]
    day2 = [v for at, v in earlier if when - at <= datetime.timedelta(hours=48)]
    week = [v for at, v in earlier if when - at <= datetime.timedelta(days=7)]
    measure = MEASURES["creatinine"]
    shown = f"{measure.label} {value:.0f} µmol/L ({value / 88.42:.2f} mg/dL){facts.on('creatinine')}"
    if day2 and value - min(day2) >= AKI_RISE_UMOL:
        base = min(day2)
        why = (
            f"is {value - base:.0f} µmol/L above {base:.0f} µmol/L within 48 hours (criterion: 26.5 µmol/L, 0.3 mg/dL)"
        )
    elif week and value >= AKI_RATIO * min(week):
        base = min(week)
        why = f"is {value / base:.1f} times the lowest value of the 7 days before, {base:.0f} µmol/L (criterion: 1.5)"
    else:
        return None
    return Finding(
        rule="creatinine_aki", advice="aki_urgent", severity=Severity.CRITICAL,
        rationale=f"{shown} {why}: acute kidney injury by the KDIGO 2012 definition.", citation=KDIGO_AKI,
        analyte="creatinine", value=value, threshold=base, unit=measure.unit,
    )  # fmt: skip


AKI = Rule("creatinine_aki", "Acute kidney injury (KDIGO 2012)", "creatinine", KDIGO_AKI, "", _aki,
           Severity.CRITICAL, "aki_urgent", reads=("creatinine",))  # fmt: skip


# --- Sex not recorded ----------------------------------------------------------------------------------------------

# Analytes judged or flagged differently for women and men: for a patient whose sex is not recorded they are
# judged by the stricter limit, and staff are asked to record the sex.
SEX_DEPENDENT = frozenset(
    {spec.code for spec in ANALYTES if len({r.sex for r in spec.ranges}) > 1}
    | {r.analyte for r in RULES if (r.fires and r.fires.sex_specific) or (r.stops and r.stops.sex_specific)}
    | {"creatinine", "egfr"}
)


def _sex_not_recorded(facts: Facts) -> Finding | None:
    if facts.sex in ("female", "male"):
        return None
    judged = sorted(
        MEASURES[name].label
        for name in SEX_DEPENDENT
        if facts.value(name) is not None and facts.notes.get(name) != EGFR_REPORTED  # the laboratory's own eGFR
    )
    if not judged:
        return None
    return Finding(
        rule="sex_not_recorded", advice="record_sex", severity=Severity.INFO,
        rationale=f"The patient's sex is not recorded, and {', '.join(judged)} have limits that differ for women "
        "and men: each was judged by the stricter limit, which may flag a normal value. Record the sex.",
        citation="", analyte="", value=0.0, threshold=0.0, unit="",
    )  # fmt: skip


SEX_NOT_RECORDED = Rule("sex_not_recorded", "Sex not recorded", "", "", "", _sex_not_recorded, Severity.INFO,
                        "record_sex", reads=analytes_of(*sorted(SEX_DEPENDENT)))  # fmt: skip


# --- Every critical limit of the catalog is a critical item ---------------------------------------------------------

# One source of truth: a catalog critical limit that no rule above covers gets the generic urgent item, so an
# analyte added to the catalog with a critical limit can never be silent.
_COVERED = {r.code for r in RULES}
CATALOG_CRITICAL: tuple[Rule, ...] = tuple(
    critical_rule(spec.code, side, "critical_result_urgent", CRITICAL_LIMITS if spec.code != "systolic_bp" else
                  ACC_AHA_BP, NOTIFY)
    for spec in ANALYTES
    for side, limit in (("low", spec.critical_low), ("high", spec.critical_high))
    if limit is not None and f"{spec.code}_critical_{side}" not in _COVERED
)  # fmt: skip

ALL_RULES: tuple[Rule, ...] = (*RULES, *CATALOG_CRITICAL, AKI, SEX_NOT_RECORDED)
