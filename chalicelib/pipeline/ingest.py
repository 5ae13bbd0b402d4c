"""The ingest_url function: fetch a video's source URL into its raw key, then the pipeline runs.

POST /streams/{id}/videos with `source_url` invokes it asynchronously. The source
streams through chalicelib.outbound (https only, public addresses only, checked
again here and on each of at most MAX_REDIRECTS redirects, FETCH_TIMEOUT_S in all)
into a multipart upload, capped at the upload limit and the uploader's free quota.
The object appears at `raw-uploads/{id}.{ext}` only once the whole source arrived
(the upload is completed then, never over an existing object), so the ordinary
ObjectCreated trigger starts the ordinary pipeline exactly as for an upload, and
dedup refuses what is not a video. A fetch that fails leaves no object: the video
fails with a public reason (chalicelib.failures.SOURCE_*, TOO_LARGE) and no
execution starts. Lambda may deliver an async invocation twice: a repeat finds the
video no longer queued (failed, or its execution started), or the key taken, and
does nothing.
"""
from __future__ import annotations

import logging
import uuid

from chalicelib import db, failures, outbound, storage
from chalicelib.quota import quota_used
from chalicelib.config import MAX_UPLOAD_BYTES, get_settings

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
FETCH_TIMEOUT_S = 840.0     # under the function's 900 s (.chalice/config.json), room to complete the upload

_PUBLIC = {"refused": failures.SOURCE_REFUSED, "redirects": failures.SOURCE_REDIRECTS,
           "timeout": failures.SOURCE_TIMEOUT, "connection": failures.SOURCE_UNREACHABLE,
           "too_large": failures.TOO_LARGE}


def run(event: dict) -> dict:
    """Fetch one video's source; {"video_id", "outcome": "stored" | "failed" | "ignored"}."""
    video_id = str(uuid.UUID(str(event["video_id"])))
    url = event["source_url"]
    video = db.fetch_one(
        "SELECT v.*, EXISTS (SELECT 1 FROM pipeline_executions e WHERE e.video_id = v.id) AS started"
        " FROM videos v WHERE v.id = %s AND v.deleted_at IS NULL", (video_id,))
    if video is None or video["started"] or video["status"] != "queued":
        return _outcome(video_id, "ignored")        # gone, or a repeated invocation
    room = _room(video)
    if room <= 0:
        return _fail(video_id, failures.SOURCE_QUOTA, "no storage quota left for the source")
    cap = min(MAX_UPLOAD_BYTES, room)
    try:
        with storage.StreamUpload(video["raw_key"], video["content_type"]) as upload:
            resp = outbound.request(url, max_bytes=cap, timeout_s=FETCH_TIMEOUT_S,
                                    max_redirects=MAX_REDIRECTS, sink=upload.write)
            if not 200 <= resp.status < 300:
                return _fail(video_id, failures.SOURCE_ERROR, f"the source answered HTTP {resp.status}")
            if upload.size == 0:
                return _fail(video_id, failures.NOT_A_VIDEO, "the source sent no bytes")
            refused = _record_size(video, upload.size)
            if refused:
                return _fail(video_id, *refused) if refused[0] else _outcome(video_id, "ignored")
            upload.complete()           # the ObjectCreated event: the pipeline starts
    except outbound.OutboundRefused as exc:
        public = _PUBLIC.get(exc.kind, failures.SOURCE_REFUSED)
        if exc.kind == "too_large" and cap < MAX_UPLOAD_BYTES:
            public = failures.SOURCE_QUOTA
        return _fail(video_id, public, f"{exc.reason} ({url[:200]})")
    except (storage.AlreadyExists, storage.UploadMissing):
        # The key was filled meanwhile (a repeated invocation), or the video was deleted
        # (deleting aborts its open uploads): nothing to do.
        return _outcome(video_id, "ignored")
    except storage.StorageError as exc:
        # Not worth a retry of the whole fetch: the video fails visibly instead of waiting forever.
        return _fail(video_id, failures.PROCESSING_FAILED, f"storage failed while storing the source: {exc}")
    logger.info("source fetched", extra={"video_id": video_id, "size": upload.size})
    return {**_outcome(video_id, "stored"), "size_bytes": upload.size}


def _room(video: dict) -> int:
    """Bytes the uploader may still store (the upload limit when there is no quota)."""
    quota = get_settings().user_storage_quota_bytes
    if not quota:
        return MAX_UPLOAD_BYTES
    with db.transaction() as cur:
        return quota - quota_used(cur, str(video["uploaded_by"]), str(video["id"]))


def _record_size(video: dict, size: int) -> tuple[str | None, str] | None:
    """Record the fetched size as the video's (the trigger checks the object against it).

    None when recorded; (public reason, detail) when the quota has no room for it any
    more (other uploads took it during the fetch); (None, ...) when the video is gone.
    """
    quota = get_settings().user_storage_quota_bytes
    with db.transaction() as cur:
        if quota:
            used = quota_used(cur, str(video["uploaded_by"]), str(video["id"]))
            if used + size > quota:
                return failures.SOURCE_QUOTA, f"the source has {size} bytes; {max(0, quota - used)} are free"
        cur.execute("UPDATE videos SET size_bytes = %s, updated_at = now()"
                    " WHERE id = %s AND deleted_at IS NULL AND status = 'queued' RETURNING id",
                    (size, str(video["id"])))
        if cur.fetchone() is None:
            return None, "the video is gone"
    return None


def _fail(video_id: str, public: str, detail: str) -> dict:
    """The video failed before any pipeline step: its public reason, the detail for admins."""
    logger.warning("source fetch failed", extra={"video_id": video_id, "reason": detail})
    db.execute(
        "UPDATE videos SET status = 'failed', failure_public = %s, failure_reason = %s,"
        " failed_stage = 'ingest', updated_at = now()"
        " WHERE id = %s AND deleted_at IS NULL AND status = 'queued'",
        (public, f"the source URL could not be fetched: {detail}"[:2000], video_id))
    return {**_outcome(video_id, "failed"), "reason": public}


def _outcome(video_id: str, outcome: str) -> dict:
    return {"video_id": video_id, "outcome": outcome}
