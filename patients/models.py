"""The clinical record: patients, the analyte catalog, observations, conditions, medications, allergies.

Written only by `patients.services`; read by other apps through `patients.selectors`.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Upper

from patients.validators import validate_birth_date, validate_email_address

ACKNOWLEDGEMENT_NOTE_MAX = 500  # characters of a doctor's note on acknowledging a critical value

icd10_code = RegexValidator(
    r"^[A-TV-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$",
    "Enter an ICD-10 code such as E11.9 or D50.",
)


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"
    UNKNOWN = "unknown", "Unknown"


class Smoking(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    NEVER = "never", "Never smoked"
    FORMER = "former", "Former smoker"
    CURRENT = "current", "Current smoker"


class Alcohol(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    NONE = "none", "None"
    MODERATE = "moderate", "Moderate (within guideline limits)"
    HEAVY = "heavy", "Heavy (above guideline limits)"


class Activity(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    SEDENTARY = "sedentary", "Sedentary"
    LIGHT = "light", "Light (under 150 min/week)"
    ACTIVE = "active", "Active (150+ min/week moderate)"


class Diet(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    POOR = "poor", "Poor (high sugar, salt or saturated fat)"
    AVERAGE = "average", "Average"
    HEALTHY = "healthy", "Healthy (guideline-concordant)"


class Patient(models.Model):
    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="patients")
    mrn = models.CharField(
        "MRN", max_length=64, help_text="Medical record number, unique within the clinic regardless of case."
    )
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    birth_date = models.DateField(validators=[validate_birth_date])
    sex = models.CharField(max_length=8, choices=Sex.choices)
    email = models.CharField("e-mail", max_length=254, blank=True, validators=[validate_email_address])
    phone = models.CharField(max_length=32, blank=True)
    address = models.TextField(blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="patient_record",
        help_text="The patient's own portal account, if they have one.",
    )
    # Lifestyle and family history (first-degree relatives); None means not asked yet.
    smoking = models.CharField(max_length=8, choices=Smoking.choices, default=Smoking.UNKNOWN)
    alcohol = models.CharField(max_length=8, choices=Alcohol.choices, default=Alcohol.UNKNOWN)
    physical_activity = models.CharField(max_length=10, choices=Activity.choices, default=Activity.UNKNOWN)
    diet = models.CharField(max_length=8, choices=Diet.choices, default=Diet.UNKNOWN)
    family_history_diabetes = models.BooleanField(null=True, blank=True)
    family_history_cardiovascular = models.BooleanField(null=True, blank=True)
    family_history_anemia = models.BooleanField("family history of anemia or hemoglobinopathy", null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["family_name", "given_name", "id"]
        constraints = [
            # The patient search finds an MRN in any case, so d0000914 and D0000914 would be one patient to it.
            models.UniqueConstraint(
                Upper("mrn"),
                "clinic",
                name="patient_mrn_unique_in_clinic_any_case",
                violation_error_message="A patient of this clinic already has this MRN (MRNs are compared "
                "without regard to case).",
            ),
        ]
        indexes = [models.Index(fields=["clinic", "family_name", "given_name"])]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class AnalyteKind(models.TextChoices):
    LAB = "lab", "Laboratory"
    VITAL = "vital", "Vital sign"
    WEARABLE = "wearable", "Wearable"


class Analyte(models.Model):
    """A measured quantity: loaded from `patients/catalog_data.py` by a data migration."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=8, choices=AnalyteKind.choices)
    panel = models.CharField(max_length=16, db_index=True)
    unit = models.CharField(max_length=16, help_text="Canonical UCUM unit; values are stored in it.")
    plausible_low = models.FloatField(help_text="Values below are physically impossible and refused.")
    plausible_high = models.FloatField(help_text="Values above are physically impossible and refused.")
    critical_low = models.FloatField(null=True, blank=True)
    critical_high = models.FloatField(null=True, blank=True)
    decimals = models.PositiveSmallIntegerField(default=1)
    source = models.TextField(help_text="Citation of the reference and critical ranges.")
    aliases = models.JSONField(default=list, blank=True, help_text="Other names used in files and headers.")
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.unit})"


class AnalyteLoinc(models.Model):
    """One of the LOINC codes an analyte is reported under (the first, `preferred`, is used for export)."""

    analyte = models.ForeignKey(Analyte, on_delete=models.CASCADE, related_name="loinc_codes")
    code = models.CharField("LOINC", max_length=16, unique=True)
    preferred = models.BooleanField(default=False)

    class Meta:
        ordering = ["-preferred", "code"]

    def __str__(self) -> str:
        return self.code


