"""Reads of the model registry, scoped to what the user may see: clinic admins their clinic's, superusers all."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from clinic import blobs, roles
from clinic.models import Clinic, User
from mltraining.ml import explain as ml_explain
from mltraining.ml.artifact import ArtifactError, model_loads
from mltraining.ml.labels import CLASS_DISPLAY
from mltraining.models import DriftReport, ModelStatus, ModelVersion, TrainingRun, TrainingStatus
from patients.catalog_data import unit_display
from patients.models import ObservationSource

logger = logging.getLogger(__name__)

# The metrics shown in tables, in order, with their labels.
METRIC_LABELS = {
    "roc_auc_ovr_macro": "Macro ROC-AUC (one vs rest)",
    "balanced_accuracy": "Balanced accuracy",
    "f1_macro": "Macro F1",
    "accuracy": "Accuracy",
    "precision_macro": "Macro precision",
    "recall_macro": "Macro recall",
    "log_loss": "Log loss",
    "brier": "Brier score",
}


def training_run_list_for(*, user: User) -> QuerySet[TrainingRun]:
    if user.is_superuser:
        return TrainingRun.objects.all()
    if not roles.can_manage_clinic(user):
        return TrainingRun.objects.none()
    return TrainingRun.objects.filter(clinic_id=user.clinic_id)


def model_version_list_for(*, user: User) -> QuerySet[ModelVersion]:
    if user.is_superuser:
        return ModelVersion.objects.all()
    if not roles.can_manage_clinic(user):
        return ModelVersion.objects.none()
    return ModelVersion.objects.filter(clinic_id=user.clinic_id)


def model_version_get_for(*, user: User, pk: int) -> ModelVersion:
    return get_object_or_404(model_version_list_for(user=user).select_related("clinic", "training_run"), pk=pk)


def drift_report_list_for(*, user: User) -> QuerySet[DriftReport]:
    if user.is_superuser:
        return DriftReport.objects.all()
    if not roles.can_manage_clinic(user):
        return DriftReport.objects.none()
    return DriftReport.objects.filter(clinic_id=user.clinic_id)


def _scoring(versions: QuerySet[ModelVersion]) -> QuerySet[ModelVersion]:
    """Active versions that may score: not one trained on synthetic data outside a demo clinic. Activation refuses
    such a version now; this keeps one activated before that check (or by hand) from scoring real patients."""
    # Spelled as a filter: an exclude() of the JSON key would also drop versions without it (NULL in SQL).
    may_score = Q(clinic__is_demo=True) | Q(provenance__synthetic=False) | ~Q(provenance__has_key="synthetic")
    return versions.filter(may_score, status=ModelStatus.ACTIVE)


def active_model_for(*, clinic: Clinic | int) -> ModelVersion | None:
    """The version that scores the clinic's patients now, or None before the first one is activated."""
    clinic_id = clinic.pk if isinstance(clinic, Clinic) else clinic
    return _scoring(ModelVersion.objects.filter(clinic_id=clinic_id)).first()


def active_version_unusable(*, version: ModelVersion) -> bool:
    """Active, yet not scoring: trained on synthetic data in a clinic that is not a demo (see `_scoring`)."""
    return version.status == ModelStatus.ACTIVE and version.trained_on_synthetic_data and not version.clinic.is_demo


# The large JSON of a version: held-out metrics, the training distribution, the model card, the feature schema.
# Pages and the API that show a prediction's or a batch's version need its number, not these; decoding them
# cost more than the rest of an API read of a patient's latest prediction.
VERSION_DETAIL_FIELDS = ("metrics", "reference_profile", "model_card", "feature_schema", "library_versions")


def version_detail_deferred(path: str) -> list[str]:
    """The `defer()` arguments that leave the version joined at `path` (e.g. "prediction__model_version")
    without its large JSON; reading one of them later costs one query."""
    return [f"{path}__{name}" for name in VERSION_DETAIL_FIELDS]


def model_version_active_of(*, clinic_id: int) -> ModelVersion | None:
    """The clinic's active version whether or not it may score: what a switch would archive."""
    return ModelVersion.objects.filter(clinic_id=clinic_id, status=ModelStatus.ACTIVE).first()


def active_model_brief(*, clinic_id: int) -> ModelVersion | None:
    """The clinic's active version without its large JSON: the home page names its number and date."""
    active = _scoring(ModelVersion.objects.filter(clinic_id=clinic_id))
    return active.defer(*VERSION_DETAIL_FIELDS).first()


