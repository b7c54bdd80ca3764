"""The shapes of the API. Serializers parse and type the input; services check roles, validate the domain and write.

Mass assignment: fields a representation marks read-only (id, clinic, canonical value, interpretation, who
recorded it, timestamps) are ignored on write, so a body fetched with GET can be sent back; keys that are not
fields at all are refused with 400, so a typo or a field that does not exist never passes silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

from patients.catalog import catalog
from patients.models import Condition, Interpretation, Observation, Patient, Sex, VerificationStatus
from patients.selectors import AGE_BANDS, PATIENT_ORDERINGS
from patients.services import ObservationInput

MAX_RESULTS_PER_PANEL = 100


class RefuseUnknownFieldsMixin:
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class NumberField(serializers.FloatField):
    """A finite number. DRF's FloatField already refuses NaN and infinity; this also refuses true and false."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


# --- patients --------------------------------------------------------------------------------------------------


class PatientSerializer(RefuseUnknownFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = Patient
        fields = [
            "id", "clinic", "mrn", "given_name", "family_name", "birth_date", "sex", "email", "phone", "address",
            "smoking", "alcohol", "physical_activity", "diet",
            "family_history_diabetes", "family_history_cardiovascular", "family_history_anemia",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["clinic", "created_at", "updated_at"]
        # MRN uniqueness within the clinic is checked by the service (the clinic is the writer's, not an input).
        validators: list = []


class PatientCreateSerializer(PatientSerializer):
    register_anyway = serializers.BooleanField(
        required=False,
        default=False,
        write_only=True,
        help_text="Register even though the clinic has likely duplicates of this person (a 400 lists them).",
    )

    class Meta(PatientSerializer.Meta):
        fields = [*PatientSerializer.Meta.fields, "register_anyway"]


class LikelyDuplicateSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="patient.pk")
    mrn = serializers.CharField(source="patient.mrn")
    given_name = serializers.CharField(source="patient.given_name")
    family_name = serializers.CharField(source="patient.family_name")
    birth_date = serializers.DateField(source="patient.birth_date")
    reason = serializers.CharField()


class LikelyDuplicatesSerializer(serializers.Serializer):
    non_field_errors = serializers.ListField(child=serializers.CharField())
    likely_duplicates = LikelyDuplicateSerializer(many=True)


class PatientQuerySerializer(serializers.Serializer):
    """Query parameters of the patient list; the same filters as the registry page."""

    q = serializers.CharField(required=False, default="", max_length=100, help_text="Name words or exact MRN.")
    sex = serializers.ChoiceField(choices=Sex.choices, required=False, default="")
    age_band = serializers.ChoiceField(choices=list(AGE_BANDS), required=False, default="")
    abnormal = serializers.BooleanField(
        required=False, default=False, help_text="Only patients whose latest value of some analyte is flagged."
    )
    critical = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Only patients whose latest value of some analyte is in a critical range (LL or HH).",
    )
    condition = serializers.CharField(
        required=False, default="", max_length=8, help_text="ICD-10 prefix of a confirmed or provisional diagnosis."
    )
    ordering = serializers.ChoiceField(choices=list(PATIENT_ORDERINGS), required=False, default="name")

    def search_arguments(self) -> dict[str, Any]:
        """Keyword arguments for `selectors.patient_search`."""
        data = dict(self.validated_data)
        data["query"] = data.pop("q")
        return data


# --- observations ----------------------------------------------------------------------------------------------


