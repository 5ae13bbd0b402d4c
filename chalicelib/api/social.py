"""Likes and share links (reference/000 Social Features, File Serving /share/{code}).

A like is one (video, user) row: toggling runs in one transaction whose
INSERT ... ON CONFLICT DO NOTHING cannot count a user twice, however many tabs
click at once. Share codes are 128 random bits, so holding one is the only way
to reach the public view they open.
"""
from __future__ import annotations

import re
import secrets
from typing import Any

from chalicelib import db, storage
from chalicelib.api import files, videos
from chalicelib.auth.tokens import iso
from chalicelib.config import get_settings
from chalicelib.errors import GoneError, NotFoundError, ValidationError

DEFAULT_SHARE_HOURS = 7 * 24
MAX_SHARE_HOURS = 365 * 24
_CODE_BYTES = 16
_CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")


# ---------------------------------------------------------------- likes

def toggle_like(user: dict, video_id: str) -> dict:
    """Like the video if the caller does not yet, unlike it otherwise; the new state."""
    video_id = str(videos.visible_video(user, video_id)["id"])
    with db.transaction() as cur:
        # Clicks on one video take turns, so each answer counts every like committed before it
        # (the last of several concurrent likes sees them all).
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('likes:' || %s))", (video_id,))
        cur.execute("DELETE FROM likes WHERE video_id = %s AND user_id = %s", (video_id, user["id"]))
        liked = cur.rowcount == 0
        if liked:
            # A concurrent click that inserted first wins; this one then sees the like too.
            cur.execute("INSERT INTO likes (video_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (video_id, user["id"]))
        cur.execute("SELECT count(*) AS n FROM likes WHERE video_id = %s", (video_id,))
        total = cur.fetchone()["n"]
    return {"liked": liked, "total_likes": total}


def likes(user: dict, video_id: str) -> dict:
    """The like count and whether the caller likes the video."""
    video_id = str(videos.visible_video(user, video_id)["id"])
    row = db.fetch_one(
        "SELECT count(*) AS n, coalesce(bool_or(user_id = %s), false) AS mine FROM likes"
        " WHERE video_id = %s", (user["id"], video_id))
    return {"total_likes": row["n"], "liked": row["mine"]}


# ---------------------------------------------------------------- shares

def create_share(user: dict, video_id: str, body: dict) -> dict:
    """A new share link for the video, valid expires_in_hours (default 7 days); members."""
    video_id = str(videos.visible_video(user, video_id)["id"])
    hours = _share_hours(body)
    code = secrets.token_urlsafe(_CODE_BYTES)
    row = db.fetch_one(
        "INSERT INTO shares (code, video_id, created_by, expires_at)"
        " VALUES (%s, %s, %s, now() + make_interval(hours => %s)) RETURNING code, expires_at, created_at",
        (code, video_id, user["id"], hours))
    return {"code": row["code"], "share_url": share_url(row["code"]),
            "expires_at": iso(row["expires_at"]), "created_at": iso(row["created_at"])}


def share_stats(user: dict, video_id: str) -> dict:
    """How many share links the video has, and how many are still valid; members."""
    video_id = str(videos.visible_video(user, video_id)["id"])
    row = db.fetch_one(
        "SELECT count(*) AS total, count(*) FILTER (WHERE expires_at > now()) AS active"
        " FROM shares WHERE video_id = %s", (video_id,))
    return {"total_shares": row["total"], "active_shares": row["active"]}


def public_share(code: str) -> dict:
    """The shared video's public view for anyone holding an unexpired code."""
    row = db.fetch_one(
        "SELECT s.expires_at, s.expires_at <= now() AS expired, v.* FROM shares s"
        " JOIN videos v ON v.id = s.video_id WHERE s.code = %s AND v.deleted_at IS NULL AND v.hidden_at IS NULL",
        (code,)) if _plausible_code(code) else None
    if row is None:
        raise NotFoundError("Share link not found")
    if row["expired"]:
        raise GoneError("Share link expired")
    key = files.thumbnail_key_for(row)
    complete = row["processing_index"] == 0 and row["status"] == "complete"
    return {
        "id": str(row["id"]), "title": row["title"], "description": row["description"],
        "duration": row["duration_s"], "processing_index": row["processing_index"],
        "thumbnail_url": storage.presigned_get(key) if key else None,
        "stream": _public_stream(row) if complete else None,
        "expires_at": iso(row["expires_at"]),
    }


def share_url(code: str) -> str:
    return f"{get_settings().public_base_url}/share/{code}"


def _public_stream(video: dict) -> dict:
    urls = videos.hls_urls(video)
    return {"hls_url": urls["hls_url"], "bitrates": urls["bitrates"]}


def _share_hours(body: dict) -> int:
    unknown = [f"unknown field: {k}" for k in sorted(body) if k != "expires_in_hours"]
    hours: Any = body.get("expires_in_hours", DEFAULT_SHARE_HOURS)
    details = list(unknown)
    if isinstance(hours, bool) or not isinstance(hours, int):
        details.append("expires_in_hours must be an integer")
    elif not 1 <= hours <= MAX_SHARE_HOURS:
        details.append(f"expires_in_hours must be between 1 and {MAX_SHARE_HOURS}")
    if details:
        raise ValidationError("Invalid share parameters", details=details)
    return hours


def _plausible_code(code: str) -> bool:
    return _CODE.fullmatch(code) is not None
