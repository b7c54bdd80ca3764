from django.urls import path

from patients.imports.api import LabImportView

app_name = "imports-api"

urlpatterns = [
    path("labs/", LabImportView.as_view(), name="labs"),
]
