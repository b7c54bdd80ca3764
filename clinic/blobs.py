"""Bytes every host reaches: model artifacts and plots, uploads waiting for their confirmation, an import job's
files. They live in the database (README, "Design notes: shared storage"): no disk is shared between hosts.

A blob is written in chunks of `CHUNK_SIZE` inside the caller's transaction, so it exists exactly when the row
that points at it does, and is read back in chunks. Its SHA-256 is recorded when it is written and checked
whenever it is read whole: bytes changed in the database are refused, never used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from django.db import connection, transaction

from clinic.models import Blob, BlobChunk

CHUNK_SIZE = 1 << 20  # 1 MiB: one row per MiB keeps a chunk's read and write small whatever the file's size


class BlobError(Exception):
    """A blob that is missing or whose bytes no longer match their checksum; the message says which."""


@transaction.atomic
def blob_save(*, kind: str, pieces: Iterable[bytes], key: str | None = None) -> Blob:
    """Store the bytes (given in pieces of any size) as one blob, in the caller's transaction."""
    blob = Blob.objects.create(kind=kind, key=key, sha256="", size=0)
    digest, size, seq, buffer = hashlib.sha256(), 0, 0, bytearray()

    def flush(data: bytes) -> None:
        nonlocal seq
        BlobChunk.objects.create(blob=blob, seq=seq, data=data)
        seq += 1

    for piece in pieces:
        digest.update(piece)
        size += len(piece)
        buffer += piece
        while len(buffer) >= CHUNK_SIZE:
            flush(bytes(buffer[:CHUNK_SIZE]))
            del buffer[:CHUNK_SIZE]
    if buffer or seq == 0:
        flush(bytes(buffer))
    blob.sha256, blob.size = digest.hexdigest(), size
    blob.save(update_fields=["sha256", "size"])
    return blob


def _blob(blob_id: int | None) -> Blob:
    blob = Blob.objects.filter(pk=blob_id).first() if blob_id is not None else None
    if blob is None:
        raise BlobError(f"Stored file #{blob_id} is not in the database.")
    return blob


def blob_pieces(blob: Blob) -> Iterator[bytes]:
    """The blob's chunks in order, one query each: never more than a chunk in memory."""
    for pk in BlobChunk.objects.filter(blob=blob).order_by("seq").values_list("pk", flat=True):
        yield _chunk(pk)


def _chunk(pk: int) -> bytes:
    """One chunk's bytes. PostgreSQL is asked for them in binary: in the text format Django's cursors read, the
    server writes each byte as two hex digits and the client parses them back, which was half the CPU of reading a
    model (21.7 against 11.0 ms for a 2.1 MB artifact), paid for each clinic's model by every worker each night."""
    if connection.vendor != "postgresql":
        return bytes(BlobChunk.objects.values_list("data", flat=True).get(pk=pk))
    import psycopg

    connection.ensure_connection()
    table = connection.ops.quote_name(BlobChunk._meta.db_table)
    with psycopg.Cursor(connection.connection) as cursor:  # Django's cursors bind on the client: no binary results
        row = cursor.execute(f"SELECT data FROM {table} WHERE id = %s", [pk], binary=True).fetchone()  # noqa: S608
    if row is None:  # removed since its blob's pieces were listed, as the ORM's get() would say
        raise BlobChunk.DoesNotExist(f"BlobChunk {pk} does not exist.")
    return bytes(row[0])


def _mismatch(blob: Blob, actual: str) -> BlobError:
    return BlobError(
        f"Stored file #{blob.pk} does not match its recorded checksum (expected {blob.sha256[:12]}..., found "
        f"{actual[:12]}...): it was changed or damaged after it was saved, and will not be used."
    )


def blob_read(*, blob_id: int | None) -> bytes:
    """The whole blob, checked against its SHA-256; BlobError when it is missing or altered."""
    blob = _blob(blob_id)
    data = b"".join(blob_pieces(blob))
    if not data and blob.size:
        raise BlobError(f"Stored file #{blob.pk} is missing its bytes in the database; it cannot be used.")
    actual = hashlib.sha256(data).hexdigest()
    if actual != blob.sha256 or len(data) != blob.size:
        raise _mismatch(blob, actual)
    return data


def blob_read_by_key(*, kind: str, key: str, since) -> bytes | None:
    """An upload by its token, if stored after `since`; None when there is none (expired, or never there)."""
    blob = Blob.objects.filter(kind=kind, key=key, created_at__gte=since).first()
    return blob_read(blob_id=blob.pk) if blob is not None else None


def blob_to_file(*, blob_id: int, path: Path) -> int:
    """Write the blob to a new local file (readable by this user only), checked as it is written; its size."""
    blob = _blob(blob_id)
    digest = hashlib.sha256()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        for piece in blob_pieces(blob):
            digest.update(piece)
            file.write(piece)
    if digest.hexdigest() != blob.sha256:
        path.unlink(missing_ok=True)
        raise _mismatch(blob, digest.hexdigest())
    return blob.size


def blobs_delete(*, blob_ids: Iterable[int]) -> None:
    Blob.objects.filter(pk__in=list(blob_ids)).delete()


def blobs_delete_older(*, kind: str, before) -> int:
    """Remove blobs of a kind created before `before` (the expiry of uploads nobody confirmed); how many."""
    return Blob.objects.filter(kind=kind, created_at__lt=before).delete()[1].get("clinic.Blob", 0)
