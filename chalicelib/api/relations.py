"""Video Processing & Intelligence: how a clip relates to other clips."""
from __future__ import annotations

from chalicelib import access, db
from chalicelib.auth.tokens import iso
from chalicelib.errors import NotFoundError


def duplicates(user: dict, video_id: str) -> dict:
    """GET /videos/{id}/duplicates: the original of a flagged duplicate."""
    video = access.require_video_access(user, video_id)
    if video["processing_index"] != -1:
        raise NotFoundError("Not a duplicate video")
    original = db.fetch_one(
        "SELECT id, title, uploaded_by, uploaded_at FROM videos WHERE id = %s",
        (video["duplicate_of"],)) if video["duplicate_of"] else None
    return {
        "is_duplicate": True,
        "original_video": {"id": str(original["id"]), "title": original["title"],
                           "uploaded_by": str(original["uploaded_by"]),
                           "uploaded_at": iso(original["uploaded_at"])} if original else None,
        "similarity": video["similarity"],
    }
