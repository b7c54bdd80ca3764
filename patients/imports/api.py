"""POST /api/v1/imports/labs/: the CSV import for programs. Same service, same rules as the portal."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic import roles
from patients.clinical import CRITICAL_CHOICES
from patients.imports.csv_labs import FORMATS, MAX_BYTES, size_message
from patients.imports.services import labs_import


class CanEnterResults(BasePermission):
    message = "Your role cannot import results."

    def has_permission(self, request, view) -> bool:
        return roles.can_enter_results(request.user)


class LabImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A UTF-8 CSV file: long, wide or wearable layout; at most 10 MB.")
    format = serializers.ChoiceField(choices=FORMATS, default="auto")
    mrn = serializers.CharField(
        max_length=64, required=False, default="", allow_blank=True, help_text="The patient of a file without MRNs."
    )
    skip_bad_rows = serializers.BooleanField(default=False, help_text="Import the valid rows, leave out bad ones.")
    dry_run = serializers.BooleanField(default=False, help_text="Check the file and report; write nothing.")

    def validate_file(self, upload):
        if upload.size > MAX_BYTES:
            raise serializers.ValidationError(size_message(upload.size))
        return upload


class ProblemSerializer(serializers.Serializer):
    row = serializers.IntegerField(allow_null=True, help_text="Spreadsheet row (header = 1); null: the whole file.")
    column = serializers.CharField()
    value = serializers.CharField()
    reason = serializers.CharField()


class AnalyteCountSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    values = serializers.IntegerField()
    new = serializers.IntegerField()
    present = serializers.IntegerField()


class CriticalValueSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Spreadsheet row (header = 1).")
    mrn = serializers.CharField()
    patient_id = serializers.IntegerField()
    analyte = serializers.CharField(help_text="Analyte code.")
    value = serializers.FloatField(help_text="In the analyte's canonical unit.")
    unit = serializers.CharField(help_text="UCUM code of the canonical unit.")
    interpretation = serializers.ChoiceField(choices=CRITICAL_CHOICES)
    effective_at = serializers.DateTimeField()
    text = serializers.CharField(help_text='As a clinician reads it: "Potassium 7.0 mmol/L (critically high)".')


class LabImportResultSerializer(serializers.Serializer):
    filename = serializers.CharField()
    format = serializers.CharField(help_text="long, wide or wearable; empty when the file was unreadable.")
    dry_run = serializers.BooleanField()
    skip_bad_rows = serializers.BooleanField()
    refused = serializers.BooleanField(help_text="True: nothing was written.")
    error = serializers.CharField(help_text="Why the whole file was refused; empty otherwise.")
    rows = serializers.IntegerField()
    bad_rows = serializers.IntegerField()
    values = serializers.IntegerField()
    to_create = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    patients = serializers.IntegerField()
    unknown_columns = serializers.ListField(child=serializers.CharField())
    unknown_codes = serializers.ListField(child=serializers.CharField())
    problem_count = serializers.IntegerField()
    problems = ProblemSerializer(many=True, help_text="The first 1,000 problems, in row order.")
    analytes = AnalyteCountSerializer(many=True)
    critical_count = serializers.IntegerField(help_text="New values of the file in a critical range (LL or HH).")
    critical = CriticalValueSerializer(many=True, help_text="The first 1,000 of them, in file order.")


class LabImportFormErrorsSerializer(serializers.Serializer):
    """An invalid form: the problems of each field, or `detail` for a body that could not be read."""

    file = serializers.ListField(child=serializers.CharField(), required=False)
    format = serializers.ListField(child=serializers.CharField(), required=False)
    mrn = serializers.ListField(child=serializers.CharField(), required=False)
    skip_bad_rows = serializers.ListField(child=serializers.CharField(), required=False)
    dry_run = serializers.ListField(child=serializers.CharField(), required=False)
    detail = serializers.CharField(required=False)


class LabImportView(APIView):
    parser_classes = [MultiPartParser, FormParser]
    permission_classes = [IsAuthenticated, CanEnterResults]

    @extend_schema(
        operation_id="imports_labs_create",
        summary="Import lab results or wearable daily values from a CSV file",
        description="All rows or none: a file with any problem is refused (400) and nothing is written, unless "
        "skip_bad_rows is set. Importing the same file again adds nothing.",
        request={"multipart/form-data": LabImportRequestSerializer},
        responses={
            200: LabImportResultSerializer,
            400: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="LabImportRefusal",
                    serializers=[LabImportResultSerializer, LabImportFormErrorsSerializer],
                    resource_type_field_name=None,
                ),
                description="Refused: nothing was written. The report of the file, or for an invalid form (such "
                "as a missing or too large file) the problems of each field.",
            ),
            403: OpenApiResponse(description="The role cannot import results."),
        },
        tags=["imports"],
    )
    def post(self, request: Request) -> Response:
        form = LabImportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if request.user.clinic is None:
            raise PermissionDenied("Your account belongs to no clinic; use `manage.py import_labs --clinic`.")
        data = form.validated_data
        report = labs_import(
            by=request.user,
            clinic=request.user.clinic,
            data=data["file"].read(),
            filename=data["file"].name[:200],
            fmt=data["format"],
            mrn=data["mrn"],
            skip_bad_rows=data["skip_bad_rows"],
            dry_run=data["dry_run"],
        )
        answer = status.HTTP_400_BAD_REQUEST if report.refused else status.HTTP_200_OK
        return Response(report.summary(), status=answer)
