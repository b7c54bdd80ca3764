"""REST endpoints for patients, their observations and conditions, and the analyte catalog.

Thin: parse, call a selector (reads: scoped to the user, audited) or a service (writes: role checks, domain
validation, audit), serialize. Outside the user's scope answers 404; a role that may not write answers 403.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from clinic import roles
from patients import selectors, services
from patients.api.filters import ConditionFilter, ObservationFilter
from patients.api.serializers import (
    AnalyteSerializer,
    ConditionSerializer,
    LikelyDuplicatesSerializer,
    ObservationCreateSerializer,
    ObservationRecordedSerializer,
    ObservationSerializer,
    PatientCreateSerializer,
    PatientQuerySerializer,
    PatientSerializer,
)
from patients.catalog import catalog
from patients.models import Condition, Observation, ObservationSource

BAD_INPUT = OpenApiResponse(description="Invalid input; every problem is listed and nothing is written.")
FORBIDDEN = OpenApiResponse(description="Your role cannot make this change.")
NOT_FOUND = OpenApiResponse(description="No such patient (or record) in your scope.")
NO_SUCH_PAGE = OpenApiResponse(description="No such page.")
CONDITION_PEOPLE = ("recorded_by", "verified_by")  # the users ConditionSerializer names, joined in its query


class ReadOrEnterResults(BasePermission):
    """Any signed-in user may read (selectors scope what they see); only roles that enter results may write.

    The services check the same rule again; this answers 403 before the body is even parsed.
    """

    message = "Your role can read records but not change them."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user.is_authenticated:
            return False
        return request.method in SAFE_METHODS or roles.can_enter_results(request.user)


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


class ApiView(GenericAPIView):
    permission_classes = [ReadOrEnterResults]
    pagination_class = Pagination
    filter_backends: list = []

    def page_count(self) -> int:
        """Rows matching the request, after `paginate_queryset`."""
        return self.paginator.page.paginator.count

    def query_used(self) -> dict[str, list[str]]:
        """The query parameters as given, for the audit row (written only after the filters accepted them)."""
        return dict(self.request.query_params.lists())


# --- patients --------------------------------------------------------------------------------------------------


@extend_schema(tags=["patients"])
class PatientListView(ApiView):
    serializer_class = PatientSerializer

    @extend_schema(
        summary="List patients",
        description="Your clinic's patients (a patient account: only its own record). One audit row per call.",
        parameters=[PatientQuerySerializer],
        responses={200: PatientSerializer(many=True), 400: BAD_INPUT, 404: NO_SUCH_PAGE},
    )
    def get(self, request: Request) -> Response:
        query = PatientQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        arguments = query.search_arguments()
        page = self.paginate_queryset(selectors.patient_search(user=request.user, **arguments))
        selectors.patient_list_read(
            user=request.user, filters={**arguments, "page": self.paginator.page.number}, count=self.page_count()
        )
        return self.get_paginated_response(PatientSerializer(page, many=True).data)

    @extend_schema(
        summary="Register a patient",
        description="The patient joins your clinic; `clinic` and the other read-only fields are ignored. When the "
        "clinic already has patients who may be this person (born the same day with a similar name, or an MRN "
        "that differs only in case, leading zeros or spaces), nothing is saved and the 400 lists them under "
        "`likely_duplicates`; send the same body with `register_anyway: true` to register the patient all the "
        "same (audited).",
        request=PatientCreateSerializer,
        responses={201: PatientSerializer, 400: BAD_INPUT, 403: FORBIDDEN},
    )
    def post(self, request: Request) -> Response:
        serializer = PatientCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            patient = services.patient_create(by=request.user, **serializer.validated_data)
        except services.LikelyDuplicates as found:
            selectors.patient_likely_duplicates_read(user=request.user, duplicates=found.duplicates)
            hint = 'Send the same body with "register_anyway": true to register this patient all the same.'
            body = {"non_field_errors": [*found.messages, hint], "likely_duplicates": found.duplicates}
            return Response(LikelyDuplicatesSerializer(body).data, status=status.HTTP_400_BAD_REQUEST)
        return Response(PatientSerializer(patient).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["patients"])
class PatientDetailView(ApiView):
    serializer_class = PatientSerializer

    @extend_schema(summary="Read a patient", responses={200: PatientSerializer, 404: NOT_FOUND})
    def get(self, request: Request, pk: int) -> Response:
        return Response(PatientSerializer(selectors.patient_read(user=request.user, pk=pk)).data)

    @extend_schema(
        summary="Change a patient",
        responses={200: PatientSerializer, 400: BAD_INPUT, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def patch(self, request: Request, pk: int) -> Response:
        patient = selectors.patient_get_for_change(user=request.user, pk=pk)
        serializer = PatientSerializer(patient, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        patient = services.patient_update(patient=patient, by=request.user, **serializer.validated_data)
        return Response(PatientSerializer(patient).data)


# --- observations ----------------------------------------------------------------------------------------------

_SINGLE = {"analyte": "glucose", "value": 99, "unit": "mg/dL", "effective_at": "2026-03-01T08:30:00Z"}
_PANEL = {
    "effective_at": "2026-03-01T08:30:00Z",
    "results": [
        {"analyte": "hemoglobin", "value": 13.2, "unit": "g/dL"},
        {"analyte": "2093-3", "value": 5.4, "unit": "mmol/L"},
    ],
}


@extend_schema(tags=["observations"])
class ObservationListView(ApiView):
    # The rows come from selectors; this only tells django-filter and the schema which model is listed.
    queryset = Observation.objects.none()
    serializer_class = ObservationSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ObservationFilter

    @extend_schema(
        summary="List a patient's results",
        description="Newest first unless `ordering` says otherwise. Values are in the canonical unit. "
        "One audit row per call.",
        responses={200: ObservationSerializer(many=True), 400: BAD_INPUT, 404: NOT_FOUND},
    )
    def get(self, request: Request, patient_pk: int) -> Response:
        patient = selectors.patient_get_for(user=request.user, pk=patient_pk)
        page = self.paginate_queryset(
            self.filter_queryset(selectors.observation_list_for(user=request.user, patient=patient))
        )
        selectors.observation_list_read(
            user=request.user, patient=patient, filters=self.query_used(), count=self.page_count()
        )
        return self.get_paginated_response(ObservationSerializer(page, many=True).data)

    @extend_schema(
        summary="Record results",
        description="One result, or a panel of results taken at one time. The analyte is given by code, LOINC "
        "code or name; the value in any unit the catalog accepts for it (converted to the canonical unit and "
        "flagged against the patient's reference range). All or nothing: an impossible value, a unit the "
        "analyte does not accept or an unknown analyte refuses the whole request. Results already recorded "
        "(same analyte, time and value) are skipped: 201 when something was written, 200 when nothing new.",
        request=ObservationCreateSerializer,
        responses={
            201: ObservationRecordedSerializer,
            200: ObservationRecordedSerializer,
            400: BAD_INPUT,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
        examples=[
            OpenApiExample("One result", value=_SINGLE, request_only=True),
            OpenApiExample("A panel", value=_PANEL, request_only=True),
        ],
    )
    def post(self, request: Request, patient_pk: int) -> Response:
        patient = selectors.patient_get_for_change(user=request.user, pk=patient_pk)
        payload = ObservationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        entries = payload.entries()
        created = services.observations_record(
            patient=patient,
            by=request.user,
            entries=entries,
            effective_at=payload.validated_data["effective_at"],
            source=ObservationSource.API,
        )
        # Read back with the analyte joined: one query instead of one per result.
        rows = selectors.observation_list_for(user=request.user, patient=patient).filter(pk__in=[o.pk for o in created])
        body = ObservationRecordedSerializer({"created": rows, "skipped_duplicates": len(entries) - len(created)})
        return Response(body.data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# --- conditions ------------------------------------------------------------------------------------------------


@extend_schema(tags=["conditions"])
class ConditionListView(ApiView):
    queryset = Condition.objects.none()
    serializer_class = ConditionSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ConditionFilter

    @extend_schema(
        summary="List a patient's conditions",
        description="One audit row per call.",
        responses={200: ConditionSerializer(many=True), 400: BAD_INPUT, 404: NOT_FOUND},
    )
    def get(self, request: Request, patient_pk: int) -> Response:
        patient = selectors.patient_get_for(user=request.user, pk=patient_pk)
        page = self.paginate_queryset(
            self.filter_queryset(
                selectors.condition_list_for(user=request.user, patient=patient).select_related(*CONDITION_PEOPLE)
            )
        )
        selectors.condition_list_read(
            user=request.user, patient=patient, filters=self.query_used(), count=self.page_count()
        )
        return self.get_paginated_response(ConditionSerializer(page, many=True).data)

    @extend_schema(
        summary="Record a condition",
        description="Only a doctor may record a condition as confirmed.",
        responses={201: ConditionSerializer, 400: BAD_INPUT, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request: Request, patient_pk: int) -> Response:
        patient = selectors.patient_get_for_change(user=request.user, pk=patient_pk)
        serializer = ConditionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        condition = services.condition_record(patient=patient, by=request.user, **serializer.validated_data)
        return Response(ConditionSerializer(condition).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["conditions"])
class ConditionDetailView(ApiView):
    serializer_class = ConditionSerializer

    @extend_schema(
        summary="Change a condition",
        description="Only a doctor may confirm a diagnosis.",
        responses={200: ConditionSerializer, 400: BAD_INPUT, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def patch(self, request: Request, patient_pk: int, pk: int) -> Response:
        patient = selectors.patient_get_for_change(user=request.user, pk=patient_pk)
        condition = get_object_or_404(
            selectors.condition_list_for(user=request.user, patient=patient).select_related(*CONDITION_PEOPLE), pk=pk
        )
        serializer = ConditionSerializer(condition, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        condition = services.condition_update(condition=condition, by=request.user, **serializer.validated_data)
        return Response(ConditionSerializer(condition).data)


# --- analyte catalog -------------------------------------------------------------------------------------------


@extend_schema(tags=["analytes"])
class AnalyteListView(ApiView):
    serializer_class = AnalyteSerializer

    @extend_schema(
        summary="List the analyte catalog",
        description="LOINC codes, canonical and accepted units, reference ranges, critical limits and citations.",
        responses={200: AnalyteSerializer(many=True), 404: NO_SUCH_PAGE},
    )
    def get(self, request: Request) -> Response:
        page = self.paginate_queryset(catalog().specs())
        return self.get_paginated_response(AnalyteSerializer(page, many=True).data)


@extend_schema(tags=["analytes"])
class AnalyteDetailView(ApiView):
    serializer_class = AnalyteSerializer

    @extend_schema(
        summary="Read one analyte",
        description="By catalog code (e.g. `hemoglobin`) or LOINC code (e.g. `718-7`).",
        responses={200: AnalyteSerializer, 404: OpenApiResponse(description="No such analyte.")},
    )
    def get(self, request: Request, code: str) -> Response:
        spec = catalog().by_code.get(code) or catalog().by_loinc.get(code)
        if spec is None:
            raise NotFound("No analyte with this code.")
        return Response(AnalyteSerializer(spec).data)