def active_models() -> QuerySet[ModelVersion]:
    """Every clinic's active version, by clinic."""
    return _scoring(ModelVersion.objects.all()).order_by("clinic_id")


def model_version_model(*, version: ModelVersion, explainer: bool = False) -> Any:
    """The fitted model of `version`, read from the database and checked against the sha256 recorded when it was
    registered; ArtifactError saying why when it is missing or must not be used. Not cached: callers that score
    keep the model they loaded (`predictions.services.model_load`).

    With `explainer`, the model also gets the preparation of its explanations stored with the version at training
    (`ml_explain.prepared_dumps`), for callers that explain what they score. Stored bytes that cannot be used are
    logged and left: the model is then prepared at its first explanation, as for a version stored without them."""
    name = f"The artifact of model v{version.version}"
    if version.artifact_id is None:
        raise ArtifactError(
            f"{name} is missing: it was trained before artifacts moved into the database and its file was not "
            "imported. Run `manage.py import_model_files` where MODEL_DIR holds the file, or retrain the model."
        )
    try:
        payload = blobs.blob_read(blob_id=version.artifact_id)
    except blobs.BlobError as exc:
        raise ArtifactError(f"{name} cannot be read: {exc} Retrain the model or roll back.") from exc
    model = model_loads(payload, expected_sha256=version.sha256, sklearn_version=version.sklearn_version, name=name)
    if explainer and version.explainer_id is not None:
        try:
            ml_explain.prepared_loads(model, blobs.blob_read(blob_id=version.explainer_id))
        except (blobs.BlobError, ValueError) as exc:
            logger.warning("The stored explanation paths of model v%s of clinic %s are not used: %s", version.version,
                           version.clinic_id, exc)  # fmt: skip
    return model


def training_run_plot(*, run: TrainingRun, name: str) -> bytes:
    """One of the run's plots as PNG bytes; ArtifactError when it is not in the database (not imported yet)."""
    blob_id = run.plots.get(name)
    if not isinstance(blob_id, int):
        raise ArtifactError(f"The plot {name!r} of {run} is not in the database; run `manage.py import_model_files`.")
    try:
        return blobs.blob_read(blob_id=blob_id)
    except blobs.BlobError as exc:
        raise ArtifactError(str(exc)) from exc


def training_stale_after() -> datetime.timedelta:
    """A worker kills any task at the hard time limit, so a run "running" for longer has lost its worker."""
    return datetime.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def training_run_in_flight(*, clinic_id: int, now: datetime.datetime | None = None) -> QuerySet[TrainingRun]:
    """The clinic's queued or running run, unless it is running past the point where its worker must be dead."""
    now = now or timezone.now()
    return TrainingRun.objects.filter(clinic_id=clinic_id).filter(
        Q(status=TrainingStatus.QUEUED) | Q(status=TrainingStatus.RUNNING, started_at__gte=now - training_stale_after())
    )


def clinics_with_active_model() -> QuerySet[Clinic]:
    return Clinic.objects.filter(pk__in=_scoring(ModelVersion.objects.all()).values("clinic_id")).order_by("pk")


# Presentation helpers shared by the admin pages and the model card: plain dicts and lists for templates.


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and value == value else None  # NaN is "not available"


def metric_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Held-out metrics with their 95 % bootstrap intervals and the dummy baseline, one row per metric."""
    test, ci, baseline = metrics.get("test") or {}, metrics.get("ci") or {}, metrics.get("baseline") or {}
    names = [name for name in METRIC_LABELS if name in test]
    rows = []
    for name in names:
        interval = ci.get(name) or [None, None]
        rows.append(
            {
                "name": name,
                "label": METRIC_LABELS[name],
                "value": _number(test.get(name)),
                "low": _number(interval[0]),
                "high": _number(interval[1]),
                "baseline": _number(baseline.get(name)),
            }
        )
    return rows


def candidate_rows(candidates: list[dict[str, Any]], chosen: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The cross-validation comparison: (metric labels, one row per candidate with mean ± std per metric)."""
    found = {name for candidate in candidates for name in candidate.get("cv_mean") or {}}
    metrics = [name for name in METRIC_LABELS if name in found]
    rows = []
    for candidate in candidates:
        means, stds = candidate.get("cv_mean") or {}, candidate.get("cv_std") or {}
        rows.append(
            {
                "name": candidate.get("name", ""),
                "chosen": candidate.get("name") == chosen,
                "scores": [(_number(means.get(name)), _number(stds.get(name))) for name in metrics],
                "fit_seconds": _number(candidate.get("fit_seconds")),
                "error": candidate.get("error") or "",
            }
        )
    return [METRIC_LABELS[name] for name in metrics], rows


