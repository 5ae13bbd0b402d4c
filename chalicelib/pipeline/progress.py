"""Video processing state: processing_index, status and the stage history.

processing_index: 1 dedup, 2 transcode, 3 speech-to-text, 4 AI analysis,
0 complete, -1 duplicate. Steps never move a video backwards: an update only
lands when the new index ranks at or after the current one, so a retried or
redriven step cannot undo later progress.

While the Parallel state runs the ladder beside the speech branch, the index
reads as the furthest stage *started*: 2 while only the transcode runs, then 3
and 4 as transcription and embedding start (the transcode may still be
encoding), and 0 only once Finalize ran after both branches. The stage
history (stage_runs) shows what is running at once.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from chalicelib import db, failures, live, observability, webhooks

logger = logging.getLogger(__name__)

STAGE_INDEX = {"dedup": 1, "transcode": 2, "transcode_chunk": 2, "transcribe": 3, "embed": 4, "finalize": 0}

# Order of processing_index values along the pipeline (0 and -1 are final).
_RANK_SQL = "(CASE {col} WHEN 0 THEN 5 WHEN -1 THEN 6 ELSE {col} END)"
RANK = {1: 1, 2: 2, 3: 3, 4: 4, 0: 5, -1: 6}


class VideoGone(Exception):
    """The video row no longer exists (deleted while processing)."""


class ExecutionClosed(Exception):
    """The execution already ended (a parallel branch failed): a late step must not reopen the video."""


def begin_stage(video_id: str, stage: str, execution: str | None) -> int:
    """Record a stage attempt and move the video to its index; the stage_run id."""
    index = STAGE_INDEX[stage]
    with db.transaction() as cur:
        cur.execute("SELECT processing_index, status FROM videos WHERE id = %s FOR UPDATE",
                    (video_id,))
        row = cur.fetchone()
        if row is None:
            raise VideoGone(f"video {video_id} no longer exists")
        if execution:
            cur.execute("SELECT status FROM pipeline_executions WHERE execution_name = %s", (execution,))
            run = cur.fetchone()
            if run and run["status"] in ("failed", "aborted", "succeeded", "duplicate"):
                raise ExecutionClosed(f"execution {execution} already ended ({run['status']})")
        if RANK[index] >= RANK[row["processing_index"]] and row["status"] != "duplicate":
            cur.execute(
                "UPDATE videos SET processing_index = %s, status = 'running',"
                " failure_reason = NULL, failure_public = NULL, failed_stage = NULL,"
                " updated_at = now()"
                " WHERE id = %s", (index, video_id))
        cur.execute(
            "INSERT INTO stage_runs (video_id, execution_name, stage, status)"
            " VALUES (%s, %s, %s, 'running') RETURNING id", (video_id, execution, stage))
        run_id = cur.fetchone()["id"]
    live.publish_video(video_id, "video.processing", step=stage)
    return run_id


def end_stage(run_id: int, error: str | None = None, output: dict | None = None,
              public: str | None = None) -> None:
    """Close a stage attempt as succeeded (with its output), or failed with its error.

    `public` is the viewers' reason for a failure no retry can fix (chalicelib.failures).
    """
    row = db.fetch_one(
        "UPDATE stage_runs SET status = %s, error = %s, public_reason = %s, output = %s,"
        " finished_at = now()"
        " WHERE id = %s RETURNING stage, extract(epoch FROM finished_at - started_at) AS seconds",
        ("failed" if error else "succeeded", error, public if error else None,
         None if error else json.dumps(output or {}), run_id))
    if row:
        observability.stage_ended(row["stage"], row["seconds"], failed=bool(error))


def succeeded_output(video_id: str, stage: str) -> dict | None:
    """The output of the stage's latest successful attempt for this video, if any."""
    row = db.fetch_one(
        "SELECT output FROM stage_runs WHERE video_id = %s AND stage = %s AND status = 'succeeded'"
        " AND output IS NOT NULL ORDER BY finished_at DESC LIMIT 1", (video_id, stage))
    return row["output"] if row else None


def record_resumed(video_id: str, stage: str, execution: str | None, output: dict) -> None:
    """Note in the history that a resumed execution reused a stage's earlier result."""
    db.execute(
        "INSERT INTO stage_runs (video_id, execution_name, stage, status, finished_at, output, resumed)"
        " VALUES (%s, %s, %s, 'succeeded', now(), %s, true)",
        (video_id, execution, stage, json.dumps(output)))


# Work after playable, recorded in the stage history without moving processing_index.
FALLBACKS_STAGE = "mp4_fallbacks"


def record_side_stage(video_id: str, stage: str, execution: str | None, started: float, *,
                      error: str | None = None, output: dict | None = None) -> None:
    """Record the outcome of work done after the video became playable (the MP4 fallbacks).

    A finished row in the stage history (from `started`, epoch seconds, to now),
    succeeded or failed; unlike begin_stage it leaves processing_index and status alone.
    """
    db.execute(
        "INSERT INTO stage_runs (video_id, execution_name, stage, status, started_at, finished_at, error, output)"
        " VALUES (%s, %s, %s, %s, to_timestamp(%s), now(), %s, %s)",
        (video_id, execution, stage, "failed" if error else "succeeded", started, error,
         None if error else json.dumps(output or {})))


def side_stage_failed(video_id: str, stage: str) -> bool:
    """True when the latest recorded outcome of that after-playable stage is a failure."""
    row = db.fetch_one(
        "SELECT status FROM stage_runs WHERE video_id = %s AND stage = %s AND finished_at IS NOT NULL"
        " ORDER BY finished_at DESC, id DESC LIMIT 1", (video_id, stage))
    return bool(row) and row["status"] == "failed"


