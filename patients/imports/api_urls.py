from django.urls import path

from patients.imports.api import LabImportView
from patients.imports.job_api import ImportJobDetailView, ImportJobListView

app_name = "imports-api"

urlpatterns = [
    path("labs/", LabImportView.as_view(), name="labs"),
    path("jobs/", ImportJobListView.as_view(), name="job-list"),
    path("jobs/<int:pk>/", ImportJobDetailView.as_view(), name="job-detail"),
]
