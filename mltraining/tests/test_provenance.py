"""Provenance: what a model version was trained on, recorded at training time, and the one line that says so; and
labels need a doctor: imported diagnoses train only once a doctor confirmed them, or their source is trusted."""

import pandas as pd
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Case, F, Value, When

from mltraining import provenance, services
from mltraining.ml.train import TrainingConfig
from mltraining.models import ModelStatus, ModelVersion
from mltraining.tests.factories import CHEAP_CONFIG, CLINIC_PROVENANCE, SYNTHETIC_PROVENANCE
from patients import selectors as patient_selectors
from patients.demo import demo_cohort_load
from patients.models import Condition, ConditionSource, Observation, TrustedSource, VerificationStatus
from patients.services import imported_conditions_confirm


@pytest.mark.parametrize(
    ("recorded", "sentence"),
    [
        (SYNTHETIC_PROVENANCE, "Trained on synthetic demo data (2,000 patients)."),
        (CLINIC_PROVENANCE, "Trained on this clinic's records: 1,200 patients, 310 doctor-confirmed diagnoses."),
        (
            {**CLINIC_PROVENANCE, "labels": {"doctor": 1, "trusted": 52, "demo": 0}},
            "Trained on this clinic's records: 1,200 patients, 1 doctor-confirmed diagnosis, "
            "52 from a trusted import source.",
        ),
        (
            {**SYNTHETIC_PROVENANCE, "patients": 1700, "synthetic_patients": 1500},
            "Trained partly on synthetic demo data (1,500 of 1,700 patients).",
        ),
        # backfilled from a run recorded before provenance: results by source, no label origins
        (
            {"patients": 900, "synthetic": True, "synthetic_patients": None, "synthetic_share": 0.25},
            "Trained partly on synthetic demo data (25% of the results of 900 patients).",
        ),
        (
            {"patients": 900, "synthetic": False, "synthetic_share": 0.0},
            "Trained on this clinic's records: 900 patients, who confirmed its diagnoses was not recorded.",
        ),
        ({}, "Training data not recorded: this version was trained before provenance was kept."),
    ],
)
def test_the_provenance_sentence_says_what_a_version_was_trained_on(recorded, sentence):
    assert provenance.provenance_sentence(recorded) == sentence


def test_provenance_counts_the_patients_learned_from_by_source_and_the_labels_by_who_vouches_for_them():
    built = provenance.provenance_build(
        patient_ids=[1, 2, 3],
        patient_sources=[(1, "fhir"), (1, "manual"), (2, "manual"), (3, "demo"), (9, "demo")],  # 9: not learned from
        observation_sources={"fhir": 10, "manual": 20, "demo": 10},
        label_origins={"doctor": 4, "trusted": 1, "": 3},
        trusted_sources=["fhir"],
    )

    assert built["patients"] == 3
    assert built["synthetic_patients"] == 1
    assert built["patients_by_source"] == {"demo": 1, "fhir": 1, "manual": 2}
    assert built["labels"] == {"doctor": 4, "trusted": 1, "demo": 0}
    assert built["synthetic"] is True
    assert built["synthetic_share"] == 0.25


# --- training reads only labels a doctor (or a trusted source) vouches for -----------------------------------------


@pytest.fixture(autouse=True)
def model_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path / "models"
    return settings.MODEL_DIR


@pytest.fixture
def imported_a(clinic_a):
    """Clinic A's records as a FHIR import would leave them: real (not demo) results, and every diagnosis
    unconfirmed here with what its file said kept beside it."""
    demo_cohort_load(clinic=clinic_a, n_patients=150, seed=7)
    Observation.objects.update(source="fhir")
    Condition.objects.update(
        source=ConditionSource.FHIR,
        source_verification_status=F("verification_status"),
        verification_status=Case(
            When(verification_status=VerificationStatus.CONFIRMED, then=Value(VerificationStatus.PROVISIONAL)),
            default=F("verification_status"),
        ),
    )
    return clinic_a


def _train_spied(clinic, monkeypatch) -> tuple:
    """Train, and keep the labels the estimator was given."""
    given = {}
    real_train = services.ml_train.train

    def train(X, y, **kwargs):
        given["y"] = y
        return real_train(X, y, **kwargs)

    monkeypatch.setattr(services.ml_train, "train", train)
    run = services.training_run_request(clinic=clinic, by=None, config=TrainingConfig(**CHEAP_CONFIG), enqueue=False)
    return services.training_run_execute(run_id=run.pk), given["y"]


def _said_confirmed(clinic) -> pd.Series:
    rows = Condition.objects.filter(patient__clinic=clinic, source_verification_status="confirmed")
    return pd.Series(dict(rows.values_list("patient_id", "pk")))


