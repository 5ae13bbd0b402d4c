"""Likes and share links (reference/000 Social Features, File Serving /share/{code}).

A like is one (video, user) row: toggling runs in one transaction whose
INSERT ... ON CONFLICT DO NOTHING cannot count a user twice, however many tabs
click at once. Share codes are 128 random bits, so holding one is the only way
to reach the public view they open.

A share link works while all of these hold, checked on every GET /share/{code}
(nothing to clean up when one stops holding): it is not revoked; it is not
past its expiry, nor past created_at + SHARE_MAX_TTL_SECONDS (so lowering the
setting cuts older links too); its video is neither deleted nor hidden; and
its creator is still a member of the video's stream with a role that may share,
without having left since the link was made (a removed or banned member who is
let back in does not bring their old links back). The playback token of a
link's hls_url names the link, so its playlists stop with it too. Links are
listed and revoked by an id that is not the code.
"""
from __future__ import annotations

import re
import secrets
from typing import Any

from chalicelib import access, db, storage
from chalicelib.api import files, videos
from chalicelib.api.http import iso
from chalicelib.config import get_settings
from chalicelib.errors import ForbiddenError, GoneError, NotFoundError, ValidationError

DEFAULT_SHARE_HOURS = 7 * 24
SHARE_MIN_ROLE = "viewer"      # who may create a link, and keep it working
_SHARE_ROLES = [r for r in access.ROLES if access.ROLE_RANK[r] >= access.ROLE_RANK[SHARE_MIN_ROLE]]
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

# Columns of a share `s` joined with its video `v`: when it stops working and whether its creator may still share.
_STATE = (
    " least(s.expires_at, s.created_at + make_interval(secs => %(max_ttl)s)) AS ends_at,"
    " least(s.expires_at, s.created_at + make_interval(secs => %(max_ttl)s)) <= now() AS expired,"
    " EXISTS (SELECT 1 FROM stream_members m WHERE m.stream_id = v.stream_id AND m.user_id = s.created_by"
    "   AND m.role = ANY(%(roles)s) AND m.joined_at <= s.created_at) AS creator_ok")


def _state_params(**params: Any) -> dict:
    return {"max_ttl": get_settings().share_max_ttl_s, "roles": _SHARE_ROLES, **params}


def create_share(user: dict, video_id: str, body: dict) -> dict:
    """A new share link for the video, valid expires_in_hours (default 7 days, at most the configured cap)."""
    video_id = str(videos.visible_video(user, video_id, SHARE_MIN_ROLE)["id"])
    hours = _share_hours(body)
    code = secrets.token_urlsafe(_CODE_BYTES)
    row = db.fetch_one(
        "INSERT INTO shares (code, video_id, created_by, expires_at)"
        " VALUES (%s, %s, %s, now() + make_interval(hours => %s)) RETURNING id, code, expires_at, created_at",
        (code, video_id, user["id"], hours))
    return {"id": str(row["id"]), "code": row["code"], "share_url": share_url(row["code"]),
            "expires_at": iso(row["expires_at"]), "created_at": iso(row["created_at"])}


def share_stats(user: dict, video_id: str) -> dict:
    """The video's link counts (all members) and the links the caller may manage: their own; all for stream admins."""
    video, role = access.video_and_role(user, video_id)
    rows = db.fetch_all(
        "SELECT s.id, s.code, s.created_by, s.created_at, s.revoked_at, " + _STATE +
        " FROM shares s JOIN videos v ON v.id = s.video_id WHERE s.video_id = %(vid)s"
        " ORDER BY s.created_at DESC, s.id",
        _state_params(vid=str(video["id"])))
    links = [_link(r, user) for r in rows if role == "admin" or str(r["created_by"]) == str(user["id"])]
    return {"total_shares": len(rows), "active_shares": sum(_status(r) == "active" for r in rows),
            "shares": links}


