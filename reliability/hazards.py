"""The clinical hazard log, in the manner of ISO 14971 and NHS DCB0129: the one list docs/SAFETY.md is written from.

Each hazard says what could harm a patient, what could cause it, and which code controls it. Tests show that a
control holds by carrying `@pytest.mark.hazard(hazard_id, control)`; a full run in which a hazard has no test
fails. Write for a clinician: the words here are printed as they are.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Hazard:
    id: str
    hazard: str  # what could harm a patient
    causes: tuple[str, ...]
    controls: tuple[str, ...]  # each names the module or function that holds it


HAZARDS = [
    Hazard(
        "H1",
        "A critical result is missed: no urgent advice item and no red banner for a value beyond a critical limit",
        causes=(
            "a critical limit in the analyte catalog with no rule behind it (systolic 65 mm Hg was flagged but silent)",
            "a new analyte added with critical limits but without a rule",
            "the critical low limit forgotten where the high one is handled",
        ),
        controls=(
            "`patients.clinical.critical_flag` flags LL / HH beyond the catalog's critical limits at every age and sex",
            "`recommendations.rules` turns every catalog critical limit into a critical rule "
            "(`guidelines.CATALOG_CRITICAL` gives the ones without an item of their own the generic urgent item), "
            "also when the model cannot be used; the test is generated from the catalog",
            "the red banner on the patient page until a doctor acknowledges "
            "(`patients.services.critical_results_acknowledge`)",
            "critical items pinned first in the review queue, never re-ranked by feedback "
            "(`recommendations.generation`)",
        ),
    ),
    Hazard(
        "H2",
        "A value in the wrong unit is stored or judged",
        causes=("a glucose in mg/dL entered as mmol/L, or the reverse", "a typing error in the value or the unit"),
        controls=(
            "`patients.clinical.to_canonical` converts each accepted unit to the catalog's canonical UCUM unit and "
            "refuses any other, naming the accepted ones",
            "`patients.clinical.check_plausible` refuses an impossible value and suggests the unit that was "
            'probably meant ("Did you mean g/L?")',
        ),
    ),
    Hazard(
        "H3",
        "Results or advice reach the wrong patient",
        causes=(
            "the same person registered twice",
            "MRNs that differ only in upper and lower case",
            "a birth date typed wrong",
        ),
        controls=(
            "a birth date in the future or more than 120 years ago is refused (`patients.validators`)",
            "MRNs are unique per clinic regardless of case (a database constraint on `patients.models.Patient`)",
            "registering someone born the same day with a similar name stops with a likely-duplicate warning "
            "(`patients.selectors.patient_likely_duplicates`)",
        ),
    ),
    Hazard(
        "H4",
        "A stale value is shown or judged as current",
        causes=("an old result is the latest one on file", "no date shown beside a finding"),
        controls=(
            "per-analyte recency windows (`recommendations.rules.engine.RECENT`): a value older than its window is "
            "not judged as current, and an item asks for it to be repeated",
            "the date of the value on each finding and result",
        ),
    ),
    Hazard(
        "H5",
        "Advice reaches a patient before a doctor approved it",
        causes=(
            "a pending or rejected item shown in the patient portal or the API",
            "a non-doctor approving",
            "a standing protocol releasing more than its doctor signed: moderate or worse, beside a critical item, "
            "outside its scope or dates, after its revocation",
        ),
        controls=(
            "`recommendations.selectors.approved_advice_for` gives a patient only approved items",
            "`recommendations.services` lets only a doctor of the patient's clinic decide an item",
            "`recommendations.protocols` lets only doctors sign protocols, of advice never above low severity, and "
            "releases an item only if its own severity is low, its recommendation carries no critical item, and the "
            "patient and the day are in the protocol's scope",
        ),
    ),
    Hazard(
        "H6",
        "A model output is misread as a diagnosis, or trusted beyond its data",
        causes=(
            "a risk score read without its caveats",
            "a low risk read as reassurance beside a critical result",
            "no record of which model and inputs produced a score",
            "a model trained on the synthetic demo cohort scoring a real clinic's patients",
            "imported diagnoses nobody here confirmed training the model as truth",
        ),
        controls=(
            '"Decision support, not a diagnosis" on every page, the risk card, the API and FHIR exports',
            "each prediction stores its model version, inputs and explanation (`predictions.services`)",
            "the model card states the intended use, the data and the limits (`mltraining`)",
            "every score states what its model was trained on, in one line (`mltraining.provenance`)",
            "a version trained on synthetic data is activated only in a demo clinic (`mltraining.services`)",
            "only doctor-confirmed diagnoses, or those of an import source the clinic trusts, train "
            "(`patients.selectors.clinic_condition_rows`)",
        ),
    ),
    Hazard(
        "H7",
        "Sex not recorded hides an abnormal value",
        causes=("a patient registered with sex unknown, judged against the wider of the sex-specific ranges",),
        controls=(
            "the stricter of the two sex-specific limits for a patient whose sex is not recorded "
            "(`patients.clinical.reference_range`, `recommendations.rules`)",
            "an advice item asking staff to record the patient's sex",
        ),
    ),
    Hazard(
        "H8",
        "A result is judged by another test's limits",
        causes=(
            "troponin assays with different limits stored as one analyte",
            "a random glucose judged by fasting cut-offs",
        ),
        controls=("separate analytes by LOINC code in `patients.catalog_data`, each with its own limits and rules",),
    ),
    Hazard(
        "H9",
        "Kidney injury is missed, or one value drives a referral",
        causes=("a sudden creatinine rise read only as a CKD stage", "a single low eGFR staged as CKD"),
        controls=(
            "an acute kidney injury rule on the creatinine rise (`recommendations.rules.guidelines`, KDIGO 2012)",
            "CKD staging needs a low eGFR that persists for 90 days, as KDIGO 2024 requires; a first low value asks "
            "for a repeat",
        ),
    ),
    Hazard(
        "H10",
        "Contradictory advice for one condition",
        causes=("several rules and the model each advising on the same condition",),
        controls=(
            "findings about one condition, or for one advice item, merged into one item at the most severe "
            "finding's severity that names every value (`recommendations.rules.evaluate`)",
            "of two blood pressure categories, the higher designated (`recommendations.rules.guidelines.SUPERSEDES`)",
        ),
    ),
    Hazard(
        "H11",
        "A malformed file or a bad value is half-written",
        causes=("a truncated or wrongly encoded CSV or FHIR file", "one impossible value among good ones"),
        controls=(
            "imports and panels are written in one transaction, all or nothing "
            "(`patients.imports.services.labs_import`, `patients.fhir.services.fhir_import`)",
            "a clear error naming the row, resource or field, and nothing written",
        ),
    ),
    Hazard(
        "H12",
        "Another clinic's patients are seen",
        causes=("a URL or id of another clinic's record", "a list or import that is not scoped to the clinic"),
        controls=(
            "every read is scoped to the user's clinic first (`patients.selectors.patient_list_for` and the other "
            "`*_for` selectors); outside it, 404, and the denial is audited",
        ),
    ),
    Hazard(
        "H13",
        "A result known to be wrong keeps driving flags, the risk score and advice",
        causes=("a value typed wrong or filed under the wrong patient, with no way to correct or withdraw it",),
        controls=(
            "`patients.services.observation_amend` corrects a result or withdraws it as entered in error, with a "
            "reason, audited; the old value is kept and shown struck through",
            "only final results are read for care (`patients.models.CurrentObservations`); the prediction and advice "
            "are computed again; a file sent again never brings a withdrawn value back",
        ),
    ),
]

HAZARD_IDS = [hazard.id for hazard in HAZARDS]