class AnalyteUnit(models.Model):
    """An accepted alternative unit: canonical = value * factor + offset."""

    analyte = models.ForeignKey(Analyte, on_delete=models.CASCADE, related_name="alternative_units")
    unit = models.CharField(max_length=16)
    factor = models.FloatField()
    offset = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["analyte", "unit"], name="analyte_unit_unique")]

    def __str__(self) -> str:
        return self.unit


class ReferenceRange(models.Model):
    analyte = models.ForeignKey(Analyte, on_delete=models.CASCADE, related_name="reference_ranges")
    sex = models.CharField(max_length=8, blank=True, help_text="Blank: any sex.")
    age_min = models.PositiveSmallIntegerField(default=18)
    age_max = models.PositiveSmallIntegerField(null=True, blank=True)
    low = models.FloatField(null=True, blank=True)
    high = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.analyte.code} {self.sex or 'any'} {self.low}-{self.high}"


class Interpretation(models.TextChoices):
    CRITICAL_LOW = "LL", "Critically low"
    LOW = "L", "Low"
    NORMAL = "N", "Normal"
    HIGH = "H", "High"
    CRITICAL_HIGH = "HH", "Critically high"


class ObservationSource(models.TextChoices):
    MANUAL = "manual", "Entered in the portal"
    CSV = "csv", "CSV import"
    FHIR = "fhir", "FHIR import"
    API = "api", "API"
    HL7 = "hl7", "HL7 v2 lab feed"
    DEMO = "demo", "Synthetic demo data"


class ObservationStatus(models.TextChoices):
    """FHIR's Observation.status, as far as a clinic changes it: a result is final until staff correct it (a new
    result replaces it) or withdraw it as entered in error. Only final results are read for care. A lab's feed also
    sends preliminary results: shown, marked as such, but read for care only once the lab's final replaces them."""

    PRELIMINARY = "preliminary", "Preliminary (not yet final)"
    FINAL = "final", "Final"
    CORRECTED = "corrected", "Replaced by a correction"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


AMEND_REASON_MAX = 500  # characters of the reason a result was corrected or withdrawn


class CurrentObservations(models.Manager):
    """Final results only: what every page, score, rule and export reads. `Observation.all_objects` also has the
    corrected and withdrawn ones (the result history, and imports, which must not bring back a withdrawn value)."""

    def get_queryset(self):
        return super().get_queryset().filter(status=ObservationStatus.FINAL)


