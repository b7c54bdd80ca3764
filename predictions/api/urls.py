"""Predictions in the REST API v1 (included at /api/v1/), nested under their patient like the other records."""

from django.urls import path

from predictions.api import views

app_name = "predictions-api"

urlpatterns = [
    path("patients/<int:patient_pk>/predictions/", views.PredictionListView.as_view(), name="prediction-list"),
    path(
        "patients/<int:patient_pk>/predictions/latest/",
        views.PredictionLatestView.as_view(),
        name="prediction-latest",
    ),
]
