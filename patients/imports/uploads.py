"""Uploaded files kept on the server between the portal's preview and its confirmation.

Each file gets a random name under VAR_DIR/imports, readable by the server's user only; the name is
remembered in the uploader's session, so nobody else can reach it. Files older than a day are removed
at the next upload.
"""

from __future__ import annotations

import datetime
import os
import re
import secrets
import time
from pathlib import Path

from django.conf import settings

MAX_AGE = datetime.timedelta(days=1)
_TOKEN = re.compile(r"[0-9a-f]{32}")


def _directory() -> Path:
    return Path(settings.VAR_DIR) / "imports"


def _path(token: str) -> Path | None:
    return _directory() / f"{token}.csv" if _TOKEN.fullmatch(token) else None


def _sweep() -> None:
    oldest = time.time() - MAX_AGE.total_seconds()
    for path in _directory().glob("*.csv"):
        if path.stat().st_mtime < oldest:
            path.unlink(missing_ok=True)


def upload_save(data: bytes) -> str:
    """Keep the file; return its token."""
    directory = _directory()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _sweep()
    token = secrets.token_hex(16)
    descriptor = os.open(directory / f"{token}.csv", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return token


def upload_read(token: str) -> bytes | None:
    path = _path(token)
    if path is None or not path.is_file():
        return None
    return path.read_bytes()