def condition_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Held-out one-vs-rest ROC-AUC per condition with its interval, the conditions with most patients first."""
    per_class = (metrics.get("test") or {}).get("class_roc_auc") or {}
    rows = [
        {
            "label": CLASS_DISPLAY.get(name, name),
            "positives": values.get("positives"),
            "auc": _number(values.get("auc")),
            "low": _number(values.get("low")),
            "high": _number(values.get("high")),
        }
        for name, values in per_class.items()
    ]
    return sorted(rows, key=lambda row: -(row["positives"] or 0))


def subgroup_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Held-out performance per sex and per age band: one row per group, with its size beside it."""
    rows = []
    for dimension, groups in (metrics.get("subgroups") or {}).items():
        for group, values in (groups or {}).items():
            values = values or {}
            rows.append(
                {
                    "dimension": dimension.replace("_", " "),
                    "group": group,
                    "n": int(values["n"]) if _number(values.get("n")) is not None else None,
                    "roc_auc": _number(values.get("roc_auc_ovr_macro")),
                    "balanced_accuracy": _number(values.get("balanced_accuracy")),
                    "accuracy": _number(values.get("accuracy")),
                    "brier": _number(values.get("brier")),
                }
            )
    return rows


def audit_warnings(audit: dict[str, Any]) -> list[str]:
    warnings = audit.get("warnings") or []
    return [str(warning) for warning in warnings]


def model_version_history(*, clinic_id: int) -> QuerySet[ModelVersion]:
    return (
        ModelVersion.objects.filter(clinic_id=clinic_id)
        .select_related("activated_by")
        .annotate(chosen=F("training_run__chosen"))
        .defer("reference_profile", "feature_schema", "model_card", "library_versions")
        .order_by("-version")
    )


def model_card_for(*, version: ModelVersion) -> dict[str, Any]:
    """Everything the model card page shows; the text parts were frozen into `version.model_card` at training."""
    run = version.training_run
    metric_names, candidates = candidate_rows(run.candidates, run.chosen)
    summary = run.data_summary
    as_of = summary.get("as_of")
    return {
        "as_of": datetime.datetime.fromisoformat(as_of) if as_of else None,
        "version": version,
        "unusable": active_version_unusable(version=version),
        "provenance": provenance_rows(version.provenance),
        "card": version.model_card,
        "run": run,
        "summary": summary,
        "label_counts": sorted((summary.get("labels") or {}).items(), key=lambda item: -item[1]),
        "metric_rows": metric_rows(version.metrics),
        "condition_rows": condition_rows(version.metrics),
        "subgroup_rows": subgroup_rows(version.metrics),
        "candidate_metrics": metric_names,
        "candidate_rows": candidates,
        "history": model_version_history(clinic_id=version.clinic_id),
    }


LABEL_ORIGINS = {
    "doctor": "Confirmed by a doctor of the clinic",
    "trusted": "Labels from a trusted import source",
    "demo": "Synthetic demo diagnoses",
}