class Observation(models.Model):
    """One lab result, vital sign or wearable daily value, stored in the analyte's canonical unit."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="observations")
    analyte = models.ForeignKey(Analyte, on_delete=models.PROTECT, related_name="+")
    value = models.FloatField(help_text="In the analyte's canonical unit.")
    entered_value = models.FloatField()
    entered_unit = models.CharField(max_length=16)
    effective_at = models.DateTimeField()
    source = models.CharField(max_length=8, choices=ObservationSource.choices)
    interpretation = models.CharField(
        max_length=2, choices=Interpretation.choices, blank=True, help_text="Blank: no adult range applies."
    )
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A value in a critical range (LL/HH) stays called out until a doctor acknowledges it: seen and taken on.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # A default in the database too: the demo's COPY of observations names only the columns it fills.
    acknowledgement_note = models.CharField(
        max_length=ACKNOWLEDGEMENT_NOTE_MAX, blank=True, default="", db_default="",
        help_text="What the doctor did about it, in their words.",
    )  # fmt: skip
    status = models.CharField(
        max_length=16, choices=ObservationStatus.choices, default=ObservationStatus.FINAL,
        db_default=ObservationStatus.FINAL,
    )  # fmt: skip
    amended_at = models.DateTimeField(null=True, blank=True)
    amended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    amend_reason = models.CharField(max_length=AMEND_REASON_MAX, blank=True, default="", db_default="")
    replaced_by = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaces",
        help_text="The correction that replaced this result.",
    )  # fmt: skip

    objects = CurrentObservations()
    all_objects = models.Manager()  # noqa: DJ012  (a manager, which ruff takes for a field)

    class Meta:
        base_manager_name = "all_objects"
        ordering = ["-effective_at", "-id"]
        constraints = [
            # Re-importing the same result is a no-op, not a duplicate.
            models.UniqueConstraint(
                fields=["patient", "analyte", "effective_at", "value"], name="observation_unique_result"
            ),
        ]
        indexes = [
            models.Index(fields=["patient", "analyte", "-effective_at"], name="obs_patient_analyte_time"),
            models.Index(fields=["patient", "-effective_at"], name="obs_patient_time"),
            # Few rows: finds the patients with a critical value (the home page's count) without scanning every result.
            models.Index(
                fields=["patient", "analyte", "-effective_at"],
                name="obs_critical",
                condition=models.Q(interpretation__in=[Interpretation.CRITICAL_LOW, Interpretation.CRITICAL_HIGH]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.analyte.code}={self.value} {self.analyte.unit} @ {self.effective_at:%Y-%m-%d}"


class ClinicalStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RECURRENCE = "recurrence", "Recurrence"
    INACTIVE = "inactive", "Inactive"
    REMISSION = "remission", "Remission"
    RESOLVED = "resolved", "Resolved"


class VerificationStatus(models.TextChoices):
    PROVISIONAL = "provisional", "Provisional"
    CONFIRMED = "confirmed", "Confirmed"
    REFUTED = "refuted", "Refuted"
    ENTERED_IN_ERROR = "entered-in-error", "Entered in error"


class ConditionSource(models.TextChoices):
    MANUAL = "manual", "Recorded in the portal or the API"
    FHIR = "fhir", "FHIR import"
    DEMO = "demo", "Synthetic demo data"


IMPORTED_CONDITION_SOURCES = (ConditionSource.FHIR,)  # sources that bring diagnoses nobody here verified


class Condition(models.Model):
    """A diagnosis. Confirmed conditions are the labels that model training learns from.

    Only a doctor confirms: an imported diagnosis is stored unconfirmed (provisional) whatever its file said, and
    `source_verification_status` keeps what the file said, until a doctor confirms it (`verified_by`) or the
    clinic trusts its source (`TrustedSource`), whose word then counts for training.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="conditions")
    code = models.CharField("ICD-10 code", max_length=8, validators=[icd10_code])
    display = models.CharField(max_length=200)
    onset_date = models.DateField(null=True, blank=True)
    clinical_status = models.CharField(max_length=12, choices=ClinicalStatus.choices, default=ClinicalStatus.ACTIVE)
    verification_status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, default=VerificationStatus.PROVISIONAL
    )
    note = models.TextField(blank=True)
    # An EHR restates an ongoing diagnosis at every encounter: an import stores it once and counts the restatements.
    encounters = models.PositiveIntegerField(
        default=1, help_text="Encounters that recorded this diagnosis while it was active (1 for one recorded here)."
    )
    last_recorded_on = models.DateField(
        null=True, blank=True, help_text="The latest encounter that restated it; empty when recorded once."
    )
    source = models.CharField(max_length=8, choices=ConditionSource.choices, default=ConditionSource.MANUAL)
    source_verification_status = models.CharField(
        max_length=16, choices=VerificationStatus.choices, blank=True,
        help_text="What the imported file said (its verificationStatus); blank for diagnoses recorded here.",
    )  # fmt: skip
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="Who set the verification status here; empty while it is what an import or the demo wrote.",
    )  # fmt: skip
    verified_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            models.Index(fields=["verification_status", "code"]),
            # The doctors' list of imported diagnoses still waiting for one of them: few rows of many.
            models.Index(
                fields=["patient", "source"], name="condition_awaiting_doctor",
                condition=models.Q(source__in=IMPORTED_CONDITION_SOURCES, verified_by__isnull=True),
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.code} {self.display} ({self.verification_status})"


class TrustedSource(models.Model):
    """An import source whose diagnoses a clinic takes as labels without a doctor confirming each one.

    A source is an import channel of the clinic as a whole (today FHIR, the one import that brings diagnoses:
    files uploaded, sent to the API or given to `import_fhir`). Narrower sources, such as one EHR named by the
    identifier system of its files, were not chosen: a file names its sender itself, so trusting a name would
    trust any file that claims it. Trusting the channel is a decision a clinic admin takes, knowingly, for
    everything its people import that way; a diagnosis a clinician has verified here keeps that verification.
    """

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="trusted_sources")
    source = models.CharField(
        max_length=8, choices=[(s.value, s.label) for s in IMPORTED_CONDITION_SOURCES],
        help_text="Its diagnoses count as training labels as their file states them.",
    )  # fmt: skip
    reason = models.CharField(max_length=500, help_text="Why this clinic trusts the diagnoses it brings.")
    trusted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["clinic", "source"]
        constraints = [models.UniqueConstraint(fields=["clinic", "source"], name="trusted_source_once_per_clinic")]

    def __str__(self) -> str:
        return f"{self.get_source_display()} trusted by {self.clinic}"


class Medication(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="medications")
    name = models.CharField(max_length=200)
    dose = models.CharField(max_length=100, blank=True, help_text="e.g. 500 mg twice daily")
    started_on = models.DateField(null=True, blank=True)
    stopped_on = models.DateField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["stopped_on", "name"]

    def __str__(self) -> str:
        return f"{self.name} {self.dose}".strip()

    @property
    def active(self) -> bool:
        return self.stopped_on is None


