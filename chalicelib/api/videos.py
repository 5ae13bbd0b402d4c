"""Videos of a stream: listing, details, edits, deletion and stream URLs (reference/000).

Members of the video's stream read; the uploader or a stream admin edits and
deletes. Videos being deleted (`deleted_at` set) are hidden from every read
here; only a repeated DELETE still finds them, to finish the job.
"""
from __future__ import annotations

import re
from typing import Any

from chalicelib import access, db, video_deletion
from chalicelib.api import dash, hls, moderation
from chalicelib.api.http import iso
from chalicelib.api.processing import estimated_time, failure_fields
from chalicelib.config import get_settings
from chalicelib.errors import (ClipstreamError, ConflictError, ForbiddenError, NotFoundError,
                               NotReadyError, ValidationError)
from chalicelib.sync import store as sync_store

RENDITIONS = (360, 480, 720, 1080)
MAX_TITLE = 200
MAX_DESCRIPTION = 5000
MAX_TAGS = 20
MAX_TAG = 40
MAX_CATEGORY = 50
EDITABLE = ("title", "description", "tags", "category", "featured")
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
    """A stream's videos, newest first; members only.

    One round trip: the stream, the caller's role in it and (for members only)
    the page of videos, which admins see with the hidden ones; the same 404 /
    403 rules as access.require_stream_role.
    """
    rows = db.fetch_all(
        "SELECT m.role, v.* FROM streams s"
        " LEFT JOIN stream_members m ON m.stream_id = s.id AND m.user_id = %(uid)s"
        " LEFT JOIN LATERAL (SELECT videos.id::text AS id, title, duration_s, processing_index, status,"
        "   uploaded_at, uploaded_by::text AS uploaded_by, count(*) OVER () AS total FROM videos"
        "   WHERE m.role IS NOT NULL AND stream_id = s.id AND deleted_at IS NULL"
        "   AND (hidden_at IS NULL OR m.role = 'admin')"
        "   ORDER BY uploaded_at DESC, videos.id DESC LIMIT %(limit)s OFFSET %(offset)s) v ON true"
        " WHERE s.id = %(sid)s",
        {"uid": user["id"], "sid": access.canonical_id(stream_id), "limit": limit,
         "offset": (page - 1) * limit})
    if not rows:
        raise NotFoundError("Stream not found")
    admin = access.check_role(rows[0]["role"], "viewer") == "admin"  # admins see hidden videos
    rows = [r for r in rows if r["id"] is not None]
    total = rows[0]["total"] if rows else _count(stream_id, admin)
    videos = [{"id": r["id"], "title": r["title"], "duration": r["duration_s"],  # ids come as text
               "processing_index": r["processing_index"], "status": r["status"],
               "uploaded_at": iso(r["uploaded_at"]), "uploaded_by": r["uploaded_by"],
               "thumbnail_url": thumbnail_url(r["id"])} for r in rows]
    return {"videos": videos, "page": page, "limit": limit, "total": total}


def get_video(user: dict, video_id: str) -> dict:
    """A video's full details; members only. One round trip (two for a flagged duplicate)."""
    return details(access.video_and_role(user, video_id, likes=True)[0], user)


