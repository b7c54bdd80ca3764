"""REST endpoints for advice: the latest recommendation of a patient, the review queue, a review decision,
and a patient's own approved advice. Thin: scope through selectors, decide through one service call."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from clinic import roles
from patients.selectors import patient_get_for
from recommendations import selectors, services
from recommendations.api.serializers import (
    ApprovedAdviceSerializer,
    ItemSerializer,
    RecommendationSerializer,
    ReviewSerializer,
)
from recommendations.models import Category, Headline, Recommendation, RecommendationItem, Severity

NOT_FOUND = OpenApiResponse(description="Not in your scope.")


class CanViewPatients(BasePermission):
    message = "Your role cannot see the clinic's advice."

    def has_permission(self, request: Request, view: Any) -> bool:
        return roles.can_view_patients(request.user)


class CanReview(BasePermission):
    message = "Only doctors review advice."

    def has_permission(self, request: Request, view: Any) -> bool:
        return roles.can_review_advice(request.user)


class IsPatient(BasePermission):
    message = "Only a patient's own account has approved advice to read here."

    def has_permission(self, request: Request, view: Any) -> bool:
        return roles.is_patient(request.user)


class Pagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


@extend_schema(tags=["recommendations"])
class LatestRecommendationView(GenericAPIView):
    queryset = Recommendation.objects.none()
    serializer_class = RecommendationSerializer
    permission_classes = [CanViewPatients]

    @extend_schema(
        summary="Read a patient's latest recommendation",
        description="Headline and ranked items with rationale, citations and review status. Audited.",
        responses={200: RecommendationSerializer, 403: OpenApiResponse(description="Not a clinical role."),
                   404: NOT_FOUND},
    )  # fmt: skip
    def get(self, request: Request, patient_pk: int) -> Response:
        patient = patient_get_for(user=request.user, pk=patient_pk)
        recommendation = selectors.latest_recommendation_read(user=request.user, patient=patient)
        if recommendation is None:
            raise NotFound("There is no recommendation for this patient yet.")
        return Response(RecommendationSerializer(recommendation).data)


@extend_schema(tags=["recommendations"])
class ReviewQueueView(GenericAPIView):
    queryset = Recommendation.objects.none()
    serializer_class = RecommendationSerializer
    permission_classes = [CanReview]
    pagination_class = Pagination
    filter_backends: list = []

    @extend_schema(
        summary="List the advice waiting for review",
        description="The doctor's clinic's recommendations with pending items, most severe and oldest first. "
        "A filter with an unknown value is ignored, never an error.",
        parameters=[
            OpenApiParameter("severity", int, enum=Severity.values, description="At least this severity."),
            OpenApiParameter("headline", str, enum=Headline.values, description="This headline only."),
            OpenApiParameter("category", str, enum=Category.values, description="With a pending item of it."),
            OpenApiParameter("q", str, description="Patient name (part of it) or MRN (exact)."),
            OpenApiParameter("ordering", str, enum=list(selectors.QUEUE_ORDERINGS), description="Default: severity."),
        ],
        responses={200: RecommendationSerializer(many=True), 403: OpenApiResponse(description="Not a doctor."),
                   404: OpenApiResponse(description="No such page.")},
    )  # fmt: skip
    def get(self, request: Request) -> Response:
        filters = selectors.QueueFilters.parse(request.query_params)
        page = self.paginate_queryset(selectors.review_queue_for(user=request.user, filters=filters))
        selectors.review_queue_read(
            user=request.user, page_number=self.paginator.page.number, rows=page, filters=filters
        )
        return self.get_paginated_response(RecommendationSerializer(page, many=True).data)


@extend_schema(tags=["recommendations"])
class ItemReviewView(GenericAPIView):
    queryset = RecommendationItem.objects.none()
    serializer_class = ReviewSerializer
    permission_classes = [CanReview]

    @extend_schema(
        summary="Decide on one advice item",
        description="`approve` (optionally with `patient_text`), `reject` with a coded `reason` and `comment`, "
        "`edit` the `patient_text`, or `annotate` with a `note`. Each decision is stored as feedback and audited.",
        request=ReviewSerializer,
        responses={200: ItemSerializer, 400: OpenApiResponse(description="Invalid decision."),
                   403: OpenApiResponse(description="Not a doctor."), 404: NOT_FOUND},
    )  # fmt: skip
    def post(self, request: Request, pk: int) -> Response:
        item = selectors.item_get_for_review(user=request.user, pk=pk)
        decision = ReviewSerializer(data=request.data)
        decision.is_valid(raise_exception=True)
        data = decision.validated_data
        try:
            if data["action"] == "approve":
                item = services.item_approve(item=item, by=request.user, patient_text=data.get("patient_text"))
            elif data["action"] == "reject":
                item = services.item_reject(item=item, by=request.user, reason=data["reason"],
                                            comment=data.get("comment", ""))  # fmt: skip
            elif data["action"] == "edit":
                item = services.item_edit(item=item, by=request.user, patient_text=data.get("patient_text", ""))
            else:
                item = services.item_annotate(item=item, by=request.user, note=data.get("note", ""))
        except DjangoValidationError as exc:
            raise ValidationError(
                exc.message_dict if hasattr(exc, "message_dict") else {"detail": exc.messages}
            ) from exc
        item = RecommendationItem.objects.select_related("advice", "reviewed_by").get(pk=item.pk)
        return Response(ItemSerializer(item).data)


@extend_schema(tags=["recommendations"])
class MyAdviceView(GenericAPIView):
    queryset = RecommendationItem.objects.none()
    serializer_class = ApprovedAdviceSerializer
    permission_classes = [IsPatient]
    pagination_class = None  # one patient's approved advice, answered whole

    @extend_schema(
        summary="Read my approved advice",
        description="For a patient's own account: the advice a doctor approved, in plain language. Audited.",
        responses={200: ApprovedAdviceSerializer(many=True), 403: OpenApiResponse(description="Not a patient.")},
    )
    def get(self, request: Request) -> Response:
        _patient, advice = selectors.my_advice_read(user=request.user)
        return Response(ApprovedAdviceSerializer(advice, many=True).data)
