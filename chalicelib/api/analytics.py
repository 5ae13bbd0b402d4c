"""Views and analytics: players report views, uploaders and admins read the numbers.

A view is counted once per viewer per video per VIEW_WINDOW (clock-aligned
30-minute buckets): the bucket is part of the row's key, so "count a new view
or add watch time to the current one" is one INSERT ... ON CONFLICT that
concurrent reports from several tabs cannot double-count. Watch time is what
the player reports it has played since its last report, accumulated on the
view and never more than the video's duration.

Who reads what: a video's numbers go to its uploader and the stream's admins;
a stream's to its creators and admins; everyone gets their own (uploads and
watching). Platform admins do not bypass membership here either.
"""
from __future__ import annotations

import math
from typing import Any

from chalicelib import access, db
from chalicelib.api.http import iso
from chalicelib.errors import ConflictError, ForbiddenError, ValidationError

VIEW_WINDOW = "30 minutes"
MAX_REPORT_SECONDS = 24 * 3600
DEFAULT_DAYS = 30
MAX_DAYS = 365
TOP_VIDEOS = 10

_RECORD = """
INSERT INTO video_views AS vv (video_id, user_id, window_start, watch_seconds)
VALUES (%(vid)s, %(uid)s, date_bin(%(window)s::interval, now(), TIMESTAMPTZ '2000-01-01 UTC'),
        LEAST(%(seconds)s, %(duration)s))
ON CONFLICT (video_id, user_id, window_start) DO UPDATE
SET watch_seconds = LEAST(vv.watch_seconds + EXCLUDED.watch_seconds, %(duration)s), updated_at = now()
RETURNING vv.watch_seconds, vv.window_start, (vv.xmax = 0) AS counted
"""
_TOTALS = ("count(*) AS views, count(DISTINCT vv.user_id) AS unique_viewers,"
           " coalesce(sum(vv.watch_seconds), 0) AS watch_seconds")
_BY_DAY = (f"SELECT (vv.window_start AT TIME ZONE 'UTC')::date AS day, {_TOTALS}"
           " FROM video_views vv JOIN videos v ON v.id = vv.video_id"
           " WHERE {scope} AND vv.window_start >= now() - make_interval(days => %(days)s)"
           " GROUP BY 1 ORDER BY 1")
_TOP = (f"SELECT v.id, v.title, {_TOTALS} FROM video_views vv JOIN videos v ON v.id = vv.video_id"
        " WHERE {scope} AND v.hidden_at IS NULL AND v.deleted_at IS NULL"
        " GROUP BY v.id, v.title ORDER BY views DESC, watch_seconds DESC, v.id LIMIT %(top)s")


# ---------------------------------------------------------------- players

def record_view(user: dict, video_id: str, body: dict) -> dict:
    """Count a view (once per window) and add the watch time the player reports."""
    video = access.require_video_access(user, video_id)
    seconds = _watch_seconds(body)
    if video["processing_index"] != 0:
        raise ConflictError("Video is not ready for playback",
                            processing_index=video["processing_index"])
    row = db.fetch_one(_RECORD, {"vid": video["id"], "uid": user["id"], "window": VIEW_WINDOW,
                                 "seconds": seconds, "duration": video["duration_s"]})
    return {"video_id": str(video["id"]), "counted": row["counted"],
            "watch_seconds": round(row["watch_seconds"], 3), "window_start": iso(row["window_start"])}