def details(video: dict, user: dict) -> dict:
    """The API's view of a video row, with its like count and the caller's like.

    A row read with access.video_and_role(likes=True) carries them; others cost a query.
    """
    if "total_likes" in video:
        likes = {"n": video["total_likes"], "mine": video["liked"]}
    else:
        likes = db.fetch_one(
            "SELECT count(*) AS n, bool_or(user_id = %s) AS mine FROM likes WHERE video_id = %s",
            (user["id"], video["id"]))
    return {
        "id": str(video["id"]), "stream_id": str(video["stream_id"]),
        "title": video["title"], "description": video["description"],
        "tags": list(video["tags"] or []),
        "category": video.get("category"), "featured": bool(video.get("featured")),
        "vector_clock": dict(video.get("vector_clock") or {}), "version": video.get("version", 1),
        "status": video["status"], "processing_index": video["processing_index"],
        **failure_fields(video, user),
        "duplicate_of": duplicate_of(video, user),
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


def duplicate_of(video: dict, user: dict) -> str | None:
    """The original's id of a flagged duplicate, only if the caller can see that original."""
    original = access.visible_video(user, video["duplicate_of"])
    return str(original["id"]) if original else None


def stream_urls(user: dict, video_id: str) -> dict:
    """HLS URLs of a complete video; 202 while processing (reference/000)."""
    video = visible_video(user, video_id)
    if video["status"] == "failed":
        raise ProcessingFailed(**failure_fields(video, user),
                               processing_index=video["processing_index"])
    if video["processing_index"] == -1:
        raise ConflictError("Video is a duplicate", duplicate_of=duplicate_of(video, user))
    if video["processing_index"] != 0:
        raise NotReadyError("Video still processing", processing_index=video["processing_index"],
                            estimated_time=estimated_time(video["processing_index"]))
    return hls_urls(video, str(user["id"]))


def hls_urls(video: dict, viewer_id: str | None = None, share_id: str | None = None) -> dict:
    """Player URLs (API-served playlists with a playback token) and bitrates of a complete video.

    The token names the viewer, who must be a member of the video's stream;
    without one (share links) it names the uploader, and the link, so that it
    plays only while the link works.
    """
    viewer = viewer_id or str(video["uploaded_by"])
    vid = str(video["id"])
    # dash_url is null only for videos transcoded before the MPD was written beside the playlists.
    return {"hls_url": hls.master_url(viewer, vid, share_id),
            "dash_url": dash.manifest_url(viewer, vid, share_id) if dash.has_manifest(vid) else None,
            "bitrates": list(video["bitrates"] or [])}


# ---------------------------------------------------------------- writes

def update_video(user: dict, video_id: str, body: dict) -> dict:
    """Change title, description, tags, category and/or featured; the uploader or a stream admin.

    Without `vector_clock`/`version` the edit overwrites (the client claims the
    latest state). With a stale one, fields nobody else changed since are
    merged; a field someone else changed concurrently is a 409, because a PUT
    carries whole values, not operations that could merge (POST /sync does).
    """
    video = require_editor(user, video_id)
    body = dict(body)
    clock, version, problems = sync_store.parse_clock_and_version(
        body.pop("vector_clock", None), body.pop("version", None))
    fields = validate_edit(body, problems)
    edits = [sync_store.Edit("set_tags" if name == "tags" else f"update_{name}", value)
             for name, value in fields.items()]
    outcome = sync_store.apply_edits(str(video["id"]), str(user["id"]), str(user["id"]), edits,
                                     client_clock=clock, client_version=version, source="put",
                                     refuse_concurrent=True)
    return details(outcome.row, user)


def require_editor(user: dict, video_id: str) -> dict:
    """The video row if the caller may edit it: a stream admin, or its uploader while a creator.

    Viewers (even a demoted uploader) get 403, non-members 403, unknown ids 404.
    """
    video, role = access.video_and_role(user, video_id, "viewer")
    if video.get("deleted_at") is not None:
        raise NotFoundError("Video not found")
    if role == "admin" or (role == "creator" and str(video["uploaded_by"]) == str(user["id"])):
        return video
    raise ForbiddenError("Only the uploader or a stream admin can change this video")


def validate_edit(body: dict, problems: list[str] | None = None) -> dict[str, Any]:
    """The edited fields, checked; unknown fields are a 400 too, listing every problem."""
    details: list[str] = [f"unknown field: {k}" for k in sorted(body) if k not in EDITABLE]
    details += problems or []
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
    if "category" in body:
        category = body["category"]
        if category is not None and not isinstance(category, str):
            details.append("category must be a string or null")
        elif category is not None and len(_clean(category)) > MAX_CATEGORY:
            details.append(f"category must be at most {MAX_CATEGORY} characters")
        else:
            fields["category"] = (_clean(category) or None) if category is not None else None
    if "featured" in body:
        if not isinstance(body["featured"], bool):
            details.append("featured must be true or false")
        else:
            fields["featured"] = body["featured"]
    if not details and not fields:
        details.append("at least one of title, description, tags is required")
    if details:
        raise ValidationError("Invalid video data", details=details)
    return fields


def delete_video(user: dict, video_id: str) -> None:
    """Delete a video, its objects and rows; the uploader or a stream admin. Resumable.

    A stream admin deleting someone else's video is audited (video.delete), in
    the transaction that marks the row; a repeated DELETE resuming it is not.
    """
    video = db.fetch_one(  # videos being deleted too: a repeated DELETE resumes them
        "SELECT v.id, v.stream_id, v.uploaded_by, v.title, m.role AS member_role FROM videos v"
        " LEFT JOIN stream_members m ON m.stream_id = v.stream_id AND m.user_id = %s"
        " WHERE v.id = %s", (user["id"], video_id))
    if video is None:
        raise NotFoundError("Video not found")
    access.check_role(video["member_role"], "viewer")
    require_owner_or_admin(user, video)
    if str(video["uploaded_by"]) != str(user["id"]):
        with db.transaction() as cur:
            cur.execute("UPDATE videos SET deleted_at = now() WHERE id = %s AND deleted_at IS NULL"
                        " RETURNING hidden_at", (video["id"],))
            marked = cur.fetchone()
            if marked is not None:
                moderation.audit(cur, user, "video.delete", "video", video["id"], video["stream_id"],
                                 {"title": video["title"], "uploaded_by": str(video["uploaded_by"]),
                                  "hidden": marked["hidden_at"] is not None})
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


def _count(stream_id: str, admin: bool) -> int:
    return db.fetch_one("SELECT count(*) AS n FROM videos WHERE stream_id = %s"
                        " AND deleted_at IS NULL AND (hidden_at IS NULL OR %s)", (stream_id, admin))["n"]
