"""Processing status for users and the pipeline's operations for admins."""
from __future__ import annotations

import logging
import uuid

from chalicelib import access, db, failures
from chalicelib.api.http import iso
from chalicelib.api.moderation import audit
from chalicelib.auth.users import is_platform_admin, require_platform_admin
from chalicelib.config import get_settings
from chalicelib.errors import ConflictError, NotFoundError, ValidationError
from chalicelib.stages import STAGE_NAMES

logger = logging.getLogger(__name__)

_REMAINING = {1: ["dedup", "transcode", "transcribe", "embed"], 2: ["transcode", "transcribe", "embed"],
              3: ["transcribe", "embed"], 4: ["embed"]}
_FALLBACK_STAGE_S = {"dedup": 10.0, "transcode": 60.0, "transcribe": 20.0, "embed": 5.0}


def _humanize(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} seconds"
    return f"{round(seconds / 60)} minutes"


def mean_stage_seconds() -> dict[str, float]:
    """Mean duration of each stage over its recent successful runs."""
    rows = db.fetch_all(
        "SELECT stage, avg(extract(epoch FROM finished_at - started_at)) AS mean_s FROM ("
        "  SELECT stage, started_at, finished_at, row_number() OVER (PARTITION BY stage"
        "    ORDER BY finished_at DESC) AS n FROM stage_runs WHERE status = 'succeeded') r"
        " WHERE n <= 200 GROUP BY stage")
    means = dict(_FALLBACK_STAGE_S)
    means.update({r["stage"]: float(r["mean_s"]) for r in rows})
    return means


def estimated_time(processing_index: int) -> str:
    """A rough time until a video at this index is ready."""
    means = mean_stage_seconds()
    return _humanize(sum(means[s] for s in _REMAINING.get(processing_index, [])))


def failure_fields(video: dict, user: dict | None) -> dict:
    """failure_reason, the public reason, for everyone; failure_detail for platform admins only.

    The detail (exception text, FFmpeg's words, hosts, paths, SQL) never reaches a viewer.
    """
    failed = video["status"] == "failed" or bool(video.get("failure_reason"))
    out = {"failure_reason": failures.public_reason(video.get("failure_public"), failed)}
    if user is not None and is_platform_admin(user):
        out["failure_detail"] = video.get("failure_reason")
    return out


def _run_error(run: dict, admin: bool) -> str | None:
    if admin or run["error"] is None:
        return run["error"]
    return failures.public_reason(run["public_reason"], failed=True)


def status_of(video: dict, user: dict | None = None) -> dict:
    """GET /videos/{id}/processing for a video row (error details for platform admins only)."""
    admin = user is not None and is_platform_admin(user)
    execution = db.fetch_one(
        "SELECT * FROM pipeline_executions WHERE video_id = %s ORDER BY started_at DESC LIMIT 1",
        (video["id"],))
    history = db.fetch_all(
        "SELECT stage, status, started_at, finished_at, error, public_reason FROM stage_runs"
        " WHERE video_id = %s ORDER BY started_at, id", (video["id"],))
    return {
        "video_id": str(video["id"]),
        "processing_index": video["processing_index"],
        "stage": STAGE_NAMES.get(video["processing_index"]),
        "status": video["status"],
        "execution_arn": execution["execution_arn"] if execution else None,
        "started_at": iso(execution["started_at"]) if execution else None,
        "finished_at": iso(execution["finished_at"]) if execution else None,
        **failure_fields(video, user),
        "failed_stage": video["failed_stage"],
        "history": [{"stage": h["stage"], "status": h["status"], "started_at": iso(h["started_at"]),
                     "finished_at": iso(h["finished_at"]), "error": _run_error(h, admin)}
                    for h in history],
    }


def processing(user: dict, video_id: str) -> dict:
    return status_of(access.require_video_access(user, video_id), user)


