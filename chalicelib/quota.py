"""The storage quota: the declared bytes of one user's live videos (USER_STORAGE_QUOTA_BYTES).

Uploads (chalicelib/api/uploads.py) and ingest from a URL (chalicelib/pipeline/ingest.py)
count against it under the same lock, so two at once cannot both pass the check.
"""
from __future__ import annotations


def quota_used(cur, user_id: str, except_video: str | None = None) -> int:
    """Declared bytes of the user's live videos, once their uploads' turn on the quota lock is had."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('upload-quota:' || %s))", (user_id,))
    cur.execute("SELECT coalesce(sum(size_bytes), 0) AS used FROM videos"
                " WHERE uploaded_by = %s AND deleted_at IS NULL AND id IS DISTINCT FROM %s",
                (user_id, except_video))
    return int(cur.fetchone()["used"])
