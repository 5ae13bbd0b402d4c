"""Videos of a stream: listing, details, edits, deletion and stream URLs (reference/000).

Members of the video's stream read; the uploader or a stream admin edits and
deletes. Videos being deleted (`deleted_at` set) are hidden from every read
here; only a repeated DELETE still finds them, to finish the job.
"""
from __future__ import annotations

import re
from typing import Any

from chalicelib import access, db, video_deletion
from chalicelib.api import hls
from chalicelib.api.processing import estimated_time
from chalicelib.auth.tokens import iso
from chalicelib.config import get_settings
from chalicelib.errors import (ClipstreamError, ConflictError, ForbiddenError, NotFoundError,
                               NotReadyError, ValidationError)

RENDITIONS = (480, 720, 1080)
MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_TAGS = 20
MAX_TAG = 40
EDITABLE = ("title", "description", "tags")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_KEEP_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class ProcessingFailed(ClipstreamError):
    status = 422
    message = "Video processing failed"


# ---------------------------------------------------------------- access

def visible_video(user: dict, video_id: str, minimum: str = "viewer") -> dict:
    """The video row for a member reaching minimum; 404 when unknown or being deleted."""
    video = access.require_video_access(user, video_id, minimum)
    if video.get("deleted_at") is not None:
        raise NotFoundError("Video not found")
    return video


def require_owner_or_admin(user: dict, video: dict) -> None:
    """The uploader or an admin of the video's stream may change it; 403 otherwise."""
    if str(video["uploaded_by"]) == str(user["id"]):
        return
    if access.stream_role(user["id"], video["stream_id"]) != "admin":
        raise ForbiddenError("Only the uploader or a stream admin can change this video")


def thumbnail_url(video_id: Any) -> str:
    """The API URL that serves the video's thumbnail for its current state."""
    return f"{get_settings().public_base_url}/files/videos/{video_id}/thumbnail"


# ---------------------------------------------------------------- reads

def list_videos(user: dict, stream_id: str, page: int, limit: int) -> dict:
    """A stream's videos, newest first; members only."""
    access.require_stream_role(user, stream_id, "viewer")
    rows = db.fetch_all(
        "SELECT id, title, duration_s, processing_index, status, uploaded_at, uploaded_by,"
        " count(*) OVER () AS total FROM videos WHERE stream_id = %s AND deleted_at IS NULL"
        " ORDER BY uploaded_at DESC, id DESC LIMIT %s OFFSET %s",
        (stream_id, limit, (page - 1) * limit))
    total = rows[0]["total"] if rows else _count(stream_id)
    videos = [{"id": str(r["id"]), "title": r["title"], "duration": r["duration_s"],
               "processing_index": r["processing_index"], "status": r["status"],
               "uploaded_at": iso(r["uploaded_at"]), "uploaded_by": str(r["uploaded_by"]),
               "thumbnail_url": thumbnail_url(r["id"])} for r in rows]
    return {"videos": videos, "page": page, "limit": limit, "total": total}


def get_video(user: dict, video_id: str) -> dict:
    """A video's full details; members only."""
    return details(visible_video(user, video_id), user)


def details(video: dict, user: dict) -> dict:
    """The API's view of a video row, with its like count and the caller's like."""
    likes = db.fetch_one(
        "SELECT count(*) AS n, bool_or(user_id = %s) AS mine FROM likes WHERE video_id = %s",
        (user["id"], video["id"]))
    return {
        "id": str(video["id"]), "stream_id": str(video["stream_id"]),
        "title": video["title"], "description": video["description"],
        "tags": list(video["tags"] or []),
        "status": video["status"], "processing_index": video["processing_index"],
        "failure_reason": video["failure_reason"],
        "duplicate_of": str(video["duplicate_of"]) if video["duplicate_of"] else None,
        "duration": video["duration_s"], "width": video["width"], "height": video["height"],
        "fps": video["fps"],
        "codecs": {"video": video["video_codec"], "audio": video["audio_codec"]},
        "size": video["size_bytes"], "bitrates": list(video["bitrates"] or []),
        "filename": video["filename"],
        "uploaded_by": str(video["uploaded_by"]), "uploaded_at": iso(video["uploaded_at"]),
        "processed_at": iso(video["processed_at"]),
        "updated_at": iso(video["updated_at"]),
        "thumbnail_url": thumbnail_url(video["id"]),
        "total_likes": likes["n"], "liked": bool(likes["mine"]),
    }


