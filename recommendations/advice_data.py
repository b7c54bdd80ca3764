"""The advice catalog as data: everything the platform can advise, for the patient and for the doctor.

Loaded into `AdviceItem` by data migrations; a change here reaches an existing database only through a new
migration. Pure data, no Django.

- `patient_text` is plain language shown once a doctor approves the item: it says what to do or discuss and
  never names a diagnosis.
- `clinician_text` paraphrases what the guideline says, the threshold and a suggested action.
- `source` is the full reference of that guideline or evidence.
- Three headline items (`no_action_needed`, `lifestyle_changes`, `consult_professional`), one item per advice
  code of the guideline rules (`recommendations.rules`), and `model_*` items for a condition the model finds
  likely when no rule covers it.

One data table, so one module past the usual 500 lines: splitting it would only scatter the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES = ("no_action", "lifestyle", "follow_up_test", "referral", "medication_review", "urgent")


@dataclass(frozen=True)
class AdviceSpec:
    code: str  # stable slug
    title: str  # clinician-facing short title
    patient_text: str
    clinician_text: str
    category: str  # one of CATEGORIES
    source: str  # full citation


# --- References ---------------------------------------------------------------------------------------------------

ADA_DIAGNOSIS = (
    "American Diabetes Association Professional Practice Committee. 2. Diagnosis and Classification of "
    "Diabetes: Standards of Care in Diabetes-2025. Diabetes Care 2025;48(Suppl 1):S27-S49. "
    "https://doi.org/10.2337/dc25-S002"
)
ADA_PREVENTION = (
    "American Diabetes Association Professional Practice Committee. 3. Prevention or Delay of Diabetes and "
    "Associated Comorbidities: Standards of Care in Diabetes-2025. Diabetes Care 2025;48(Suppl 1):S50-S58. "
    "https://doi.org/10.2337/dc25-S003"
)
ADA_HYPOGLYCAEMIA = (
    "American Diabetes Association Professional Practice Committee. 6. Glycemic Goals and Hypoglycemia: "
    "Standards of Care in Diabetes-2025. Diabetes Care 2025;48(Suppl 1):S128-S145. "
    "https://doi.org/10.2337/dc25-S006"
)
GRUNDY_2018 = (
    "Grundy SM, Stone NJ, Bailey AL, et al. 2018 AHA/ACC/AACVPR/AAPA/ABC/ACPM/ADA/AGS/APhA/ASPC/NLA/PCNA "
    "Guideline on the Management of Blood Cholesterol. Circulation 2019;139(25):e1082-e1143. "
    "https://doi.org/10.1161/CIR.0000000000000625"
)
NCEP_ATP3 = (
    "Expert Panel on Detection, Evaluation, and Treatment of High Blood Cholesterol in Adults. Executive Summary "
    "of the Third Report of the National Cholesterol Education Program (NCEP) Adult Treatment Panel III. "
    "JAMA 2001;285(19):2486-2497. https://doi.org/10.1001/jama.285.19.2486"
)
ARNETT_2019 = (
    "Arnett DK, Blumenthal RS, Albert MA, et al. 2019 ACC/AHA Guideline on the Primary Prevention of "
    "Cardiovascular Disease. Circulation 2019;140(11):e596-e646. https://doi.org/10.1161/CIR.0000000000000678"
)
WHO_HAEMOGLOBIN = (
    "World Health Organization. Guideline on haemoglobin cutoffs to define anaemia in individuals and "
    "populations. Geneva: WHO; 2024. https://www.who.int/publications/i/item/9789240088542"
)
SNOOK_2021 = (
    "Snook J, Bhala N, Beales ILP, et al. British Society of Gastroenterology guidelines for the management of "
    "iron deficiency anaemia in adults. Gut 2021;70(11):2030-2051. https://doi.org/10.1136/gutjnl-2021-325210"
)
MENTZER_1973 = (
    "Mentzer WC Jr. Differentiation of iron deficiency from thalassaemia trait. Lancet 1973;1(7808):882. "
    "https://doi.org/10.1016/S0140-6736(73)91446-3"
)
BAIN_2023 = (
    "Bain BJ, Daniel Y, Henthorn J, et al. Significant haemoglobinopathies: a guideline for screening and "
    "diagnosis. A British Society for Haematology Guideline. Br J Haematol 2023;201(6):1047-1065. "
    "https://doi.org/10.1111/bjh.18794"
)
GAUER_2012 = (
    "Gauer RL, Braun MM. Thrombocytopenia. Am Fam Physician 2012;85(6):612-622. "
    "https://www.aafp.org/pubs/afp/issues/2012/0315/p612.html"
)
ARBER_2016 = (
    "Arber DA, Orazi A, Hasserjian R, et al. The 2016 revision to the World Health Organization classification "
    "of myeloid neoplasms and acute leukemia. Blood 2016;127(20):2391-2405. "
    "https://doi.org/10.1182/blood-2016-03-643544"
)
KDIGO_2024 = (
    "Kidney Disease: Improving Global Outcomes (KDIGO) CKD Work Group. KDIGO 2024 Clinical Practice Guideline "
    "for the Evaluation and Management of Chronic Kidney Disease. Kidney Int 2024;105(4S):S117-S314. "
    "https://doi.org/10.1016/j.kint.2023.10.018"
)
SPASOVSKI_2014 = (
    "Spasovski G, Vanholder R, Allolio B, et al. Clinical practice guideline on diagnosis and treatment of "
    "hyponatraemia. Eur J Endocrinol 2014;170(3):G1-G47. https://doi.org/10.1530/EJE-13-1020"
)
ADROGUE_2000 = (
    "Adrogué HJ, Madias NE. Hypernatremia. N Engl J Med 2000;342(20):1493-1499. "
    "https://doi.org/10.1056/NEJM200005183422006"
)
CLASE_2020 = (
    "Clase CM, Carrero JJ, Ellison DH, et al. Potassium homeostasis and management of dyskalemia in kidney "
    "diseases: conclusions from a Kidney Disease: Improving Global Outcomes (KDIGO) Controversies Conference. "
    "Kidney Int 2020;97(1):42-61. https://doi.org/10.1016/j.kint.2019.09.018"
)
KOST_2024 = (
    "Kost GJ, Dohner J, Liu J, Ramos D, Haider N, Thalladi V. Web-accessible critical limits and critical values "
    "for urgent clinician notification. Clin Chem Lab Med 2024;62(11):2294-2306. "
    "https://doi.org/10.1515/cclm-2024-0117"
)
KWO_2017 = (
    "Kwo PY, Cohen SM, Lim JK. ACG Clinical Guideline: Evaluation of Abnormal Liver Chemistries. "
    "Am J Gastroenterol 2017;112(1):18-35. https://doi.org/10.1038/ajg.2016.517"
)
PEARSON_2003 = (
    "Pearson TA, Mensah GA, Alexander RW, et al. Markers of inflammation and cardiovascular disease: application "
    "to clinical and public health practice. A statement for healthcare professionals from the Centers for "
    "Disease Control and Prevention and the American Heart Association. Circulation 2003;107(3):499-511. "
    "https://doi.org/10.1161/01.CIR.0000052939.59093.45"
)
THYGESEN_2018 = (
    "Thygesen K, Alpert JS, Jaffe AS, et al. Fourth Universal Definition of Myocardial Infarction (2018). "
    "Circulation 2018;138(20):e618-e651. https://doi.org/10.1161/CIR.0000000000000617"
)
WHELTON_2017 = (
    "Whelton PK, Carey RM, Aronow WS, et al. 2017 ACC/AHA/AAPA/ABC/ACPM/AGS/APhA/ASH/ASPC/NMA/PCNA Guideline for "
    "the Prevention, Detection, Evaluation, and Management of High Blood Pressure in Adults. "
    "Hypertension 2018;71(6):e13-e115. https://doi.org/10.1161/HYP.0000000000000065"
)
WHO_OBESITY_2000 = (
    "World Health Organization. Obesity: preventing and managing the global epidemic. Report of a WHO "
    "Consultation. WHO Technical Report Series 894. Geneva: WHO; 2000. https://pubmed.ncbi.nlm.nih.gov/11234459/"
)
JENSEN_2013 = (
    "Jensen MD, Ryan DH, Apovian CM, et al. 2013 AHA/ACC/TOS Guideline for the Management of Overweight and "
    "Obesity in Adults. Circulation 2014;129(25 Suppl 2):S102-S138. "
    "https://doi.org/10.1161/01.cir.0000437739.71477.ee"
)
TUDOR_LOCKE_2013 = (
    "Tudor-Locke C, Craig CL, Thyfault JP, Spence JC. A step-defined sedentary lifestyle index: <5000 steps/day. "
    "Appl Physiol Nutr Metab 2013;38(2):100-114. https://doi.org/10.1139/apnm-2012-0235"
)
BULL_2020 = (
    "Bull FC, Al-Ansari SS, Biddle S, et al. World Health Organization 2020 guidelines on physical activity and "
    "sedentary behaviour. Br J Sports Med 2020;54(24):1451-1462. https://doi.org/10.1136/bjsports-2020-102955"
)
WATSON_2015 = (
    "Watson NF, Badr MS, Belenky G, et al. Recommended Amount of Sleep for a Healthy Adult: A Joint Consensus "
    "Statement of the American Academy of Sleep Medicine and Sleep Research Society. Sleep 2015;38(6):843-844. "
    "https://doi.org/10.5665/sleep.4716"
)
SUTTON_2020 = (
    "Sutton RT, Pincock D, Baumgart DC, Sadowski DC, Fedorak RN, Kroeker KI. An overview of clinical decision "
    "support systems: benefits, risks, and strategies for success. NPJ Digit Med 2020;3:17. "
    "https://doi.org/10.1038/s41746-020-0221-y"
)
TIETZ_2022 = (
    "Rifai N, Chiu RWK, Young I, Burnham C-AD, Wittwer CT (eds). Tietz Textbook of Laboratory Medicine, "
    "7th edition. St. Louis: Elsevier; 2022 (adult reference intervals)."
)

KDIGO_AKI_2012 = (
    "Kidney Disease: Improving Global Outcomes (KDIGO) Acute Kidney Injury Work Group. KDIGO Clinical Practice "
    "Guideline for Acute Kidney Injury. Kidney Int Suppl 2012;2(1):1-138. https://doi.org/10.1038/kisup.2012.1"
)
_URGENT_CONTACT = "Please contact the clinic today about this result."

ADVICE: tuple[AdviceSpec, ...] = (
    # --- Headlines ------------------------------------------------------------------------------------------------
    AdviceSpec(
        code="no_action_needed",
        title="No action needed",
        patient_text="Your results are within the expected ranges. Keep up your usual healthy habits and go to "
        "your routine check-ups as planned.",
        clinician_text="No guideline rule fired and the model's risk level is low. Continue routine screening "
        "for age and risk. The reference intervals are adult defaults; the laboratory's own intervals take "
        "precedence.",
        category="no_action",
        source=TIETZ_2022,
    ),
    AdviceSpec(
        code="lifestyle_changes",
        title="Lifestyle changes recommended",
        patient_text="Some of your results show that changes to daily habits could help your health. Talk with "
        "your care team about food, physical activity, sleep, alcohol and smoking, and agree on a plan that "
        "suits you.",
        clinician_text="At least one low-severity finding, or a moderate model risk. The 2019 ACC/AHA primary "
        "prevention guideline puts a healthy lifestyle first: a diet built on vegetables, fruit, legumes, nuts, "
        "whole grains and fish; at least 150 minutes a week of moderate activity; weight management; no "
        "tobacco. Review the listed findings and set goals together with the patient.",
        category="lifestyle",
        source=ARNETT_2019,
    ),
    AdviceSpec(
        code="consult_professional",
        title="Consult a healthcare professional",
        patient_text="Some of your results should be looked at by a doctor. Please book an appointment to go "
        "through them and decide on the next steps together.",
        clinician_text="At least one finding of high or critical severity, or a high model risk. Review each "
        "cited finding and the model's explanation: this is decision support for a clinician and does not "
        "replace clinical judgement.",
        category="referral",
        source=SUTTON_2020,
    ),
    # --- Glycaemia ------------------------------------------------------------------------------------------------
    AdviceSpec(
        code="diabetes_range_confirm",
        title="Glucose or HbA1c in the diabetes range: confirm",
        patient_text="Your blood sugar result is higher than it should be. Please see your doctor soon; they "
        "will usually repeat the test to find out what it means and talk with you about the next steps.",
        clinician_text="ADA 2025 diagnostic thresholds: HbA1c 6.5% (48 mmol/mol) or more, or fasting plasma "
        "glucose 126 mg/dL (7.0 mmol/L) or more. Unless hyperglycaemia is unequivocal, a second abnormal result "
        "(same or different test) is needed. The glucose threshold applies to fasting samples only. Confirm, "
        "then assess for complications and start management.",
        category="follow_up_test",
        source=ADA_DIAGNOSIS,
    ),
    AdviceSpec(
        code="prediabetes_lifestyle",
        title="Glucose or HbA1c in the prediabetes range",
        patient_text="Your blood sugar result is a little above the healthy range. Being more active, choosing "
        "healthier food and, if needed, losing some weight can bring it down; ask your care team about a "
        "prevention programme and a repeat test within a year.",
        clinician_text="ADA 2025: HbA1c 5.7-6.4% (39-47 mmol/mol) or fasting glucose 100-125 mg/dL "
        "(5.6-6.9 mmol/L) define prediabetes. Refer to an intensive lifestyle programme (about 7% weight loss, "
        "150 minutes a week of activity), consider metformin in those at highest risk, and re-test at least "
        "once a year.",
        category="lifestyle",
        source=ADA_PREVENTION,
    ),
    AdviceSpec(
        code="hypoglycemia_review",
        title="Glucose below 54 mg/dL (level 2 hypoglycaemia)",
        patient_text="Your blood sugar was low. Please contact your doctor to talk about it, especially if you "
        "take medicine for blood sugar. If you ever feel shaky, sweaty or confused, have a sugary drink or "
        "snack and ask someone for help.",
        clinician_text="ADA 2025 calls glucose below 54 mg/dL (3.0 mmol/L) level 2, clinically significant "
        "hypoglycaemia. Review insulin and sulfonylureas, alcohol, kidney and liver function, and sample "
        "handling (delayed separation lowers glucose); adjust treatment and ask about hypoglycaemia awareness.",
        category="medication_review",
        source=ADA_HYPOGLYCAEMIA,
    ),
    AdviceSpec(
        code="glucose_critical_urgent",
        title="Critical glucose value",
        patient_text=f"{_URGENT_CONTACT} If you feel very unwell, confused or drowsy, call your local emergency "
        "number.",
        clinician_text="Glucose beyond the laboratory's critical limits (below 2.8 mmol/L or above 25 mmol/L). "
        "Contact and assess the patient the same day: exclude symptomatic hypoglycaemia, diabetic ketoacidosis "
        "and the hyperosmolar state, and check that the sample was not delayed or contaminated.",
        category="urgent",
        source=KOST_2024,
    ),
    # --- Lipids ---------------------------------------------------------------------------------------------------
    AdviceSpec(
        code="ldl_very_high_statin_review",
        title="LDL cholesterol 190 mg/dL or higher: statin review",
        patient_text='Your LDL ("bad") cholesterol is very high. Please book a visit to talk with your doctor '
        "about lowering it; at this level a cholesterol-lowering medicine is usually discussed along with diet "
        "and exercise.",
        clinician_text="2018 AHA/ACC: for adults aged 20-75 with LDL-C of 190 mg/dL (4.9 mmol/L) or more, "
        "maximally tolerated statin therapy is recommended without first estimating 10-year risk. Look for "
        "secondary causes (hypothyroidism, nephrotic syndrome, cholestasis, drugs) and consider familial "
        "hypercholesterolaemia, with testing of relatives.",
        category="medication_review",
        source=GRUNDY_2018,
    ),
    AdviceSpec(
        code="ldl_high_risk_review",
        title="LDL cholesterol 160-189 mg/dL: risk discussion",
        patient_text='Your LDL ("bad") cholesterol is high. Talk with your doctor about your overall heart '
        "health and the best way to lower it: food, activity and perhaps medicine.",
        clinician_text="2018 AHA/ACC counts LDL-C 160-189 mg/dL (4.1-4.8 mmol/L) as a risk-enhancing factor. For "
        "adults 40-75, estimate 10-year ASCVD risk with the pooled cohort equations, weigh the enhancers and hold "
        "a clinician-patient discussion about statin therapy; lifestyle advice for everyone.",
        category="medication_review",
        source=GRUNDY_2018,
    ),
    AdviceSpec(
        code="non_hdl_high_review",
        title="Non-HDL cholesterol 220 mg/dL or higher",
        patient_text="The cholesterol that can clog arteries (non-HDL) is high. Please talk with your doctor "
        "about your heart health and how to bring it down.",
        clinician_text="Non-HDL-C (total minus HDL cholesterol) carries all atherogenic lipoproteins. The 2018 "
        "AHA/ACC guideline counts 190-219 mg/dL (4.9-5.6 mmol/L) as a risk enhancer; 220 mg/dL (5.7 mmol/L) or "
        "more sits above that band. Look for genetic and secondary causes and discuss statin therapy; use "
        "non-HDL-C especially when triglycerides are high.",
        category="medication_review",
        source=GRUNDY_2018,
    ),
    AdviceSpec(
        code="triglycerides_severe_review",
        title="Triglycerides 500 mg/dL or higher",
        patient_text="Your triglycerides (a type of blood fat) are very high. Please see your doctor soon; "
        "cutting down on alcohol, sugary drinks and white bread or pasta helps, and a medicine may be needed.",
        clinician_text="2018 AHA/ACC: fasting triglycerides of 500 mg/dL (5.6 mmol/L) or more are severe "
        "hypertriglyceridaemia, and from 1000 mg/dL the risk of acute pancreatitis rises. Treat secondary causes "
        "(uncontrolled diabetes, alcohol, hypothyroidism, drugs), advise a very-low-fat diet, and lower "
        "triglycerides further if they stay high.",
        category="medication_review",
        source=GRUNDY_2018,
    ),
    AdviceSpec(
        code="triglycerides_lifestyle",
        title="Triglycerides 175-499 mg/dL",
        patient_text="Your triglycerides (a type of blood fat) are raised. Less alcohol and sugar, more activity "
        "and, if needed, some weight loss usually bring them down; your doctor may repeat the test.",
        clinician_text="2018 AHA/ACC: persistently raised triglycerides of 175 mg/dL (2.0 mmol/L) or more "
        "(moderate hypertriglyceridaemia, 175-499 mg/dL) are a risk enhancer. Address lifestyle and secondary "
        "causes (obesity, metabolic syndrome, diabetes, alcohol, drugs), repeat fasting if the sample was not, "
        "and include it in the statin discussion.",
        category="lifestyle",
        source=GRUNDY_2018,
    ),
    AdviceSpec(
        code="hdl_low_lifestyle",
        title="Low HDL cholesterol",
        patient_text='Your HDL ("good") cholesterol is low. Regular physical activity, not smoking and a '
        "healthy weight can help raise it; talk with your care team about a plan.",
        clinician_text="NCEP ATP III: HDL-C below 40 mg/dL (1.03 mmol/L) is a major risk factor, and below "
        "40 mg/dL in men or 50 mg/dL (1.29 mmol/L) in women is a metabolic syndrome criterion. No drug is "
        "advised to raise HDL-C itself; treat inactivity, smoking, excess weight and high triglycerides, and "
        "include it in global risk assessment.",
        category="lifestyle",
        source=NCEP_ATP3,
    ),
    # --- Red cells ------------------------------------------------------------------------------------------------
    AdviceSpec(
        code="anemia_iron_studies",
        title="Low haemoglobin: iron studies",
        patient_text="Your haemoglobin (the part of the blood that carries oxygen) is lower than expected. Your "
        "doctor will likely order a few more blood tests, such as iron levels, to find out why.",
        clinician_text="WHO 2024 defines anaemia in non-pregnant adults as haemoglobin below 120 g/L in women and "
        "below 130 g/L in men. Check ferritin (with CRP), transferrin saturation, B12, folate, reticulocytes and "
        "a blood film. BSG 2021: confirm iron deficiency with iron studies, then look for its cause, including "
        "gastrointestinal investigation in men and post-menopausal women without an obvious explanation.",
        category="follow_up_test",
        source=f"{WHO_HAEMOGLOBIN} {SNOOK_2021}",
    ),
    AdviceSpec(
        code="anemia_severe_consult",
        title="Severe anaemia (haemoglobin below 8.0 g/dL)",
        patient_text="Your haemoglobin is much lower than normal. Please see a doctor within the next few days, "
        "and sooner if you feel breathless, dizzy or have chest pain.",
        clinician_text="WHO 2024 grades anaemia as severe below 80 g/L in non-pregnant adults. Assess promptly for "
        "bleeding, haemolysis and symptoms of poor oxygen delivery; start the work-up (iron studies, B12, "
        "folate, reticulocytes, film) and consider transfusion criteria and haematology advice.",
        category="referral",
        source=WHO_HAEMOGLOBIN,
    ),
    AdviceSpec(
        code="hemoglobin_critical_urgent",
        title="Critical haemoglobin or haematocrit",
        patient_text=f"{_URGENT_CONTACT} If you feel faint, very short of breath or have chest pain, call your "
        "local emergency number.",
        clinician_text="Haemoglobin below 7.0 or above 20 g/dL, or haematocrit below 20% or above 60%, is beyond "
        "the laboratory's critical limits. Contact and assess the patient the same day: acute bleeding or "
        "haemolysis when low, polycythaemia with hyperviscosity when high; confirm the sample.",
        category="urgent",
        source=KOST_2024,
    ),
    AdviceSpec(
        code="thalassemia_trait_electrophoresis",
        title="Small red cells with a Mentzer index below 13: test for thalassaemia trait",
        patient_text="Your red blood cells are smaller than usual. This is often inherited and harmless, but a "
        "specific blood test is worth doing before you take any iron supplements; please discuss it with your "
        "doctor.",
        clinician_text="MCV below 80 fL with a Mentzer index (MCV/RBC) below 13 favours thalassaemia trait over "
        "iron deficiency. Check ferritin and request haemoglobin analysis (HPLC or electrophoresis with HbA2 "
        "quantitation, BSH 2023) before any empirical iron; offer genetic counselling if a trait is confirmed.",
        category="follow_up_test",
        source=f"{MENTZER_1973} {BAIN_2023}",
    ),
    # --- Platelets and white cells --------------------------------------------------------------------------------
    AdviceSpec(
        code="platelets_low_follow_up",
        title="Low platelet count",
        patient_text="Your platelet count (the cells that help blood clot) is lower than usual. Your doctor may "
        "repeat the test and check a few things; tell them about any unusual bruising or bleeding.",
        clinician_text="Thrombocytopenia is a platelet count below 150 ×10⁹/L; above 50 ×10⁹/L it rarely causes "
        "symptoms. Repeat with a citrate tube and a blood film to exclude clumping (pseudothrombocytopenia), "
        "then review drugs, alcohol, liver disease, HIV and hepatitis C, B12 and folate.",
        category="follow_up_test",
        source=GAUER_2012,
    ),
    AdviceSpec(
        code="platelets_very_low_consult",
        title="Platelet count below 50 ×10⁹/L",
        patient_text="Your platelet count is quite low. Please see a doctor soon, and ask before taking aspirin "
        "or anti-inflammatory painkillers.",
        clinician_text="Below 50 ×10⁹/L, bleeding with injury or procedures becomes a concern. Assess promptly for "
        "bleeding and systemic illness (sepsis, DIC, TTP/HUS, heparin-induced thrombocytopenia, marrow disease); "
        "confirm on a film and involve haematology, especially if other cell lines are abnormal.",
        category="referral",
        source=GAUER_2012,
    ),
    AdviceSpec(
        code="platelets_critical_urgent",
        title="Critical platelet count",
        patient_text=f"{_URGENT_CONTACT} If you have bleeding that does not stop, call your local emergency number.",
        clinician_text="Platelets below 20 or above 1000 ×10⁹/L are beyond the laboratory's critical limits: risk "
        "of spontaneous bleeding when low, of thrombosis or acquired von Willebrand disease when high. Contact "
        "and assess the patient the same day and involve haematology.",
        category="urgent",
        source=KOST_2024,
    ),
    AdviceSpec(
        code="platelets_high_follow_up",
        title="Platelet count 450 ×10⁹/L or higher",
        patient_text="Your platelet count is higher than usual. This is often a reaction to something else, such "
        "as low iron or an infection; your doctor may repeat the test and check a few things.",
        clinician_text="A count of 450 ×10⁹/L or more is the WHO threshold used in the work-up of essential "
        "thrombocythaemia, but most raised counts are reactive (iron deficiency, infection, inflammation, "
        "cancer, after splenectomy). Repeat, check ferritin, CRP and a film; refer to haematology if the count "
        "stays high without a reactive cause.",
        category="follow_up_test",
        source=ARBER_2016,
    ),
    AdviceSpec(
        code="wbc_critical_urgent",
        title="Critical white cell count",
        patient_text=f"{_URGENT_CONTACT} If you have a fever or feel very unwell, seek care straight away.",
        clinician_text="White cells below 2.0 or above 30 ×10⁹/L are beyond the laboratory's critical limits. Get "
        "a differential count and film the same day: severe neutropenia with fever needs emergency treatment, "
        "and marked leukocytosis needs leukaemia and severe infection excluded.",
        category="urgent",
        source=KOST_2024,
    ),
    # --- Kidney ---------------------------------------------------------------------------------------------------
    AdviceSpec(
        code="ckd_g3a_follow_up",
        title="eGFR 45-59 (KDIGO G3a): repeat and check urine albumin",
        patient_text="A test of how well your kidneys filter is a bit lower than expected. Your doctor will "
        "usually repeat it and check a urine sample in a few months.",
        clinician_text="KDIGO 2024: eGFR 45-59 mL/min/1.73 m² is category G3a, and CKD needs the change to last "
        "more than 3 months. Repeat eGFR (consider cystatin C), measure the urine albumin-to-creatinine ratio to "
        "stage G and A, and review nephrotoxic drugs and blood pressure.",
        category="follow_up_test",
        source=KDIGO_2024,
    ),
    AdviceSpec(
        code="ckd_g3b_review",
        title="eGFR 30-44 (KDIGO G3b): review care and medicines",
        patient_text="Your kidney filtering test is clearly lower than expected. Please see your doctor to go "
        "through your results and your medicines, as some may need a different dose.",
        clinician_text="KDIGO 2024: eGFR 30-44 mL/min/1.73 m² is category G3b. Confirm chronicity and albuminuria, "
        "adjust doses for kidney function (for example metformin, DOACs, gabapentinoids), start kidney and "
        "heart protection where indicated (RAS inhibitor, SGLT2 inhibitor, statin) and monitor at least twice "
        "a year.",
        category="medication_review",
        source=KDIGO_2024,
    ),
    AdviceSpec(
        code="ckd_nephrology_referral",
        title="eGFR 15-29 (KDIGO G4): nephrology referral",
        patient_text="Your kidney filtering test is much lower than expected. Your doctor will likely refer you to "
        "a kidney specialist; please book an appointment to talk about it.",
        clinician_text="KDIGO 2024: eGFR 15-29 mL/min/1.73 m² is category G4, and referral to specialist kidney "
        "care is recommended below 30. Review all doses, check for complications (anaemia, acidosis, "
        "mineral and bone disorder, hyperkalaemia) and begin discussing kidney replacement options.",
        category="referral",
        source=KDIGO_2024,
    ),
    AdviceSpec(
        code="ckd_g5_urgent",
        title="eGFR below 15 (KDIGO G5)",
        patient_text=f"{_URGENT_CONTACT} If you are very short of breath, confused or passing very little urine, "
        "call your local emergency number.",
        clinician_text="KDIGO 2024: eGFR below 15 mL/min/1.73 m² is category G5, kidney failure. Assess the same "
        "day for acute kidney injury, hyperkalaemia, fluid overload and uraemic symptoms, and contact "
        "nephrology urgently.",
        category="urgent",
        source=KDIGO_2024,
    ),
    # --- Electrolytes ---------------------------------------------------------------------------------------------
    AdviceSpec(
        code="sodium_abnormal_follow_up",
        title="Sodium outside 135-145 mmol/L",
        patient_text="Your sodium (a salt in the blood) is outside the usual range. Your doctor may repeat the "
        "test and go over your medicines and how much you drink.",
        clinician_text="Hyponatraemia is sodium below 135 mmol/L (European guideline 2014); hypernatraemia is "
        "above 145 mmol/L. Repeat and assess volume status and symptoms. When low: serum and urine osmolality, "
        "urine sodium, thiazides, SSRIs and other drugs. When high: access to water and water losses.",
        category="follow_up_test",
        source=f"{SPASOVSKI_2014} {ADROGUE_2000}",
    ),
    AdviceSpec(
        code="sodium_critical_urgent",
        title="Critical sodium value",
        patient_text=f"{_URGENT_CONTACT} If you feel confused or very drowsy, or have a seizure, call your local "
        "emergency number.",
        clinician_text="Sodium below 120 or above 160 mmol/L is beyond the laboratory's critical limits. Assess "
        "the same day for neurological symptoms and correct under monitoring; in chronic hyponatraemia, limit "
        "the rise to 10 mmol/L in the first 24 hours to avoid osmotic demyelination.",
        category="urgent",
        source=f"{KOST_2024} {SPASOVSKI_2014}",
    ),
    AdviceSpec(
        code="potassium_abnormal_review",
        title="Potassium outside 3.5-5.1 mmol/L",
        patient_text="Your potassium (a salt in the blood) is outside the usual range. Your doctor may repeat the "
        "test and review your medicines; please do not change them before talking to your doctor.",
        clinician_text="Outside the adult reference interval of 3.5-5.1 mmol/L. Rule out a falsely high value "
        "(haemolysis, delayed separation, fist clenching) and repeat. Review drugs that raise potassium (RAS "
        "inhibitors, mineralocorticoid antagonists, NSAIDs, trimethoprim) or lower it (diuretics), kidney "
        "function and, if markedly abnormal, an ECG. The KDIGO 2020 conference advises treating the cause "
        "rather than reflexly stopping beneficial RAS inhibition.",
        category="medication_review",
        source=f"{TIETZ_2022} {CLASE_2020}",
    ),
    AdviceSpec(
        code="potassium_critical_urgent",
        title="Critical potassium value",
        patient_text=f"{_URGENT_CONTACT} If you have palpitations, marked muscle weakness or chest pain, call your "
        "local emergency number.",
        clinician_text="Potassium below 2.8 or above 6.2 mmol/L is beyond the laboratory's critical limits, with "
        "a risk of arrhythmia. Repeat urgently (exclude haemolysis), obtain an ECG and treat by the acute "
        "protocol the same day.",
        category="urgent",
        source=f"{KOST_2024} {CLASE_2020}",
    ),
    AdviceSpec(
        code="potassium_severe_same_day",
        title="Potassium 6.0 mmol/L or higher (severe)",
        patient_text=f"{_URGENT_CONTACT} If you have palpitations, marked muscle weakness or chest pain, call your "
        "local emergency number.",
        clinician_text="KDIGO 2020: potassium of 6.0 mmol/L or more is severe hyperkalaemia. Repeat the same day "
        "(exclude haemolysis), obtain an ECG, review potassium-raising drugs and kidney function, and treat by "
        "the acute protocol if confirmed or if the ECG shows changes.",
        category="medication_review",
        source=f"{CLASE_2020} {TIETZ_2022}",
    ),
    # --- Kidney: acute injury and unconfirmed low eGFR ---------------------------------------------------------------
    AdviceSpec(
        code="aki_urgent",
        title="Acute kidney injury (KDIGO 2012 creatinine criteria)",
        patient_text=f"{_URGENT_CONTACT} Your kidney test has changed quickly; please drink normally and do not "
        "take anti-inflammatory painkillers until you have spoken to your doctor.",
        clinician_text="KDIGO 2012: a creatinine rise of 0.3 mg/dL (26.5 µmol/L) or more within 48 hours, or to "
        "1.5 times baseline or more within 7 days, is acute kidney injury. Assess the same day: volume status, "
        "urine output, nephrotoxic drugs (NSAIDs, contrast, aminoglycosides), obstruction; hold or adjust drugs "
        "cleared by the kidney; repeat creatinine and potassium.",
        category="urgent",
        source=KDIGO_AKI_2012,
    ),
    AdviceSpec(
        code="egfr_repeat_3_months",
        title="eGFR 30-59 once: repeat within 3 months",
        patient_text="A kidney test result was lower than usual. Your doctor may repeat it in the coming weeks to "
        "see whether it stays that way.",
        clinician_text="KDIGO 2024: CKD needs a GFR below 60 for more than 3 months. A single value in G3 is not "
        "yet CKD: repeat creatinine (and urine albumin/creatinine ratio) within 3 months, and sooner if it was "
        "a fall from a normal value or the patient is unwell.",
        category="follow_up_test",
        source=KDIGO_2024,
    ),
    AdviceSpec(
        code="egfr_low_repeat_soon",
        title="eGFR 15-29 once: repeat soon, consider acute kidney disease",
        patient_text="A kidney test result was clearly lower than usual. Please contact the clinic to repeat it soon.",
        clinician_text="KDIGO 2024: a single eGFR below 30 with no earlier low value is not a CKD stage. A fall "
        "this large may be acute kidney injury or acute kidney disease: repeat creatinine within days, review "
        "drugs and volume status, and refer if it is confirmed or falling.",
        category="follow_up_test",
        source=f"{KDIGO_2024} {KDIGO_AKI_2012}",
    ),
    # --- Data the rules need -------------------------------------------------------------------------------------
    AdviceSpec(
        code="record_sex",
        title="Sex not recorded: record it",
        patient_text="Some of your results are judged differently for women and men. Please tell the clinic which "
        "applies to you, so that your results are read correctly.",
        clinician_text="The patient's sex is not recorded. Results with sex-specific limits (haemoglobin, "
        "creatinine and eGFR, ALT, HDL, troponin) were judged by the stricter of the two limits, which may flag "
        "a value that is normal for this patient. Record the sex used by the laboratory's reference intervals.",
        category="follow_up_test",
        source=TIETZ_2022,
    ),
    AdviceSpec(
        code="result_out_of_date_repeat",
        title="Abnormal result out of date: repeat the test",
        patient_text="An older test of yours was outside the usual range, and it is too old to go by now. Your "
        "doctor may ask you to repeat it.",
        clinician_text="A result older than its analyte's recency window (HbA1c and glucose 1 year, lipids 1 "
        "year, creatinine and eGFR 1 year, blood pressure 1 year, troponin 7 days, others 2 years) would have "
        "given the finding named, but is not judged as current. Repeat the test before acting on it.",
        category="follow_up_test",
        source=f"{ADA_DIAGNOSIS} {GRUNDY_2018} {KDIGO_2024}",
    ),
    AdviceSpec(
        code="critical_result_urgent",
        title="Critical result",
        patient_text=f"{_URGENT_CONTACT} If you feel faint, confused or unwell, call your local emergency number.",
        clinician_text="A result beyond the laboratory's critical limit for urgent clinician notification (systolic "
        "blood pressure below 70 mm Hg, or another limit with no item of its own). Repeat or confirm the "
        "measurement and assess the patient the same day.",
        category="urgent",
        source=f"{KOST_2024} {WHELTON_2017}",
    ),
    # --- Liver, inflammation, heart -------------------------------------------------------------------------------
    AdviceSpec(
        code="alt_elevated_work_up",
        title="ALT above the healthy upper limit",
        patient_text="One of your liver tests is a little high. Your doctor may repeat it and ask about alcohol, "
        "medicines and supplements; a healthy weight and less alcohol often help.",
        clinician_text="ACG 2017: the healthy upper limit of ALT is 29-33 U/L in men and 19-25 U/L in women, and "
        "values above it deserve evaluation. Repeat; take an alcohol, drug and supplement history; test for "
        "hepatitis B and C and fatty liver disease (metabolic risk factors, ultrasound), then iron overload and "
        "rarer causes as indicated.",
        category="follow_up_test",
        source=KWO_2017,
    ),
    AdviceSpec(
        code="hs_crp_risk_enhancer",
        title="hs-CRP 2 mg/L or higher",
        patient_text="A marker of low-grade inflammation in your blood is raised, which can add to heart risk. "
        "Regular exercise, healthy food, not smoking and a healthy weight can lower it.",
        clinician_text="2018 AHA/ACC counts hs-CRP of 2.0 mg/L or more as a risk-enhancing factor that can favour "
        "statin therapy at borderline or intermediate 10-year risk. Confirm on a second sample taken while the "
        "patient is well, and weigh it with the pooled cohort estimate.",
        category="lifestyle",
        source=GRUNDY_2018,
    ),
    AdviceSpec(
        code="hs_crp_repeat",
        title="hs-CRP above 10 mg/L: repeat",
        patient_text="A marker of inflammation is clearly raised, which often happens after a recent infection or "
        "injury. Your doctor may repeat the test in a few weeks and ask how you have been feeling.",
        clinician_text="CDC/AHA 2003: an hs-CRP above 10 mg/L should not be used for cardiovascular risk. Repeat "
        "in about 2 weeks and look for an infection or inflammatory condition if it stays high.",
        category="follow_up_test",
        source=PEARSON_2003,
    ),
    AdviceSpec(
        code="troponin_urgent",
        title="Troponin above the 99th percentile",
        patient_text=f"{_URGENT_CONTACT} If you have chest pain, shortness of breath or feel faint, call your "
        "local emergency number now.",
        clinician_text="UDMI4: a troponin above the assay's (sex-specific where defined) 99th-percentile upper "
        "reference limit "
        "means myocardial injury; a rise or fall with symptoms or signs of ischaemia means acute myocardial "
        "infarction. Assess the same day with symptoms, ECG and serial troponin. A stable raised value (CKD, "
        "heart failure) still marks higher risk.",
        category="urgent",
        source=THYGESEN_2018,
    ),
    # --- Blood pressure -------------------------------------------------------------------------------------------
    AdviceSpec(
        code="bp_stage1_lifestyle",
        title="Blood pressure 130-139 / 80-89 mm Hg (stage 1)",
        patient_text="Your blood pressure is above the healthy range. Less salt, more activity, less alcohol and "
        "a healthy weight can lower it; please check it again, at home if you can, and share the readings with "
        "your care team.",
        clinician_text="2017 ACC/AHA: stage 1 hypertension is 130-139 systolic or 80-89 mm Hg diastolic, on the "
        "average of at least two readings on two occasions. Confirm with home or ambulatory readings; "
        "non-drug therapy for all, and medication too if 10-year ASCVD risk is 10% or more or there is "
        "cardiovascular disease, diabetes or CKD.",
        category="lifestyle",
        source=WHELTON_2017,
    ),
    AdviceSpec(
        code="bp_stage2_review",
        title="Blood pressure 140/90 mm Hg or higher (stage 2)",
        patient_text="Your blood pressure is high. Please book a visit to talk about it; treatment often includes "
        "a medicine as well as changes to daily habits.",
        clinician_text="2017 ACC/AHA: stage 2 hypertension is 140 systolic or 90 mm Hg diastolic or more. Confirm "
        "out of the office; lifestyle plus medication, with two first-line drugs of different classes when "
        "20/10 mm Hg or more above target, and review within a month.",
        category="medication_review",
        source=WHELTON_2017,
    ),
    AdviceSpec(
        code="bp_severe_urgent",
        title="Blood pressure above 180/120 mm Hg",
        patient_text=f"{_URGENT_CONTACT} If you have chest pain, a severe headache, shortness of breath, weakness, "
        "or trouble speaking or seeing, call your local emergency number now.",
        clinician_text="2017 ACC/AHA: above 180 systolic and/or 120 mm Hg diastolic is severe hypertension. "
        "Recheck and assess the same day for acute target-organ damage: with it, a hypertensive emergency "
        "needing hospital care; without it, restart or intensify oral treatment with close follow-up.",
        category="urgent",
        source=WHELTON_2017,
    ),
    # --- Body weight ----------------------------------------------------------------------------------------------
    AdviceSpec(
        code="bmi_obesity_lifestyle",
        title="BMI 30 kg/m² or higher",
        patient_text="Your weight is in a range that can affect your health. Your care team can help you make a "
        "realistic plan for food, activity and support to lose weight over time.",
        clinician_text="WHO: a BMI of 30 kg/m² or more is obesity. 2013 AHA/ACC/TOS: offer a comprehensive "
        "lifestyle programme (reduced-calorie diet, at least 150 minutes a week of activity, behavioural "
        "support) aiming at 5-10% weight loss; consider medication or bariatric referral by BMI and "
        "comorbidity; screen for diabetes, dyslipidaemia, hypertension and sleep apnoea.",
        category="lifestyle",
        source=f"{WHO_OBESITY_2000} {JENSEN_2013}",
    ),
    AdviceSpec(
        code="bmi_overweight_lifestyle",
        title="BMI 25 to under 30 kg/m²",
        patient_text="Your weight is a little above the healthy range. Small, steady changes to food and activity "
        "can help; talk with your care team if you would like support.",
        clinician_text="WHO: a BMI of 25.0-29.9 kg/m² is overweight. Advise on diet and activity, and do more when "
        "there are weight-related risk factors (large waist, raised glucose, blood pressure or lipids).",
        category="lifestyle",
        source=f"{WHO_OBESITY_2000} {JENSEN_2013}",
    ),
    AdviceSpec(
        code="bmi_underweight_review",
        title="BMI below 18.5 kg/m²",
        patient_text="Your weight is below the healthy range. Please talk with your doctor, who may check a few "
        "things and suggest ways to eat well.",
        clinician_text="WHO: a BMI below 18.5 kg/m² is underweight. Ask about unintended weight loss and eating "
        "disorders, and consider malabsorption, hyperthyroidism, chronic infection or cancer; dietetic "
        "assessment where needed.",
        category="follow_up_test",
        source=WHO_OBESITY_2000,
    ),
    # --- Wearables ------------------------------------------------------------------------------------------------
    AdviceSpec(
        code="activity_increase",
        title="Fewer than 5000 steps a day",
        patient_text="Your step count shows you do not move much during the day. Add short walks and break up long "
        "periods of sitting, building up to at least 150 minutes of moderate activity a week.",
        clinician_text="Fewer than 5000 steps a day is the step-defined sedentary lifestyle index. WHO 2020 "
        "advises 150-300 minutes a week of moderate (or 75-150 of vigorous) activity and less sitting; agree a "
        "gradual step goal.",
        category="lifestyle",
        source=f"{TUDOR_LOCKE_2013} {BULL_2020}",
    ),
    AdviceSpec(
        code="sleep_more",
        title="Sleeping less than 7 hours",
        patient_text="You sleep less than 7 hours on average. A regular bedtime, less screen time and caffeine "
        "late in the day, and a dark, quiet bedroom can help; tell your care team if you often feel tired or "
        "snore.",
        clinician_text="AASM/SRS consensus: adults should sleep 7 hours or more a night on a regular basis; less "
        "is associated with weight gain, diabetes, hypertension and heart disease. Ask about insomnia, shift "
        "work and symptoms of sleep apnoea.",
        category="lifestyle",
        source=WATSON_2015,
    ),
    # --- Model-driven: the model finds a condition likely and no rule covers it -----------------------------------
    AdviceSpec(
        code="model_ckd_follow_up",
        title="Model: pattern of chronic kidney disease",
        patient_text="Your results show a pattern that your doctor may want to look into with kidney tests of "
        "blood and urine. Please discuss it at your next visit.",
        clinician_text="The model gives a high probability of CKD but no eGFR rule fired (eGFR missing or 60 or "
        "more). KDIGO 2024 defines CKD by eGFR below 60 or markers of kidney damage, such as an albumin-to-"
        "creatinine ratio of 30 mg/g or more, lasting over 3 months. Check eGFR and urine ACR.",
        category="follow_up_test",
        source=KDIGO_2024,
    ),
    AdviceSpec(
        code="model_diabetes_follow_up",
        title="Model: pattern of diabetes",
        patient_text="Your results show a pattern that your doctor may want to check with a blood sugar test. "
        "Please discuss it at your next visit.",
        clinician_text="The model gives a high probability of diabetes but no glucose or HbA1c rule fired. ADA "
        "2025: test with HbA1c, fasting plasma glucose or an oral glucose tolerance test; the diagnosis needs "
        "the thresholds met and confirmed.",
        category="follow_up_test",
        source=ADA_DIAGNOSIS,
    ),
    AdviceSpec(
        code="model_prediabetes_lifestyle",
        title="Model: pattern of prediabetes",
        patient_text="Your results show a pattern linked to a higher chance of high blood sugar later on. Staying "
        "active, eating well and keeping a healthy weight lower that chance; ask your doctor whether a blood "
        "sugar test is needed.",
        clinician_text="The model gives a high probability of prediabetes but no glucose or HbA1c rule fired. ADA "
        "2025: screen with HbA1c or fasting glucose; if prediabetes is confirmed, refer to an intensive "
        "lifestyle programme and re-test yearly.",
        category="lifestyle",
        source=ADA_PREVENTION,
    ),
    AdviceSpec(
        code="model_anemia_work_up",
        title="Model: pattern of iron-deficiency anaemia",
        patient_text="Your results show a pattern that your doctor may want to check with more blood tests, such "
        "as iron levels. Please discuss it at your next visit.",
        clinician_text="The model gives a high probability of iron-deficiency anaemia but no haemoglobin rule "
        "fired. Check a full blood count, ferritin (with CRP) and transferrin saturation; BSG 2021 advises "
        "confirming iron deficiency before investigating its cause.",
        category="follow_up_test",
        source=f"{SNOOK_2021} {WHO_HAEMOGLOBIN}",
    ),
    AdviceSpec(
        code="model_thalassemia_trait_follow_up",
        title="Model: pattern of thalassaemia trait",
        patient_text="Your results show a pattern that can run in families. Your doctor may suggest a specific "
        "blood test before you take any iron supplements.",
        clinician_text="The model gives a high probability of thalassaemia trait but no microcytosis rule fired. "
        "Review MCV, RBC and the Mentzer index; check ferritin and request haemoglobin analysis with HbA2 "
        "quantitation (BSH 2023) before any empirical iron.",
        category="follow_up_test",
        source=f"{BAIN_2023} {MENTZER_1973}",
    ),
    AdviceSpec(
        code="model_thrombocytopenia_follow_up",
        title="Model: pattern of thrombocytopenia",
        patient_text="Your results show a pattern that your doctor may want to check with a repeat blood count. "
        "Tell your doctor about any unusual bruising or bleeding.",
        clinician_text="The model gives a high probability of thrombocytopenia but no platelet rule fired. Repeat "
        "the platelet count with a blood film (citrate tube if clumping is suspected).",
        category="follow_up_test",
        source=GAUER_2012,
    ),
    AdviceSpec(
        code="model_dyslipidemia_follow_up",
        title="Model: pattern of dyslipidaemia",
        patient_text="Your results show a pattern that your doctor may want to check with a cholesterol test. "
        "Please discuss it at your next visit.",
        clinician_text="The model gives a high probability of dyslipidaemia but no lipid rule fired. Obtain a "
        "lipid profile (fasting or not) and estimate 10-year ASCVD risk as the 2018 AHA/ACC guideline "
        "describes.",
        category="follow_up_test",
        source=GRUNDY_2018,
    ),
)

ADVICE_BY_CODE: dict[str, AdviceSpec] = {spec.code: spec for spec in ADVICE}
