from django.urls import path

from recommendations import views

app_name = "recommendations"

urlpatterns = [
    path("review/", views.review_queue, name="queue"),
    path("review/approve/", views.bulk_approve, name="bulk_approve"),
    path("review/<int:pk>/", views.recommendation_review, name="review"),
    *(
        path(f"items/<int:pk>/{action}/", views.item_decide, {"action": action}, name=f"item_{action}")
        for action in ("approve", "reject", "edit", "annotate")
    ),
    path("mine/", views.my_advice, name="mine"),
    path("dashboard/", views.review_dashboard, name="dashboard"),
    path("protocols/", views.protocol_list, name="protocols"),
    path("protocols/new/", views.protocol_sign, name="protocol_sign"),
    path("protocols/<int:pk>/revoke/", views.protocol_revoke, name="protocol_revoke"),
    path("protocols/<int:pk>/apply/", views.protocol_apply, name="protocol_apply"),
]
