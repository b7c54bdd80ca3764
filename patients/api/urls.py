from django.urls import path

app_name = "patients-api"

urlpatterns: list = []
