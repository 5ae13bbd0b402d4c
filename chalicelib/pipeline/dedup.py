"""Dedup step (processing_index 1): is this upload a copy of a clip the uploader can see?"""
from __future__ import annotations

import hashlib
import logging

from chalicelib import db, storage
from chalicelib.config import get_settings
from chalicelib.pipeline.step import Envelope, PermanentStepError, stage_step

logger = logging.getLogger(__name__)

_CHUNK = 8 * 1024 * 1024


def sha256_of_object(key: str) -> tuple[str, int]:
    """(hex digest, size) of an object, streamed: never the whole file in memory."""
    try:
        obj = storage.s3_client().get_object(Bucket=get_settings().bucket, Key=key)
    except storage.s3_client().exceptions.NoSuchKey:
        raise PermanentStepError(f"uploaded object {key} is missing") from None
    digest = hashlib.sha256()
    size = 0
    for chunk in obj["Body"].iter_chunks(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def find_exact_original(video_id: str, sha256: str) -> dict | None:
    """The earliest other video with the same bytes in a stream the uploader belongs to."""
    return db.fetch_one(
        "SELECT o.id FROM videos v"
        " JOIN stream_members m ON m.user_id = v.uploaded_by"
        " JOIN videos o ON o.stream_id = m.stream_id"
        " WHERE v.id = %s AND o.id <> v.id AND o.content_sha256 = %s"
        "   AND o.status <> 'failed' AND o.processing_index <> -1"
        "   AND (o.uploaded_at, o.id) < (v.uploaded_at, v.id)"
        " ORDER BY o.uploaded_at, o.id LIMIT 1", (video_id, sha256))


@stage_step("dedup")
def run(event: Envelope) -> dict:
    """Hash the upload and look for an earlier identical clip."""
    video_id = event["video_id"]
    sha256, size = sha256_of_object(event["key"])
    if size == 0:
        raise PermanentStepError("uploaded file is empty (0 bytes)")
    db.execute("UPDATE videos SET content_sha256 = %s, size_bytes = %s WHERE id = %s",
               (sha256, size, video_id))
    original = find_exact_original(video_id, sha256)
    if original:
        return {"dedup": {"is_duplicate": True, "original_id": str(original["id"]),
                          "similarity": 1.0}}
    return {"dedup": {"is_duplicate": False}}
