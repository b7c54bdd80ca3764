"""Each analyte of the catalog in words a patient reads: a plain name, what the test measures, and what a value
below, within, above or far outside the usual range means. Pure data and small functions: no Django.

Written for the patient portal and the printable report. The texts explain, they never diagnose: a value outside
the usual range has many causes, so every meaning ends by sending the patient to their doctor. Words of our own,
checked against what the catalog's ranges say (`patients.catalog_data`); a test holds every analyte to having them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlainAnalyte:
    name: str  # what the patient calls it; the lab's short name in brackets where reports print one
    measures: str  # what this test measures, one or two sentences
    lower: str  # what a value below the usual range says about the body, without naming a disease
    higher: str  # the same for a value above it


# Flags as words, never letters. A critical value (LL/HH) is shown in red at the top of the patient's record for
# the clinic's team, counted on their home page and given an urgent advice item, until a doctor acknowledges it:
# "flagged to your clinic as urgent" is what happens, no more (no message is sent to anyone).
FLAG_WORDS = {
    "LL": "Far outside the usual range: flagged to your clinic as urgent",
    "L": "Below the usual range",
    "N": "Within the usual range",
    "H": "Above the usual range",
    "HH": "Far outside the usual range: flagged to your clinic as urgent",
    "": "No usual range for adults",
}
ASK_YOUR_DOCTOR = "Your doctor will look at it together with your other results and tell you what it means for you."
URGENT = (
    "Results this far from the usual range are shown to your clinic's doctors as urgent until a doctor has seen "
    "them. If you feel unwell, contact your clinic today; if you feel very unwell, call emergency services."
)


def _white_cells(kind: str, job: str) -> tuple[PlainAnalyte, PlainAnalyte]:
    """A kind of white blood cell, as a count and as a share of all white cells."""
    count = PlainAnalyte(
        name=f"{kind} (a type of white blood cell)",
        measures=f"How many {kind.lower()} are in your blood. {job}",
        lower=f"You have fewer {kind.lower()} in your blood than most adults.",
        higher=f"You have more {kind.lower()} in your blood than most adults.",
    )
    share = PlainAnalyte(
        name=f"{kind}, share of white blood cells",
        measures=f"What part of all your white blood cells are {kind.lower()}, as a percentage. {job}",
        lower=f"A smaller part of your white blood cells are {kind.lower()} than in most adults.",
        higher=f"A larger part of your white blood cells are {kind.lower()} than in most adults.",
    )
    return count, share


def _allergy(allergen: str) -> PlainAnalyte:
    return PlainAnalyte(
        name=f"Allergy antibodies to {allergen} (specific IgE)",
        measures=(
            f"How much of the antibody your immune system makes against {allergen}. "
            "A raised level shows sensitisation, which is not the same as having an allergy."
        ),
        lower=f"Your blood has less antibody to {allergen} than the lab measures.",
        higher=(
            f"Your immune system makes antibodies to {allergen}. Many people with a raised level have no "
            "symptoms; what matters is whether you react when you meet it."
        ),
    )


def _arterial(name: str, measures: str, lower: str, higher: str) -> PlainAnalyte:
    return PlainAnalyte(name=f"{name} (from an artery)", measures=measures, lower=lower, higher=higher)


_NEUTROPHILS = _white_cells("Neutrophils", "They are the first cells to fight bacteria.")
_LYMPHOCYTES = _white_cells("Lymphocytes", "They fight viruses and make antibodies.")
_MONOCYTES = _white_cells("Monocytes", "They clear away germs and damaged cells.")
_EOSINOPHILS = _white_cells("Eosinophils", "They take part in allergic reactions and fight parasites.")
_BASOPHILS = _white_cells("Basophils", "They release substances during allergic reactions.")
_TROPONIN = (
    "A protein released into the blood when heart muscle is strained or damaged. Doctors often compare several "
    "values taken hours apart."
)
_TROPONIN_HIGH = "More of this heart muscle protein is in your blood than usual."

PLAIN: dict[str, PlainAnalyte] = {
    # --- blood count --------------------------------------------------------------------------------------------
    "hemoglobin": PlainAnalyte(
        "Hemoglobin (Hb)",
        "The protein in red blood cells that carries oxygen from your lungs to the rest of your body.",
        "Your blood carries less hemoglobin than usual, so it may carry less oxygen. This can make you feel tired.",
        "Your blood carries more hemoglobin than usual.",
    ),
    "hematocrit": PlainAnalyte(
        "Red cell share of blood (hematocrit)",
        "How much of your blood's volume is made up of red blood cells, as a percentage.",
        "Red blood cells make up a smaller part of your blood than usual.",
        "Red blood cells make up a larger part of your blood than usual, so it can be thicker.",
    ),
    "rbc": PlainAnalyte(
        "Red blood cell count (RBC)",
        "How many red blood cells, the cells that carry oxygen, are in your blood.",
        "You have fewer red blood cells than most adults.",
        "You have more red blood cells than most adults.",
    ),
    "wbc": PlainAnalyte(
        "White blood cell count (WBC)",
        "How many white blood cells are in your blood. White blood cells fight infections.",
        "You have fewer white blood cells than most adults, which can make it harder to fight infections.",
        "You have more white blood cells than most adults. This often happens when the body fights an infection "
        "or inflammation.",
    ),
    "platelets": PlainAnalyte(
        "Platelets (PLT)",
        "How many platelets are in your blood. Platelets are small cells that help your blood clot and stop bleeding.",
        "You have fewer platelets than usual, so you may bruise or bleed more easily.",
        "You have more platelets than usual.",
    ),
    "mcv": PlainAnalyte(
        "Red blood cell size (MCV)",
        "The average size of your red blood cells.",
        "Your red blood cells are smaller than usual.",
        "Your red blood cells are larger than usual.",
    ),
    "mch": PlainAnalyte(
        "Hemoglobin in each red cell (MCH)",
        "The average amount of hemoglobin, the oxygen-carrying protein, inside each red blood cell.",
        "Each red blood cell holds less hemoglobin than usual.",
        "Each red blood cell holds more hemoglobin than usual.",
    ),
    "mchc": PlainAnalyte(
        "How concentrated hemoglobin is in red cells (MCHC)",
        "How tightly packed hemoglobin, the oxygen-carrying protein, is inside your red blood cells.",
        "Hemoglobin is less concentrated in your red blood cells than usual, so they can look paler.",
        "Hemoglobin is more concentrated in your red blood cells than usual.",
    ),
    "rdw_cv": PlainAnalyte(
        "Variation in red cell size (RDW-CV)",
        "How much your red blood cells differ from each other in size, as a percentage.",
        "Your red blood cells are more alike in size than usual; a low value is rarely a concern on its own.",
        "Your red blood cells differ more in size than usual.",
    ),
    "rdw_sd": PlainAnalyte(
        "Variation in red cell size (RDW-SD)",
        "How much your red blood cells differ from each other in size, measured in femtolitres.",
        "Your red blood cells are more alike in size than usual; a low value is rarely a concern on its own.",
        "Your red blood cells differ more in size than usual.",
    ),
    "mpv": PlainAnalyte(
        "Platelet size (MPV)",
        "The average size of your platelets, the small cells that help blood clot.",
        "Your platelets are smaller than usual.",
        "Your platelets are larger than usual. Young platelets are larger, so this can mean your body is making "
        "many new ones.",
    ),
    "pdw": PlainAnalyte(
        "Variation in platelet size (PDW)",
        "How much your platelets differ from each other in size.",
        "Your platelets are more alike in size than usual.",
        "Your platelets differ more in size than usual.",
    ),
    "neutrophils": _NEUTROPHILS[0],
    "lymphocytes": _LYMPHOCYTES[0],
    "monocytes": _MONOCYTES[0],
    "eosinophils": _EOSINOPHILS[0],
    "basophils": _BASOPHILS[0],
    "neutrophils_pct": _NEUTROPHILS[1],
    "lymphocytes_pct": _LYMPHOCYTES[1],
    "monocytes_pct": _MONOCYTES[1],
    "eosinophils_pct": _EOSINOPHILS[1],
    "basophils_pct": _BASOPHILS[1],
    # --- metabolic ----------------------------------------------------------------------------------------------
    "glucose": PlainAnalyte(
        "Blood sugar, fasting (glucose)",
        "The amount of sugar in your blood after not eating for at least 8 hours. Sugar is your body's main fuel.",
        "Your blood sugar was lower than usual. Low sugar can cause shakiness, sweating or confusion.",
        "Your blood sugar was higher than usual after fasting.",
    ),
    "glucose_random": PlainAnalyte(
        "Blood sugar, any time of day (glucose)",
        "The amount of sugar in your blood at the time of the test, whenever you last ate.",
        "Your blood sugar was lower than usual. Low sugar can cause shakiness, sweating or confusion.",
        "Your blood sugar was higher than usual for a test taken at any time of day.",
    ),
    "hba1c": PlainAnalyte(
        "Average blood sugar over 2 to 3 months (HbA1c)",
        "How much sugar has stuck to your red blood cells. It shows your average blood sugar over the last 2 to "
        "3 months, not just on the day of the test.",
        "Your average blood sugar has been lower than usual.",
        "Your average blood sugar over the last few months has been higher than usual.",
    ),
    "creatinine": PlainAnalyte(
        "Creatinine (kidney test)",
        "A waste product from your muscles that your kidneys filter out of the blood. It shows how well your "
        "kidneys are filtering.",
        "There is less creatinine in your blood than usual. This often goes with having less muscle.",
        "There is more creatinine in your blood than usual, which can mean your kidneys are filtering less.",
    ),
    "egfr_reported": PlainAnalyte(
        "Kidney filtering rate (eGFR)",
        "An estimate, worked out from your creatinine, age and sex, of how much blood your kidneys clean each minute.",
        "Your kidneys are estimated to filter less blood than usual.",
        "Your kidneys are estimated to filter more blood than usual.",
    ),
    "sodium": PlainAnalyte(
        "Sodium (salt)",
        "The amount of sodium, a salt, in your blood. It helps keep the balance of water in your body and helps "
        "nerves and muscles work.",
        "There is less sodium in your blood than usual. The balance of salt and water in your body is off.",
        "There is more sodium in your blood than usual. This often means your body has too little water.",
    ),
    "potassium": PlainAnalyte(
        "Potassium",
        "The amount of potassium, a mineral, in your blood. It helps your nerves, muscles and heartbeat work properly.",
        "There is less potassium in your blood than usual. It can affect your muscles and heartbeat.",
        "There is more potassium in your blood than usual. It can affect your heartbeat.",
    ),
    "insulin": PlainAnalyte(
        "Insulin, fasting",
        "The amount of insulin in your blood after fasting. Insulin is the hormone that moves sugar from your "
        "blood into your cells.",
        "Your body was making less insulin than usual when the blood was taken.",
        "Your body was making more insulin than usual, which can mean it needs more insulin to keep sugar in check.",
    ),
    "urea": PlainAnalyte(
        "Urea (kidney test)",
        "A waste product made when your body breaks down protein. Your kidneys remove it from the blood.",
        "There is less urea in your blood than usual. This can happen with a diet low in protein.",
        "There is more urea in your blood than usual. This can happen when you have too little water in your "
        "body or when the kidneys filter less.",
    ),
    "calcium": PlainAnalyte(
        "Calcium",
        "The amount of calcium in your blood. Calcium builds bones and teeth and helps muscles, nerves and the "
        "heart work.",
        "There is less calcium in your blood than usual.",
        "There is more calcium in your blood than usual.",
    ),
    "chloride": PlainAnalyte(
        "Chloride (salt)",
        "The amount of chloride, a salt, in your blood. Together with sodium it keeps the balance of water and "
        "acid in your body.",
        "There is less chloride in your blood than usual.",
        "There is more chloride in your blood than usual. This often means your body has too little water.",
    ),
    "co2_total": PlainAnalyte(
        "Bicarbonate (CO2)",
        "The amount of bicarbonate in your blood. It keeps your blood from becoming too acidic.",
        "There is less bicarbonate in your blood than usual, so your blood may be more acidic than it should be.",
        "There is more bicarbonate in your blood than usual.",
    ),
    "magnesium": PlainAnalyte(
        "Magnesium",
        "The amount of magnesium, a mineral, in your blood. It helps your muscles, nerves and heartbeat.",
        "There is less magnesium in your blood than usual.",
        "There is more magnesium in your blood than usual.",
    ),
    "phosphate": PlainAnalyte(
        "Phosphate",
        "The amount of phosphate, a mineral, in your blood. It works with calcium to build bones and gives cells "
        "energy.",
        "There is less phosphate in your blood than usual.",
        "There is more phosphate in your blood than usual.",
    ),
    "lactate": PlainAnalyte(
        "Lactate",
        "A substance your body makes when cells are short of oxygen, for example during hard exercise.",
        "There is less lactate in your blood than usual; this is rarely a concern.",
        "There is more lactate in your blood than usual, which can mean some of your body is short of oxygen.",
    ),
    # --- lipids -------------------------------------------------------------------------------------------------
    "total_cholesterol": PlainAnalyte(
        "Cholesterol, total",
        "All the cholesterol in your blood. Cholesterol is a fat your body needs, but too much can build up in "
        "blood vessels.",
        "You have less cholesterol in your blood than usual.",
        "You have more cholesterol in your blood than recommended.",
    ),
    "ldl": PlainAnalyte(
        'LDL cholesterol ("bad" cholesterol)',
        "The cholesterol that can build up in the walls of your blood vessels.",
        "You have less LDL cholesterol in your blood than usual.",
        "You have more LDL cholesterol in your blood than recommended. Over years, more LDL means more build-up "
        "in blood vessels.",
    ),
    "hdl": PlainAnalyte(
        'HDL cholesterol ("good" cholesterol)',
        "The cholesterol that carries extra cholesterol away from your blood vessels to your liver.",
        "You have less HDL cholesterol than recommended, so less cholesterol is carried away from your blood vessels.",
        "You have more HDL cholesterol than usual.",
    ),
    "triglycerides": PlainAnalyte(
        "Triglycerides (blood fats)",
        "The amount of a type of fat in your blood. Your body stores extra energy from food as triglycerides.",
        "You have fewer triglycerides in your blood than usual.",
        "You have more triglycerides in your blood than recommended. A recent meal or alcohol can raise them.",
    ),
    # --- liver --------------------------------------------------------------------------------------------------
    "alt": PlainAnalyte(
        "Liver enzyme ALT",
        "An enzyme found mainly in the liver. When liver cells are irritated or damaged, more of it leaks into "
        "the blood.",
        "There is less ALT in your blood than usual; this is rarely a concern.",
        "There is more ALT in your blood than usual, which means your liver cells may be irritated.",
    ),
    "ast": PlainAnalyte(
        "Liver enzyme AST",
        "An enzyme found in the liver, heart and muscles. More of it leaks into the blood when these cells are "
        "irritated or damaged.",
        "There is less AST in your blood than usual; this is rarely a concern.",
        "There is more AST in your blood than usual. It can come from the liver or from muscles, for example "
        "after hard exercise.",
    ),
    "albumin": PlainAnalyte(
        "Albumin (blood protein)",
        "The main protein in your blood, made by your liver. It keeps fluid inside your blood vessels and "
        "carries substances around your body.",
        "There is less albumin in your blood than usual.",
        "There is more albumin in your blood than usual. This often means your body has too little water.",
    ),
    "total_protein": PlainAnalyte(
        "Total protein",
        "All the proteins in your blood together, mainly albumin and the antibodies of your immune system.",
        "There is less protein in your blood than usual.",
        "There is more protein in your blood than usual.",
    ),
    "globulin": PlainAnalyte(
        "Globulins (blood proteins)",
        "A group of blood proteins that includes the antibodies your immune system uses.",
        "There are fewer globulins in your blood than usual.",
        "There are more globulins in your blood than usual, which often happens when the immune system is busy.",
    ),
    "bilirubin": PlainAnalyte(
        "Bilirubin",
        "A yellow substance made when old red blood cells are broken down. Your liver clears it from the blood.",
        "There is less bilirubin in your blood than usual; this is rarely a concern.",
        "There is more bilirubin in your blood than usual. A lot of it can make skin or eyes look yellow.",
    ),
    "alp": PlainAnalyte(
        "Alkaline phosphatase (ALP)",
        "An enzyme found mostly in the liver and bones.",
        "There is less ALP in your blood than usual.",
        "There is more ALP in your blood than usual. It can come from the liver or from bones.",
    ),
    # --- inflammation -------------------------------------------------------------------------------------------
    "crp": PlainAnalyte(
        "Inflammation marker (CRP)",
        "A protein your liver makes when there is inflammation or infection somewhere in your body.",
        "There is less CRP in your blood than the lab measures; this is good.",
        "There is more CRP in your blood than usual, which means there is inflammation somewhere in your body. "
        "It does not show where or why.",
    ),
    "hs_crp": PlainAnalyte(
        "Sensitive inflammation marker (hs-CRP)",
        "A very sensitive measure of CRP, a protein made during inflammation. Small rises are used to judge the "
        "risk for the heart and blood vessels.",
        "There is less CRP in your blood than the lab measures; this is good.",
        "There is more CRP in your blood than usual, a sign of some inflammation in your body.",
    ),
    # --- heart --------------------------------------------------------------------------------------------------
    "troponin": PlainAnalyte("Heart muscle protein (troponin I, sensitive)", _TROPONIN, "", _TROPONIN_HIGH),
    "troponin_t_hs": PlainAnalyte("Heart muscle protein (troponin T, sensitive)", _TROPONIN, "", _TROPONIN_HIGH),
    "troponin_i": PlainAnalyte("Heart muscle protein (troponin I)", _TROPONIN, "", _TROPONIN_HIGH),
    "troponin_t": PlainAnalyte("Heart muscle protein (troponin T)", _TROPONIN, "", _TROPONIN_HIGH),
    "nt_probnp": PlainAnalyte(
        "Heart strain marker (NT-proBNP)",
        "A substance your heart releases when it has to work harder than usual to pump blood.",
        "",
        "There is more of it in your blood than usual, which means your heart may be working harder.",
    ),
    # --- clotting -----------------------------------------------------------------------------------------------
    "inr": PlainAnalyte(
        "Blood clotting time (INR)",
        "How long your blood takes to clot, compared with a standard. It is used to check blood thinners such as "
        "warfarin.",
        "Your blood clots a little faster than usual.",
        "Your blood takes longer to clot than usual. If you take a blood thinner, a higher value can be "
        "intended: your doctor sets your own target.",
    ),
    "pt": PlainAnalyte(
        "Blood clotting time (PT)",
        "How many seconds it takes your blood to clot in the lab.",
        "Your blood clotted a little faster than usual.",
        "Your blood took longer to clot than usual.",
    ),
    "aptt": PlainAnalyte(
        "Blood clotting time (aPTT)",
        "How many seconds it takes your blood to clot in the lab, by a second route of the clotting system.",
        "Your blood clotted a little faster than usual.",
        "Your blood took longer to clot than usual. Some blood thinners raise this on purpose.",
    ),
    # --- iron ---------------------------------------------------------------------------------------------------
    "ferritin": PlainAnalyte(
        "Iron stores (ferritin)",
        "A protein that stores iron. It shows how much iron your body has in reserve.",
        "Your body's iron stores are lower than usual.",
        "Your ferritin is higher than usual. This can mean more stored iron, or inflammation, which also raises it.",
    ),
    "iron": PlainAnalyte(
        "Iron in the blood",
        "The amount of iron travelling in your blood. Your body uses iron to make hemoglobin.",
        "There is less iron in your blood than usual.",
        "There is more iron in your blood than usual.",
    ),
    "tibc": PlainAnalyte(
        "Iron-carrying capacity (TIBC)",
        "How much iron your blood could carry. The body raises it when iron is short.",
        "Your blood can carry less iron than usual.",
        "Your blood can carry more iron than usual, which the body does when it is short of iron.",
    ),
    "transferrin_saturation": PlainAnalyte(
        "Iron carrier saturation",
        "How full the iron-carrying protein in your blood is, as a percentage.",
        "The iron carrier in your blood holds less iron than usual.",
        "The iron carrier in your blood holds more iron than usual.",
    ),
    # --- blood gases --------------------------------------------------------------------------------------------
    "ph_arterial": _arterial(
        "Blood acidity (pH)",
        "How acidic or alkaline your blood is. The body keeps it in a narrow range.",
        "Your blood is more acidic than usual.",
        "Your blood is more alkaline than usual.",
    ),
    "pco2_arterial": _arterial(
        "Carbon dioxide in the blood (pCO2)",
        "How much carbon dioxide, the waste gas you breathe out, is in your blood.",
        "There is less carbon dioxide in your blood than usual, which happens when you breathe fast or deeply.",
        "There is more carbon dioxide in your blood than usual, which can mean your lungs clear it less well.",
    ),
    "po2_arterial": _arterial(
        "Oxygen in the blood (pO2)",
        "How much oxygen is in your blood after it has passed through your lungs.",
        "There is less oxygen in your blood than usual.",
        "There is more oxygen in your blood than usual, which is common when you are given extra oxygen.",
    ),
    "hco3_arterial": _arterial(
        "Bicarbonate (HCO3)",
        "The amount of bicarbonate in your blood. It keeps your blood from becoming too acidic.",
        "There is less bicarbonate in your blood than usual.",
        "There is more bicarbonate in your blood than usual.",
    ),
    # --- urine --------------------------------------------------------------------------------------------------
    "urine_acr": PlainAnalyte(
        "Protein in urine (albumin/creatinine ratio)",
        "How much albumin, a protein, passes into your urine. Healthy kidneys let very little through.",
        "There is less albumin in your urine than the lab measures; this is good.",
        "More albumin than usual passes into your urine, which can be an early sign of strain on the kidneys.",
    ),
    "urine_sg": PlainAnalyte(
        "Urine concentration (specific gravity)",
        "How concentrated your urine is, which shows how much water your body is holding on to.",
        "Your urine is more dilute than usual, often because you drank a lot.",
        "Your urine is more concentrated than usual, often because you drank little.",
    ),
    "urine_ph": PlainAnalyte(
        "Urine acidity (pH)",
        "How acidic or alkaline your urine is. Food and drink change it during the day.",
        "Your urine is more acidic than usual.",
        "Your urine is more alkaline than usual.",
    ),
    "urine_glucose": PlainAnalyte(
        "Sugar in urine",
        "Whether sugar passes into your urine. Usually there is none, because the kidneys keep it in the blood.",
        "",
        "Sugar was found in your urine. This happens when blood sugar is high, and with some medicines.",
    ),
    "urine_protein": PlainAnalyte(
        "Protein in urine",
        "Whether protein passes into your urine. Healthy kidneys let very little through.",
        "",
        "More protein than usual was found in your urine. Exercise, fever or a strain on the kidneys can cause this.",
    ),
    "urine_ketones": PlainAnalyte(
        "Ketones in urine",
        "Whether ketones pass into your urine. Your body makes ketones when it burns fat instead of sugar, for "
        "example when fasting.",
        "",
        "Ketones were found in your urine.",
    ),
    "urine_bilirubin": PlainAnalyte(
        "Bilirubin in urine",
        "Whether bilirubin, a yellow substance the liver clears from the blood, passes into your urine.",
        "",
        "Bilirubin was found in your urine.",
    ),
    # --- allergy ------------------------------------------------------------------------------------------------
    "ige_peanut": _allergy("peanut"),
    "ige_walnut": _allergy("walnut"),
    "ige_codfish": _allergy("codfish"),
    "ige_shrimp": _allergy("shrimp"),
    "ige_wheat": _allergy("wheat"),
    "ige_egg_white": _allergy("egg white"),
    "ige_soybean": _allergy("soybean"),
    "ige_cow_milk": _allergy("cow's milk"),
    "ige_white_oak": _allergy("white oak pollen"),
    "ige_ragweed": _allergy("ragweed pollen"),
    "ige_cat_dander": _allergy("cat dander"),
    "ige_dust_mite": _allergy("house dust mite"),
    "ige_cladosporium": _allergy("Cladosporium mould"),
    "ige_honey_bee": _allergy("honey bee venom"),
    "ige_latex": _allergy("latex"),
    # --- vital signs --------------------------------------------------------------------------------------------
    "bmi": PlainAnalyte(
        "Body mass index (BMI)",
        "Your weight compared with your height. It is a rough guide and does not tell muscle from fat.",
        "Your weight is lower than usual for your height.",
        "Your weight is higher than usual for your height.",
    ),
    "systolic_bp": PlainAnalyte(
        "Blood pressure, upper number (systolic)",
        "The pressure in your arteries when your heart beats. It is the first, larger number of a blood pressure "
        "reading.",
        "Your blood pressure was lower than usual when it was measured. It can make you feel dizzy.",
        "Your blood pressure was higher than recommended when it was measured. One reading can be high for many "
        "reasons, such as stress or rushing.",
    ),
    "diastolic_bp": PlainAnalyte(
        "Blood pressure, lower number (diastolic)",
        "The pressure in your arteries when your heart rests between beats. It is the second, smaller number of "
        "a blood pressure reading.",
        "Your blood pressure between beats was lower than usual when it was measured.",
        "Your blood pressure between beats was higher than recommended when it was measured.",
    ),
    "heart_rate": PlainAnalyte(
        "Pulse (heart rate)",
        "How many times your heart beats in a minute.",
        "Your heart beat more slowly than usual. Fit people often have a slow pulse.",
        "Your heart beat faster than usual. Exercise, stress, caffeine or fever can speed it up.",
    ),
    "body_weight": PlainAnalyte("Weight", "Your body weight.", "", ""),
    "body_height": PlainAnalyte("Height", "Your height.", "", ""),
    # --- fitness tracker ----------------------------------------------------------------------------------------
    "steps": PlainAnalyte(
        "Steps a day",
        "How many steps your fitness tracker counted in a day.",
        "You walked fewer steps than the usual aim of 5,000 a day.",
        "",
    ),
    "resting_heart_rate": PlainAnalyte(
        "Resting pulse",
        "How many times your heart beats in a minute while you rest, as measured by your fitness tracker.",
        "Your resting pulse is slower than usual. Fit people often have a slow pulse.",
        "Your resting pulse is faster than usual.",
    ),
    "sleep_duration": PlainAnalyte(
        "Sleep",
        "How many hours you slept, as measured by your fitness tracker.",
        "You slept less than the 7 hours or more recommended for adults.",
        "You slept more than usual.",
    ),
}


def plain(code: str) -> PlainAnalyte:
    return PLAIN[code]


def flag_words(flag: str) -> str:
    return FLAG_WORDS[flag]


def meaning(code: str, flag: str) -> str:
    """What a value with this flag means, for the patient: a plain observation, then who explains it."""
    text = PLAIN[code]
    if flag == "N":
        return f"Your value is within the range usually seen in healthy adults of your sex and age. {ASK_YOUR_DOCTOR}"
    if flag == "":
        return f"There is no usual range for adults for this measurement. {ASK_YOUR_DOCTOR}"
    side = "below" if flag in ("L", "LL") else "above"
    said = text.lower if side == "below" else text.higher
    said = said or f"Your value is {side} the range usually seen in healthy adults."
    if flag in ("LL", "HH"):
        return f"Your value is far {side} the usual range. {said} {URGENT}"
    return f"{said} {ASK_YOUR_DOCTOR}"


# The panels of `patients.selectors.PANELS` as the results page heads them for a patient.
PANEL_NAMES = {
    "cbc": "Blood count",
    "metabolic": "Blood sugar, salts and kidneys",
    "lipid": "Cholesterol and blood fats",
    "liver": "Liver",
    "cardiac": "Heart",
    "inflammation": "Inflammation",
    "coagulation": "Blood clotting",
    "iron": "Iron",
    "urine": "Urine",
    "allergy": "Allergy tests",
    "blood_gas": "Blood gases",
    "vitals": "Body measurements, pulse and blood pressure",
    "wearable": "Fitness tracker",
}
