"""The shape of advice in the API. Clinicians see items with rationale and review state; a patient sees
only the approved items' titles and text."""

from __future__ import annotations

from rest_framework import serializers

from recommendations.models import OFFERED_OVERRIDE_REASONS, OverrideReason, Recommendation, RecommendationItem


class ItemSerializer(serializers.ModelSerializer):
    advice = serializers.SlugRelatedField(slug_field="code", read_only=True)
    title = serializers.CharField(source="advice.title", read_only=True)
    category = serializers.CharField(source="advice.category", read_only=True)
    reviewed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    # Declared, not generated: a generated read-only field loses `allow_blank`, and the schema the blank value.
    override_reason = serializers.ChoiceField(
        choices=OverrideReason.choices, allow_blank=True, read_only=True, help_text="Blank unless rejected."
    )

    class Meta:
        model = RecommendationItem
        fields = [
            "id", "card_id", "advice", "title", "category", "position", "is_headline", "severity", "pinned", "rule",
            "rationale", "citation", "condition", "probability", "base_score", "lift", "status", "patient_text",
            "note", "override_reason", "reviewed_by", "reviewed_at",
        ]  # fmt: skip
        read_only_fields = fields


class RecommendationSerializer(serializers.ModelSerializer):
    items = ItemSerializer(many=True, read_only=True)
    patient = serializers.PrimaryKeyRelatedField(read_only=True)
    prediction = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Recommendation
        fields = ["id", "patient", "prediction", "created_at", "headline", "severity", "pending", "rationale",
                  "rules_version", "ranker_version", "items"]  # fmt: skip
        read_only_fields = fields


class ApprovedAdviceSerializer(serializers.ModelSerializer):
    title = serializers.CharField(source="patient_heading", read_only=True, help_text="Plain-language heading.")
    text = serializers.CharField(source="patient_text", read_only=True)
    approved_at = serializers.DateTimeField(source="reviewed_at", read_only=True)

    class Meta:
        model = RecommendationItem
        fields = ["id", "title", "text", "approved_at"]
        read_only_fields = fields


class ReviewSerializer(serializers.Serializer):
    """A decision on one item. Only these fields are read; anything else in the body is refused (400)."""

    action = serializers.ChoiceField(choices=["approve", "reject", "edit", "annotate"])
    reason = serializers.ChoiceField(choices=OFFERED_OVERRIDE_REASONS, required=False, help_text="Required to reject.")
    comment = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    patient_text = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000)

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError({field: "Not a field of a review decision." for field in sorted(unknown)})
        if attrs["action"] == "reject" and not attrs.get("reason"):
            raise serializers.ValidationError({"reason": "A reason is required to reject advice."})
        return attrs
