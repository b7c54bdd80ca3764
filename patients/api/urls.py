"""REST API v1 (included at /api/v1/). Conditions are nested under their patient, so the patient's scope
is checked first, as for observations."""

from django.urls import path

from patients.api import views

app_name = "patients-api"

urlpatterns = [
    path("patients/", views.PatientListView.as_view(), name="patient-list"),
    path("patients/<int:pk>/", views.PatientDetailView.as_view(), name="patient-detail"),
    path("patients/<int:patient_pk>/observations/", views.ObservationListView.as_view(), name="observation-list"),
    path("patients/<int:patient_pk>/conditions/", views.ConditionListView.as_view(), name="condition-list"),
    path(
        "patients/<int:patient_pk>/conditions/<int:pk>/", views.ConditionDetailView.as_view(), name="condition-detail"
    ),
    path("analytes/", views.AnalyteListView.as_view(), name="analyte-list"),
    path("analytes/<str:code>/", views.AnalyteDetailView.as_view(), name="analyte-detail"),
]