class ObservationSerializer(serializers.ModelSerializer):
    analyte = serializers.CharField(source="analyte.code", read_only=True)
    analyte_name = serializers.CharField(source="analyte.name", read_only=True)
    value = serializers.FloatField(read_only=True, help_text="In the analyte's canonical unit.")
    unit = serializers.CharField(source="analyte.unit", read_only=True, help_text="The canonical UCUM unit.")
    # Declared, not generated: a generated read-only field loses `allow_blank`, and the schema the blank value.
    interpretation = serializers.ChoiceField(
        choices=Interpretation.choices, allow_blank=True, read_only=True, help_text="Blank: no adult range applies."
    )

    class Meta:
        model = Observation
        fields = [
            "id", "analyte", "analyte_name", "value", "unit", "entered_value", "entered_unit", "effective_at",
            "interpretation", "source", "entered_by", "created_at", "acknowledged_at", "acknowledged_by",
            "acknowledgement_note",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {
            "acknowledged_at": {
                "help_text": "A critical value (LL/HH): when a doctor acknowledged it; null until then."
            },
            "acknowledged_by": {"help_text": "The doctor who acknowledged it."},
        }


class ObservationResultSerializer(RefuseUnknownFieldsMixin, serializers.Serializer):
    analyte = serializers.CharField(max_length=100, help_text="Analyte code, LOINC code or name.")
    value = NumberField()
    unit = serializers.CharField(max_length=16, help_text="UCUM unit as measured, e.g. mg/dL or mmol/L.")


class ObservationCreateSerializer(RefuseUnknownFieldsMixin, serializers.Serializer):
    """One result (`analyte`, `value`, `unit`) or a panel (`results`), taken at `effective_at`."""

    effective_at = serializers.DateTimeField(
        help_text="When the sample was taken; without an offset the server time zone (UTC by default) applies."
    )
    analyte = serializers.CharField(required=False, max_length=100, help_text="One result: code, LOINC or name.")
    value = NumberField(required=False, help_text="One result: the value in `unit`.")
    unit = serializers.CharField(required=False, max_length=16, help_text="One result: the UCUM unit of `value`.")
    results = ObservationResultSerializer(
        many=True, required=False, min_length=1, max_length=MAX_RESULTS_PER_PANEL, help_text="A panel of results."
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        single = {"analyte", "value", "unit"}
        given = single & set(data)
        if "results" in data and given:
            raise serializers.ValidationError("Send one result (analyte, value, unit) or a panel (results), not both.")
        if "results" not in data and given != single:
            raise serializers.ValidationError({name: ["This field is required."] for name in sorted(single - given)})
        # Two values of one analyte at one time: the service would hit the table's unique constraint (a 500).
        codes = [spec.code for result in data.get("results", []) if (spec := catalog().get(result["analyte"]))]
        repeated = sorted({code for code in codes if codes.count(code) > 1})
        if repeated:
            raise serializers.ValidationError({"results": [f"{', '.join(repeated)} appears more than once."]})
        return data

    def entries(self) -> list[ObservationInput]:
        results = self.validated_data.get("results") or [self.validated_data]
        return [ObservationInput(r["analyte"], r["value"], r["unit"]) for r in results]


class ObservationRecordedSerializer(serializers.Serializer):
    created = ObservationSerializer(many=True)
    skipped_duplicates = serializers.IntegerField(help_text="Results already recorded with the same time and value.")


# --- conditions ------------------------------------------------------------------------------------------------


class ConditionSerializer(RefuseUnknownFieldsMixin, serializers.ModelSerializer):
    # No model validator here: the service checks the ICD-10 code (and upper-cases it on create, so e11.9 is E11.9).
    code = serializers.CharField(max_length=8, help_text="ICD-10 code, e.g. E11.9.")
    recorded_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    # Declared, not generated: a generated read-only field loses `allow_blank`, and the schema the blank value.
    source_verification_status = serializers.ChoiceField(
        choices=VerificationStatus.choices, allow_blank=True, read_only=True,
        help_text="What the imported file said (its verificationStatus); blank for a diagnosis recorded here.",
    )  # fmt: skip
    verified_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True,
        help_text="Who set the verification status here; null while it is what an import wrote (unconfirmed).",
    )  # fmt: skip

    class Meta:
        model = Condition
        fields = [
            "id", "patient", "code", "display", "onset_date", "clinical_status", "verification_status", "note",
            "source", "source_verification_status", "verified_by", "recorded_by", "recorded_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["patient", "source", "recorded_at", "updated_at"]


# --- analyte catalog -------------------------------------------------------------------------------------------


class UnitConversionSerializer(serializers.Serializer):
    unit = serializers.CharField()
    factor = serializers.FloatField(help_text="canonical = value * factor + offset")
    offset = serializers.FloatField()


class ReferenceRangeSerializer(serializers.Serializer):
    sex = serializers.CharField(help_text="Blank: any sex.")
    age_min = serializers.IntegerField()
    age_max = serializers.IntegerField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class AnalyteSerializer(serializers.Serializer):
    """An entry of the analyte catalog (`patients.catalog.catalog()`), read-only."""

    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    panel = serializers.CharField()
    loinc = serializers.ListField(child=serializers.CharField(), help_text="The first is preferred (used for export).")
    unit = serializers.CharField(help_text="Canonical UCUM unit; values are stored and returned in it.")
    conversions = UnitConversionSerializer(many=True, help_text="Other units accepted on entry.")
    plausible_low = serializers.FloatField(help_text="Values below are impossible and refused.")
    plausible_high = serializers.FloatField(help_text="Values above are impossible and refused.")
    reference_ranges = ReferenceRangeSerializer(source="ranges", many=True, help_text="Adult reference ranges.")
    critical_low = serializers.FloatField(allow_null=True)
    critical_high = serializers.FloatField(allow_null=True)
    decimals = serializers.IntegerField(help_text="Display precision.")
    citation = serializers.CharField(source="source", help_text="Source of the reference and critical limits.")
    aliases = serializers.ListField(child=serializers.CharField())
