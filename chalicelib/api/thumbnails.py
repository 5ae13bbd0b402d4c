"""Custom thumbnails: POST (presigned upload), PUT (check and set), DELETE (back to the frame).

The uploader (while a creator) or a stream admin asks for a presigned PUT bound
to one key, content type and size; the client uploads the image straight to
storage; PUT /videos/{id}/thumbnail with the upload_id has the image checked and
re-encoded to a safe JPEG by the `thumbnail_custom` function (Pillow lives in
the media image, not in API functions) and makes it the video's thumbnail.
GET /files/videos/{id}/thumbnail serves it from then on; DELETE returns to the
representative frame. The uploaded bytes themselves are never served.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

from chalicelib import access, aws, db, storage
from chalicelib.api import videos
from chalicelib.api.http import iso
from chalicelib.config import get_settings
from chalicelib.errors import NotFoundError, UnavailableError, ValidationError
from chalicelib.media.custom_thumbnail import CONTENT_TYPES, MAX_BYTES, MAX_BYTES_LABEL, MAX_PIXELS, MAX_SIDE

logger = logging.getLogger(__name__)
_BAD = "Invalid thumbnail image"


def function_name() -> str:
    s = get_settings()
    return f"{s.app_name}-{s.stage}-thumbnail_custom"


def _validate(body: dict) -> tuple[str, int]:
    details = []
    content_type = body.get("content_type")
    if not isinstance(content_type, str) or content_type.split(";")[0].strip().lower() not in CONTENT_TYPES:
        details.append(f"content_type must be one of {', '.join(CONTENT_TYPES)} (SVG and other formats are not "
                       "accepted)")
    size = body.get("size_bytes")
    if isinstance(size, bool) or not isinstance(size, int):
        details.append("size_bytes must be an integer")
    elif size <= 0:
        details.append("size_bytes must be greater than 0")
    elif size > MAX_BYTES:
        details.append(f"size_bytes must be at most {MAX_BYTES} ({MAX_BYTES_LABEL})")
    if details:
        raise ValidationError(_BAD, details=details)
    return content_type.split(";")[0].strip().lower(), size


def request_upload(user: dict, video_id: str, body: dict) -> dict:
    """A presigned PUT for a new custom thumbnail of the video (uploader or stream admin)."""
    video = videos.require_editor(user, video_id)
    content_type, size = _validate(body)
    upload_id = str(uuid.uuid4())
    key = storage.custom_thumbnail_upload_key(str(video["id"]), upload_id)
    ttl = get_settings().presign_ttl_s
    return {"upload_id": upload_id,
            "upload_url": storage.presigned_put(key, content_type, size),
            "upload_method": "PUT",
            "upload_headers": storage.presigned_put_headers(content_type),
            "expires_at": iso(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=ttl)),
            "max_size": MAX_BYTES_LABEL, "max_pixels": MAX_PIXELS, "max_side": MAX_SIDE}


def _upload_id(body: dict) -> str:
    value = body.get("upload_id")
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else ""
    except ValueError:
        return ""


def confirm(user: dict, video_id: str, body: dict) -> dict:
    """Check and re-encode the uploaded image, then make it the video's thumbnail; 400 with details if refused."""
    video = videos.require_editor(user, video_id)
    upload_id = _upload_id(body)
    if not upload_id:
        raise ValidationError(_BAD, details=["upload_id must be the id POST /videos/{id}/thumbnail returned"])
    vid = str(video["id"])
    result = _convert({"upload_key": storage.custom_thumbnail_upload_key(vid, upload_id),
                       "key": storage.custom_thumbnail_key(vid, upload_id)})
    if result.get("missing"):   # an id nothing was uploaded for (or of another video): 404, as for any unknown id
        raise NotFoundError(result["error"], details=result.get("details") or [])
    if "error" in result:
        raise ValidationError(result["error"], details=result.get("details") or [])
    with db.transaction() as cur:
        cur.execute("SELECT custom_thumbnail_key FROM videos WHERE id = %s AND deleted_at IS NULL FOR UPDATE",
                    (vid,))
        row = cur.fetchone()
        if row is not None:
            cur.execute("UPDATE videos SET custom_thumbnail_key = %s WHERE id = %s", (result["key"], vid))
    if row is None:   # deleted meanwhile: leave nothing behind
        storage.delete(result["key"])
        raise NotFoundError("Video not found")
    if row["custom_thumbnail_key"] and row["custom_thumbnail_key"] != result["key"]:
        storage.delete(row["custom_thumbnail_key"])
    logger.info("custom thumbnail set", extra={"video_id": vid})
    return {"id": vid, "custom_thumbnail": True, "width": result["width"], "height": result["height"],
            "thumbnail_url": videos.thumbnail_url(vid)}


def remove(user: dict, video_id: str) -> None:
    """Back to the representative frame (204 whether or not one was set)."""
    video = videos.require_editor(user, video_id)
    with db.transaction() as cur:
        old = access.lock_video(cur, str(video["id"]))["custom_thumbnail_key"]
        cur.execute("UPDATE videos SET custom_thumbnail_key = NULL WHERE id = %s", (str(video["id"]),))
    if old:
        storage.delete(old)


def _convert(event: dict) -> dict[str, Any]:
    """The thumbnail_custom function's answer; 503 when it cannot be had."""
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        resp = aws.client("lambda").invoke(FunctionName=function_name(), Payload=json.dumps(event))
        payload = json.loads(resp["Payload"].read())
    except (BotoCoreError, ClientError, ValueError) as exc:
        logger.warning("thumbnail_custom unavailable: %s", exc)
        raise UnavailableError("Thumbnail processing unavailable, try again") from None
    if resp.get("FunctionError") or not isinstance(payload, dict) or not ({"key", "error"} & set(payload)):
        logger.warning("thumbnail_custom failed: %s", payload)
        raise UnavailableError("Thumbnail processing unavailable, try again")
    return payload
