"""Pages of the model registry outside the admin, for clinic admins: the model card of a version and the model
dashboard."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from clinic import roles
from clinic.audit import audit_record
from clinic.charts import download
from mltraining import dashboard, selectors


@login_required
def model_card(request: HttpRequest, pk: int) -> HttpResponse:
    if not roles.can_manage_clinic(request.user):
        raise PermissionDenied
    version = selectors.model_version_get_for(user=request.user, pk=pk)  # another clinic's: 404
    audit_record(actor=request.user, action="model_version.view_card", target=version)
    return render(request, "mltraining/model_card.html", selectors.model_card_for(version=version))


def _id_param(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) < 19):  # a database id, or nothing to find
        raise Http404(f"No such {name}.")
    return int(value)


@login_required
def model_dashboard(request: HttpRequest) -> HttpResponse:
    board = dashboard.model_dashboard_read(
        user=request.user,
        version_id=_id_param(request, "version"),
        clinic_id=_id_param(request, "clinic"),
        download=request.GET.get("download", ""),
    )
    prefix = f"model-{board.version.clinic.slug}-v{board.version.version}" if board.version else "model"
    if (csv := download(request, board.charts, prefix=prefix)) is not None:
        return csv
    return render(request, "mltraining/dashboard.html", {"board": board, "charts": board.by_key})
