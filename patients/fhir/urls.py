from django.urls import path

from patients.fhir import api

app_name = "fhir"

urlpatterns = [
    path("import/", api.FhirImportView.as_view(), name="import"),
    path("patients/<int:pk>/export/", api.FhirPatientExportView.as_view(), name="patient-export"),
]
