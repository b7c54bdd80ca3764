"""The database store every host reaches (clinic.blobs): what goes in comes out whole, or is refused."""

import datetime
import hashlib

import pytest
from django.utils import timezone

from clinic import blobs
from clinic.models import Blob, BlobChunk, BlobKind

pytestmark = pytest.mark.django_db


def test_bytes_given_in_pieces_come_back_whole_across_chunks(monkeypatch):
    monkeypatch.setattr(blobs, "CHUNK_SIZE", 10)
    data = bytes(range(256)) * 3

    blob = blobs.blob_save(kind=BlobKind.JOB_FILE, pieces=[data[:7], data[7:500], data[500:]])

    assert blob.chunks.count() == -(-len(data) // 10)  # written in pieces: a large upload never sits whole
    assert (blob.size, blob.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert blobs.blob_read(blob_id=blob.pk) == data


def test_an_empty_file_is_stored_and_read_back_empty():
    blob = blobs.blob_save(kind=BlobKind.UPLOAD, pieces=[])

    assert blobs.blob_read(blob_id=blob.pk) == b""


def test_bytes_changed_in_the_database_are_refused_when_read(monkeypatch, tmp_path):
    blob = blobs.blob_save(kind=BlobKind.ARTIFACT, pieces=[b"the model's bytes"])
    BlobChunk.objects.filter(blob=blob).update(data=b"the model's bytez")

    with pytest.raises(blobs.BlobError, match="does not match its recorded checksum"):
        blobs.blob_read(blob_id=blob.pk)
    with pytest.raises(blobs.BlobError, match="does not match"):
        blobs.blob_to_file(blob_id=blob.pk, path=tmp_path / "copy")
    assert not (tmp_path / "copy").exists()  # no damaged copy left for anyone to read


def test_a_blob_that_is_not_there_is_refused_with_its_number():
    with pytest.raises(blobs.BlobError, match="#12345 is not in the database"):
        blobs.blob_read(blob_id=12345)


def test_a_copy_to_this_hosts_disk_is_the_same_bytes_readable_by_the_server_only(tmp_path):
    blob = blobs.blob_save(kind=BlobKind.JOB_FILE, pieces=[b"MRN,code,value\n"])

    size = blobs.blob_to_file(blob_id=blob.pk, path=tmp_path / "copy.csv")

    assert (tmp_path / "copy.csv").read_bytes() == b"MRN,code,value\n"
    assert size == 15
    assert (tmp_path / "copy.csv").stat().st_mode & 0o077 == 0


def test_expired_uploads_are_removed_with_their_chunks_and_others_kept():
    old = blobs.blob_save(kind=BlobKind.UPLOAD, pieces=[b"old"], key="a" * 32)
    Blob.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=2))
    fresh = blobs.blob_save(kind=BlobKind.UPLOAD, pieces=[b"fresh"], key="b" * 32)
    model = blobs.blob_save(kind=BlobKind.ARTIFACT, pieces=[b"model"])
    Blob.objects.filter(pk=model.pk).update(created_at=timezone.now() - datetime.timedelta(days=2))

    removed = blobs.blobs_delete_older(kind=BlobKind.UPLOAD, before=timezone.now() - datetime.timedelta(days=1))

    assert removed == 1
    assert set(Blob.objects.values_list("pk", flat=True)) == {fresh.pk, model.pk}
    assert not BlobChunk.objects.filter(blob_id=old.pk).exists()
