from django.urls import path

from predictions import views

app_name = "predictions"

urlpatterns = [
    path("patients/<int:pk>/score/", views.prediction_score, name="score"),
    path("batches/", views.batch_list, name="batch_list"),
    path("batches/start/", views.batch_start, name="batch_start"),
    path("batches/<int:pk>/", views.batch_detail, name="batch_detail"),
    path("batches/<int:pk>/progress/", views.batch_progress, name="batch_progress"),
]