@pytest.mark.hazard("H6", "An imported 'confirmed' diagnosis does not train until a doctor confirms it")
def test_an_imported_confirmed_diagnosis_does_not_train_until_a_doctor_confirms_it(imported_a, doctor_a, monkeypatch):
    said = _said_confirmed(imported_a)
    confirmed_ids = sorted(said.index)[::2]
    imported_conditions_confirm(
        by=doctor_a,
        condition_ids=list(Condition.objects.filter(patient_id__in=confirmed_ids).values_list("pk", flat=True)),
    )

    run, y = _train_spied(imported_a, monkeypatch)

    learned_positive = set(y[y != "healthy"].index)
    waiting = set(said.index) - set(confirmed_ids)
    assert learned_positive, "some doctor-confirmed diagnoses train"
    assert learned_positive <= set(confirmed_ids)
    assert not waiting & set(y.index), "a patient whose diagnosis waits for a doctor is left out, not called healthy"
    version = run.model_version
    assert version.provenance["labels"]["doctor"] > 0
    assert version.provenance["labels"]["trusted"] == 0
    assert version.provenance["synthetic"] is False
    assert version.training_data == (
        f"Trained on this clinic's records: {run.data_summary['rows']:,} patients, "
        f"{version.provenance['labels']['doctor']:,} doctor-confirmed diagnoses."
    )
    assert version.status == ModelStatus.ACTIVE  # the clinic's own records: the gate may activate it


def test_a_trusted_import_source_s_diagnoses_train_and_the_model_card_says_how_many(imported_a, admin_a, monkeypatch):
    TrustedSource.objects.create(clinic=imported_a, source="fhir", reason="Our EHR's export", trusted_by=admin_a)

    run, y = _train_spied(imported_a, monkeypatch)

    assert set(y[y != "healthy"].index) & set(_said_confirmed(imported_a).index)
    version = run.model_version
    trusted = version.provenance["labels"]["trusted"]
    assert trusted > 0
    assert version.provenance["labels"]["doctor"] == 0
    assert version.provenance["trusted_sources"] == ["fhir"]
    assert f"{trusted:,} from a trusted import source" in version.training_data
    assert version.model_card["limitations"][0].startswith(f"Labels from a trusted import source: {trusted:,} ")


def test_training_reads_a_clinician_s_verification_over_a_trusted_source_s(imported_a, admin_a, doctor_a):
    TrustedSource.objects.create(clinic=imported_a, source="fhir", reason="Our EHR's export", trusted_by=admin_a)
    refuted, trusted = Condition.objects.filter(source_verification_status="confirmed").order_by("pk")[:2]
    Condition.objects.filter(pk=refuted.pk).update(verification_status="refuted", verified_by=doctor_a)

    rows = patient_selectors.clinic_condition_rows(clinic_id=imported_a.pk)

    assert (refuted.patient_id, refuted.code, "refuted", refuted.clinical_status, "") in rows
    assert (trusted.patient_id, trusted.code, "confirmed", trusted.clinical_status, "trusted") in rows


# --- migration 0004: versions trained before provenance was kept ----------------------------------------------------


@pytest.fixture
def before_0004(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate([("mltraining", "0003_training_run_resends")])
    yield executor.loader.project_state([("mltraining", "0003_training_run_resends")]).apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_migration_backfills_what_older_runs_recorded_and_marks_synthetic_ones(before_0004, clinic_a):
    runs, versions = (
        before_0004.get_model("mltraining", "TrainingRun"),
        before_0004.get_model("mltraining", "ModelVersion"),
    )

    def version(number, summary):
        run = runs.objects.create(clinic_id=clinic_a.pk, status="succeeded", data_summary=summary)
        return versions.objects.create(clinic_id=clinic_a.pk, version=number, training_run=run, artifact_path="x",
                                       sha256="0", sklearn_version="1", data_hash="0", rows=1204).pk  # fmt: skip

    demo = version(1, {"sources": {"demo": 9000}, "synthetic_share": 1.0})
    real = version(2, {"sources": {"fhir": 7000, "manual": 100}, "synthetic_share": 0.0})
    unknown = version(3, {})

    MigrationExecutor(connection).migrate([("mltraining", "0004_modelversion_provenance")])

    # Only what 0004 knows: columns of later migrations do not exist yet at this point.
    sentences = {v.pk: v.training_data for v in ModelVersion.objects.only("pk", "provenance")}
    assert sentences == {
        demo: "Trained on synthetic demo data (1,204 patients).",
        real: "Trained on this clinic's records: 1,204 patients, who confirmed its diagnoses was not recorded.",
        unknown: provenance.NOT_RECORDED,
    }
