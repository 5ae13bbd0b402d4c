"""Resumable uploads: a raw video sent as an S3 multipart upload, part by part.

For files above MULTIPART_THRESHOLD_BYTES a client may ask `POST /streams/{id}/videos`
for `"upload": "multipart"`. The API starts the multipart upload on the video's
raw key and hands out one presigned UploadPart URL per part, each bound to its
part's exact size (Content-Length is signed). After a dropped connection the
client asks `GET /videos/{id}/multipart` which parts storage holds (ListParts)
and gets fresh URLs for the others; `POST /videos/{id}/multipart/complete`
assembles the object from the parts' ETags, `DELETE /videos/{id}/multipart`
aborts it. Completion is the one ObjectCreated event that starts the pipeline
(chalicelib.pipeline.start checks the assembled size against the declared one);
parts alone start nothing, and the bucket lifecycle aborts what is left open.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from chalicelib import access, db, storage
from chalicelib.api import uploads
from chalicelib.api.http import iso
from chalicelib.config import MAX_UPLOAD_LABEL, get_settings
from chalicelib.errors import ConflictError, ForbiddenError, NotFoundError, UnavailableError, ValidationError

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
# Below this, one PUT is one request anyway and resuming buys nothing.
MULTIPART_THRESHOLD_BYTES = 8 * MiB
MULTIPART_THRESHOLD_LABEL = "8MiB"
# S3's rules: every part but the last at least 5 MiB, at most 5 GiB, at most 10,000 parts.
MIN_PART_BYTES = 5 * MiB
MAX_PART_BYTES = 5 * 1024 * MiB
MAX_PARTS = 10_000
DEFAULT_PART_BYTES = 16 * MiB


def layout(size_bytes: int, part_bytes: int) -> list[tuple[int, int]]:
    """(part number, size) of every part: equal parts, the last one the remainder."""
    count = -(-size_bytes // part_bytes)
    return [(n, min(part_bytes, size_bytes - (n - 1) * part_bytes)) for n in range(1, count + 1)]


def part_size(body: dict, size_bytes: int) -> int:
    """The part size the client asked for (or the default), checked against S3's rules; 400 otherwise."""
    if size_bytes <= MULTIPART_THRESHOLD_BYTES:
        raise ValidationError("Invalid video file", details=[
            f"multipart uploads are for files above {MULTIPART_THRESHOLD_LABEL}"
            f" ({MULTIPART_THRESHOLD_BYTES} bytes); send smaller files in one PUT"])
    value = body.get("part_size_bytes", DEFAULT_PART_BYTES)
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_PART_BYTES <= value <= MAX_PART_BYTES:
        raise ValidationError("Invalid video file", details=[
            f"part_size_bytes must be an integer from {MIN_PART_BYTES} (5 MiB) to {MAX_PART_BYTES} (5 GiB)"])
    if -(-size_bytes // value) > MAX_PARTS:
        raise ValidationError("Invalid video file", details=[
            f"part_size_bytes is too small: a multipart upload has at most {MAX_PARTS} parts"])
    return value


def create(user: dict, stream_id: str, body: dict) -> dict:
    """A new video (processing_index 1) whose bytes arrive as a multipart upload."""
    access.require_stream_role(user, stream_id, "creator")
    fields = uploads.validate(body)
    part_bytes = part_size(body, fields["size_bytes"])
    video = uploads._insert(user, stream_id, fields)
    try:
        started = _start(video, part_bytes)
    except storage.StorageError as exc:
        # Nothing half-written: without an upload the new row would only hold quota.
        db.execute("DELETE FROM videos WHERE id = %s", (video["id"],))
        raise UnavailableError("Storage unavailable, try again") from exc
    logger.info("video created (multipart)", extra={"video_id": str(video["id"]), "stream_id": stream_id})
    return {"id": str(video["id"]), "processing_index": video["processing_index"], **started}


def restart(user: dict, video: dict, body: dict) -> dict:
    """A new multipart upload for a video whose bytes have not arrived (after an abort)."""
    part_bytes = part_size(body, int(video["size_bytes"]))
    if _open_upload(str(video["id"])):
        raise ConflictError("A multipart upload is open for this video", details=[
            "resume it (GET /videos/{id}/multipart) or abort it (DELETE /videos/{id}/multipart) first"])
    try:
        return {"id": str(video["id"]), "processing_index": video["processing_index"],
                **_start(video, part_bytes)}
    except storage.StorageError as exc:
        raise UnavailableError("Storage unavailable, try again") from exc


def status(user: dict, video_id: str, query: dict) -> dict:
    """The open upload: parts storage holds, and fresh URLs for the parts still missing."""
    video = _own_video(user, video_id)
    row = _open_upload(video_id)
    wanted = query.get("upload_id")
    if row is None or (wanted is not None and wanted != row["upload_id"]):
        raise NotFoundError("Upload not found", details=[
            "this video has no open multipart upload" if row is None
            else "upload_id is not the open upload of this video"])
    received = _received(video, row)
    return {"id": str(video["id"]), "processing_index": video["processing_index"],
            **_describe(video, row, received)}


def complete(user: dict, video_id: str, body: dict) -> dict:
    """Assemble the object from the parts' ETags: one call, checked before storage sees it."""
    video = _own_video(user, video_id)
    upload_id = _upload_id(body.get("upload_id"))
    with db.transaction() as cur:
        # One completion at a time per upload: a retried call waits and gets the same answer.
        row = _lock_upload(cur, upload_id, video_id)
        if row["status"] == "completed":
            return _completed(video)
        if row["status"] == "aborted":
            raise ConflictError("Upload was aborted", details=["start a new upload"])
        expected = layout(int(video["size_bytes"]), int(row["part_bytes"]))
        parts = _parts(body.get("parts"), len(expected))
        stored = {p["PartNumber"]: p for p in _list_parts(video, row)}
        problems = []
        for (number, size), (_, etag) in zip(expected, parts):
            have = stored.get(number)
            if have is None:
                problems.append(f"part {number}: storage has not received it")
            elif have["ETag"].strip('"') != etag.strip('"'):
                problems.append(f"part {number}: etag does not match the stored part")
            elif int(have["Size"]) != size:
                problems.append(f"part {number}: storage holds {have['Size']} bytes, the part has {size}")
        if problems:
            raise ValidationError("Upload incomplete", details=problems)
        try:
            storage.complete_multipart(video["raw_key"], upload_id, [(n, e) for n, e in parts])
        except storage.PartsRejected as exc:
            raise ValidationError("Upload incomplete", details=[str(exc)]) from exc
        except storage.AlreadyExists as exc:
            raise ConflictError("Video already uploaded") from exc
        except storage.UploadMissing as exc:
            raise ConflictError("Upload is no longer open", details=["start a new upload"]) from exc
        except storage.StorageError as exc:
            raise UnavailableError("Storage unavailable, repeat the request") from exc
        cur.execute("UPDATE multipart_uploads SET status = 'completed', finished_at = now()"
                    " WHERE upload_id = %s", (upload_id,))
    logger.info("multipart upload completed", extra={"video_id": video_id, "parts": len(parts)})
    return _completed(video)


def abort(user: dict, video_id: str, query: dict) -> None:
    """Abort the open upload and free its parts (the video stays, waiting for its bytes)."""
    video = _own_video(user, video_id)
    upload_id = _upload_id(query.get("upload_id"))
    with db.transaction() as cur:
        row = _lock_upload(cur, upload_id, video_id)
        if row["status"] == "completed":
            raise ConflictError("Upload already completed")
        if row["status"] == "open":
            try:
                storage.abort_multipart(video["raw_key"], upload_id)
            except storage.StorageError as exc:
                raise UnavailableError("Storage unavailable, repeat the request") from exc
            cur.execute("UPDATE multipart_uploads SET status = 'aborted', finished_at = now()"
                        " WHERE upload_id = %s", (upload_id,))


# ------------------------------------------------------------------ helpers

def _start(video: dict, part_bytes: int) -> dict:
    upload_id = storage.create_multipart(video["raw_key"], video["content_type"])
    count = len(layout(int(video["size_bytes"]), part_bytes))
    row = db.fetch_one(
        "INSERT INTO multipart_uploads (upload_id, video_id, part_bytes, part_count)"
        " VALUES (%s, %s, %s, %s) RETURNING *", (upload_id, video["id"], part_bytes, count))
    return _describe(video, row, {})


def _describe(video: dict, row: dict, received: dict[int, dict]) -> dict:
    ttl = get_settings().presign_ttl_s
    expires_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=ttl)
    parts = layout(int(video["size_bytes"]), int(row["part_bytes"]))
    missing = [{"part_number": n, "size": size, "method": "PUT",
                "url": storage.presigned_upload_part(video["raw_key"], row["upload_id"], n, size),
                "headers": {"Content-Length": str(size)}}
               for n, size in parts if n not in received]
    return {
        "upload_method": "MULTIPART",
        "upload_id": row["upload_id"],
        "size_bytes": int(video["size_bytes"]),
        "part_size": int(row["part_bytes"]),
        "part_count": len(parts),
        "parts": missing,
        "received": [{"part_number": n, "size": int(p["Size"]), "etag": p["ETag"].strip('"')}
                     for n, p in sorted(received.items())],
        "expires_at": iso(expires_at),
        "max_size": MAX_UPLOAD_LABEL,
    }