class AllergySeverity(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"


class Allergy(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergies")
    substance = models.CharField(max_length=200)
    reaction = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=8, choices=AllergySeverity.choices, default=AllergySeverity.UNKNOWN)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["substance"]
        verbose_name_plural = "allergies"

    def __str__(self) -> str:
        return self.substance


class ImportJobKind(models.TextChoices):
    FHIR = "fhir", "FHIR (Bundles or Bulk Data NDJSON)"
    CSV = "csv", "Lab CSV"


class ImportJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """A bulk import run by a worker: the web request only stores the files and answers at once.

    The files live on disk under VAR_DIR/imports/jobs (`patients.imports.uploads`), never in the database;
    `files` lists them. `progress` is saved after every file and every chunk of resources, and `heartbeat_at`
    with it, so a job whose worker died shows as stalled and is taken over, or sent again by the periodic sweep
    (`patients.imports.jobs`).
    """

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="import_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by_name = models.CharField(max_length=150, blank=True, help_text="The command that queued it, if any.")
    kind = models.CharField(max_length=8, choices=ImportJobKind.choices)
    files = models.JSONField(
        default=list, help_text="[{name, blob, size}]: each file kept in the database (clinic.Blob) until the job ends."
    )
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=ImportJobStatus.choices, default=ImportJobStatus.QUEUED)
    progress = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    resends = models.PositiveSmallIntegerField(default=0, help_text="Times sent again after its worker was lost.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["clinic", "-created_at"], name="import_job_clinic_recent")]

    def __str__(self) -> str:
        return f"Import job {self.pk} ({self.get_kind_display()}, {self.get_status_display()})"

    @property
    def finished(self) -> bool:
        return self.status in (ImportJobStatus.SUCCEEDED, ImportJobStatus.FAILED)


CONTACT_MESSAGE_MAX = 2000  # characters of a patient's question or request, and of the clinic's reply
CONTACT_TIMES_MAX = 200  # characters of the times that suit a patient for an appointment


class ContactKind(models.TextChoices):
    QUESTION = "question", "A question"
    APPOINTMENT = "appointment", "An appointment"


class ContactStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class ContactRequest(models.Model):
    """A patient's question to their clinic or request for an appointment, from the portal: it waits in the
    staff's worklist until someone takes it on and answers; the patient reads the answer on their own page."""

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="contact_requests")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="contact_requests")
    kind = models.CharField(max_length=12, choices=ContactKind.choices)
    message = models.TextField(max_length=CONTACT_MESSAGE_MAX)
    preferred_times = models.CharField(
        max_length=CONTACT_TIMES_MAX, blank=True, help_text="When an appointment suits the patient, in their words."
    )
    advice_item = models.ForeignKey(
        "recommendations.RecommendationItem", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="The approved advice the request is about, if the patient asked from it.",
    )  # fmt: skip
    status = models.CharField(max_length=12, choices=ContactStatus.choices, default=ContactStatus.OPEN)
    reply = models.TextField(max_length=CONTACT_MESSAGE_MAX, blank=True, help_text="Shown to the patient.")
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "status", "created_at"], name="contact_request_worklist")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} from patient {self.patient_id} ({self.get_status_display()})"


class EscalationLevel(models.TextChoices):
    DOCTORS = "doctors", "On-duty doctors"
    CONTACT = "contact", "Escalation contact"


class CriticalEscalation(models.Model):
    """One e-mail about a critical result no doctor has acknowledged: to the clinic's on-duty doctors, or to its
    escalation contact. At most one row per result and level, so no level is ever e-mailed twice; a row not yet
    sent (`sent_at` empty) keeps its last `error` and is tried again on the next run. Written by
    `patients.escalation` only."""

    observation = models.ForeignKey(Observation, on_delete=models.PROTECT, related_name="escalations")
    level = models.CharField(max_length=8, choices=EscalationLevel.choices)
    reason = models.CharField(max_length=200, blank=True, help_text="Why this level, when not the usual order.")
    recipients = models.JSONField(default=list, blank=True, help_text="The addresses of the last attempt.")
    created_at = models.DateTimeField(auto_now_add=True)
    # A sender holds the row until then: two runs at once never both send it.
    leased_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the last attempt failed; empty once sent.")

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["observation", "level"], name="critical_escalation_once_per_level"),
        ]
        indexes = [
            models.Index(fields=["created_at"], condition=models.Q(sent_at=None), name="critical_escalation_unsent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_level_display()} for observation {self.observation_id}"
