"""REST endpoints for a patient's predictions: the latest, the history, and a new one on request.

Thin: the patient is looked up through `patients.selectors.patient_get_for` (outside your scope: 404), reads
go through `predictions.selectors` and are audited once per call, a new prediction is one service call.
Predictions are decision support for clinicians: a patient's account gets 403, on its own record too.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from clinic import roles
from patients.selectors import patient_get_for
from predictions import selectors, services
from predictions.api.serializers import PredictionQuerySerializer, PredictionSerializer
from predictions.models import Prediction

FORBIDDEN = OpenApiResponse(description="Your role cannot see or request predictions (a patient's account).")
NOT_FOUND = OpenApiResponse(description="No such patient in your scope.")
BAD_INPUT = OpenApiResponse(description="Invalid query parameter.")


class CanViewPredictions(BasePermission):
    message = "Your role cannot see or request predictions: they are decision support for clinicians."

    def has_permission(self, request: Request, view: Any) -> bool:
        return roles.can_view_patients(request.user)


class Pagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class PredictionApiView(GenericAPIView):
    # The rows come from selectors; this only tells the schema which model is listed.
    queryset = Prediction.objects.none()
    serializer_class = PredictionSerializer
    permission_classes = [CanViewPredictions]
    pagination_class = Pagination
    filter_backends: list = []

    def filters(self, request: Request) -> dict[str, Any]:
        """The query parameters, validated (400 otherwise)."""
        query = PredictionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    def predictions(self, request: Request, patient_pk: int):
        """The patient (scoped) and their predictions, filtered by the query parameters."""
        patient = patient_get_for(user=request.user, pk=patient_pk)
        filters = self.filters(request)
        predictions = selectors.prediction_list_for(user=request.user, patient=patient)
        if filters["status"]:
            predictions = predictions.filter(status=filters["status"])
        return patient, predictions, filters


@extend_schema(tags=["predictions"])
class PredictionListView(PredictionApiView):
    @extend_schema(
        summary="List a patient's predictions",
        description="Newest first, online and batch predictions alike, failed ones with their error. "
        "Decision support for clinicians, not a diagnosis. One audit row per call.",
        parameters=[PredictionQuerySerializer],
        responses={200: PredictionSerializer(many=True), 400: BAD_INPUT, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, patient_pk: int) -> Response:
        patient, predictions, filters = self.predictions(request, patient_pk)
        page = self.paginate_queryset(predictions)
        selectors.prediction_list_read(
            user=request.user,
            patient=patient,
            filters={**filters, "page": self.paginator.page.number},
            count=self.paginator.page.paginator.count,
        )
        return self.get_paginated_response(PredictionSerializer(page, many=True).data)

    @extend_schema(
        summary="Score a patient now",
        description="Scores the patient with the clinic's active model in this request and returns the new "
        "prediction (201). Without an active model, or with one whose artifact cannot be used, the prediction has "
        "status `failed` and says why in `error` (`model_version` is null when there is no active model); its "
        "inputs are kept and the advice comes from the guideline rules alone.",
        request=None,
        responses={
            201: PredictionSerializer,
            403: FORBIDDEN,
            404: NOT_FOUND,
        },
    )
    def post(self, request: Request, patient_pk: int) -> Response:
        patient = patient_get_for(user=request.user, pk=patient_pk)
        prediction = services.prediction_create(patient_id=patient.pk, by=request.user)
        return Response(PredictionSerializer(prediction).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["predictions"])
class PredictionLatestView(PredictionApiView):
    @extend_schema(
        summary="Read a patient's latest prediction",
        description="The most recent prediction (`?status=succeeded` for the latest successful one). "
        "Decision support for clinicians, not a diagnosis. Audited.",
        parameters=[PredictionQuerySerializer],
        responses={
            200: PredictionSerializer,
            400: BAD_INPUT,
            403: FORBIDDEN,
            404: OpenApiResponse(description="No such patient in your scope, or no prediction for them yet."),
        },
    )
    def get(self, request: Request, patient_pk: int) -> Response:
        status = self.filters(request)["status"]
        prediction = selectors.prediction_latest_in_scope(user=request.user, patient_pk=patient_pk, status=status)
        if prediction is None:
            patient_get_for(user=request.user, pk=patient_pk)  # no such patient in your scope: 404
            raise NotFound("There is no prediction for this patient yet.")
        selectors.prediction_read(user=request.user, prediction=prediction)
        return Response(PredictionSerializer(prediction).data)
