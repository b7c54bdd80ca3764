"""Uploaded files kept until they are used: a CSV between the portal's preview and its confirmation, and the
files of a background import job until the job has run.

They are kept in the database (`clinic.blobs`), not on the disk of the web host that received them: the preview
may be answered by one web host, the confirmation by another, and the job run by a worker on a third (README,
"Design notes: shared storage"). A preview's token is random and remembered in the uploader's session, so nobody
else can reach it; previews older than a day are removed at the next upload. A job's files are written in pieces
as they arrive (a 50 MB file never sits in memory), in the transaction that creates the job, copied to a
temporary folder of the worker that runs it, and removed once the job has finished.
"""

from __future__ import annotations

import datetime
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clinic import blobs
from clinic.models import BlobKind

MAX_AGE = datetime.timedelta(days=1)
_TOKEN = re.compile(r"[0-9a-f]{32}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def upload_save(data: bytes) -> str:
    """Keep the file; return its token."""
    blobs.blobs_delete_older(kind=BlobKind.UPLOAD, before=timezone.now() - MAX_AGE)
    token = secrets.token_hex(16)
    blobs.blob_save(kind=BlobKind.UPLOAD, pieces=[data], key=token)
    return token


def upload_read(token: str) -> bytes | None:
    """The file kept under `token`, or None when there is none or it is older than MAX_AGE."""
    if not _TOKEN.fullmatch(token):
        return None
    return blobs.blob_read_by_key(kind=BlobKind.UPLOAD, key=token, since=timezone.now() - MAX_AGE)


def safe_name(name: str) -> str:
    """The file's own name, reduced to characters safe in a path (its suffix kept: it tells NDJSON from JSON)."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).strip("._") or "file"
    return base[-100:]


@transaction.atomic
def job_files_save(files: Iterable[tuple[str, Iterable[bytes]]]) -> list[dict[str, str | int]]:
    """Store a job's files (name, pieces), in the caller's transaction; return [{name, blob, size}], as
    `ImportJob.files` keeps them. Any suffix: the job reads JSON, NDJSON and CSV files."""
    stored = []
    for name, pieces in files:
        blob = blobs.blob_save(kind=BlobKind.JOB_FILE, pieces=pieces)
        stored.append({"name": name[:200], "blob": blob.pk, "size": blob.size})
    return stored


@contextmanager
def job_files_local(files: list[dict]) -> Iterator[list[tuple[str, Path]]]:
    """The job's files copied to a temporary folder of this host (its VAR_DIR), checked against their sha256,
    as (name, path); the folder is removed when the block ends. The importers read paths: a file is read in
    parts, never whole."""
    directory = Path(settings.VAR_DIR) / "imports"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="job-", dir=directory) as folder:
        local = []
        for number, entry in enumerate(files, start=1):
            if "blob" not in entry:
                raise blobs.BlobError(
                    f"{entry['name']} was kept on the disk of the web host that received it, before uploads moved "
                    "into the database; import it again."
                )
            path = Path(folder) / f"{number:04d}-{safe_name(entry['name'])}"
            blobs.blob_to_file(blob_id=entry["blob"], path=path)
            local.append((entry["name"], path))
        yield local


def job_files_delete(files: list[dict]) -> None:
    """Remove a finished job's stored files."""
    blobs.blobs_delete(blob_ids=[entry["blob"] for entry in files if "blob" in entry])
