"""GET /videos: the catalog of reference/003, across every stream the caller is a member of.

Filters: category, tag, status, featured and a text filter (title or
description); newest first; `pagination {page, limit, total, totalPages}`.
Hidden videos are listed to their stream's admins only, as in a stream's list.
"""
from __future__ import annotations

import datetime as dt

from chalicelib import db
from chalicelib.api.http import iso
from chalicelib.api.videos import MAX_CATEGORY, MAX_TAG, thumbnail_url
from chalicelib.errors import ValidationError

MAX_SEARCH = 200
# reference/003's status names, and the video statuses each one covers.
STATUSES = {"ready": ("complete",), "complete": ("complete",), "processing": ("queued", "running"),
            "failed": ("failed",), "duplicate": ("duplicate",)}
_BOOLS = {"true": True, "1": True, "false": False, "0": False}


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def filters(query: dict) -> tuple[list[str], dict]:
    """SQL conditions and parameters for the query's filters; 400 with every problem otherwise."""
    where, params, details = [], {}, []
    category = query.get("category")
    if category is not None:
        if not category.strip() or len(category) > MAX_CATEGORY:
            details.append(f"category must be 1 to {MAX_CATEGORY} characters")
        where.append("v.category = %(category)s")
        params["category"] = category.strip()
    tag = query.get("tag")
    if tag is not None:
        if not tag.strip() or len(tag) > MAX_TAG:
            details.append(f"tag must be 1 to {MAX_TAG} characters")
        where.append("v.tags @> ARRAY[%(tag)s]::text[]")
        params["tag"] = tag.strip()
    status = query.get("status")
    if status is not None:
        if status not in STATUSES:
            details.append(f"status must be one of {', '.join(STATUSES)}")
        where.append("v.status = ANY(%(statuses)s)")
        params["statuses"] = list(STATUSES.get(status, ()))
    featured = query.get("featured")
    if featured is not None:
        if featured.lower() not in _BOOLS:
            details.append("featured must be true or false")
        where.append("v.featured = %(featured)s")
        params["featured"] = _BOOLS.get(featured.lower(), False)
    text = query.get("search", query.get("q"))
    if text is not None:
        if not text.strip() or len(text) > MAX_SEARCH:
            details.append(f"search must be 1 to {MAX_SEARCH} characters")
        where.append("(v.title ILIKE %(text)s OR v.description ILIKE %(text)s)")
        params["text"] = _like(text.strip())
    if details:
        raise ValidationError("Invalid filter", details=details)
    return where, params


def list_catalog(user: dict, query: dict, page: int, limit: int) -> dict:
    """A page of the videos the caller may see in any of their streams, newest first.

    The page's ids and the total come from the narrow videos_catalog index (an
    index-only scan over the caller's streams); only the page's rows are read whole.
    """
    where, params = filters(query)
    row = db.fetch_one(
        "WITH visible AS NOT MATERIALIZED ("
        " SELECT v.id, v.uploaded_at FROM stream_members m JOIN videos v ON v.stream_id = m.stream_id"
        " WHERE m.user_id = %(uid)s AND v.deleted_at IS NULL AND (v.hidden_at IS NULL OR m.role = 'admin')"
        + "".join(f" AND {w}" for w in where) + "),"
        " page AS (SELECT id, uploaded_at FROM visible ORDER BY uploaded_at DESC, id DESC"
        "  LIMIT %(limit)s OFFSET %(offset)s)"
        " SELECT (SELECT count(*) FROM visible) AS total, coalesce(json_agg(json_build_object("
        "  'id', v.id, 'stream_id', v.stream_id, 'title', v.title, 'description', v.description,"
        "  'duration', v.duration_s, 'processing_index', v.processing_index, 'status', v.status,"
        "  'category', v.category, 'tags', v.tags, 'featured', v.featured, 'uploaded_at', v.uploaded_at,"
        "  'uploaded_by', v.uploaded_by) ORDER BY p.uploaded_at DESC, p.id DESC), '[]') AS videos"
        " FROM page p JOIN videos v ON v.id = p.id",
        {**params, "uid": user["id"], "limit": limit, "offset": (page - 1) * limit})
    total = int(row["total"])
    videos = [{**v, "uploaded_at": iso(dt.datetime.fromisoformat(v["uploaded_at"])),
               "thumbnail_url": thumbnail_url(v["id"])} for v in row["videos"]]
    return {"videos": videos,
            "pagination": {"page": page, "limit": limit, "total": total, "totalPages": -(-total // limit)}}