def provenance_rows(trained_on: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """The model card's provenance tables: patients learned from by the source of their results, and confirmed
    diagnoses by who vouches for them."""
    sources = dict(ObservationSource.choices)
    patients = trained_on.get("patients_by_source") or {}
    labels = trained_on.get("labels") or {}
    return {
        "patients": [(sources.get(source, source), n) for source, n in patients.items()],
        "labels": [
            (label, int(labels.get(origin) or 0))
            for origin, label in LABEL_ORIGINS.items()
            if origin in labels and (origin == "doctor" or labels[origin])
        ],
    }


def model_version_report(*, version: ModelVersion) -> dict[str, Any]:
    """The metric tables of a version's admin page (the raw JSON is too long to read)."""
    return {"metric_rows": metric_rows(version.metrics), "subgroup_rows": subgroup_rows(version.metrics)}


def model_versions_comparable(*, version: ModelVersion) -> QuerySet[ModelVersion]:
    """The other versions of the same clinic, newest first: the only ones a version is compared with."""
    return (
        ModelVersion.objects.filter(clinic_id=version.clinic_id)
        .exclude(pk=version.pk)
        .only("pk", "version", "status", "clinic_id")
        .order_by("-version")
    )


def _paired(rows_a: list[dict], rows_b: list[dict], key) -> list[tuple[Any, tuple[dict | None, dict | None]]]:
    """Rows of two versions side by side by `key`, in A's order then what only B has: (key, (row A, row B))."""
    by_b = {key(row): row for row in rows_b}
    pairs = [(key(row), (row, by_b.pop(key(row), None))) for row in rows_a]
    return pairs + [(name, (None, row)) for name, row in by_b.items()]


def _input_rows(a: ModelVersion, b: ModelVersion) -> list[dict[str, Any]]:
    """Each input either version reads, and whether each reads it: a scored patient's row depends on these."""
    features_a = {f["name"]: f for f in (a.feature_schema or {}).get("features") or []}
    features_b = {f["name"]: f for f in (b.feature_schema or {}).get("features") or []}
    labels = _feature_labels()
    return [
        {
            "name": name,
            "label": labels.get(name, (name, ""))[0],
            "in_a": name in features_a,
            "in_b": name in features_b,
        }
        for name in list(features_a) + [name for name in features_b if name not in features_a]
    ]


def _calibration(version: ModelVersion) -> dict[str, Any]:
    test = (version.metrics or {}).get("test") or {}
    ci = (version.metrics or {}).get("ci") or {}
    return {
        "method": (version.training_run.configuration or {}).get("calibration") or "",
        "brier": _number(test.get("brier")),
        "brier_ci": ci.get("brier") or [None, None],
        "log_loss": _number(test.get("log_loss")),
        "plot": "calibration" in (version.training_run.plots or {}),
    }


def model_versions_compare(*, a: ModelVersion, b: ModelVersion) -> dict[str, Any]:
    """Two versions of one clinic side by side: held-out metrics with intervals, per-condition ROC-AUC,
    calibration, subgroups and inputs. An admin reads this before activating one or rolling back to the other."""
    return {
        "a": a,
        "b": b,
        "metrics": _paired(metric_rows(a.metrics), metric_rows(b.metrics), key=lambda row: row["label"]),
        "conditions": _paired(condition_rows(a.metrics), condition_rows(b.metrics), key=lambda row: row["label"]),
        "subgroups": _paired(
            subgroup_rows(a.metrics), subgroup_rows(b.metrics), key=lambda row: f"{row['dimension']}: {row['group']}"
        ),
        "calibration": (_calibration(a), _calibration(b)),
        "inputs": _input_rows(a, b),
    }


def training_run_report(*, run: TrainingRun) -> dict[str, Any]:
    """The sections of a training run's admin page beyond its plain fields."""
    metric_names, candidates = candidate_rows(run.candidates, run.chosen)
    return {
        "candidate_metrics": metric_names,
        "candidate_rows": candidates,
        "metric_rows": metric_rows(run.metrics),
        "subgroup_rows": subgroup_rows(run.metrics),
        "audit_warnings": audit_warnings(run.audit),
        "plot_names": list(run.plots),
        "auto_refresh": run.in_progress,
    }


def _feature_labels() -> dict[str, tuple[str, str]]:
    from mltraining.ml.features import FEATURES

    return {feature.name: (feature.label, unit_display(feature.unit)) for feature in FEATURES}


def drift_feature_rows(*, report: DriftReport) -> list[dict[str, Any]]:
    """PSI and band per feature, the largest shift first."""
    labels = _feature_labels()
    rows = []
    for name, figures in (report.report.get("features") or {}).items():
        label, unit = labels.get(name, (name, ""))
        rows.append(
            {
                "name": name,
                "label": label,
                "unit": unit,
                "psi": _number(figures.get("psi")),
                "band": figures.get("band", ""),
                "n": figures.get("n"),
                "missing_share": _number(figures.get("missing_share")),
            }
        )
    return sorted(rows, key=lambda row: -(row["psi"] if row["psi"] is not None else -1.0))


def drift_prediction_rows(*, report: DriftReport) -> list[dict[str, Any]]:
    """Share of each predicted class now, beside its share when the model was trained (when known)."""
    predictions = report.report.get("predictions") or {}
    reference = predictions.get("reference") or {}
    recent = report.predicted_mix or predictions.get("recent") or {}
    return [
        {"label": label, "reference": _number(reference.get(label)), "recent": _number(recent.get(label))}
        for label in sorted(set(reference) | set(recent))
    ]