def stream_urls(user: dict, video_id: str) -> dict:
    """HLS URLs of a complete video; 202 while processing (reference/000)."""
    video = visible_video(user, video_id)
    if video["status"] == "failed":
        raise ProcessingFailed(failure_reason=video["failure_reason"],
                               processing_index=video["processing_index"])
    if video["processing_index"] == -1:
        raise ConflictError("Video is a duplicate", duplicate_of=str(video["duplicate_of"]))
    if video["processing_index"] != 0:
        raise NotReadyError("Video still processing", processing_index=video["processing_index"],
                            estimated_time=estimated_time(video["processing_index"]))
    return hls_urls(video, str(user["id"]))


def hls_urls(video: dict, viewer_id: str | None = None) -> dict:
    """Player URLs (API-served playlists with a playback token) and bitrates of a complete video.

    The token names the viewer, who must be a member of the video's stream;
    without one (share links) it names the uploader.
    """
    # DASH is not produced: the HLS renditions mux audio into each fMP4 track.
    return {"hls_url": hls.master_url(viewer_id or str(video["uploaded_by"]), str(video["id"])),
            "dash_url": None,
            "bitrates": list(video["bitrates"] or [])}


# ---------------------------------------------------------------- writes

def update_video(user: dict, video_id: str, body: dict) -> dict:
    """Change title, description and/or tags; the uploader or a stream admin."""
    video = visible_video(user, video_id)
    require_owner_or_admin(user, video)
    fields = validate_edit(body)
    sets = ", ".join(f"{column} = %({column})s" for column in fields)
    row = db.fetch_one(
        f"UPDATE videos SET {sets}, updated_at = now() WHERE id = %(id)s AND deleted_at IS NULL"
        " RETURNING *", {**fields, "id": video["id"]})
    if row is None:
        raise NotFoundError("Video not found")
    return details(row, user)


def validate_edit(body: dict) -> dict[str, Any]:
    """The edited fields, checked; unknown fields are a 400 too, listing every problem."""
    details: list[str] = [f"unknown field: {k}" for k in sorted(body) if k not in EDITABLE]
    fields: dict[str, Any] = {}
    if "title" in body:
        title = body["title"]
        if not isinstance(title, str) or not _clean(title):
            details.append("title must be a non-empty string")
        elif len(_clean(title)) > MAX_TITLE:
            details.append(f"title must be at most {MAX_TITLE} characters")
        else:
            fields["title"] = _clean(title)
    if "description" in body:
        description = body["description"] if body["description"] is not None else ""
        if not isinstance(description, str) or not _encodable(description):
            details.append("description must be a string")
        elif len(description) > MAX_DESCRIPTION:
            details.append(f"description must be at most {MAX_DESCRIPTION} characters")
        else:
            fields["description"] = _CONTROL_KEEP_LINES.sub("", description).strip()
    if "tags" in body:
        tags = body["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            details.append("tags must be a list of strings")
        elif len(tags) > MAX_TAGS:
            details.append(f"tags must have at most {MAX_TAGS} items")
        elif any(not _clean(t) or len(_clean(t)) > MAX_TAG for t in tags):
            details.append(f"each tag must be 1 to {MAX_TAG} characters")
        else:
            fields["tags"] = list(dict.fromkeys(_clean(t) for t in tags))
    if not details and not fields:
        details.append("at least one of title, description, tags is required")
    if details:
        raise ValidationError("Invalid video data", details=details)
    return fields


def delete_video(user: dict, video_id: str) -> None:
    """Delete a video, its objects and rows; the uploader or a stream admin. Resumable."""
    video = db.fetch_one(  # videos being deleted too: a repeated DELETE resumes them
        "SELECT v.id, v.stream_id, v.uploaded_by, m.role AS member_role FROM videos v"
        " LEFT JOIN stream_members m ON m.stream_id = v.stream_id AND m.user_id = %s"
        " WHERE v.id = %s", (user["id"], video_id))
    if video is None:
        raise NotFoundError("Video not found")
    access.check_role(video["member_role"], "viewer")
    require_owner_or_admin(user, video)
    video_deletion.delete_video(str(video["id"]))


def _clean(value: str) -> str:
    """value without control characters or surrounding blanks; "" if it is not valid text."""
    return _CONTROL.sub("", value).strip() if _encodable(value) else ""


def _encodable(value: str) -> bool:
    # JSON may carry lone surrogates ("\ud800") that Postgres cannot store.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _count(stream_id: str) -> int:
    return db.fetch_one("SELECT count(*) AS n FROM videos WHERE stream_id = %s"
                        " AND deleted_at IS NULL", (stream_id,))["n"]