def update_video(video_id: str, **fields: Any) -> None:
    """Store facts a step learned about the video (duration, codecs, hash ...)."""
    if not fields:
        return
    cols = ", ".join(f"{name} = %s" for name in fields)
    db.execute(f"UPDATE videos SET {cols}, updated_at = now() WHERE id = %s",
               (*fields.values(), video_id))


def complete(video_id: str, execution: str | None = None) -> None:
    """processing_index 0: every asset is stored (video.ready, once per execution)."""
    with db.transaction() as cur:
        cur.execute(
            "UPDATE videos SET processing_index = 0, status = 'complete', processed_at = now(),"
            " failure_reason = NULL, failure_public = NULL, failed_stage = NULL, updated_at = now()"
            f" WHERE id = %s AND {_RANK_SQL.format(col='processing_index')} <= 5"
            " RETURNING id, stream_id, title, duration_s", (video_id,))
        row = cur.fetchone()
        _close_execution(cur, execution, "succeeded")
        deliveries = webhooks.emit(cur, row["stream_id"], "video.ready", video_id, webhooks.video_payload(
            row, status="complete", duration_s=row["duration_s"]), execution) if row else []
    webhooks.start_deliveries(deliveries)
    live.publish_video(video_id, "video.processing", step="finalize")


def mark_duplicate(video_id: str, original_id: str, similarity: float, execution: str | None = None) -> None:
    """processing_index -1: flagged as a duplicate of an earlier clip (video.duplicate, once per execution).

    The event names the original only when it is in the same stream (no id crosses a stream wall).
    """
    with db.transaction() as cur:
        cur.execute(
            "UPDATE videos SET processing_index = -1, status = 'duplicate', duplicate_of = %s,"
            " similarity = %s, processed_at = now(), updated_at = now() WHERE id = %s"
            " RETURNING id, stream_id, title,"
            " (SELECT o.stream_id FROM videos o WHERE o.id = %s) AS original_stream",
            (original_id, similarity, video_id, original_id))
        row = cur.fetchone()
        _close_execution(cur, execution, "duplicate")
        same = row and row["original_stream"] == row["stream_id"]
        deliveries = webhooks.emit(cur, row["stream_id"], "video.duplicate", video_id, webhooks.video_payload(
            row, status="duplicate", duplicate_of=str(original_id) if same else None,
            similarity=similarity), execution) if row else []
    webhooks.start_deliveries(deliveries)
    live.publish_video(video_id, "video.processing", step="dedup")


def mark_failed(video_id: str, reason: str, execution: str | None = None,
                stage: str | None = None) -> bool:
    """Record a failure, its reason and its stage; False when the video is gone or already failed.

    The first failure stands: a parallel branch failing after it (the ladder's next step
    refused because the execution closed) does not overwrite its stage and reason.

    The failed stage is the one the state machine names (else the video's
    latest attempt); the video shows that stage's index, even when a parallel
    branch had moved it further (the transcode failing while embedding ran
    reads 2, not 4), and attempts still marked running (a step killed at its timeout) are
    closed as failed. `reason` is the detail (admins); the public reason is the
    one the execution's last failed attempt recorded, else "processing failed".
    """
    reason = reason[:2000]
    with db.transaction() as cur:
        cur.execute(
            "UPDATE stage_runs SET status = 'failed', error = %s, finished_at = now()"
            " WHERE video_id = %s AND status = 'running'"
            " AND (%s::text IS NULL OR execution_name = %s)",
            (reason, video_id, execution, execution))
        index = STAGE_INDEX.get(stage or "")
        cur.execute(
            "SELECT public_reason FROM stage_runs WHERE video_id = %s AND status = 'failed'"
            " AND (%s::text IS NULL OR execution_name = %s)"
            " ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1",
            (video_id, execution, execution))
        last = cur.fetchone()
        public = failures.public_reason(last["public_reason"] if last else None, failed=True)
        cur.execute(
            "UPDATE videos SET status = 'failed', failure_reason = %s, failure_public = %s,"
            " updated_at = now(),"
            " failed_stage = coalesce(%s, (SELECT stage FROM stage_runs WHERE video_id = %s"
            "                 ORDER BY started_at DESC, id DESC LIMIT 1)),"
            " processing_index = CASE WHEN %s::int IS NOT NULL AND %s::int > 0"
            "   THEN %s::int ELSE processing_index END"
            " WHERE id = %s AND status NOT IN ('complete', 'duplicate', 'failed')"
            " RETURNING id, stream_id, title, failed_stage",
            (reason, public, stage, video_id, index, index, index, video_id))
        row = cur.fetchone()
        _close_execution(cur, execution, "failed")
        deliveries = webhooks.emit(cur, row["stream_id"], "video.failed", video_id, webhooks.video_payload(
            row, status="failed", reason=public, failed_stage=row["failed_stage"]),
            execution) if row else []
    webhooks.start_deliveries(deliveries)
    if row is not None:
        live.publish_video(video_id, "video.processing", step=stage, reason=public)
    return row is not None


_CLOSE_EXECUTION = "UPDATE pipeline_executions SET status = %s, finished_at = now() WHERE execution_name = %s"


def _close_execution(cur, execution: str | None, status: str) -> None:
    """Close the execution in the transaction that gives its video a final state, so no reader
    sees a final video under a running execution (webhooks and live updates follow the commit)."""
    if execution:
        cur.execute(_CLOSE_EXECUTION, (status, execution))


def finish_execution(execution_name: str, status: str) -> None:
    """Close the execution's row on its own (crash recovery marks the cut ones interrupted)."""
    db.execute(_CLOSE_EXECUTION, (status, execution_name))
