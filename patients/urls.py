from django.urls import path

from patients import contact_views, portal, views

app_name = "patients"

urlpatterns = [
    path("", views.patient_list, name="list"),
    path("new/", views.patient_create, name="create"),
    path("dashboard/", views.population_dashboard, name="dashboard"),
    path("mine/", portal.my_results, name="mine"),
    path("mine/report/", portal.my_report, name="my_report"),
    path("dashboard/status/", views.population_dashboard_status, name="dashboard_status"),
    path("<int:pk>/", views.patient_detail, name="detail"),
    path("<int:pk>/edit/", views.patient_edit, name="edit"),
    path("<int:pk>/report/", portal.patient_report, name="report"),
    path("<int:pk>/results/new/", views.panel_entry, name="panel"),
    path("<int:pk>/results/<int:observation_pk>/amend/", views.observation_amend, name="observation_amend"),
    path("<int:pk>/critical/acknowledge/", views.critical_acknowledge, name="critical_acknowledge"),
    path("<int:pk>/conditions/new/", views.condition_add, name="condition_add"),
    path("<int:pk>/medications/new/", views.medication_add, name="medication_add"),
    path("<int:pk>/allergies/new/", views.allergy_add, name="allergy_add"),
    path("contact/", contact_views.contact_mine, name="contact_mine"),
    path("contact/new/", contact_views.contact_new, name="contact_new"),
    path("requests/", contact_views.request_worklist, name="requests"),
    path("requests/<int:pk>/", contact_views.request_detail, name="request_detail"),
]
