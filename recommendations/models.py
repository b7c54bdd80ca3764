"""Advice for patients: generated from guideline rules and a prediction, reviewed by a doctor, then shown.

- `AdviceItem` is the catalog of things the platform can advise, loaded by data migrations from
  `recommendations/advice_data.py`.
- A `Recommendation` is generated after a prediction: a headline and specific items, ranked, with the
  rationale and the versions of the rules, model and ranker that produced it.
- Each `RecommendationItem` is reviewed on its own: approved (possibly with edited patient text), rejected
  with a coded reason, or annotated. A patient sees an item only once a doctor approved it.
- Every decision is an append-only `FeedbackEvent`, in the shape of CDS Hooks feedback, and the feedback
  of the clinic's doctors adjusts the ranking of future items (`RankerSnapshot`).
- A `StandingProtocol` is a doctor's signed standing order: the low-severity advice items it names are released
  to the clinic's patients in its scope without per-patient review (`recommendations.protocols`); such an item
  records the protocol it was released under, and no FeedbackEvent (the ranker learns from doctors only).
"""

from __future__ import annotations

import datetime
import uuid

from django.conf import settings
from django.db import models


class Category(models.TextChoices):
    NO_ACTION = "no_action", "No action"
    LIFESTYLE = "lifestyle", "Lifestyle"
    FOLLOW_UP_TEST = "follow_up_test", "Follow-up test"
    REFERRAL = "referral", "Referral"
    MEDICATION_REVIEW = "medication_review", "Medication review"
    URGENT = "urgent", "Urgent"


# What a patient reads above an approved item: plain words by category, never the clinician's title.
PATIENT_HEADINGS = {
    "no_action": "Nothing to do for now",
    "lifestyle": "Everyday habits",
    "follow_up_test": "A follow-up test",
    "referral": "See a doctor",
    "medication_review": "Your medicines",
    "urgent": "Contact your clinic today",
}


class Severity(models.IntegerChoices):
    # The values are those of recommendations.rules.Severity.
    INFO = 0, "Information"
    LOW = 1, "Low"
    MODERATE = 2, "Moderate"
    HIGH = 3, "High"
    CRITICAL = 4, "Critical"


class Headline(models.TextChoices):
    NO_ACTION = "no_action_needed", "No action needed"
    LIFESTYLE = "lifestyle_changes", "Lifestyle changes recommended"
    CONSULT = "consult_professional", "Consult a healthcare professional"


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"


class OverrideReason(models.TextChoices):
    # Coded reasons for overriding a card, as CDS Hooks feedback carries them (overrideReasons[].code). They fit a
    # review before release: the patient has seen nothing yet, so "patient declined" is no longer offered; it stays a
    # choice only so that the decisions recorded with it still read (see OFFERED_OVERRIDE_REASONS).
    NOT_RELEVANT = "not_relevant", "Not indicated for this patient"
    ALREADY_ADDRESSED = "already_addressed", "Already addressed"
    DUPLICATE = "duplicate", "Duplicate of another item"
    DISAGREE_EVIDENCE = "disagree_evidence", "Disagree with the evidence"
    OTHER = "other", "Other"
    PATIENT_DECLINED = "patient_declined", "Patient declined (no longer offered)"


LEGACY_OVERRIDE_REASONS = {OverrideReason.PATIENT_DECLINED}
# What a reviewer may choose, on the review page and through the API; stored legacy values still display.
OFFERED_OVERRIDE_REASONS = [
    (code, label) for code, label in OverrideReason.choices if code not in LEGACY_OVERRIDE_REASONS
]