def _received(video: dict, row: dict) -> dict[int, dict]:
    """The stored parts that have their layout's size (anything else is sent again)."""
    sizes = dict(layout(int(video["size_bytes"]), int(row["part_bytes"])))
    return {p["PartNumber"]: p for p in _list_parts(video, row) if sizes.get(p["PartNumber"]) == int(p["Size"])}


def _list_parts(video: dict, row: dict) -> list[dict]:
    try:
        return storage.list_parts(video["raw_key"], row["upload_id"])
    except storage.UploadMissing as exc:
        raise ConflictError("Upload is no longer open", details=["start a new upload"]) from exc
    except storage.StorageError as exc:
        raise UnavailableError("Storage unavailable, repeat the request") from exc


def _own_video(user: dict, video_id: str) -> dict:
    video = access.require_video_access(user, video_id, "viewer")
    if str(video["uploaded_by"]) != str(user["id"]):
        raise ForbiddenError("Only the uploader can upload this video")
    return video


def _open_upload(video_id: str) -> dict | None:
    return db.fetch_one("SELECT * FROM multipart_uploads WHERE video_id = %s AND status = 'open'", (video_id,))


def _lock_upload(cur: Any, upload_id: str, video_id: str) -> dict:
    """The upload's row, locked for this transaction; 404 unless it is an upload of this video."""
    cur.execute("SELECT * FROM multipart_uploads WHERE upload_id = %s AND video_id = %s FOR UPDATE",
                (upload_id, video_id))
    row = cur.fetchone()
    if row is None:
        raise NotFoundError("Upload not found", details=["upload_id is not an upload of this video"])
    return row


