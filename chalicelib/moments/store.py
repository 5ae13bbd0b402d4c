"""Moments, their clips and the generation run of each video, in Postgres. Light: the API uses it.

One run per video at a time: a run is claimed atomically (an upsert that only
succeeds when no run of the video is queued, analysing or extracting), so two
requests cannot start two executions that would overwrite each other's clips.
"""
from __future__ import annotations

import json
from typing import Any

from chalicelib import db

ACTIVE = ("queued", "analysing", "extracting")


def claim_run(video_id: str, user_id: str | None, execution_name: str, status: str = "queued",
              keep_analysis: bool = False) -> bool:
    """Start a run unless one is active; True when claimed."""
    row = db.fetch_one(
        "INSERT INTO moment_runs (video_id, execution_name, status, requested_by)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (video_id) DO UPDATE SET"
        " execution_name = EXCLUDED.execution_name, status = EXCLUDED.status,"
        " requested_by = EXCLUDED.requested_by, error = NULL, execution_arn = NULL,"
        " analysis = CASE WHEN %s THEN moment_runs.analysis END,"
        " started_at = now(), finished_at = NULL"
        " WHERE moment_runs.status NOT IN ('queued', 'analysing', 'extracting')"
        " RETURNING video_id", (video_id, execution_name, status, user_id, keep_analysis))
    return row is not None


def run_of(video_id: str) -> dict | None:
    return db.fetch_one("SELECT * FROM moment_runs WHERE video_id = %s", (video_id,))


def update_run(video_id: str, execution_name: str | None = None, *, status: str | None = None,
               error: str | None = None, analysis: dict | None = None,
               execution_arn: str | None = None, cur: Any = None) -> bool:
    """Set fields of the video's run (of that execution, when named); False if it is not current.

    With `cur`, inside that transaction (a transition that also emits webhooks).
    """
    return _execute(
        cur,
        "UPDATE moment_runs SET status = coalesce(%(status)s, status), error = coalesce(%(error)s, error),"
        " analysis = coalesce(%(analysis)s::jsonb, analysis),"
        " execution_arn = coalesce(%(arn)s, execution_arn),"
        " finished_at = CASE WHEN %(status)s IN ('complete', 'failed') THEN now() ELSE finished_at END"
        " WHERE video_id = %(video_id)s AND (%(execution)s::text IS NULL OR execution_name = %(execution)s)",
        {"status": status, "error": error, "analysis": json.dumps(analysis) if analysis else None,
         "arn": execution_arn, "video_id": video_id, "execution": execution_name}) == 1


def release_run(video_id: str, execution_name: str, error: str) -> None:
    """A run whose execution never started: failed, so the next request may start another."""
    update_run(video_id, execution_name, status="failed", error=error)


def replace_moments(video_id: str, moments: list[dict]) -> list[str]:
    """Store a generation's moments instead of the earlier ones; their ids in time order."""
    with db.transaction() as cur:
        cur.execute("DELETE FROM moments WHERE video_id = %s", (video_id,))
        ids = []
        for m in moments:
            cur.execute(
                "INSERT INTO moments (video_id, start_s, end_s, title, score, reason, features)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (video_id, m["start_time"], m["end_time"], m["title"], m["score"], m["reason"],
                 json.dumps(m.get("features") or {})))
            ids.append(str(cur.fetchone()["id"]))
    return ids


def moments_of(video_id: str) -> list[dict]:
    return db.fetch_all("SELECT * FROM moments WHERE video_id = %s ORDER BY start_s, id", (video_id,))


def moment(moment_id: str) -> dict | None:
    return db.fetch_one("SELECT * FROM moments WHERE id = %s", (moment_id,))


def set_bounds(moment_id: str, start: float, end: float, adjustments: list[str]) -> dict:
    """New boundaries from refining; the clip must be cut again."""
    return db.fetch_one(
        "UPDATE moments SET start_s = %s, end_s = %s, refined = true,"
        " features = features || jsonb_build_object('refinements', %s::jsonb),"
        " clip_status = 'pending', clip_error = NULL, updated_at = now()"
        " WHERE id = %s RETURNING *", (start, end, json.dumps(adjustments), moment_id))


def set_clip(moment_id: str, **fields: Any) -> dict | None:
    """Record a clip's state; None when the moment (or its video, being deleted) is gone."""
    sets = ", ".join(f"{k} = %({k})s" for k in fields)
    return db.fetch_one(
        f"UPDATE moments m SET {sets}, updated_at = now() FROM videos v"
        " WHERE m.id = %(id)s AND v.id = m.video_id AND v.deleted_at IS NULL RETURNING m.*",
        {**fields, "id": moment_id})


def fail_unfinished(video_id: str, moment_ids: list[str], error: str, cur: Any = None) -> list[str]:
    """Clips of a run that did not become ready are failed with the run's reason; the ids failed now."""
    sql = ("UPDATE moments SET clip_status = 'failed', clip_error = coalesce(clip_error, %s),"
           " updated_at = now() WHERE video_id = %s AND id::text = ANY(%s)"
           " AND clip_status IN ('pending', 'extracting') RETURNING id")
    params = (error, video_id, list(moment_ids))
    if cur is None:
        return [str(r["id"]) for r in db.fetch_all(sql, params)]
    cur.execute(sql, params)
    return [str(r["id"]) for r in cur.fetchall()]


def clips_for_events(cur: Any, moment_ids: list[str]) -> list[dict]:
    """These moments with their video's stream (not of a deleted video), in the caller's transaction."""
    cur.execute(
        "SELECT m.*, v.stream_id FROM moments m JOIN videos v ON v.id = m.video_id"
        " WHERE m.id::text = ANY(%s) AND v.deleted_at IS NULL ORDER BY m.start_s, m.id", (list(moment_ids),))
    return cur.fetchall()


def words_of(video_id: str) -> list[dict]:
    """Every transcribed word of the video with its times, in order."""
    rows = db.fetch_all("SELECT words FROM transcript_segments WHERE video_id = %s ORDER BY idx",
                        (video_id,))
    return [{"word": w["word"], "start": float(w["start"]), "end": float(w["end"]),
             "probability": w.get("probability")} for r in rows for w in (r["words"] or [])]


def _execute(cur: Any, sql: str, params: Any) -> int:
    """One statement in the caller's transaction when given one, else in its own; the row count."""
    if cur is None:
        return db.execute(sql, params)
    cur.execute(sql, params)
    return cur.rowcount
