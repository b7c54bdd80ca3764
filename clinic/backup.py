"""Backing up the PostgreSQL database with the files that live beside it, and proving a backup restores.

A backup is a directory: `db.dump` (pg_dump's custom format), `audit-checkpoint.json` (the audit chain's signed head,
kept outside the database), `models.tar.gz` (the model artifacts under MODEL_DIR, when there are any) and
`manifest.json`: the row count of every table and the applied migrations, read in the very snapshot pg_dump dumps,
the SHA-256 of each file, all signed with AUDIT_HMAC_KEY. `restore_check` restores it into a fresh database and
compares. The runbook is docs/BACKUP.md; the commands `backup` and `restore_check` call these functions.
"""

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dj_database_url
import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone
from psycopg import sql

MANIFEST = "manifest.json"
DUMP = "db.dump"
CHECKPOINT = "audit-checkpoint.json"
MODELS = "models.tar.gz"
_FILES = (DUMP, CHECKPOINT, MODELS)
FORMAT = 1

_TABLES = """
    SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
    ORDER BY 1, 2
"""


class BackupError(Exception):
    """The backup could not be made, or the directory is not a backup."""


@dataclass
class RestoreReport:
    checks: list[str] = field(default_factory=list)  # what held
    problems: list[str] = field(default_factory=list)  # what did not: the restore cannot be trusted

    @property
    def ok(self) -> bool:
        return not self.problems


def backup_create(*, directory: Path) -> dict[str, Any]:
    """Write a backup of the default database, the audit checkpoint and the model artifacts into `directory`."""
    if connection.vendor != "postgresql":
        raise BackupError("Backups are made of PostgreSQL (DATABASE_URL); copy an SQLite file while nothing runs.")
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: each backup goes into a directory of its own.")
    # The checkpoint first: every row it names is already committed, so the dump taken after holds them all. (A
    # checkpoint newer than the dump would make the restored chain look cut short.)
    checkpoint = Path(settings.AUDIT_CHECKPOINT_PATH)
    if checkpoint.exists():
        shutil.copyfile(checkpoint, directory / CHECKPOINT)
    contents = _dump_with_counts(directory / DUMP)
    model_dir = Path(settings.MODEL_DIR)
    if model_dir.is_dir() and any(model_dir.iterdir()):
        with tarfile.open(directory / MODELS, "w:gz") as archive:
            archive.add(model_dir, arcname=".")
    manifest = {
        "format": FORMAT,
        "created_at": timezone.now().isoformat(),
        "database": connection.settings_dict["NAME"],
        **contents,
        "files": {
            name: _sha256(directory / name) for name in (DUMP, CHECKPOINT, MODELS) if (directory / name).exists()
        },
    }
    manifest["signature"] = _sign(manifest)
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _dump_with_counts(path: Path) -> dict[str, Any]:
    """pg_dump of the database in the snapshot of a transaction that counts every table's rows meanwhile."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        tables = _table_counts(cursor)
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        migrations = [list(row) for row in cursor.fetchall()]
        done = subprocess.run(  # noqa: S603  (pg_dump with our own arguments)
            ["pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={path}"],  # noqa: S607
            env=_pg_environment(connection.settings_dict), capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    return {"tables": tables, "migrations": migrations}


def _table_counts(cursor) -> dict[str, int]:
    cursor.execute(_TABLES)
    counts = {}
    for schema, table in cursor.fetchall():
        name = ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))
        cursor.execute(f"SELECT count(*) FROM {name}")  # noqa: S608  (names read from the catalog, quoted)
        counts[table if schema == "public" else f"{schema}.{table}"] = cursor.fetchone()[0]
    return counts


def restore_check(*, directory: Path, database_url: str, model_dir: Path | None = None) -> RestoreReport:
    """Restore the backup in `directory` into a fresh database (created, or existing and empty) and check it: the
    files' checksums and the manifest's signature, the migrations, every table's row count, the audit chain against
    the backed-up checkpoint (`manage.py audit_verify`), and the model artifacts (into `model_dir`, if given)."""
    report = RestoreReport()
    manifest = _manifest_read(directory, report)
    target = dj_database_url.parse(database_url)
    if not _database_create(target, report):
        return report
    done = subprocess.run(  # noqa: S603  (pg_restore with our own arguments)
        ["pg_restore", "--no-owner", "--no-acl", "--exit-on-error", f"--dbname={target['NAME']}",  # noqa: S607
         str(directory / DUMP)],
        env=_pg_environment(target), capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        report.problems.append(f"pg_restore failed: {done.stderr.strip()[-2000:]}")
        return report
    report.checks.append(f"Restored {DUMP} into the database {target['NAME']}.")
    applied = _compare_contents(manifest, target, report)
    _migrations_check(applied, report)
    _audit_check(directory, database_url, report)
    if model_dir is not None:
        _models_restore(directory, model_dir, report)
    return report


def _manifest_read(directory: Path, report: RestoreReport) -> dict[str, Any]:
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{directory} holds no readable {MANIFEST}: {exc}") from None
    if not hmac.compare_digest(str(manifest.get("signature", "")), _sign(manifest)):
        report.problems.append(
            f"{MANIFEST} is not signed with this AUDIT_HMAC_KEY: it was altered, or the key is not the one in use "
            "when the backup was made. Its counts cannot be trusted."
        )
    for name, digest in manifest.get("files", {}).items():
        if not (directory / name).exists():
            report.problems.append(f"{name} is missing from the backup.")
        elif _sha256(directory / name) != digest:
            report.problems.append(f"{name} is not the file the backup wrote (SHA-256 differs).")
        else:
            report.checks.append(f"{name}: SHA-256 matches the manifest.")
    return manifest


def _database_create(target: dict[str, Any], report: RestoreReport) -> bool:
    """Create the target database, or accept an existing one without tables; False if it has tables."""
    name = target["NAME"]
    with psycopg.connect(**_conninfo(target, dbname="postgres"), autocommit=True) as maintenance:
        exists = maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            report.checks.append(f"Created the database {name}.")
            return True
    with psycopg.connect(**_conninfo(target)) as database:
        tables = database.execute(_TABLES).fetchall()
    if tables:
        report.problems.append(f"Refused: the database {name} exists and has tables; restore into a fresh one.")
    return not tables


def _compare_contents(manifest: dict[str, Any], target: dict[str, Any], report: RestoreReport) -> list[list[str]]:
    """Every table's row count and the applied migrations, against the manifest's; returns the migrations."""
    with psycopg.connect(**_conninfo(target)) as database, database.cursor() as cursor:
        counts = _table_counts(cursor)
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        migrations = [list(row) for row in cursor.fetchall()]
    expected = manifest.get("tables", {})
    wrong = [
        f"{table}: {counts.get(table, 'missing')} rows restored, {expected.get(table, 'none')} backed up"
        for table in sorted(expected.keys() | counts.keys())
        if counts.get(table) != expected.get(table)
    ]
    if wrong:
        report.problems.append("Row counts differ from the backup's: " + "; ".join(wrong) + ".")
    else:
        report.checks.append(
            f"Row counts of all {len(counts)} tables match the backup's ({sum(counts.values())} rows)."
        )
    if migrations != manifest.get("migrations"):
        report.problems.append("The applied migrations differ from the backup's.")
    else:
        report.checks.append(f"The {len(migrations)} applied migrations match the backup's.")
    return migrations


def _manage(*arguments: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "clinic.settings", **env}
    return subprocess.run(  # noqa: S603  (our own interpreter and manage.py)
        [sys.executable, "manage.py", *arguments],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
    )


def _migrations_check(applied: list[list[str]], report: RestoreReport) -> None:
    """The restored database against this release's migrations: it must be the release that made the backup."""
    code = set(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)
    restored = {(app, name) for app, name in applied}
    if missing := sorted(code - restored):
        report.problems.append(
            f"This release has {len(missing)} migrations the backup lacks (first: {'.'.join(missing[0])}): restore "
            "with the release that made the backup, then upgrade with `manage.py migrate`."
        )
    if unknown := sorted(restored - code):
        report.problems.append(
            f"The backup has {len(unknown)} migrations this release does not know (first: {'.'.join(unknown[0])}): "
            "it was made by a newer release."
        )
    if not missing and not unknown:
        report.checks.append("The restored database is at this release's migrations.")


