"""The HL7 v2 lab interface: who may send results (`LabConnection`), how their own codes read (`LabCodeMap`), every
message received (`HL7Message`) and the results held for a patient the message did not identify (`UnmatchedResult`).

Written only by `labfeed.services`; results themselves are stored as `patients.Observation` rows.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper


class LabConnection(models.Model):
    """A lab that sends one clinic its results. A message is for this connection when its MSH-4 (sending facility)
    is `sending_facility` and, when set, its MSH-3 (sending application) is `sending_application`."""

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="lab_connections")
    name = models.CharField(max_length=100, help_text="The lab as staff know it, e.g. Central Pathology.")
    sending_facility = models.CharField(
        "sending facility (MSH-4)", max_length=180,
        help_text="As the lab writes it in MSH-4 (its first component), compared without regard to case.",
    )  # fmt: skip
    sending_application = models.CharField(
        "sending application (MSH-3)", max_length=180, blank=True,
        help_text="Blank: any application of that facility.",
    )  # fmt: skip
    assigning_authority = models.CharField(
        "assigning authority (PID-3.4)", max_length=180,
        help_text="The authority the lab names for this clinic's MRNs in PID-3; other identifiers are not read.",
    )  # fmt: skip
    active = models.BooleanField(default=True, help_text="Messages of an inactive connection are rejected (AR).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["clinic", "name"]
        constraints = [
            # A message names its facility, not its clinic: two connections on one facility would be ambiguous.
            models.UniqueConstraint(
                Upper("sending_facility"), Upper("sending_application"), name="lab_connection_unique_sender",
                violation_error_message="Another connection already receives this facility and application.",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.name} ({self.sending_facility})"


class LabCodeMap(models.Model):
    """A lab's own test code, or a LOINC code the catalog does not list, and the analyte it reports."""

    connection = models.ForeignKey(LabConnection, on_delete=models.CASCADE, related_name="code_maps")
    local_code = models.CharField(max_length=64, help_text="OBX-3.1 or OBX-3.4 as the lab sends it (compared exactly).")
    local_text = models.CharField(max_length=200, blank=True, help_text="OBX-3.2, for people reading this list.")
    analyte = models.ForeignKey("patients.Analyte", on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["connection", "local_code"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "local_code"], name="lab_code_map_unique_code"),
        ]

    def __str__(self) -> str:
        return f"{self.local_code} → {self.analyte.code}"


class AckCode(models.TextChoices):
    ACCEPTED = "AA", "AA: accepted"
    ERROR = "AE", "AE: application error, nothing stored"
    REJECTED = "AR", "AR: rejected, nothing stored"


class MessageOutcome(models.TextChoices):
    STORED = "stored", "Results stored"
    HELD = "held", "Held for an unmatched patient"
    NOTHING_NEW = "nothing_new", "Nothing new to store"
    REFUSED = "refused", "Refused"


class HL7Message(models.Model):
    """One message received, whatever became of it, with the acknowledgement it was given.

    A message sent again (same sending facility and MSH-10) is answered with the same acknowledgement code and
    writes nothing: `resent` counts those.
    """

    connection = models.ForeignKey(
        LabConnection, on_delete=models.PROTECT, null=True, blank=True, related_name="messages"
    )
    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    sending_facility = models.CharField(max_length=180, blank=True)
    sending_application = models.CharField(max_length=180, blank=True)
    control_id = models.CharField("control id (MSH-10)", max_length=199, blank=True)
    message_type = models.CharField(max_length=20, blank=True)
    version = models.CharField(max_length=10, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    raw = models.TextField(help_text="The message as received, segments separated by CR.")
    ack_code = models.CharField(max_length=2, choices=AckCode.choices)
    outcome = models.CharField(max_length=12, choices=MessageOutcome.choices)
    error = models.TextField(blank=True, help_text="Why the message was refused, as the acknowledgement says it.")
    results = models.PositiveIntegerField(default=0, help_text="OBX segments in the message.")
    created = models.PositiveIntegerField(default=0)
    replaced = models.PositiveIntegerField(default=0, help_text="Preliminary results replaced or made final.")
    corrected = models.PositiveIntegerField(default=0)
    withdrawn = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0, help_text="Results held on the unmatched results worklist.")
    skipped = models.PositiveIntegerField(default=0, help_text="Not numeric, unknown code or status not stored.")
    critical = models.PositiveIntegerField(default=0)
    notes = models.JSONField(
        default=list, blank=True,
        help_text="What was not stored and why, flags the lab and this clinic disagree on, critical values.",
    )  # fmt: skip
    resent = models.PositiveIntegerField(default=0, help_text="Times the same message came again.")

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "HL7 message"
        constraints = [
            # Idempotent on MSH-10 per sender; a message whose header could not be read has no key.
            models.UniqueConstraint(
                fields=["sending_facility", "control_id"], name="hl7_message_once_per_sender",
                condition=~models.Q(control_id=""),
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.sending_facility or '?'} {self.control_id or '(no control id)'} {self.ack_code}"


class UnmatchedStatus(models.TextChoices):
    WAITING = "waiting", "Waiting for staff"
    RESOLVED = "resolved", "Filed to a patient"


class UnmatchedResult(models.Model):
    """The results of one patient of a message whose PID matched no patient of the clinic: held, never dropped,
    until staff pick the patient (or register them). `results` are already checked (analyte, unit, plausible
    value) and in canonical units; flags are set when they are filed, against the chosen patient."""

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="+")
    message = models.ForeignKey(HL7Message, on_delete=models.PROTECT, related_name="unmatched")
    reason = models.CharField(max_length=300, help_text="Why no patient was matched.")
    identifiers = models.CharField(max_length=300, blank=True, help_text="PID-3 as the lab sent it.")
    mrn = models.CharField(max_length=64, blank=True, help_text="The identifier of this clinic's authority, if any.")
    family_name = models.CharField(max_length=100, blank=True)
    given_name = models.CharField(max_length=100, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    sex = models.CharField(max_length=8, blank=True)
    results = models.JSONField(default=list)
    status = models.CharField(max_length=8, choices=UnmatchedStatus.choices, default=UnmatchedStatus.WAITING)
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["clinic", "status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.identifiers}): {len(self.results)} result(s)"
