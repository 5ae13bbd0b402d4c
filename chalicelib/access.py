"""Who may touch a stream or a video: the one place every stream-scoped route asks.

Membership is strict: platform admins (chalicelib.auth.users.is_platform_admin)
do NOT bypass it, so a stream's clips are only ever seen by its members.
Unknown or ill-formed ids are 404; existing streams the caller is not a member
of are 403, so guessing ids from another stream never reaches its data.
A video hidden by moderation (`hidden_at`) is 404 for every member but the
stream's admins, who decide about it; every route that reads a video through
require_video_access (details, playback, files, social, relations) follows.
"""
from __future__ import annotations

import uuid
from typing import Any

from chalicelib import db
from chalicelib.errors import ForbiddenError, NotFoundError

ROLE_RANK = {"viewer": 1, "creator": 2, "admin": 3}
ROLES = tuple(ROLE_RANK)

_TOO_LOW = {"admin": "Admin access required", "creator": "Creator access required",
            "viewer": "Access denied"}


def canonical_id(value: Any) -> str | None:
    """The canonical UUID string of value, or None if it cannot be one of our ids."""
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        return None


def stream_role(user_id: Any, stream_id: Any) -> str | None:
    """The user's role in the stream, or None if they are not a member."""
    uid, sid = canonical_id(user_id), canonical_id(stream_id)
    if uid is None or sid is None:
        return None
    row = db.fetch_one("SELECT role FROM stream_members WHERE stream_id = %s AND user_id = %s",
                       (sid, uid))
    return row["role"] if row else None


def check_role(role: str | None, minimum: str) -> str:
    """role if it reaches minimum; ForbiddenError with the documented message otherwise."""
    if role is None:
        raise ForbiddenError("Access denied")
    if ROLE_RANK[role] < ROLE_RANK[minimum]:
        raise ForbiddenError(_TOO_LOW[minimum])
    return role


def require_stream_role(user: dict, stream_id: Any, minimum: str = "viewer") -> str:
    """The caller's role in an existing stream, at least minimum; 404 / 403 otherwise."""
    if minimum not in ROLE_RANK:
        raise ValueError(f"unknown role {minimum!r}")
    sid = canonical_id(stream_id)
    if sid is None:
        raise NotFoundError("Stream not found")
    row = db.fetch_one(
        "SELECT s.id, m.role FROM streams s LEFT JOIN stream_members m"
        " ON m.stream_id = s.id AND m.user_id = %s WHERE s.id = %s", (user["id"], sid))
    if row is None:
        raise NotFoundError("Stream not found")
    return check_role(row["role"], minimum)


def require_video_access(user: dict, video_id: Any, minimum: str = "viewer") -> dict:
    """The video row if the caller's role in its stream reaches minimum; 404 / 403 otherwise."""
    return video_and_role(user, video_id, minimum)[0]


def visible_video(user: dict, video_id: Any) -> dict | None:
    """The video row if require_video_access would let the caller read it, else None.

    For routes that mention another video (a duplicate's original): they name it
    only to callers who could open it, so no id or title crosses a stream wall.
    """
    if video_id is None:
        return None
    try:
        return require_video_access(user, video_id)
    except (NotFoundError, ForbiddenError):
        return None


# The clip page's like count and the caller's like, in the same round trip as the access check.
_LIKES = (", (SELECT count(*) FROM likes l WHERE l.video_id = v.id) AS total_likes,"
          " EXISTS (SELECT 1 FROM likes l WHERE l.video_id = v.id AND l.user_id = %(uid)s) AS liked")


def video_and_role(user: dict, video_id: Any, minimum: str = "viewer", *,
                   likes: bool = False) -> tuple[dict, str]:
    """require_video_access, plus the caller's role in the video's stream (one query).

    With likes, the row also carries total_likes and liked (whether the caller likes it).
    """
    if minimum not in ROLE_RANK:
        raise ValueError(f"unknown role {minimum!r}")
    vid = canonical_id(video_id)
    if vid is None:
        raise NotFoundError("Video not found")
    row = db.fetch_one(
        "SELECT v.*, m.role AS member_role" + (_LIKES if likes else "") +
        " FROM videos v LEFT JOIN stream_members m ON m.stream_id = v.stream_id AND m.user_id = %(uid)s"
        " WHERE v.id = %(vid)s AND v.deleted_at IS NULL",
        {"uid": user["id"], "vid": vid})
    if row is None:
        raise NotFoundError("Video not found")
    role = check_role(row.pop("member_role"), minimum)
    if row.get("hidden_at") is not None and role != "admin":
        raise NotFoundError("Video not found")
    return row, role


def lock_video(cur: Any, video_id: str) -> dict:
    """The live (not deleted) video row, locked for the caller's transaction; 404 otherwise."""
    cur.execute("SELECT * FROM videos WHERE id = %s AND deleted_at IS NULL FOR UPDATE", (video_id,))
    row = cur.fetchone()
    if row is None:
        raise NotFoundError("Video not found")
    return row


def lock_stream_role(cur: Any, user: dict, stream_id: Any, minimum: str = "viewer") -> str:
    """require_stream_role inside the caller's transaction, locking the stream row.

    Membership changes of one stream then run one at a time, so checks such as
    "at least one admin remains" cannot be raced.
    """
    if minimum not in ROLE_RANK:
        raise ValueError(f"unknown role {minimum!r}")
    sid = canonical_id(stream_id)
    if sid is None:
        raise NotFoundError("Stream not found")
    cur.execute(
        "SELECT s.id, m.role FROM streams s LEFT JOIN stream_members m"
        " ON m.stream_id = s.id AND m.user_id = %s WHERE s.id = %s FOR UPDATE OF s",
        (user["id"], sid))
    row = cur.fetchone()
    if row is None:
        raise NotFoundError("Stream not found")
    return check_role(row["role"], minimum)