def _audit_check(directory: Path, database_url: str, report: RestoreReport) -> None:
    """`manage.py audit_verify` on the restored database, against a copy of the backed-up checkpoint (the check must
    not write to the live checkpoint)."""
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = Path(scratch) / CHECKPOINT
        if (directory / CHECKPOINT).exists():
            shutil.copyfile(directory / CHECKPOINT, checkpoint)
        else:
            report.problems.append(
                f"The backup has no {CHECKPOINT}: rows cut off the end of the audit chain would go unnoticed."
            )
        done = _manage("audit_verify", env={"DATABASE_URL": database_url, "AUDIT_CHECKPOINT_PATH": str(checkpoint)})
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        report.problems.append(f"audit_verify failed on the restored database: {output[-2000:]}")
    else:
        report.checks.append(f"audit_verify: {output.splitlines()[-1] if output else 'intact'}")


def _models_restore(directory: Path, model_dir: Path, report: RestoreReport) -> None:
    if not (directory / MODELS).exists():
        report.checks.append("The backup holds no model artifacts (none were under MODEL_DIR).")
        return
    if model_dir.exists() and any(model_dir.iterdir()):
        report.problems.append(f"Refused to restore the model artifacts: {model_dir} is not empty.")
        return
    model_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(directory / MODELS) as archive:
        archive.extractall(model_dir, filter="data")
    files = sum(1 for path in model_dir.rglob("*") if path.is_file())
    report.checks.append(f"Restored {files} model artifact files into {model_dir}.")


def _sign(manifest: dict[str, Any]) -> str:
    content = json.dumps({k: v for k, v in manifest.items() if k != "signature"}, sort_keys=True).encode()
    return hmac.new(settings.AUDIT_HMAC_KEY.encode(), content, hashlib.sha256).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _conninfo(database: dict[str, Any], *, dbname: str | None = None) -> dict[str, Any]:
    info = {
        "dbname": dbname or database["NAME"],
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
    }
    return {key: value for key, value in info.items() if value is not None}


def _pg_environment(database: dict[str, Any]) -> dict[str, str]:
    """libpq's variables for pg_dump and pg_restore: the password stays out of the command line."""
    names = {"NAME": "PGDATABASE", "USER": "PGUSER", "PASSWORD": "PGPASSWORD", "HOST": "PGHOST", "PORT": "PGPORT"}
    return {**os.environ, **{env: str(database[key]) for key, env in names.items() if database.get(key)}}