def _watch_seconds(body: dict) -> float:
    """The body's watch_seconds (0 when absent); 400 for anything but a sane number."""
    unknown = [f"unknown field: {k}" for k in sorted(body) if k != "watch_seconds"]
    value = body.get("watch_seconds", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= MAX_REPORT_SECONDS:
        unknown.append(f"watch_seconds must be a number from 0 to {MAX_REPORT_SECONDS}")
    if unknown:
        raise ValidationError("Invalid view report", details=unknown)
    return float(value)


# ---------------------------------------------------------------- readers

def video_analytics(user: dict, video_id: str, params: dict) -> dict:
    """Views, unique viewers and watch time of one video; its uploader and stream admins."""
    video, role = access.video_and_role(user, video_id)
    if role != "admin" and str(video["uploaded_by"]) != str(user["id"]):
        raise ForbiddenError("Only the uploader or a stream admin can see analytics")
    days = _days(params)
    scope = {"scope": "vv.video_id = %(vid)s"}
    with db.transaction() as cur:
        cur.execute(f"SELECT {_TOTALS} FROM video_views vv WHERE vv.video_id = %(vid)s",
                    {"vid": video["id"]})
        totals = cur.fetchone()
        cur.execute(_BY_DAY.format(**scope), {"vid": video["id"], "days": days})
        by_day = cur.fetchall()
    duration = video["duration_s"]
    body = {"video_id": str(video["id"]), "days": days, **_totals(totals),
            "duration": duration, "by_day": [_day(r) for r in by_day]}
    body["average_completion"] = round(body["average_watch_seconds"] / duration, 4) \
        if duration and totals["views"] else None
    return body


def stream_analytics(user: dict, stream_id: str, params: dict) -> dict:
    """A stream's totals, its most viewed videos and views per day; creators and admins."""
    access.require_stream_role(user, stream_id, "creator")
    days = _days(params)
    scope = {"scope": "v.stream_id = %(sid)s"}
    args = {"sid": stream_id, "days": days, "top": TOP_VIDEOS}
    with db.transaction() as cur:
        cur.execute(f"SELECT {_TOTALS}, count(DISTINCT vv.video_id) AS videos_watched"
                    " FROM video_views vv JOIN videos v ON v.id = vv.video_id"
                    " WHERE v.stream_id = %(sid)s", args)
        totals = cur.fetchone()
        top, by_day = _top_and_days(cur, scope, args)
    return {"stream_id": stream_id, "days": days, **_totals(totals),
            "videos_watched": totals["videos_watched"],
            "top_videos": [_video(r) for r in top], "by_day": [_day(r) for r in by_day]}


def user_analytics(user: dict, params: dict) -> dict:
    """The caller's own numbers: views of what they uploaded, and what they watched."""
    days = _days(params)
    scope = {"scope": "v.uploaded_by = %(uid)s"}
    args = {"uid": user["id"], "days": days, "top": TOP_VIDEOS}
    with db.transaction() as cur:
        cur.execute(f"SELECT {_TOTALS}, (SELECT count(*) FROM videos WHERE uploaded_by = %(uid)s"
                    " AND deleted_at IS NULL) AS videos"
                    " FROM video_views vv JOIN videos v ON v.id = vv.video_id"
                    " WHERE v.uploaded_by = %(uid)s", args)
        uploads = cur.fetchone()
        cur.execute("SELECT count(*) AS views, count(DISTINCT video_id) AS videos,"
                    " coalesce(sum(watch_seconds), 0) AS watch_seconds"
                    " FROM video_views WHERE user_id = %(uid)s", args)
        watching = cur.fetchone()
        top, by_day = _top_and_days(cur, scope, args)
    return {"user_id": str(user["id"]), "days": days,
            "uploads": {"videos": uploads["videos"], **_totals(uploads)},
            "watching": {"views": watching["views"], "videos": watching["videos"],
                         "watch_seconds": round(float(watching["watch_seconds"]), 3)},
            "top_videos": [_video(r) for r in top], "by_day": [_day(r) for r in by_day]}


# ---------------------------------------------------------------- helpers

def _top_and_days(cur: Any, scope: dict, args: dict) -> tuple[list[dict], list[dict]]:
    """The most viewed visible videos and the views per day of a scope (a WHERE on v)."""
    cur.execute(_TOP.format(**scope), args)
    top = cur.fetchall()
    cur.execute(_BY_DAY.format(**scope), args)
    return top, cur.fetchall()


def _days(params: dict) -> int:
    raw = params.get("days", DEFAULT_DAYS)
    try:
        days = int(raw)
    except (TypeError, ValueError):
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError("Invalid analytics query", details=[f"days must be an integer from 1 to {MAX_DAYS}"])
    return days


def _totals(row: dict) -> dict[str, Any]:
    views, watched = row["views"], float(row["watch_seconds"])
    return {"views": views, "unique_viewers": row["unique_viewers"],
            "watch_seconds": round(watched, 3),
            "average_watch_seconds": round(watched / views, 3) if views else 0.0}


def _day(row: dict) -> dict:
    return {"date": row["day"].isoformat(), "views": row["views"],
            "unique_viewers": row["unique_viewers"], "watch_seconds": round(float(row["watch_seconds"]), 3)}


def _video(row: dict) -> dict:
    return {"id": str(row["id"]), "title": row["title"], "views": row["views"],
            "unique_viewers": row["unique_viewers"], "watch_seconds": round(float(row["watch_seconds"]), 3)}
