"""POST /streams/{id}/videos and POST /videos/{id}/upload-url: presigned uploads.

No video bytes pass through API Gateway (29 s, 10 MB) for normal uploads: the
API inserts the row and hands out a presigned PUT and a presigned POST for
`raw-uploads/{video_id}.{ext}`; the bucket's ObjectCreated event starts the
pipeline. Small clips (up to DIRECT_UPLOAD_MAX_BYTES) may be sent in the
request body instead; they are validated the same way and written to the
same key, so the same event starts the same pipeline.
"""
from __future__ import annotations

import datetime as dt
import logging
import posixpath
import re
import unicodedata
import uuid

from chalicelib import access, db, live, storage
from chalicelib.quota import quota_used
from chalicelib.api.http import iso
from chalicelib.config import ALLOWED_EXTENSIONS, MAX_UPLOAD_BYTES, MAX_UPLOAD_LABEL, get_settings
from chalicelib.errors import ConflictError, ForbiddenError, PayloadTooLargeError, ValidationError

logger = logging.getLogger(__name__)

# Lambda's synchronous request payload is 6 MB and API Gateway base64-encodes
# binary bodies (+33 %), so 4 MB of video is the most that always fits.
DIRECT_UPLOAD_MAX_BYTES = 4 * 1024 * 1024
DIRECT_UPLOAD_LABEL = "4MB"
MAX_TITLE = 200
MAX_FILENAME = 255

CONTENT_TYPES = {
    "mp4": {"video/mp4"},
    "mov": {"video/quicktime", "video/mov"},
    "avi": {"video/x-msvideo", "video/avi", "video/msvideo", "video/vnd.avi"},
}
# The bodies API Gateway passes through as bytes (binary media types): a direct upload's video.
BINARY_TYPES = tuple(sorted({t for types in CONTENT_TYPES.values() for t in types}))
_BAD_FILE = "file must be .mp4, .avi, or .mov"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_filename(value: object) -> str:
    """The base name of an uploaded file's name, without paths or control characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Invalid video file", details=["filename is required"])
    name = unicodedata.normalize("NFC", value).replace("\\", "/")
    name = _CONTROL.sub("", posixpath.basename(name)).strip()
    if not name or name in (".", ".."):
        raise ValidationError("Invalid video file", details=["filename is required"])
    if len(name) > MAX_FILENAME:
        raise ValidationError("Invalid video file",
                              details=[f"filename must be at most {MAX_FILENAME} characters"])
    return name


def validate(body: dict) -> dict:
    """The upload request's fields, checked; 400/413 with details otherwise."""
    filename = clean_filename(body.get("filename"))
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in ALLOWED_EXTENSIONS:
        raise ValidationError("Invalid video file", details=[_BAD_FILE])
    details = []
    size = body.get("size_bytes")
    if isinstance(size, bool) or not isinstance(size, int):
        details.append("size_bytes must be an integer")
    elif size <= 0:
        details.append("size_bytes must be greater than 0")
    content_type = body.get("content_type")
    if not isinstance(content_type, str) or content_type.split(";")[0].strip().lower() not in CONTENT_TYPES[ext]:
        details.append(f"content_type must be one of {', '.join(sorted(CONTENT_TYPES[ext]))} for .{ext}")
    title = body.get("title")
    if title is None:   # the file's name without its extension; all of it when that leaves nothing (".mp4")
        title = filename.rsplit(".", 1)[0].strip() or filename
    if not isinstance(title, str) or not title.strip():
        details.append("title must be a non-empty string")
    elif len(title) > MAX_TITLE:
        details.append(f"title must be at most {MAX_TITLE} characters")
    if details:
        raise ValidationError("Invalid video file", details=details)
    if size > MAX_UPLOAD_BYTES:
        raise PayloadTooLargeError("File too large", max_size=MAX_UPLOAD_LABEL)
    return {"filename": filename, "ext": ext, "size_bytes": size, "title": _CONTROL.sub("", title).strip(),
            "content_type": content_type.split(";")[0].strip().lower()}


