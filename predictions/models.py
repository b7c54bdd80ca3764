"""Predictions of a patient's risk, one at a time or in batches of chunks scored by Celery workers.

A prediction keeps everything needed to explain and audit it later: the model version, the input feature
values, the class probabilities, the calibrated risk level with the thresholds it was cut at, and the top
contributions. It is decision support for a clinician, never a diagnosis.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MODERATE = "moderate", "Moderate"
    HIGH = "high", "High"


class PredictionStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    # The model was not asked: the patient lacks a recent value of an input it needs (`error` says which).
    INSUFFICIENT = "insufficient", "Not enough recent results"


class BatchStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Finished with failed chunks"
    FAILED = "failed", "Failed"


class BatchTrigger(models.TextChoices):
    PORTAL = "portal", "Portal"
    ADMIN = "admin", "Admin action"
    COMMAND = "command", "Command"
    SCHEDULED = "scheduled", "Schedule"
    API = "api", "API"


class ChunkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class PredictionBatch(models.Model):
    """Scoring of every patient of a clinic, split into chunks of about CHUNK_SIZE patients."""

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="prediction_batches")
    model_version = models.ForeignKey(
        "mltraining.ModelVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="batches"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    trigger = models.CharField(max_length=10, choices=BatchTrigger.choices)
    scope = models.JSONField(default=dict, blank=True, help_text="Which patients: the clinic, all of them.")
    status = models.CharField(max_length=10, choices=BatchStatus.choices, default=BatchStatus.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="Patients in the batch.")
    done = models.PositiveIntegerField(default=0, help_text="Patients scored.")
    failed = models.PositiveIntegerField(default=0, help_text="Patients in chunks that failed for good.")
    chunks_total = models.PositiveIntegerField(default=0)
    chunks_finished = models.PositiveIntegerField(default=0, help_text="Chunks done or failed for good.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    resends = models.PositiveSmallIntegerField(
        default=0, help_text="Times its pending chunks were sent to the workers again after it stalled."
    )
    resent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "prediction batches"
        indexes = [models.Index(fields=["clinic", "-created_at"], name="batch_clinic_time")]

    def __str__(self) -> str:
        return f"Batch {self.pk} ({self.get_status_display()}, {self.done:,}/{self.total:,})"

    @property
    def progress(self) -> float:
        return (self.done + self.failed) / self.total if self.total else 1.0

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class PredictionChunk(models.Model):
    """One Celery task's share of a batch. Its row, not the message, says whether the work is done."""

    batch = models.ForeignKey(PredictionBatch, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    patient_ids = models.JSONField(help_text="Ascending patient ids.")
    status = models.CharField(max_length=10, choices=ChunkStatus.choices, default=ChunkStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    seconds = models.FloatField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set when a worker starts a try, and when the lost-chunk sweep sends the chunk again: a pending chunk whose
    # heartbeat is old and whose row no worker holds was lost with its worker (`chunks_requeue_lost`).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    requeues = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["batch", "index"]
        constraints = [models.UniqueConstraint(fields=["batch", "index"], name="chunk_index_unique_in_batch")]

    def __str__(self) -> str:
        return f"Chunk {self.index} of batch {self.batch_id} ({self.get_status_display()})"


class Prediction(models.Model):
    # No single-column indexes on patient and batch: prediction_patient_time and prediction_once_per_batch lead
    # with them and serve the same lookups; each index is one more write per row of a 100,000-patient batch.
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="predictions", db_index=False
    )
    model_version = models.ForeignKey(
        "mltraining.ModelVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="predictions",
        help_text="Empty when the clinic had no active model: a failed prediction, its inputs read by the rules.",
    )
    batch = models.ForeignKey(
        PredictionBatch, on_delete=models.CASCADE, null=True, blank=True, related_name="predictions", db_index=False
    )
    created_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=PredictionStatus.choices, default=PredictionStatus.SUCCEEDED)
    probabilities = models.JSONField(default=dict, blank=True, help_text="Class -> calibrated probability.")
    predicted_class = models.CharField(max_length=40, blank=True)
    risk_score = models.FloatField(null=True, blank=True, help_text="1 - P(no target condition).")
    risk_level = models.CharField(max_length=10, choices=RiskLevel.choices, blank=True)
    risk_thresholds = models.JSONField(default=list, blank=True, help_text="The cut-points of the model version.")
    inputs = models.JSONField(default=dict, blank=True, help_text="Feature values the model was given.")
    contributions = models.JSONField(
        default=list, blank=True, help_text="Top features: value, reference, direction and size of the contribution."
    )
    explanation_method = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["patient", "-created_at"], name="prediction_patient_time"),
            # The admin's list, newest first: without it each page sorted all of the clinic's predictions (0.6 s
            # at 600,000). A batch pays one more index entry per row, as its floor's COPY does.
            models.Index(fields=["-created_at", "-id"], name="prediction_time"),
        ]
        constraints = [
            # A redelivered or retried chunk writes nothing twice.
            models.UniqueConstraint(
                fields=["batch", "patient"], condition=models.Q(batch__isnull=False), name="prediction_once_per_batch"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.predicted_class or self.status} for patient {self.patient_id} ({self.created_at:%Y-%m-%d})"

    @property
    def without_model(self) -> bool:
        """Failed because the clinic had no active model (not because its model could not be used)."""
        return self.status == PredictionStatus.FAILED and self.model_version_id is None
