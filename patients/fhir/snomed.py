"""SNOMED CT diagnoses as the ICD-10 codes the platform records, for files that code conditions in SNOMED CT only.

Real generators and many EHR exports (Synthea among them) code a Condition in SNOMED CT alone. The platform learns
from and reasons about ICD-10 codes (`mltraining.ml.labels.LABELS`, the guideline rules), so every SNOMED CT concept
for one of those conditions is mapped here, current and retired codes alike: a retired concept stays in old records
and in exports long after SNOMED CT replaced it (prediabetes was 15777000 until 714628002 took its place).

The ICD-10 side is the ICD-10-CM code a coder would assign, following the NLM's SNOMED CT to ICD-10-CM map for each
concept (https://www.nlm.nih.gov/research/umls/mapping_projects/snomedct_to_icd10cm.html); where the map needs
context the file does not give (a stage, a side), the unspecified code of the category is used. Anything else needs
an ICD-10 coding in the file and is listed in the import summary as an unmapped condition, never dropped silently.
"""

from __future__ import annotations

# SNOMED CT concept id -> (ICD-10 code, ICD-10 title)
SNOMED_TO_ICD10: dict[str, tuple[str, str]] = {
    # Diabetes and hyperglycaemia (model target "diabetes": E10-E14; "prediabetes": R73.0, R73.9)
    "44054006": ("E11.9", "Type 2 diabetes mellitus without complications"),
    "73211009": ("E11.9", "Type 2 diabetes mellitus without complications"),  # diabetes mellitus, type not given
    "46635009": ("E10.9", "Type 1 diabetes mellitus without complications"),
    "127013003": ("E11.29", "Type 2 diabetes mellitus with other diabetic kidney complication"),
    "90781000119102": ("E11.29", "Type 2 diabetes mellitus with other diabetic kidney complication"),
    "157141000119108": ("E11.29", "Type 2 diabetes mellitus with other diabetic kidney complication"),
    "368581000119106": ("E11.40", "Type 2 diabetes mellitus with diabetic neuropathy, unspecified"),
    "422034002": ("E11.319", "Type 2 diabetes mellitus with unspecified diabetic retinopathy without macular edema"),
    "1551000119108": ("E11.329", "Type 2 diabetes mellitus with mild nonproliferative diabetic retinopathy"),
    "1501000119109": ("E11.359", "Type 2 diabetes mellitus with proliferative diabetic retinopathy"),
    "97331000119101": ("E11.311", "Type 2 diabetes mellitus with unspecified diabetic retinopathy with macular edema"),
    "714628002": ("R73.03", "Prediabetes"),
    "15777000": ("R73.03", "Prediabetes"),  # retired; replaced by 714628002
    "9414007": ("R73.02", "Impaired glucose tolerance (oral)"),
    "80394007": ("R73.9", "Hyperglycemia, unspecified"),
    # Lipids (target "dyslipidemia": E78)
    "55822004": ("E78.5", "Hyperlipidemia, unspecified"),
    "302870006": ("E78.1", "Pure hyperglyceridemia"),
    "13644009": ("E78.00", "Pure hypercholesterolemia, unspecified"),
    "398036000": ("E78.01", "Familial hypercholesterolemia"),
    "237602007": ("E88.81", "Metabolic syndrome"),
    # Blood (targets "iron_deficiency": D50, "thrombocytopenia": D69.4-D69.6)
    "271737000": ("D64.9", "Anemia, unspecified"),
    "87522002": ("D50.9", "Iron deficiency anemia, unspecified"),
    "302215000": ("D69.6", "Thrombocytopenia, unspecified"),
    # Kidney (target "ckd": N18)
    "431855005": ("N18.1", "Chronic kidney disease, stage 1"),
    "431856006": ("N18.2", "Chronic kidney disease, stage 2"),
    "433144002": ("N18.3", "Chronic kidney disease, stage 3"),
    "431857002": ("N18.4", "Chronic kidney disease, stage 4"),
    "433146000": ("N18.5", "Chronic kidney disease, stage 5"),
    "46177005": ("N18.6", "End stage renal disease"),
    "709044004": ("N18.9", "Chronic kidney disease, unspecified"),
    # Blood pressure, weight and the heart (the rules' context)
    "59621000": ("I10", "Essential (primary) hypertension"),
    "38341003": ("I10", "Essential (primary) hypertension"),  # hypertensive disorder
    "162864005": ("E66.9", "Obesity, unspecified"),  # body mass index 30+
    "414916001": ("E66.9", "Obesity, unspecified"),
    "408512008": ("E66.01", "Morbid (severe) obesity due to excess calories"),  # body mass index 40+
    "238131007": ("E66.3", "Overweight"),
    "53741008": ("I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris"),
    "22298006": ("I21.9", "Acute myocardial infarction, unspecified"),
    "399211009": ("I25.2", "Old myocardial infarction"),
    "230690007": ("I63.9", "Cerebral infarction, unspecified"),
    "49436004": ("I48.91", "Unspecified atrial fibrillation"),
    "84114007": ("I50.9", "Heart failure, unspecified"),
    "88805009": ("I50.9", "Heart failure, unspecified"),  # chronic congestive heart failure
}
