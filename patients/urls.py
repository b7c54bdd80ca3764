from django.urls import path

from patients import views

app_name = "patients"

urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_create, name="create"),
    path("dashboard/", views.population_dashboard, name="dashboard"),
    path("dashboard/status/", views.population_dashboard_status, name="dashboard_status"),
    path("<int:pk>/", views.patient_detail, name="detail"),
    path("<int:pk>/edit/", views.patient_edit, name="edit"),
    path("<int:pk>/results/new/", views.panel_entry, name="panel"),
    path("<int:pk>/results/<int:observation_pk>/amend/", views.observation_amend, name="observation_amend"),
    path("<int:pk>/critical/acknowledge/", views.critical_acknowledge, name="critical_acknowledge"),
    path("<int:pk>/conditions/new/", views.condition_add, name="condition_add"),
    path("<int:pk>/medications/new/", views.medication_add, name="medication_add"),
    path("<int:pk>/allergies/new/", views.allergy_add, name="allergy_add"),
]
