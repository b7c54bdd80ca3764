"""FHIR endpoints: import a Bundle or NDJSON file, export one patient as a Bundle. Thin: parse, call, answer."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patients.clinical import CRITICAL_CHOICES
from patients.fhir.reader import MAX_BYTES, Format, guess_format
from patients.fhir.services import fhir_export, fhir_import
from patients.selectors import patient_get_for

TRUE = {"1", "true", "yes", "on"}


class _RawBodyParser(BaseParser):
    """The body as bytes, read up to one byte past the limit (the reader refuses larger files).

    Read from the stream rather than `request.body`, whose 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE is meant for
    form fields; a FHIR bundle from a generator is larger, and the FHIR limit is MAX_BYTES.
    """

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read(MAX_BYTES + 1) if stream is not None else b""


class FhirJsonParser(_RawBodyParser):
    media_type = "application/fhir+json"


class JsonBodyParser(_RawBodyParser):
    media_type = "application/json"


class NdjsonParser(_RawBodyParser):
    media_type = "application/x-ndjson"


class FhirNdjsonParser(_RawBodyParser):
    media_type = "application/fhir+ndjson"


class FhirJsonRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


_coded = inline_serializer(
    "FhirCodeCount",
    {
        "system": serializers.CharField(),
        "code": serializers.CharField(),
        "display": serializers.CharField(),
        "count": serializers.IntegerField(),
    },
)
ImportSummarySerializer = inline_serializer(
    "FhirImportSummary",
    {
        "file": serializers.CharField(),
        "format": serializers.CharField(help_text="Bundle (transaction), Bundle (collection), ..., or NDJSON."),
        "resources": serializers.IntegerField(),
        "patients": inline_serializer(
            "FhirImportPatients",
            {
                "created": serializers.ListField(child=serializers.CharField(help_text="MRN")),
                "matched": serializers.ListField(child=serializers.CharField(help_text="MRN")),
            },
        ),
        "observations": inline_serializer(
            "FhirImportObservations",
            {
                "created": serializers.IntegerField(),
                "duplicates": serializers.IntegerField(),
                "by_analyte": serializers.DictField(child=serializers.IntegerField()),
                "critical_count": serializers.IntegerField(help_text="New values in a critical range (LL or HH)."),
                "critical": inline_serializer(
                    "FhirImportCriticalValue",
                    {
                        "mrn": serializers.CharField(),
                        "analyte": serializers.CharField(help_text="Analyte code."),
                        "value": serializers.FloatField(help_text="In the analyte's canonical unit."),
                        "unit": serializers.CharField(help_text="UCUM code of the canonical unit."),
                        "interpretation": serializers.ChoiceField(choices=CRITICAL_CHOICES),
                        "effective_at": serializers.DateTimeField(),
                        "text": serializers.CharField(help_text='"Potassium 7.0 mmol/L (critically high)"'),
                    },
                    many=True,
                ),
            },
        ),
        "conditions": inline_serializer(
            "FhirImportConditions",
            {
                "created": serializers.IntegerField(),
                "restatements": serializers.IntegerField(
                    help_text="Encounters restating a diagnosis already stored (counted on it, not stored again)."
                ),
                "duplicates": serializers.IntegerField(),
                "mapped_from_snomed": serializers.IntegerField(),
                "downgraded_to_provisional": serializers.IntegerField(
                    help_text="Conditions the file calls confirmed, stored unconfirmed until a doctor confirms them."
                ),
            },
        ),
        "laboratory": inline_serializer(
            "FhirImportLaboratory",
            {
                "numeric_results": serializers.IntegerField(
                    help_text="Numeric laboratory results in the file (questionnaire scores aside)."
                ),
                "recognised": serializers.IntegerField(help_text="Of which the analyte catalog knows the code."),
                "recognised_share": serializers.FloatField(allow_null=True),
            },
        ),
        "skipped_resource_types": serializers.DictField(child=serializers.IntegerField()),
        "skipped": serializers.DictField(child=serializers.IntegerField(), help_text="Reason -> count."),
        "unknown_codes": _coded,
        "unmapped_conditions": _coded,
        "unreadable_skipped": serializers.IntegerField(help_text="Resources that could not be read, skipped."),
        "unreadable": serializers.ListField(child=serializers.CharField(), help_text="Each with its id and reason."),
        "warnings": serializers.ListField(
            child=serializers.CharField(), help_text="Contact details that failed validation and were not stored."
        ),
        "problems_skipped": serializers.IntegerField(),
        "problems": serializers.ListField(child=serializers.CharField()),
    },
)
UploadSerializer = inline_serializer(
    "FhirUpload",
    {
        "file": serializers.FileField(),
        "skip_bad": serializers.BooleanField(required=False),
        "strict": serializers.BooleanField(required=False),
    },
)
FLAGS = ("skip_bad", "strict")


@dataclass(frozen=True)
class _Upload:
    data: bytes
    name: str
    fmt: Format | None
    flags: dict[str, bool]


def _upload(request: Request) -> _Upload:
    flags = {flag: request.query_params.get(flag, "").lower() in TRUE for flag in FLAGS}
    if not request.content_type.startswith("multipart/"):
        # Without a body DRF skips the parser and gives an empty dict; the reader then refuses an empty file.
        data = request.data if isinstance(request.data, bytes) else b""
        return _Upload(data, "", guess_format(content_type=request.content_type), flags)
    upload = request.FILES.get("file")
    if upload is None:
        raise ValidationError({"file": "Attach a FHIR Bundle or NDJSON file."})
    # the form fields; a file of that name is not a flag
    flags |= {flag: request.POST[flag].lower() in TRUE for flag in FLAGS if flag in request.POST}
    fmt = guess_format(upload.name, upload.content_type or "")
    return _Upload(upload.read(MAX_BYTES + 1), upload.name, fmt, flags)


class FhirImportView(APIView):
    parser_classes = [FhirJsonParser, JsonBodyParser, NdjsonParser, FhirNdjsonParser, MultiPartParser]

    @extend_schema(
        operation_id="fhir_import",
        summary="Import a FHIR R4 Bundle or NDJSON file",
        description=(
            "A Bundle (transaction, batch, collection or searchset) or NDJSON of Patient, Observation (LOINC, "
            "valueQuantity in UCUM) and Condition (ICD-10) resources, as the body or as a multipart `file`. "
            "A resource with clinically wrong content (an implausible value, a unit the analyte is not measured in, a "
            "result dated in the future) refuses the file (400, every problem listed) unless `skip_bad` is true. A "
            "resource that cannot be read (not valid FHIR, no identifier, no time) is skipped and listed with its id "
            "and reason, unless `strict` is true, which refuses the file instead. Other resource types and unknown "
            "codes are counted in the summary, with the share of numeric laboratory results recognised."
        ),
        parameters=[
            OpenApiParameter("skip_bad", bool, description="Skip resources with clinically wrong content too."),
            OpenApiParameter("strict", bool, description="Refuse the file if any resource cannot be read."),
        ],
        request={
            "application/fhir+json": OpenApiTypes.OBJECT,
            "application/json": OpenApiTypes.OBJECT,
            "application/x-ndjson": OpenApiTypes.STR,
            "application/fhir+ndjson": OpenApiTypes.STR,
            "multipart/form-data": UploadSerializer,
        },
        responses={
            200: ImportSummarySerializer,
            400: OpenApiResponse(description="Malformed file, or resources that cannot be stored; nothing written."),
            403: OpenApiResponse(description="The role cannot enter results."),
        },
        tags=["fhir"],
    )
    def post(self, request: Request) -> Response:
        upload = _upload(request)
        summary = fhir_import(by=request.user, data=upload.data, name=upload.name, fmt=upload.fmt, **upload.flags)
        return Response(summary)


class FhirPatientExportView(APIView):
    renderer_classes = [FhirJsonRenderer, JSONRenderer]

    @extend_schema(
        operation_id="fhir_patient_export",
        summary="Export a patient as a FHIR R4 Bundle",
        description="Patient, Observations (LOINC, canonical UCUM units) and Conditions (ICD-10), as a download.",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="No such patient in your scope.")},
        tags=["fhir"],
    )
    def get(self, request: Request, pk: int) -> Response:
        patient = patient_get_for(user=request.user, pk=pk)
        bundle = fhir_export(by=request.user, patient=patient)
        filename = f"patient-{patient.pk}-fhir.json"
        return Response(bundle, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