class FeedbackAction(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"
    EDIT = "edit", "Edited patient text"
    ANNOTATE = "annotate", "Annotated"
    EHR_FEEDBACK = "ehr", "EHR card feedback"


class FeedbackSource(models.TextChoices):
    PORTAL = "portal", "Review pages and API"
    EHR = "ehr", "An EHR (CDS Hooks feedback)"


class FeedbackOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    OVERRIDDEN = "overridden", "Overridden"


class AdviceItem(models.Model):
    code = models.SlugField(max_length=60, unique=True)
    title = models.CharField(max_length=200)
    patient_text = models.TextField(help_text="Plain language, shown to the patient once a doctor approves it.")
    clinician_text = models.TextField(help_text="What the guideline says and what to consider, for the doctor.")
    category = models.CharField(max_length=20, choices=Category.choices)
    source = models.TextField(help_text="Citation of the guideline or evidence.")
    active = models.BooleanField(default=True, help_text="Inactive items are no longer generated.")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.title


class Recommendation(models.Model):
    """The advice generated from one prediction of one patient."""

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="recommendations")
    # rec_patient_time leads with the patient and serves its lookups: no second index to write per row.
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="recommendations", db_index=False
    )
    prediction = models.OneToOneField("predictions.Prediction", on_delete=models.CASCADE, related_name="recommendation")
    created_at = models.DateTimeField()
    headline = models.CharField(max_length=30, choices=Headline.choices)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices, help_text="The most severe item.")
    pending = models.PositiveSmallIntegerField(default=0, help_text="Items still waiting for a doctor.")
    fingerprint = models.CharField(
        max_length=64, help_text="Hash of the headline and items: the same advice is not generated twice in a row."
    )
    rationale = models.JSONField(
        default=dict,
        blank=True,
        help_text="Risk level, model class and probability; for advice from the rules alone, why there is no model.",
    )
    rules_version = models.CharField(max_length=20)
    ranker_version = models.PositiveIntegerField(null=True, blank=True, help_text="None: no feedback yet.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["patient", "-created_at"], name="rec_patient_time"),
            models.Index(
                fields=["clinic", "-severity", "created_at"], name="rec_queue", condition=models.Q(pending__gt=0)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_headline_display()} for patient {self.patient_id} ({self.created_at:%Y-%m-%d})"


class ProtocolSex(models.TextChoices):
    ANY = "", "All patients"
    FEMALE = "female", "Female patients"
    MALE = "male", "Male patients"


class StandingProtocol(models.Model):
    """A doctor's signed standing order for one clinic: the advice items it names, each only ever of information or
    low severity, are released to the patients in its scope without per-patient review, from `starts_on` to
    `ends_on` (inclusive, at most a year) unless revoked. Ended or revoked, it releases nothing more; what it
    released stays released and attributed to it. Written only by `recommendations.protocols`."""

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=200)
    advice = models.ManyToManyField(AdviceItem, related_name="+", help_text="The advice items it releases.")
    min_age = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Youngest age in scope (years).")
    max_age = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Oldest age in scope (years).")
    sex = models.CharField(max_length=8, choices=ProtocolSex.choices, blank=True, default=ProtocolSex.ANY)
    starts_on = models.DateField()
    ends_on = models.DateField(help_text="The last day it releases advice.")
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField()
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-signed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__gte=models.F("starts_on")), name="protocol_ends_after_start"
            ),
            models.CheckConstraint(
                condition=models.Q(min_age__isnull=True)
                | models.Q(max_age__isnull=True)
                | models.Q(min_age__lte=models.F("max_age")),
                name="protocol_age_band_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(revoked_at__isnull=True) | ~models.Q(revoke_reason=""),
                name="protocol_revocation_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} (signed by {self.signed_by_id}, {self.starts_on} to {self.ends_on})"

    def status_on(self, day: datetime.date) -> str:
        """ "revoked", "scheduled" (not started), "active" or "ended" on `day`."""
        if self.revoked_at is not None:
            return "revoked"
        if day < self.starts_on:
            return "scheduled"
        return "active" if day <= self.ends_on else "ended"

    @property
    def scope_display(self) -> str:
        who = ProtocolSex(self.sex).label if self.sex else "All patients"
        if self.min_age is not None and self.max_age is not None:
            return f"{who} aged {self.min_age} to {self.max_age}"
        if self.min_age is not None:
            return f"{who} aged {self.min_age} or older"
        if self.max_age is not None:
            return f"{who} aged {self.max_age} or younger"
        return f"{who} of the clinic" if not self.sex else who


class RecommendationItem(models.Model):
    # advice_once_per_recommendation leads with the recommendation and serves its lookups.
    recommendation = models.ForeignKey(Recommendation, on_delete=models.CASCADE, related_name="items", db_index=False)
    advice = models.ForeignKey(AdviceItem, on_delete=models.PROTECT, related_name="+")
    card_id = models.UUIDField(default=uuid.uuid4, unique=True, help_text="The CDS Hooks card id of this item.")
    position = models.PositiveSmallIntegerField(help_text="Display order, from 0; the headline is 0.")
    is_headline = models.BooleanField(default=False)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    pinned = models.BooleanField(default=False, help_text="Critical: shown first, never re-ranked by feedback.")
    rule = models.CharField(max_length=60, blank=True, help_text="The guideline rule that fired; blank: the model.")
    rationale = models.TextField(help_text="Why: the value, its unit and the threshold, or the model's probability.")
    citation = models.TextField(blank=True)
    condition = models.CharField(max_length=40, blank=True, help_text="The related model class.")
    probability = models.FloatField(null=True, blank=True, help_text="The model's probability of `condition`.")
    base_score = models.FloatField(default=0.0)
    lift = models.FloatField(default=0.0, help_text="The feedback adjustment, bounded by the ranker.")
    status = models.CharField(max_length=12, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    patient_text = models.TextField(help_text="What the patient reads; the catalog text unless a doctor edited it.")
    note = models.TextField(blank=True, help_text="The reviewing doctor's annotation (not shown to the patient).")
    override_reason = models.CharField(max_length=20, choices=OverrideReason.choices, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    protocol = models.ForeignKey(
        StandingProtocol, on_delete=models.PROTECT, null=True, blank=True, related_name="released_items",
        db_index=False, help_text="Approved without per-patient review, released under this standing protocol.",
    )  # fmt: skip

    class Meta:
        ordering = ["recommendation", "position"]
        # Few items are released under a protocol: a partial index counts them without a write on every other row.
        indexes = [
            models.Index(fields=["protocol"], name="item_released_under", condition=models.Q(protocol__isnull=False))
        ]
        constraints = [
            models.UniqueConstraint(fields=["recommendation", "advice"], name="advice_once_per_recommendation"),
            models.CheckConstraint(
                condition=~models.Q(status="rejected") | ~models.Q(override_reason=""), name="rejection_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.advice_id} ({self.get_status_display()})"

    @property
    def patient_heading(self) -> str:
        return PATIENT_HEADINGS.get(self.advice.category, "Advice from your doctor")


class FeedbackEvent(models.Model):
    """One clinician decision on one item. Append-only: never updated or deleted by the application.

    The shape follows CDS Hooks feedback (card, outcome accepted/overridden, overrideReasons, outcomeTimestamp);
    `as_cds_hooks()` gives that JSON. A decision made in a clinic's EHR on one of our CDS Hooks cards comes with
    `source` "ehr", no platform `clinician` and the EHR's user in `ehr_user` (`cdshooks.services`); it does not change
    the item's review status (only a doctor here approves or rejects) but the ranker learns from it.
    """

    item = models.ForeignKey(RecommendationItem, on_delete=models.CASCADE, related_name="feedback")
    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("patients.Patient", on_delete=models.CASCADE, related_name="+")
    advice = models.ForeignKey(AdviceItem, on_delete=models.PROTECT, related_name="+")
    clinician = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", null=True, blank=True,
        help_text="The doctor who decided here; empty for feedback from an EHR (see ehr_user).",
    )  # fmt: skip
    source = models.CharField(max_length=8, choices=FeedbackSource.choices, default=FeedbackSource.PORTAL)
    ehr_user = models.CharField(
        "EHR user", max_length=300, blank=True,
        help_text='Feedback from an EHR: its connection and user, "<connection id>:Practitioner/abc".',
    )  # fmt: skip
    action = models.CharField(max_length=10, choices=FeedbackAction.choices)
    outcome = models.CharField(max_length=12, choices=FeedbackOutcome.choices, blank=True)
    override_reason = models.CharField(max_length=20, choices=OverrideReason.choices, blank=True)
    comment = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(help_text="Where the item was shown in its recommendation.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["clinic", "created_at"], name="feedback_clinic_time")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(clinician__isnull=False) | ~models.Q(ehr_user=""), name="feedback_has_a_person"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.advice_id} by {self.clinician_id or self.ehr_user}"

    def as_cds_hooks(self) -> dict:
        """The CDS Hooks feedback body for this decision (outcome-bearing actions only)."""
        body: dict = {
            "card": str(self.item.card_id),
            "outcome": self.outcome,
            "outcomeTimestamp": self.created_at.isoformat(),
        }
        if self.outcome == FeedbackOutcome.ACCEPTED:
            body["acceptedSuggestions"] = [{"id": str(self.item.card_id)}]
        if self.outcome == FeedbackOutcome.OVERRIDDEN:
            reason = {"code": self.override_reason, "display": self.get_override_reason_display()}
            body["overrideReason"] = {"reason": {**reason, "system": OVERRIDE_SYSTEM}, "userComment": self.comment}
        return body


OVERRIDE_SYSTEM = "urn:clinic-platform:override-reason"


class RankerSnapshot(models.Model):
    """A fitted feedback ranker of one clinic; the newest is used. Rebuilt nightly and on demand."""

    clinic = models.ForeignKey("clinic.Clinic", on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    events = models.PositiveIntegerField(help_text="Decisions it learned from.")
    patients = models.PositiveIntegerField(help_text="Reviewed patients it compares with.")
    params = models.JSONField(default=dict)
    data = models.BinaryField(help_text="The fitted ranker (numpy arrays, compressed).")

    class Meta:
        ordering = ["clinic", "-version"]
        constraints = [models.UniqueConstraint(fields=["clinic", "version"], name="ranker_version_unique")]

    def __str__(self) -> str:
        return f"Ranker v{self.version} of clinic {self.clinic_id} ({self.events} decisions)"
