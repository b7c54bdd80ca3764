from django.urls import path

from patients.imports import job_views, views

app_name = "imports"

urlpatterns = [
    path("", views.upload, name="upload"),
    path("diagnoses/", views.imported_diagnoses, name="diagnoses"),
    path("jobs/", job_views.job_list, name="job_list"),
    path("jobs/new/", job_views.job_new, name="job_new"),
    path("jobs/<int:pk>/", job_views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/progress/", job_views.job_progress, name="job_progress"),
    path("<str:token>/", views.preview, name="preview"),
    path("<str:token>/confirm/", views.confirm, name="confirm"),
    path("<str:token>/result/", views.result, name="result"),
    path("<str:token>/problems.csv", views.report, name="report"),
]
