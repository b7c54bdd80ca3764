"""Backup and restore (docs/BACKUP.md): the real commands, end to end, on a small seeded PostgreSQL database."""

import json
import os
import subprocess
import sys

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from psycopg import sql

from clinic.testing import ROOT, database_url
from patients.services import ObservationInput, observations_record
from patients.tests.factories import PatientFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _manage(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603  (our own interpreter and manage.py)
        [sys.executable, "manage.py", *arguments],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _server() -> dict:
    s = connection.settings_dict
    return {"user": s["USER"], "password": s["PASSWORD"] or None, "host": s["HOST"] or "127.0.0.1", "port": s["PORT"]}


@pytest.fixture
def databases():
    """Names for databases of this test's own (beside its test database), dropped afterwards."""
    names: list[str] = []

    def name(suffix: str) -> str:
        names.append(f"{connection.settings_dict['NAME']}_{suffix}")
        return names[-1]

    yield name
    with psycopg.connect(dbname="postgres", autocommit=True, **_server()) as maintenance:
        for database in names:
            maintenance.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def _url(database: str) -> str:
    return database_url().rsplit("/", 1)[0] + "/" + database


@pytest.fixture
def backup(clinic_a, doctor_a, settings, tmp_path):
    """A clinic with patients, results and their audit rows, checkpointed, then backed up by `manage.py backup`."""
    for patient in PatientFactory.create_batch(3, clinic=clinic_a):
        observations_record(
            patient=patient, by=doctor_a, effective_at=patient.created_at,
            entries=[ObservationInput("glucose", 5.4, "mmol/L"), ObservationInput("hemoglobin", 14.1, "g/dL")],
        )  # fmt: skip
    call_command("audit_verify", checkpoint=True)
    models = tmp_path / "models"
    (models / "plots").mkdir(parents=True)
    (models / "clinic-1-v1.skops").write_bytes(b"the model's bytes")
    env = {
        "DATABASE_URL": database_url(),
        "AUDIT_CHECKPOINT_PATH": str(settings.AUDIT_CHECKPOINT_PATH),
        "MODEL_DIR": str(models),
    }
    made = _manage("backup", str(tmp_path / "backup"), env=env)
    assert made.returncode == 0, made.stderr
    return tmp_path / "backup", env


def test_a_backup_restores_into_a_fresh_database_and_verifies_there(backup, databases, tmp_path):
    directory, env = backup
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["tables"]["patients_patient"] == 3
    assert manifest["tables"]["patients_observation"] == 6
    assert set(manifest["files"]) == {"db.dump", "audit-checkpoint.json", "models.tar.gz"}
    restored = databases("restored")

    checked = _manage(
        "restore_check", str(directory), "--database-url", _url(restored), "--model-dir", str(tmp_path / "back"),
        env=env,
    )  # fmt: skip

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"Created the database {restored}" in checked.stdout
    assert "Row counts of all" in checked.stdout
    assert "applied migrations match" in checked.stdout
    assert "at this release's migrations" in checked.stdout
    assert "Audit chain intact" in checked.stdout
    assert (tmp_path / "back" / "clinic-1-v1.skops").read_bytes() == b"the model's bytes"
    with psycopg.connect(dbname=restored, **_server()) as database:
        assert database.execute("SELECT count(*) FROM patients_patient").fetchone()[0] == 3

    again = _manage("restore_check", str(directory), "--database-url", _url(restored), env=env)

    assert again.returncode != 0
    assert "exists and has tables; restore into a fresh one" in again.stderr


def test_a_tampered_backup_is_caught_on_restore(backup, databases):
    directory, env = backup
    # Someone restores the dump elsewhere, edits an audit row and deletes a result, and puts the new dump in place.
    scratch = databases("scratch")
    with psycopg.connect(dbname="postgres", autocommit=True, **_server()) as maintenance:
        maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
    pg = {**os.environ, "PGHOST": _server()["host"], "PGPORT": str(_server()["port"]), "PGUSER": _server()["user"]}
    subprocess.run(["pg_restore", "--no-owner", "-d", scratch, str(directory / "db.dump")], env=pg, check=True)  # noqa: S603, S607
    with psycopg.connect(dbname=scratch, autocommit=True, **_server()) as database:
        database.execute("SET session_replication_role = replica")  # past the audit table's triggers
        database.execute(
            """UPDATE clinic_auditevent SET detail = '{"note": "nothing happened"}'
               WHERE id = (SELECT min(id) FROM clinic_auditevent WHERE action LIKE 'observation%%')"""
        )
        database.execute("DELETE FROM patients_observation WHERE id = (SELECT min(id) FROM patients_observation)")
    subprocess.run(["pg_dump", "-Fc", "-f", str(directory / "db.dump"), scratch], env=pg, check=True)  # noqa: S603, S607

    checked = _manage("restore_check", str(directory), "--database-url", _url(databases("tampered")), env=env)

    assert checked.returncode != 0
    assert "db.dump is not the file the backup wrote" in checked.stderr
    assert "patients_observation: 5 rows restored, 6 backed up" in checked.stderr
    assert "audit_verify failed on the restored database" in checked.stderr
    assert "Audit chain broken at event" in checked.stderr
