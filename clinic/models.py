import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

ESCALATION_MINUTES_MAX = 24 * 60  # a day: longer is no longer an escalation of a critical result


def default_time_zone() -> str:
    return settings.TIME_ZONE


def validate_time_zone(name: str) -> None:
    """An IANA time zone name this machine's tz database knows ("Australia/Brisbane", "America/New_York")."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"{name!r} is not a time zone name; use an IANA name such as Europe/London or America/New_York."
        ) from None


class Clinic(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    is_demo = models.BooleanField(
        "demo clinic",
        default=False,
        help_text="Set by `manage.py seed_demo` for its clinic only: a model trained on synthetic demo data may be "
        "active here and nowhere else.",
    )
    # A critical result no doctor has acknowledged is e-mailed to the on-duty doctors after `escalation_minutes`
    # (counted from when it reached the clinic), then to the escalation contact `escalation_contact_minutes` later.
    escalation_minutes = models.PositiveIntegerField(
        "minutes before the on-duty doctors are e-mailed",
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(ESCALATION_MINUTES_MAX)],
        help_text="A result in a critical range that no doctor has acknowledged this many minutes after it reached "
        "the clinic is e-mailed to the doctors on duty (to the escalation contact at once if none is).",
    )
    escalation_contact_minutes = models.PositiveIntegerField(
        "further minutes before the escalation contact is e-mailed",
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(ESCALATION_MINUTES_MAX)],
        help_text="Still unacknowledged this many minutes after the doctors were due to be told: the escalation "
        "contact is e-mailed.",
    )
    escalation_contact_email = models.EmailField(
        "escalation contact e-mail",
        blank=True,
        help_text="Who answers for critical results nobody has taken on (a senior doctor, the practice manager). "
        "Leave empty and a result nobody takes on is only shown, never e-mailed beyond the doctors on duty.",
    )
    time_zone = models.CharField(
        "time zone",
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text="Where the clinic is: its pages show times in this zone, and its nightly work (scoring, rankers, "
        "the weekly drift check and retraining) runs at its local night.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The clinic's time zone: its pages show times in it, and a time written without an offset (a CSV row, an
        HL7 message's specimen time) is read in it, whatever zone the importing process runs in."""
        return zoneinfo.ZoneInfo(self.time_zone)


class NightlyRun(models.Model):
    """The local date on which a clinic's nightly job (clinic.schedules.NIGHTLY_JOBS) was last enqueued: claimed
    with a conditional update, so it runs once a local night whatever the restarts, dispatchers or DST changes."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="+")
    job = models.CharField(max_length=32)
    local_date = models.DateField(null=True)
    enqueued_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["clinic", "job"], name="nightly_run_one_per_clinic_job")]

    def __str__(self) -> str:
        return f"{self.job} of clinic {self.clinic_id} for {self.local_date}"


class Role(models.TextChoices):
    ADMIN = "admin", "Clinic admin"
    DOCTOR = "doctor", "Doctor"
    STAFF = "staff", "Staff"
    PATIENT = "patient", "Patient"


class User(AbstractUser):
    """A person who logs in. Everyone but a superuser belongs to exactly one clinic."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STAFF)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="users")
    on_duty = models.BooleanField(
        "on duty",
        default=False,
        help_text="A doctor on duty is e-mailed about critical results left unacknowledged (patients.escalation). "
        "Doctors switch it on the home page.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_superuser=True) | models.Q(clinic__isnull=False),
                name="user_has_clinic_unless_superuser",
            ),
        ]

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class AuditOutcome(models.TextChoices):
    SUCCESS = "success", "Success"
    DENIED = "denied", "Denied"
    FAILURE = "failure", "Failure"


class AuditEvent(models.Model):
    """One thing that happened to or with patient data, a login or a configuration change.

    Append-only: rows are written by `clinic.audit.audit_record` only; on PostgreSQL triggers refuse UPDATE,
    DELETE and TRUNCATE, and the table is partitioned by month of `time` (migration clinic 0010). Each row's `hash`
    is keyed (HMAC, AUDIT_HMAC_KEY) over its content and the previous row's hash in its clinic's chain, so a
    changed or removed row breaks the chain, and a checkpoint of each chain's head kept outside the database
    reveals a cut one (`manage.py audit_verify`).
    """

    time = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, blank=True)
    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    outcome = models.CharField(max_length=16, choices=AuditOutcome.choices, default=AuditOutcome.SUCCESS)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    # How `hash` was computed (clinic.audit.HashVersion): rows from before the key existed keep their plain SHA-256.
    hash_version = models.PositiveSmallIntegerField(default=2)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["clinic", "time"]),
            # Each clinic's chain in order: its head for the next writer, its rows after a checkpoint for the check.
            models.Index(
                fields=["clinic", "id"], condition=models.Q(hash_version__gte=3), name="clinic_audit_chain_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor_username or '-'} {self.action} {self.outcome}"


class OutboxMessage(models.Model):
    """A task to send to the workers, written in the transaction of the change that calls for it.

    The broker (Redis) can be down while the database is up: the change then commits with its message here, and
    `clinic.outbox` sends it once the broker is back. Written and read by `clinic.outbox` only.
    """

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    # The task is called with `message_id=<this row's id>`, and consumes the row in the transaction of its work.
    once = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # A sender holds the row until then: the sender after commit and the periodic drain never both send it.
    leased_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Set by the consumer in the transaction of its work: a message delivered twice does its work once.
    consumed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], condition=models.Q(sent_at=None), name="clinic_outbox_unsent"),
        ]

    def __str__(self) -> str:
        return f"{self.task} #{self.pk} ({'sent' if self.sent_at else 'unsent'})"


class BlobKind(models.TextChoices):
    ARTIFACT = "artifact", "Model artifact"
    PLOT = "plot", "Training plot"
    UPLOAD = "upload", "Upload awaiting confirmation"
    JOB_FILE = "job_file", "File of an import job"


class Blob(models.Model):
    """Bytes that every host must reach, kept in the database beside the rows that point at them (README, "Design
    notes: shared storage"). Stored in chunks (`BlobChunk`) so a large upload is written and read in pieces.
    Written and read by `clinic.blobs` only; immutable once saved."""

    kind = models.CharField(max_length=10, choices=BlobKind.choices)
    # An upload's token, remembered in its uploader's session; empty for blobs reached through a row.
    key = models.CharField(max_length=32, unique=True, null=True, blank=True)
    sha256 = models.CharField("SHA-256", max_length=64)
    size = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "created_at"], name="clinic_blob_kind_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.size:,} bytes)"


class BlobChunk(models.Model):
    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blob", "seq"], name="clinic_blobchunk_seq_unique")]

    def __str__(self) -> str:
        return f"Chunk {self.seq} of blob #{self.blob_id}"
