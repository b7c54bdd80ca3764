from django.urls import path

from patients.imports import views

app_name = "imports"

urlpatterns = [
    path("", views.upload, name="upload"),
    path("diagnoses/", views.imported_diagnoses, name="diagnoses"),
    path("<str:token>/", views.preview, name="preview"),
    path("<str:token>/confirm/", views.confirm, name="confirm"),
    path("<str:token>/result/", views.result, name="result"),
    path("<str:token>/problems.csv", views.report, name="report"),
]
