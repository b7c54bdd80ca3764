"""Uploaded files kept on the server: a CSV between the portal's preview and its confirmation, and the files of
a background import job until the job has run.

Each file gets a random name under VAR_DIR/imports, readable by the server's user only. A preview's token is
remembered in the uploader's session, so nobody else can reach it; previews older than a day are removed at the
next upload. A job's files sit in a folder of their own under `jobs/`, named by the job's row; they are written
in pieces as they arrive (a 50 MB file never sits in memory) and removed once the job has finished.
"""

from __future__ import annotations

import datetime
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings

MAX_AGE = datetime.timedelta(days=1)
_TOKEN = re.compile(r"[0-9a-f]{32}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
JOBS = "jobs"


def _directory() -> Path:
    return Path(settings.VAR_DIR) / "imports"


def _path(token: str) -> Path | None:
    return _directory() / f"{token}.csv" if _TOKEN.fullmatch(token) else None


def _sweep() -> None:
    oldest = time.time() - MAX_AGE.total_seconds()
    for path in _directory().glob("*.csv"):
        if path.stat().st_mtime < oldest:
            path.unlink(missing_ok=True)


def _write_new(path: Path, pieces: Iterable[bytes]) -> int:
    """Write a file that must not exist yet (O_EXCL), readable by the server's user only; return its size."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    size = 0
    with os.fdopen(descriptor, "wb") as file:
        for piece in pieces:
            file.write(piece)
            size += len(piece)
    return size


def upload_save(data: bytes) -> str:
    """Keep the file; return its token."""
    directory = _directory()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _sweep()
    token = secrets.token_hex(16)
    _write_new(directory / f"{token}.csv", [data])
    return token


def upload_read(token: str) -> bytes | None:
    path = _path(token)
    if path is None or not path.is_file():
        return None
    return path.read_bytes()


def safe_name(name: str) -> str:
    """The file's own name, reduced to characters safe in a path (its suffix kept: it tells NDJSON from JSON)."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).strip("._") or "file"
    return base[-100:]


def job_files_save(files: Iterable[tuple[str, Iterable[bytes]]]) -> list[dict[str, str | int]]:
    """Store a job's files (name, pieces) in a new folder; return [{name, path, size}], paths relative to the
    uploads folder, as `ImportJob.files` keeps them. Any suffix: the job reads JSON, NDJSON and CSV files."""
    token = secrets.token_hex(16)
    folder = _directory() / JOBS / token
    folder.mkdir(mode=0o700, parents=True)
    stored = []
    try:
        for number, (name, pieces) in enumerate(files, start=1):
            file_name = f"{number:04d}-{safe_name(name)}"
            size = _write_new(folder / file_name, pieces)
            stored.append({"name": name[:200], "path": f"{JOBS}/{token}/{file_name}", "size": size})
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-stored
        raise
    return stored


def job_file_path(relative: str) -> Path:
    """The stored file of a job; refuses any path outside the jobs folder (the row is ours, but be strict)."""
    root = (_directory() / JOBS).resolve()
    path = (_directory() / relative).resolve()
    if root not in path.parents:
        raise ValueError(f"Not a job's file: {relative!r}.")
    return path


def job_files_delete(files: list[dict]) -> None:
    """Remove a finished job's folder (all its files share one)."""
    for folder in {job_file_path(entry["path"]).parent for entry in files}:
        shutil.rmtree(folder, ignore_errors=True)