def queue(user: dict) -> dict:
    """What is waiting and running now (platform admins)."""
    require_platform_admin(user)
    rows = db.fetch_all(
        "SELECT v.id, v.title, v.processing_index, v.status, v.uploaded_at FROM videos v"
        " WHERE v.status IN ('queued', 'running') AND v.deleted_at IS NULL ORDER BY v.uploaded_at")
    # The detail stays here, for platform admins (this route is theirs alone).
    failed = db.fetch_all(
        "SELECT id, title, failed_stage, failure_reason, failure_public, updated_at FROM videos"
        " WHERE status = 'failed' AND deleted_at IS NULL ORDER BY updated_at DESC LIMIT 50")
    running = [r for r in rows if r["status"] == "running"]
    waiting = [r for r in rows if r["status"] == "queued"]
    means = mean_stage_seconds()
    wait_s = sum(sum(means[s] for s in _REMAINING.get(r["processing_index"], [])) for r in rows)
    current = running[0] if running else None
    return {
        "queue_length": len(waiting),
        "running": len(running),
        "current_job": {"video_id": str(current["id"]), "stage": STAGE_NAMES[current["processing_index"]]}
        if current else None,
        "estimated_wait": _humanize(wait_s) if rows else "0 seconds",
        "jobs": [{"video_id": str(r["id"]), "title": r["title"], "status": r["status"],
                  "processing_index": r["processing_index"],
                  "stage": STAGE_NAMES.get(r["processing_index"]),
                  "uploaded_at": iso(r["uploaded_at"])} for r in rows[:100]],
        "recent_failures": [{
            "video_id": str(r["id"]), "title": r["title"], "failed_stage": r["failed_stage"],
            "failure_reason": failures.public_reason(r["failure_public"], failed=True),
            "failure_detail": r["failure_reason"], "updated_at": iso(r["updated_at"])}
            for r in failed],
    }


def stats(user: dict) -> dict:
    """Counts per stage and state, and stage durations (platform admins)."""
    require_platform_admin(user)
    by_state = db.fetch_all(
        "SELECT processing_index, status, count(*) AS n FROM videos GROUP BY 1, 2 ORDER BY 1, 2")
    durations = db.fetch_all(
        "SELECT stage, status, count(*) AS runs,"
        " avg(extract(epoch FROM finished_at - started_at)) AS mean_s,"
        " percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)) AS p95_s"
        " FROM stage_runs WHERE finished_at IS NOT NULL GROUP BY stage, status ORDER BY stage, status")
    totals: dict[str, int] = {}
    for r in by_state:
        totals[r["status"]] = totals.get(r["status"], 0) + r["n"]
    return {
        "videos": totals,
        "by_stage": [{"processing_index": r["processing_index"], "stage": STAGE_NAMES.get(r["processing_index"]),
                      "status": r["status"], "count": r["n"]} for r in by_state],
        "stages": [{"stage": r["stage"], "status": r["status"], "runs": r["runs"],
                    "mean_seconds": round(float(r["mean_s"]), 3),
                    "p95_seconds": round(float(r["p95_s"]), 3)} for r in durations],
    }


def retry(actor: dict, body: dict) -> dict:
    """Start failed videos again (platform admins); succeeded stages are not redone.

    Each started retry is written to the audit log under actor.
    """
    require_platform_admin(actor)
    ids = body.get("video_ids")
    if ids is None and body.get("video_id") is not None:
        ids = [body.get("video_id")]
    if not isinstance(ids, list) or not ids or len(ids) > 100 or not all(isinstance(i, str) for i in ids):
        raise ValidationError("Invalid retry request",
                              details=["video_id or video_ids (1 to 100 ids) is required"])
    results = []
    for raw in ids:
        try:
            video_id = str(uuid.UUID(raw))
        except ValueError:
            raise NotFoundError("Video not found") from None
        results.append(retry_video(video_id))
        with db.transaction() as cur:
            audit(cur, actor, "processing.retry", "video", video_id,
                  details={"outcome": results[-1]["outcome"], "execution": results[-1]["execution"]})
    return {"retried": results}