def revoke_share(user: dict, video_id: str, share_id: str) -> None:
    """Stop a link for good; its creator or a stream admin. Revoking a revoked link changes nothing."""
    video, role = access.video_and_role(user, video_id)
    sid = access.canonical_id(share_id)
    if sid is None:
        raise NotFoundError("Share link not found")
    with db.transaction() as cur:
        cur.execute("SELECT created_by FROM shares WHERE id = %s AND video_id = %s FOR UPDATE",
                    (sid, str(video["id"])))
        row = cur.fetchone()
        if row is None:
            raise NotFoundError("Share link not found")
        if role != "admin" and str(row["created_by"]) != str(user["id"]):
            raise ForbiddenError("Only the link's creator or a stream admin can revoke it")
        cur.execute("UPDATE shares SET revoked_at = now(), revoked_by = %s WHERE id = %s AND revoked_at IS NULL",
                    (user["id"], sid))


def public_share(code: str) -> dict:
    """The shared video's public view for anyone holding a working code (see the module docstring)."""
    row = _working("s.code = %(key)s", code) if _plausible_code(code) else None
    if row is None:
        raise NotFoundError("Share link not found")
    key = files.thumbnail_key_for(row)
    complete = row["processing_index"] == 0 and row["status"] == "complete"
    return {
        "id": str(row["id"]), "title": row["title"], "description": row["description"],
        "duration": row["duration_s"], "processing_index": row["processing_index"],
        "thumbnail_url": storage.presigned_get(key) if key else None,
        "stream": _public_stream(row) if complete else None,
        "expires_at": iso(row["ends_at"]),
    }


def working_share(share_id: str, video_id: str) -> None:
    """Nothing if the link (by id) of this video still works; the same 404/410 as GET /share/{code} otherwise."""
    sid = access.canonical_id(share_id)
    row = _working("s.id = %(key)s", sid) if sid else None
    if row is None or str(row["id"]) != video_id:
        raise NotFoundError("Share link not found")


def _working(where: str, key: str) -> dict | None:
    """The video row of a share link (with share_id and ends_at) if it works; 410 if revoked or expired."""
    row = db.fetch_one(
        "SELECT v.*, s.id AS share_id, s.revoked_at AS share_revoked_at, " + _STATE +
        " FROM shares s JOIN videos v ON v.id = s.video_id"
        " WHERE " + where + " AND v.deleted_at IS NULL AND v.hidden_at IS NULL",
        _state_params(key=key))
    if row is None or not row["creator_ok"]:
        return None
    if row["share_revoked_at"] is not None:
        raise GoneError("Share link revoked")
    if row["expired"]:
        raise GoneError("Share link expired")
    return row


def share_url(code: str) -> str:
    return f"{get_settings().public_base_url}/share/{code}"


def _public_stream(video: dict) -> dict:
    urls = videos.hls_urls(video, share_id=str(video["share_id"]))
    return {"hls_url": urls["hls_url"], "bitrates": urls["bitrates"]}


def _status(row: dict) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    if not row["creator_ok"]:
        return "creator_without_access"
    return "expired" if row["expired"] else "active"


def _link(row: dict, user: dict) -> dict:
    """One link as its manager sees it; the code (the credential) only for its creator."""
    mine = str(row["created_by"]) == str(user["id"])
    return {"id": str(row["id"]), "created_by": str(row["created_by"]), "mine": mine,
            "code": row["code"] if mine else None, "share_url": share_url(row["code"]) if mine else None,
            "created_at": iso(row["created_at"]), "expires_at": iso(row["ends_at"]),
            "revoked_at": iso(row["revoked_at"]), "status": _status(row)}


def max_share_hours() -> int:
    """The longest lifetime a new link may ask for (SHARE_MAX_TTL_SECONDS, in hours)."""
    return get_settings().share_max_ttl_s // 3600


def _share_hours(body: dict) -> int:
    """The asked lifetime; longer than the cap is refused (400), not silently cut, so the client knows."""
    unknown = [f"unknown field: {k}" for k in sorted(body) if k != "expires_in_hours"]
    limit = max_share_hours()
    hours: Any = body.get("expires_in_hours", min(DEFAULT_SHARE_HOURS, limit))
    details = list(unknown)
    if isinstance(hours, bool) or not isinstance(hours, int):
        details.append("expires_in_hours must be an integer")
    elif not 1 <= hours <= limit:
        details.append(f"expires_in_hours must be between 1 and {limit}")
    if details:
        raise ValidationError("Invalid share parameters", details=details)
    return hours


def _plausible_code(code: str) -> bool:
    return _CODE.fullmatch(code) is not None
