"""The shape of a prediction in the API: everything a client needs to show it, explain it and audit it."""

from __future__ import annotations

from rest_framework import serializers

from predictions import selectors
from predictions.models import Prediction, PredictionStatus, RiskLevel


class ModelVersionReferenceSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    version = serializers.IntegerField(read_only=True, help_text="1, 2, 3... per clinic.")
    training_data = serializers.CharField(
        read_only=True,
        help_text="What the version was trained on, in one line: synthetic demo data, or the clinic's records with "
        "how many diagnoses a doctor (or a trusted import source) confirmed.",
    )


class ContributionSerializer(serializers.Serializer):
    feature = serializers.CharField(help_text="Feature name of the model.")
    label = serializers.CharField(help_text="The feature in words.")
    analyte = serializers.CharField(allow_null=True, help_text="Analyte code when the feature is a measurement.")
    value = serializers.JSONField(help_text="The value the model was given: a number, a category or null.")
    unit = serializers.CharField(allow_blank=True, help_text="UCUM unit of a numeric value.")
    contribution = serializers.FloatField(
        help_text="Push on the predicted class's raw score (before calibration): positive towards it."
    )
    direction = serializers.ChoiceField(choices=["towards", "away from"])
    reference = serializers.CharField(
        allow_blank=True, help_text="`below range`, `within range` or `above range` for the patient; empty if none."
    )


class PredictionSerializer(serializers.ModelSerializer):
    predicted_class_display = serializers.SerializerMethodField()
    probabilities = serializers.DictField(
        child=serializers.FloatField(), read_only=True, help_text="Class -> calibrated probability."
    )
    # Declared, not generated: a generated read-only field loses `allow_blank`, and the schema the blank value.
    risk_level = serializers.ChoiceField(
        choices=RiskLevel.choices, allow_blank=True, read_only=True, help_text="Blank when scoring failed."
    )
    risk_thresholds = serializers.ListField(
        child=serializers.FloatField(),
        read_only=True,
        help_text="Cut-points of the model version: moderate from the first, high from the second.",
    )
    model_version = ModelVersionReferenceSerializer(
        read_only=True, allow_null=True, help_text="Null when the clinic had no active model (status failed)."
    )
    contributions = ContributionSerializer(many=True, read_only=True, help_text="Top features, largest first.")
    inputs = serializers.DictField(
        child=serializers.JSONField(), read_only=True, help_text="Feature values the model was given."
    )
    source = serializers.SerializerMethodField()
    decision_support = serializers.SerializerMethodField()

    class Meta:
        model = Prediction
        fields = [
            "id", "patient", "created_at", "status", "error", "predicted_class", "predicted_class_display",
            "probabilities", "risk_score", "risk_level", "risk_thresholds", "model_version", "batch", "source",
            "contributions", "explanation_method", "inputs", "decision_support",
        ]  # fmt: skip
        read_only_fields = fields

    def get_predicted_class_display(self, prediction: Prediction) -> str:
        return selectors.class_display(prediction.predicted_class) if prediction.predicted_class else ""

    def get_source(self, prediction: Prediction) -> str:
        """`batch` when a batch over the clinic scored it, `online` when it was scored alone."""
        return "batch" if prediction.batch_id else "online"

    def get_decision_support(self, prediction: Prediction) -> str:
        return selectors.DECISION_SUPPORT


class PredictionQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=PredictionStatus.choices, required=False, default="", help_text="Only predictions with this status."
    )