def _insert(user: dict, stream_id: str, fields: dict) -> dict:
    """The new video row, once the uploader's storage quota has room for its declared size.

    The quota counts the declared sizes of the uploader's live videos (storage holds each
    upload to its declared size); uploads of one user take turns, so two at once cannot
    both pass the check.
    """
    video_id = str(uuid.uuid4())
    quota = get_settings().user_storage_quota_bytes
    with db.transaction() as cur:
        if quota:
            used = quota_used(cur, str(user["id"]))
            if used + fields["size_bytes"] > quota:
                raise PayloadTooLargeError(
                    "Storage quota exceeded", quota_bytes=quota, used_bytes=used,
                    details=[f"this upload needs {fields['size_bytes']} bytes; {max(0, quota - used)} of your "
                             f"{quota} bytes are free: delete videos to make room"])
        cur.execute(
            "INSERT INTO videos (id, stream_id, uploaded_by, title, filename, content_type, ext,"
            " size_bytes, raw_key) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
            (video_id, stream_id, user["id"], fields["title"], fields["filename"],
             fields["content_type"], fields["ext"], fields["size_bytes"],
             storage.raw_key(video_id, fields["ext"])))
        video = cur.fetchone()
    live.publish_video(video["id"], "video.created", title=video["title"])
    return video


def presigned_upload(video: dict) -> dict:
    """A presigned PUT and POST for the video's raw key, and when they expire."""
    ttl = get_settings().presign_ttl_s
    expires_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=ttl)
    post = storage.presigned_post(video["raw_key"], video["content_type"], video["size_bytes"])
    return {
        "upload_url": storage.presigned_put(video["raw_key"], video["content_type"], video["size_bytes"]),
        "upload_method": "PUT",
        "upload_headers": storage.presigned_put_headers(video["content_type"]),
        "upload": {"url": post["url"], "fields": post["fields"]},
        "expires_at": iso(expires_at),
        "max_size": MAX_UPLOAD_LABEL,
    }


def create(user: dict, stream_id: str, body: dict) -> dict:
    """A new video in the stream (processing_index 1) and where to upload its bytes."""
    access.require_stream_role(user, stream_id, "creator")
    if "source_url" in body:
        from chalicelib.api import ingest
        return ingest.create(user, stream_id, body)
    if _upload_kind(body) == "multipart":
        from chalicelib.api import multipart
        return multipart.create(user, stream_id, body)
    video = _insert(user, stream_id, validate(body))
    logger.info("video created", extra={"video_id": str(video["id"]), "stream_id": stream_id})
    return {"id": str(video["id"]), "processing_index": video["processing_index"],
            **presigned_upload(video)}


def create_direct(user: dict, stream_id: str, query: dict, content_type: str, data: bytes) -> dict:
    """A small clip sent in the request body, stored under its raw key."""
    access.require_stream_role(user, stream_id, "creator")
    if len(data) > DIRECT_UPLOAD_MAX_BYTES:
        raise PayloadTooLargeError("File too large for direct upload; use the presigned upload",
                                   max_size=DIRECT_UPLOAD_LABEL)
    fields = validate({"filename": query.get("filename"), "title": query.get("title"),
                       "size_bytes": len(data), "content_type": content_type})
    video = _insert(user, stream_id, fields)
    storage.put_bytes(video["raw_key"], data, fields["content_type"])
    return {"id": str(video["id"]), "processing_index": video["processing_index"]}


def _upload_kind(body: dict) -> str:
    """"single" (one presigned PUT or POST, the default) or "multipart" (resumable, in parts)."""
    kind = body.get("upload", "single")
    if kind not in ("single", "multipart"):
        raise ValidationError("Invalid request", details=['upload must be "single" or "multipart"'])
    return kind


def reissue(user: dict, video_id: str, body: dict | None = None) -> dict:
    """New presigned URLs for a video whose bytes have not arrived yet (uploader only).

    `{"upload": "multipart"}` starts a new multipart upload instead (after an abort).
    """
    video = access.require_video_access(user, video_id, "viewer")
    if str(video["uploaded_by"]) != str(user["id"]):
        raise ForbiddenError("Only the uploader can upload this video")
    kind = _upload_kind(body or {})
    started = db.fetch_one("SELECT 1 FROM pipeline_executions WHERE video_id = %s LIMIT 1",
                           (video_id,))
    if started or storage.head(video["raw_key"]) is not None:
        raise ConflictError("Video already uploaded")
    if kind == "multipart":
        from chalicelib.api import multipart
        return multipart.restart(user, video, body or {})
    return {"id": str(video["id"]), "processing_index": video["processing_index"],
            **presigned_upload(video)}