def retry_video(video_id: str) -> dict:
    """A new execution for one failed video, resuming after its last good stage."""
    from chalicelib.pipeline import start

    video = db.fetch_one("SELECT * FROM videos WHERE id = %s", (video_id,))
    if video is None:
        raise NotFoundError("Video not found")
    if video["status"] != "failed":
        raise ConflictError("Only failed videos can be retried", video_id=video_id,
                            status=video["status"])
    last = db.fetch_one(
        "SELECT etag FROM pipeline_executions WHERE video_id = %s ORDER BY started_at DESC LIMIT 1",
        (video_id,))
    base_etag = (last["etag"] if last else "noetag").split("#")[0]
    attempt = db.fetch_one("SELECT count(*) AS n FROM pipeline_executions WHERE video_id = %s",
                           (video_id,))["n"]
    db.execute("UPDATE videos SET status = 'queued', updated_at = now() WHERE id = %s AND status = 'failed'",
               (video_id,))
    outcome, name = start.start_for_object({
        "bucket": get_settings().bucket, "key": video["raw_key"],
        "etag": f"{base_etag}#retry{attempt}", "version_id": None, "resume": True})
    return {"video_id": video_id, "outcome": outcome, "execution": name}


DUPLICATE_KINDS = ("duplicate", "cross_stream")


def duplicates(user: dict, page: int, limit: int, kind: str | None = None) -> dict:
    """Flagged duplicates (kind duplicate) and matches across streams (kind cross_stream); admin.

    A flagged duplicate's original is always in its own stream; a cross-stream
    match names the earlier clip of another stream with the same content. Only
    platform admins see the latter (pipeline.dedup records them, nothing else reads them).
    """
    require_platform_admin(user)
    kind = "all" if kind is None else kind      # ?kind= (empty) is no kind, as the document says
    if kind not in (*DUPLICATE_KINDS, "all"):
        raise ValidationError("Invalid kind", details=[f"kind must be one of {', '.join(DUPLICATE_KINDS)}, all"])
    kinds = list(DUPLICATE_KINDS) if kind == "all" else [kind]
    rows = db.fetch_all(
        "WITH found AS ("
        "  SELECT 'duplicate' AS kind, id, duplicate_of AS original_id, similarity"
        "    FROM videos WHERE processing_index = -1"
        "  UNION ALL"
        "  SELECT 'cross_stream', video_id, match_id, similarity FROM cross_stream_matches)"
        " SELECT f.kind, f.similarity, d.id, d.title, d.status, d.uploaded_at, d.uploaded_by, d.stream_id,"
        " o.id AS original_id, o.title AS original_title, o.uploaded_by AS original_uploaded_by,"
        " o.uploaded_at AS original_uploaded_at, o.stream_id AS original_stream_id,"
        " count(*) OVER () AS total"
        " FROM found f JOIN videos d ON d.id = f.id LEFT JOIN videos o ON o.id = f.original_id"
        " WHERE f.kind = ANY(%s) AND d.deleted_at IS NULL"
        "   AND (f.kind = 'duplicate' OR o.deleted_at IS NULL)"
        " ORDER BY d.uploaded_at DESC, d.id, f.kind, o.uploaded_at, o.id LIMIT %s OFFSET %s",
        (kinds, limit, (page - 1) * limit))
    return {
        "duplicates": [{
            "kind": r["kind"], "id": str(r["id"]), "title": r["title"], "status": r["status"],
            "similarity": r["similarity"],
            "uploaded_by": str(r["uploaded_by"]), "uploaded_at": iso(r["uploaded_at"]),
            "stream_id": str(r["stream_id"]),
            "original_video": {"id": str(r["original_id"]), "title": r["original_title"],
                               "uploaded_by": str(r["original_uploaded_by"]),
                               "uploaded_at": iso(r["original_uploaded_at"]),
                               "stream_id": str(r["original_stream_id"])} if r["original_id"] else None,
        } for r in rows],
        "kind": kind, "total": rows[0]["total"] if rows else 0, "page": page, "limit": limit,
    }