def _upload_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 1024:
        raise ValidationError("Invalid request", details=["upload_id is required"])
    return value


def _parts(value: object, count: int) -> list[tuple[int, str]]:
    """(part number, ETag) pairs: every part 1..count once, in ascending order; 400 otherwise."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Invalid parts", details=["parts must be a list of {part_number, etag}"])
    out: list[tuple[int, str]] = []
    for item in value:
        number = item.get("part_number") if isinstance(item, dict) else None
        etag = item.get("etag") if isinstance(item, dict) else None
        if isinstance(number, bool) or not isinstance(number, int) or not isinstance(etag, str) or not etag:
            raise ValidationError("Invalid parts", details=["each part needs an integer part_number and an etag"])
        out.append((number, etag))
    numbers = [n for n, _ in out]
    if any(b <= a for a, b in zip(numbers, numbers[1:])):
        raise ValidationError("Invalid parts", details=["parts must be in ascending part_number order, each once"])
    missing = sorted(set(range(1, count + 1)) - set(numbers))
    extra = sorted(set(numbers) - set(range(1, count + 1)))
    details = ([f"missing parts: {', '.join(map(str, missing))}"] if missing else []) + \
              ([f"no such parts (this upload has {count}): {', '.join(map(str, extra))}"] if extra else [])
    if details:
        raise ValidationError("Invalid parts", details=details)
    return out


def _completed(video: dict) -> dict:
    return {"id": str(video["id"]), "processing_index": video["processing_index"], "upload": "complete",
            "size_bytes": int(video["size_bytes"])}
