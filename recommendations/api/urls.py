"""Advice in the REST API v1 (included at /api/v1/)."""

from django.urls import path

from recommendations.api import views

app_name = "recommendations-api"

urlpatterns = [
    path(
        "patients/<int:patient_pk>/recommendations/latest/",
        views.LatestRecommendationView.as_view(),
        name="recommendation-latest",
    ),
    path("recommendations/queue/", views.ReviewQueueView.as_view(), name="queue"),
    path("recommendation-items/<int:pk>/review/", views.ItemReviewView.as_view(), name="item-review"),
    path("me/advice/", views.MyAdviceView.as_view(), name="my-advice"),
]
