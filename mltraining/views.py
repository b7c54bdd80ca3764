"""Pages of the model registry outside the admin: the model card of a version (clinic admins only)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from clinic import roles
from clinic.audit import audit_record
from mltraining import selectors


@login_required
def model_card(request: HttpRequest, pk: int) -> HttpResponse:
    if not roles.can_manage_clinic(request.user):
        raise PermissionDenied
    version = selectors.model_version_get_for(user=request.user, pk=pk)  # another clinic's: 404
    audit_record(actor=request.user, action="model_version.view_card", target=version)
    return render(request, "mltraining/model_card.html", selectors.model_card_for(version=version))
