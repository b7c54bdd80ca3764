"""The model registry: training runs, the model versions they produce, and drift reports on the active one.

Training is per clinic: a clinic's model learns only from that clinic's patients and serves only them.
Written only by `mltraining.services`; read by other apps through `mltraining.selectors`.
"""

from django.conf import settings
from django.db import models

from mltraining.provenance import is_synthetic, provenance_sentence


class TrainingStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class TrainingTrigger(models.TextChoices):
    MANUAL = "manual", "Manual"
    SCHEDULED = "scheduled", "Scheduled"
    API = "api", "API"


class TrainingRun(models.Model):
    """One attempt to train a clinic's model. The row is the truth about it; the Celery message only a nudge.

    `log` and `progress` are updated while the run trains, so the admin page shows how far it got.
    A succeeded run has exactly one `model_version` (the reverse side of `ModelVersion.training_run`).
    """

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="training_runs")
    status = models.CharField(max_length=10, choices=TrainingStatus.choices, default=TrainingStatus.QUEUED)
    trigger = models.CharField(max_length=10, choices=TrainingTrigger.choices, default=TrainingTrigger.MANUAL)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty for runs the system started (schedule, command line).",
    )
    configuration = models.JSONField(default=dict, blank=True, help_text="The TrainingConfig the run used.")
    data_summary = models.JSONField(default=dict, blank=True, help_text="Rows, patients, labels, exclusions, as-of.")
    audit = models.JSONField(default=dict, blank=True, help_text="Checks of the training data before fitting.")
    candidates = models.JSONField(default=list, blank=True, help_text="Cross-validation result per candidate.")
    chosen = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out metrics, CIs, baseline, subgroups.")
    importances = models.JSONField(default=dict, blank=True)
    plots = models.JSONField(
        default=dict, blank=True, help_text="Plot name -> id of its PNG in the database (clinic.Blob)."
    )
    log = models.TextField(blank=True)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per stage.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    resends = models.PositiveSmallIntegerField(
        default=0, help_text="Times its message was sent again because no worker had started it."
    )
    resent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "status", "-created_at"], name="trainingrun_clinic_status")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0.0, progress__lte=1.0), name="trainingrun_progress_0_1"
            ),
            # One run at a time per clinic: a double click or the schedule meeting a manual run trains once.
            models.UniqueConstraint(
                fields=["clinic"],
                condition=models.Q(status__in=["queued", "running"]),
                name="trainingrun_one_in_flight_per_clinic",
            ),
        ]

    def __str__(self) -> str:
        return f"Training run #{self.pk} ({self.get_status_display().lower()})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def in_progress(self) -> bool:
        return self.status in {TrainingStatus.QUEUED, TrainingStatus.RUNNING}


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    ACTIVE = "active", "Active"
    ARCHIVED = "archived", "Archived"


class ModelVersion(models.Model):
    """A trained model of one clinic: its artifact (verified by SHA-256 on every load), metrics, card and provenance.

    At most one version per clinic is active; the database enforces it with a partial unique index. A version
    trained on synthetic demo data is active only in a demo clinic (`mltraining.services` refuses it elsewhere).
    """

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="model_versions")
    version = models.PositiveIntegerField(help_text="1, 2, 3... per clinic.")
    training_run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="model_version")
    # The fitted model's skops bytes, in the database so that every host reaches them (clinic.blobs). Empty only
    # for a version trained before artifacts moved there whose file is not imported yet (`import_model_files`).
    artifact = models.ForeignKey("clinic.Blob", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # What explaining the model needs that depends on the model alone (LightGBM's tree paths), prepared once at
    # training (`mltraining.ml.explain.prepared_dumps`) instead of by every worker for every clinic each night.
    # Empty for a model that needs none, or a version registered before it was stored: prepared when first used.
    explainer = models.ForeignKey("clinic.Blob", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    artifact_path = models.CharField(
        max_length=255, blank=True,
        help_text="Where its file was, relative to MODEL_DIR, before artifacts moved into the database; empty since.",
    )  # fmt: skip
    sha256 = models.CharField("SHA-256", max_length=64)
    sklearn_version = models.CharField("scikit-learn version", max_length=32)
    library_versions = models.JSONField(default=dict, blank=True)
    feature_schema = models.JSONField(default=dict, blank=True)
    classes = models.JSONField(default=list, blank=True)
    data_hash = models.CharField(max_length=64)
    rows = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out metrics, CIs, baseline, subgroups.")
    risk_thresholds = models.JSONField(default=list, blank=True)
    reference_profile = models.JSONField(default=dict, blank=True, help_text="Training distribution, for drift.")
    model_card = models.JSONField(default=dict, blank=True, help_text="Intended use, data and limitations.")
    provenance = models.JSONField(
        default=dict, blank=True,
        help_text="Where its training data came from: patients by source (synthetic demo, imports), diagnoses by "
        "who vouches for them (a doctor, a trusted import source). Empty: trained before this was recorded.",
    )  # fmt: skip
    status = models.CharField(max_length=10, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty when the promotion gate activated it.",
    )
    activation_reason = models.TextField(
        blank=True, help_text="Why an admin last activated or rolled back to it; empty when the promotion gate did."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "version"], name="modelversion_version_unique_in_clinic"),
            models.UniqueConstraint(
                fields=["clinic"],
                condition=models.Q(status="active"),
                name="modelversion_one_active_per_clinic",
            ),
        ]
        indexes = [models.Index(fields=["clinic", "status"], name="modelversion_clinic_status")]

    def __str__(self) -> str:
        return f"Model v{self.version} ({self.get_status_display().lower()})"

    @property
    def roc_auc(self) -> float | None:
        return (self.metrics.get("test") or {}).get("roc_auc_ovr_macro")

    @property
    def training_data(self) -> str:
        """The one line every score of this version carries: what it was trained on."""
        return provenance_sentence(self.provenance)

    @property
    def trained_on_synthetic_data(self) -> bool:
        return is_synthetic(self.provenance)


class DriftBand(models.TextChoices):
    STABLE = "stable", "Stable"
    MODERATE = "moderate", "Moderate shift"
    MAJOR = "major", "Major shift"
    NO_DATA = "no_data", "No recent data"


class DriftReport(models.Model):
    """Recent inputs (and predictions) of a clinic compared with the active version's training profile."""

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="drift_reports")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="drift_reports")
    created_at = models.DateTimeField(auto_now_add=True)
    window_days = models.PositiveSmallIntegerField()
    n_recent = models.PositiveIntegerField(help_text="Patients with a lab or vital result in the window.")
    overall_band = models.CharField(max_length=10, choices=DriftBand.choices)
    report = models.JSONField(default=dict, blank=True, help_text="PSI and band per feature, worst first.")
    predicted_mix = models.JSONField(default=dict, blank=True, help_text="Share of each predicted class.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "-created_at"], name="driftreport_clinic_time")]

    def __str__(self) -> str:
        return f"Drift report #{self.pk} ({self.get_overall_band_display().lower()})"
