"""/api/v1/imports/jobs/: queue a bulk import (202 and the job's URL at once), then poll the job.

The synchronous endpoints stay for small files (`/api/v1/fhir/import/` up to 50 MB, `/api/v1/imports/labs/` up
to 10 MB, answered when written); anything larger, several files, or a Bulk Data export goes through a job.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from patients.imports import jobs, selectors
from patients.imports.api import CanEnterResults
from patients.imports.csv_labs import FORMATS
from patients.models import ImportJob, ImportJobKind

MAX_LISTED = 50


class ImportJobRequestSerializer(serializers.Serializer):
    files = serializers.ListField(
        child=serializers.FileField(), allow_empty=False,
        help_text="One or more files, each a `files` part: FHIR Bundles, Bulk Data NDJSON (all files of one export "
        "together) or lab CSV files.",
    )  # fmt: skip
    kind = serializers.ChoiceField(
        choices=["auto", *ImportJobKind.values], default="auto",
        help_text="auto: CSV when every file ends in .csv or .txt, else FHIR.",
    )  # fmt: skip
    skip_bad = serializers.BooleanField(default=False, help_text="FHIR: skip resources with clinically wrong content "
                                        "(listed) instead of refusing their file.")  # fmt: skip
    strict = serializers.BooleanField(default=False, help_text="FHIR: refuse a file with a resource that cannot be "
                                      "read, instead of skipping and listing it.")  # fmt: skip
    skip_bad_rows = serializers.BooleanField(default=False, help_text="CSV: import the valid rows of a file.")
    format = serializers.ChoiceField(choices=FORMATS, default="auto", help_text="CSV layout.")
    mrn = serializers.CharField(max_length=64, required=False, default="", allow_blank=True,
                                help_text="CSV: the patient of files without MRNs.")  # fmt: skip


_progress = inline_serializer(
    "ImportJobProgress",
    {
        "files_done": serializers.IntegerField(),
        "files_total": serializers.IntegerField(),
        "resources_done": serializers.IntegerField(help_text="FHIR resources or CSV rows read so far."),
        "step": serializers.CharField(help_text='What the worker is doing: "Observation.ndjson: 4,000 of 9,120".'),
        "progress": serializers.FloatField(help_text="0 to 1."),
    },
)


class ImportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField(help_text="Poll this until `finished`.")
    kind = serializers.ChoiceField(choices=ImportJobKind.choices)
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed"])
    finished = serializers.BooleanField()
    progress = _progress
    error = serializers.CharField(help_text="Why the job, or some of its files, failed; empty otherwise.")
    files = serializers.ListField(
        child=inline_serializer("ImportJobFile", {"name": serializers.CharField(), "size": serializers.IntegerField()})
    )
    summary = serializers.DictField(
        allow_null=True,
        help_text="Once finished: the summary of the synchronous import of the same kind (fhir_import's, or the "
        "lab CSV import's), merged over the files, with `files`: each file's outcome. Null before.",
    )
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def _job_data(request: Request, job: ImportJob, *, summary: dict | None) -> dict:
    progress = selectors.import_job_progress(job=job)
    return {
        "id": job.pk,
        "url": request.build_absolute_uri(reverse("imports-api:job-detail", args=[job.pk])),
        "kind": job.kind,
        "status": job.status,
        "finished": job.finished,
        "progress": {key: progress[key] for key in ("files_done", "files_total", "resources_done", "step", "progress")},
        "error": job.error,
        "files": [{"name": entry["name"], "size": entry["size"]} for entry in job.files],
        "summary": summary,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


class ImportJobListView(APIView):
    parser_classes = [MultiPartParser]
    permission_classes = [IsAuthenticated, CanEnterResults]

    @extend_schema(
        operation_id="imports_jobs_create",
        summary="Queue a bulk import (FHIR Bundles, Bulk Data NDJSON or lab CSV files)",
        description="Stores the files and answers 202 at once with the job and its URL (also in Location); a worker "
        "imports them. Poll the job for progress and, once finished, the summary. Each file is imported as the "
        "synchronous endpoints do (a refused file writes nothing; importing again adds nothing); a job with a "
        "refused file ends failed, with the other files imported and listed. At most DATA_UPLOAD_MAX_NUMBER_FILES "
        "(100 by default) files in one request.",
        request={"multipart/form-data": ImportJobRequestSerializer},
        responses={
            202: ImportJobSerializer,
            400: OpenApiResponse(description="No file, CSV and FHIR files together, or an invalid option."),
            403: OpenApiResponse(description="The role cannot import results."),
        },
        tags=["imports"],
    )
    def post(self, request: Request) -> Response:
        form = ImportJobRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if request.user.clinic is None:
            raise PermissionDenied("Your account belongs to no clinic; use `manage.py import_fhir --background`.")
        data = form.validated_data
        kind = data["kind"] if data["kind"] != "auto" else jobs.import_job_kind([f.name for f in data["files"]])
        options = {key: data[key] for key in ("skip_bad", "strict", "skip_bad_rows", "format", "mrn")}
        job = jobs.import_job_create(
            by=request.user, clinic=request.user.clinic, kind=kind,
            files=[(file.name, file.chunks()) for file in data["files"]], options=options,
        )  # fmt: skip
        body = _job_data(request, job, summary=None)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})

    @extend_schema(
        operation_id="imports_jobs_list",
        summary="The clinic's latest import jobs",
        description=f"The latest {MAX_LISTED}, newest first, without their summaries (GET a job for its summary).",
        responses={200: ImportJobSerializer(many=True), 403: OpenApiResponse(description="The role cannot import.")},
        tags=["imports"],
    )
    def get(self, request: Request) -> Response:
        latest = selectors.import_jobs_for(user=request.user)[:MAX_LISTED]
        return Response([_job_data(request, job, summary=None) for job in latest])


class ImportJobDetailView(APIView):
    permission_classes = [IsAuthenticated, CanEnterResults]

    @extend_schema(
        operation_id="imports_jobs_retrieve",
        summary="An import job: status, progress and, once finished, its summary",
        responses={
            200: ImportJobSerializer,
            403: OpenApiResponse(description="The role cannot import."),
            404: OpenApiResponse(description="No such job in your clinic."),
        },
        tags=["imports"],
    )
    def get(self, request: Request, pk: int) -> Response:
        job = selectors.import_job_get_for(user=request.user, pk=pk)
        summary = selectors.import_job_summary_read(user=request.user, job=job) if job.finished else None
        return Response(_job_data(request, job, summary=summary))
